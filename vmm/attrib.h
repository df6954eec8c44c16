/* SPDX-License-Identifier: MIT */
/*
 * Attribution: each stall the VMM kept is placed on the host clock and
 * matched to the events whose time window overlapped it.  Per stream: the
 * events' latency and lateness, the stalls they overlapped and the stall
 * rate while they were in flight, next to the rate while none was.
 */
#ifndef KVMSTALL__ATTRIB_H
#define KVMSTALL__ATTRIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anatomy.h"

struct ks_vm;
struct ks_vcpu;
struct ks_stall_rec;

struct ks_pct {
	double p50;
	double p99;
	double max;
};

struct ks_attrib_stream {
	uint64_t events;
	uint64_t errors;
	int first_error;	   /* -errno of the first failed event, 0 if none */
	double achieved_rate;	   /* events per second over the stream's active time */
	struct ks_pct latency_ns;  /* end - start */
	struct ks_pct lateness_ns; /* start - due */
	uint64_t stalls;	   /* stalls overlapping at least one of its events */
	double stall_ns;	   /* their total length */
	uint64_t coverage_ns;	   /* time with at least one of its events in flight */
	double stalls_per_vcpu_s;  /* stall rate while its events were in flight */
	struct ks_causes causes;   /* the host side of those stalls (--anatomy) */
};

struct ks_attrib {
	struct ks_attrib_stream *s; /* one per stream */
	unsigned int n;
	uint64_t stalls_total; /* stalls inside the run window */
	uint64_t base_stalls;  /* overlapping no event at all */
	double base_stall_ns;
	uint64_t base_ns; /* run time with no event in flight */
	double base_per_vcpu_s;
	unsigned int nvcpus; /* vCPUs with valid data */
	/*
	 * The host side of the stalls (--anatomy): per vCPU and in total over
	 * every stall kept, whole run; per stream and baseline as above.
	 */
	bool has_causes;
	struct ks_causes *vcpu_causes;
	struct ks_causes total_causes;
	struct ks_causes base_causes;
};

/* A kept stall record on the host clock; false if it cannot be placed. */
bool ks_stall_place(const struct ks_vm *vm, const struct ks_vcpu *v, const struct ks_stall_rec *r,
		    uint64_t *s, uint64_t *e);

void attrib__compute(struct ks_vm *vm, uint64_t run_start_ns, uint64_t run_end_ns,
		     struct ks_attrib *a);
void attrib__free(struct ks_attrib *a);
/* Exact percentile of @n values (sorted in place). */
struct ks_pct ks_percentiles(uint64_t *v, size_t n);

#endif
