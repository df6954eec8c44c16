/* SPDX-License-Identifier: MIT */
/*
 * KVM's own statistics for the run's VM: through KVM_GET_STATS_FD where the
 * kernel has it (5.14+), else the per-VM debugfs directory (5.10).  Counters
 * are read before and after the run and reported as differences.
 */
#ifndef KVMSTALL__KVMSTATS_H
#define KVMSTALL__KVMSTATS_H

#include <stdbool.h>
#include <stdint.h>

#include "vmstat.h"

struct ks_vm;

struct ks_kvmstat {
	char name[64];
	bool cumulative; /* report end - start; otherwise the end value */
	bool vcpu;	 /* summed over all vCPUs */
	uint64_t start;
	uint64_t end;
};

struct ks_kvmstats {
	const char *source; /* "binary_stats_fd", "debugfs" or "none" */
	char why_none[160];
	struct ks_kvmstat *v;
	unsigned int n;
	/* The host kernel's own memory activity over the same span. */
	bool vmstat_ok[KS_VMSTAT_N]; /* found at both ends */
	uint64_t vmstat_start[KS_VMSTAT_N], vmstat_end[KS_VMSTAT_N];
};

void kvmstats__start(struct ks_vm *vm, struct ks_kvmstats *st);
void kvmstats__end(struct ks_vm *vm, struct ks_kvmstats *st);
void kvmstats__free(struct ks_kvmstats *st);

#endif
