/* SPDX-License-Identifier: MIT */
/*
 * The host kernel's own memory activity, from /proc/vmstat: what can
 * invalidate guest memory without kvmstall asking for it.  Compaction and
 * NUMA balancing migrate pages, khugepaged collapses them, reclaim drops
 * them.  kvmstall reports how much of each happened during the run.
 */
#ifndef KVMSTALL__VMSTAT_H
#define KVMSTALL__VMSTAT_H

#include <stdbool.h>
#include <stdint.h>

#define KS_VMSTAT_N 10
extern const char *const ks_vmstat_names[KS_VMSTAT_N];

/* Finds each of ks_vmstat_names in a /proc/vmstat text; found[i] says whether. */
void ks_vmstat_parse(const char *text, uint64_t *v, bool *found);

/* The same from /proc/vmstat itself; nothing found if it cannot be read. */
void ks_vmstat_read(uint64_t *v, bool *found);

#endif
