/* SPDX-License-Identifier: MIT */
#ifndef KVMSTALL__OPTIONS_H
#define KVMSTALL__OPTIONS_H

#include "kvmstall.h"

/*
 * Parse the command line into @cfg.  Bad values exit with status 2 and one
 * line naming the option and what it accepts; --help and --version exit 0.
 */
void options__parse(struct ks_config *cfg, int argc, char **argv);
/* What options__parse allocated. */
void options__free(struct ks_config *cfg);
const char *workload_name(enum ks_workload w);

#endif
