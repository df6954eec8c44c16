/* SPDX-License-Identifier: MIT */
/*
 * Stall statistics on the VMM side: reading what a guest wrote into its
 * shared page without trusting it, and the histogram arithmetic
 * (bucket bounds, percentiles) used by the report.
 */
#ifndef KVMSTALL__STATS_H
#define KVMSTALL__STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmstall/abi.h"

/* What a sane guest can have written, known to the VMM independently. */
struct ks_stats_limits {
	uint64_t threshold_ticks;
	uint64_t tsc_lo;       /* no guest TSC value can be below this */
	uint64_t tsc_hi;       /* ... or above this */
	uint64_t max_position; /* fault workload: pages walked cannot exceed iterations */
};

/* A drained stall record, kept by the VMM. */
struct ks_stall_rec {
	uint64_t start_tsc;
	uint64_t ticks;
};

struct ks_vcpu_stats {
	bool valid;
	char invalid_reason[192];
	uint64_t heartbeat;
	uint64_t first_tsc;
	uint64_t last_tsc;
	uint64_t iterations;
	uint64_t touches;
	uint64_t position;
	uint64_t zeroed;
	uint64_t corrupt;
	uint64_t stalls;
	uint64_t stall_ticks;
	uint64_t max_ticks;
	uint64_t hist[KS_HIST_BUCKETS];
	/* ring records drained so far */
	struct ks_stall_rec *recs;
	size_t nrecs;
	size_t caprecs;
	uint64_t ring_tail;	/* guest stall count up to which the ring was drained */
	uint64_t ring_lost;	/* overwritten before the VMM could read them */
	uint64_t drained_ticks; /* sum over the drained records */
	uint64_t interval_max;	/* longest drained record since the caller reset it */
};

/* Percentiles and totals of one histogram, in TSC ticks. */
struct ks_summary {
	uint64_t count;
	double p50;
	double p90;
	double p99;
	double p999;
	uint64_t max;
	uint64_t sum;
};

void ks_stats_init(struct ks_vcpu_stats *s);
void ks_stats_free(struct ks_vcpu_stats *s);

/*
 * Read the counters and drain new ring entries while the guest runs.
 * Returns false (and marks @s invalid with the reason) when the guest wrote
 * something impossible; an invalid @s is never updated again.
 */
bool ks_stats_sample(struct ks_vcpu_stats *s, const struct ks_shared *sh,
		     const struct ks_stats_limits *lim);
/* The last read, once the vCPU has stopped: also checks the histogram. */
bool ks_stats_final(struct ks_vcpu_stats *s, const struct ks_shared *sh,
		    const struct ks_stats_limits *lim);

/* Bounds of histogram bucket @b in ticks: [lo, hi). */
uint64_t ks_hist_lo(unsigned int b);
uint64_t ks_hist_hi(unsigned int b);

/*
 * Percentile @p (0 < p <= 100) of the values in @hist, nearest rank,
 * interpolated within the bucket and capped at @max.  0 if empty.
 */
double ks_hist_percentile(const uint64_t *hist, uint64_t max, double p);
void ks_hist_summarize(const uint64_t *hist, uint64_t max, uint64_t sum, struct ks_summary *out);
/* dst += src, bucket by bucket. */
void ks_hist_add(uint64_t *dst, const uint64_t *src);

/* Nanoseconds to TSC ticks without overflow for any run length. */
static inline uint64_t ks_ns_to_ticks(uint64_t ns, uint32_t tsc_khz)
{
	return (uint64_t)((unsigned __int128)ns * tsc_khz / 1000000);
}

static inline double ks_ticks_to_ns(double ticks, uint32_t tsc_khz)
{
	return tsc_khz ? ticks * 1e6 / tsc_khz : 0;
}

#endif
