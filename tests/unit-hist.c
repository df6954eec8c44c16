// SPDX-License-Identifier: MIT
/*
 * Histogram arithmetic and percentiles against known data, and the
 * validation of what a guest writes into its shared page.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "tap.h"

static bool bucket_bounds_hold(uint64_t v)
{
	unsigned int b = ks_hist_bucket(v);

	return b < KS_HIST_BUCKETS && ks_hist_lo(b) <= v &&
	       (v < ks_hist_hi(b) || ks_hist_hi(b) == UINT64_MAX);
}

static void test_buckets(void)
{
	uint64_t v, bad = 0, prev_b = 0, nonmono = 0;
	unsigned int i;

	for (v = 0; v < 200000; v++) {
		unsigned int b = ks_hist_bucket(v);

		bad += !bucket_bounds_hold(v);
		nonmono += b < prev_b;
		prev_b = b;
	}
	for (i = 0; i < 64; i++) {
		v = 1ULL << i;
		bad += !bucket_bounds_hold(v) + !bucket_bounds_hold(v - 1) +
		       !bucket_bounds_hold(v + 1);
	}
	bad += !bucket_bounds_hold(UINT64_MAX);
	tap_eq_u64(bad, 0, "every value lies within its bucket's bounds");
	tap_eq_u64(nonmono, 0, "buckets grow with the value");
	tap_eq_u64(ks_hist_bucket(7), 7, "values below 16 have exact buckets");
	tap_eq_u64(ks_hist_hi(ks_hist_bucket(1000)) - ks_hist_lo(ks_hist_bucket(1000)), 64,
		   "a bucket near 1000 is 1/8 of its power of two wide");
	for (i = 16, bad = 0; i < ks_hist_bucket(UINT64_MAX); i++)
		bad += ks_hist_hi(i) != ks_hist_lo(i + 1);
	tap_eq_u64(bad, 0, "buckets tile the range without gaps");
}

static void fill(uint64_t *hist, const uint64_t *vals, size_t n)
{
	size_t i;

	memset(hist, 0, KS_HIST_BUCKETS * sizeof(*hist));
	for (i = 0; i < n; i++)
		hist[ks_hist_bucket(vals[i])]++;
}

static void test_percentiles(void)
{
	static uint64_t hist[KS_HIST_BUCKETS];
	uint64_t vals[1000];
	struct ks_summary s;
	double p, width;
	unsigned int i;

	for (i = 0; i < 10; i++)
		vals[i] = i + 1;
	fill(hist, vals, 10);
	tap_ok(ks_hist_percentile(hist, 10, 50) == 5, "p50 of 1..10 is 5 (nearest rank)");
	tap_ok(ks_hist_percentile(hist, 10, 90) == 9, "p90 of 1..10 is 9");
	tap_ok(ks_hist_percentile(hist, 10, 99) == 10, "p99 of 1..10 is 10");
	tap_ok(ks_hist_percentile(hist, 10, 100) == 10, "p100 of 1..10 is the max");

	/* 1000 values 1000..1999: interpolation stays within one bucket of the truth. */
	for (i = 0; i < 1000; i++)
		vals[i] = 1000 + i;
	fill(hist, vals, 1000);
	p = ks_hist_percentile(hist, 1999, 50);
	width = (double)(ks_hist_hi(ks_hist_bucket(1499)) - ks_hist_lo(ks_hist_bucket(1499)));
	tap_ok(p >= 1499 - width && p <= 1499 + width, "p50 of 1000..1999 is %.1f, truth 1499", p);
	p = ks_hist_percentile(hist, 1999, 99);
	tap_ok(p >= 1989 - 256 && p <= 1999, "p99 of 1000..1999 is %.1f, truth 1989, capped at max",
	       p);

	/* Heavy tail: 990 small, 10 huge; p99 small, p99.9 huge. */
	for (i = 0; i < 1000; i++)
		vals[i] = i < 990 ? 100 : 1000000;
	fill(hist, vals, 1000);
	ks_hist_summarize(hist, 1000000, 990 * 100 + 10 * 1000000ULL, &s);
	tap_eq_u64(s.count, 1000, "summary counts every value");
	tap_ok(s.p99 >= 96 && s.p99 <= 104, "p99 of the tail set is in the small bucket (%.1f)",
	       s.p99);
	tap_ok(s.p999 > 900000 && s.p999 <= 1000000, "p99.9 of the tail set is huge (%.1f)",
	       s.p999);
	tap_eq_u64(s.max, 1000000, "max is exact");

	memset(hist, 0, sizeof(hist));
	tap_ok(ks_hist_percentile(hist, 0, 50) == 0, "empty histogram gives 0");
}

/* A guest page as a well-behaved guest would leave it. */
static struct ks_shared *good_page(uint64_t nstalls, uint64_t thr)
{
	struct ks_shared *sh = calloc(1, sizeof(*sh));
	uint64_t i, t = 1000000;

	sh->magic = KS_SHARED_MAGIC;
	sh->first_tsc = t;
	for (i = 0; i < nstalls; i++) {
		uint64_t len = thr + 1 + i * 37;

		sh->ring[i % KS_RING_ENTRIES] = (struct ks_stall){ t, len };
		sh->hist[ks_hist_bucket(len)]++;
		sh->stall_ticks += len;
		if (len > sh->max_ticks)
			sh->max_ticks = len;
		t += len + 10;
	}
	sh->stalls = nstalls;
	sh->last_tsc = t;
	sh->iterations = 5000;
	sh->heartbeat = 3;
	return sh;
}

static const struct ks_stats_limits lim = {
	.threshold_ticks = 100,
	.tsc_lo = 1000,
	.tsc_hi = 1ULL << 40,
	.max_position = 1ULL << 40,
};

/* A threshold of 0 ticks: no bound on the mean stall from below. */
static const struct ks_stats_limits lim_zero = {
	.threshold_ticks = 0,
	.tsc_lo = 1000,
	.tsc_hi = 1ULL << 40,
	.max_position = 1ULL << 40,
};

/*
 * 2^64 - 1 stalls (the ring full of valid records), and buckets of 2^64 - 1,
 * 1 and 2^64 - 1 stalls: a running total in 64 bits wraps to the count.
 */
static struct ks_shared *hist_wrap_page(void)
{
	struct ks_shared *sh = good_page(0, 100);
	unsigned int i;

	for (i = 0; i < KS_RING_ENTRIES; i++)
		sh->ring[i] = (struct ks_stall){ 2000, 200 };
	sh->stalls = UINT64_MAX;
	sh->hist[ks_hist_bucket(100)] = UINT64_MAX;
	sh->hist[ks_hist_bucket(150)] = 1;
	sh->hist[ks_hist_bucket(200)] = UINT64_MAX;
	sh->max_ticks = 200;
	sh->stall_ticks = UINT64_MAX;
	return sh;
}

static bool final_of(struct ks_shared *sh, struct ks_vcpu_stats *s)
{
	ks_stats_init(s);
	return ks_stats_final(s, sh, &lim);
}

static void test_validation(void)
{
	struct ks_vcpu_stats s;
	struct ks_shared *sh;

	sh = good_page(50, 100);
	tap_ok(final_of(sh, &s), "a consistent page is accepted");
	tap_eq_u64(s.stalls, 50, "all stalls counted");
	tap_eq_u64(s.nrecs, 50, "all records drained");
	tap_eq_u64(s.ring_lost, 0, "nothing lost");
	ks_stats_free(&s);
	free(sh);

	sh = good_page(KS_RING_ENTRIES + 10, 100);
	tap_ok(final_of(sh, &s), "a ring that wrapped is accepted");
	tap_eq_u64(s.ring_lost, 10, "overwritten records are counted as lost");
	ks_stats_free(&s);
	free(sh);

	/* Each corruption on its own must be caught. */
	sh = good_page(20, 100);
	sh->magic = 0;
	tap_ok(!final_of(sh, &s), "overwritten magic is rejected (%s)", s.invalid_reason);
	free(sh);

	sh = good_page(20, 100);
	sh->hist[ks_hist_bucket(150)] += 3;
	tap_ok(!final_of(sh, &s), "histogram/count mismatch is rejected (%s)", s.invalid_reason);
	ks_stats_free(&s);
	free(sh);

	sh = good_page(20, 100);
	sh->ring[3].ticks = 5;
	tap_ok(!final_of(sh, &s), "a record below the threshold is rejected (%s)",
	       s.invalid_reason);
	ks_stats_free(&s);
	free(sh);

	sh = good_page(20, 100);
	sh->ring[4].start_tsc = 1ULL << 50;
	tap_ok(!final_of(sh, &s), "a record outside the run is rejected (%s)", s.invalid_reason);
	ks_stats_free(&s);
	free(sh);

	sh = good_page(20, 100);
	sh->max_ticks = 1ULL << 30;
	tap_ok(!final_of(sh, &s), "a max outside the top bucket is rejected (%s)",
	       s.invalid_reason);
	ks_stats_free(&s);
	free(sh);

	sh = good_page(0, 100);
	sh->hist[KS_HIST_BUCKETS - 1] = 0;
	sh->hist[ks_hist_bucket(UINT64_MAX) + 1] = 1;
	sh->stalls = 1;
	sh->ring[0] = (struct ks_stall){ 2000, 200 };
	sh->max_ticks = 200;
	sh->stall_ticks = 200;
	tap_ok(!final_of(sh, &s), "a bucket that cannot exist is rejected (%s)", s.invalid_reason);
	ks_stats_free(&s);
	free(sh);

	sh = good_page(20, 100);
	sh->stall_ticks = 7;
	tap_ok(!final_of(sh, &s), "stall time below count x threshold is rejected (%s)",
	       s.invalid_reason);
	ks_stats_free(&s);
	free(sh);

	/* Counters that go backwards between two samples. */
	sh = good_page(20, 100);
	ks_stats_init(&s);
	tap_ok(ks_stats_sample(&s, sh, &lim), "first sample accepted");
	sh->iterations = 10;
	tap_ok(!ks_stats_sample(&s, sh, &lim), "iterations going backwards are rejected (%s)",
	       s.invalid_reason);
	sh->iterations = 1000000;
	tap_ok(!ks_stats_sample(&s, sh, &lim), "an invalid vCPU stays invalid");
	ks_stats_free(&s);
	free(sh);

	sh = good_page(20, 100);
	ks_stats_init(&s);
	ks_stats_sample(&s, sh, &lim);
	sh->stalls = 5;
	tap_ok(!ks_stats_sample(&s, sh, &lim), "stall count going backwards is rejected (%s)",
	       s.invalid_reason);
	ks_stats_free(&s);
	free(sh);

	/* Sums near 2^64 must not wrap around past the checks. */
	sh = good_page(20, 100);
	sh->zeroed = sh->corrupt = 1ULL << 63;
	tap_ok(!final_of(sh, &s), "read-back failures that add up to 2^64 are rejected (%s)",
	       s.invalid_reason);
	ks_stats_free(&s);
	free(sh);

	sh = hist_wrap_page();
	ks_stats_init(&s);
	tap_ok(!ks_stats_final(&s, sh, &lim_zero),
	       "a histogram that adds up to 2^65 stalls is rejected (%s)", s.invalid_reason);
	ks_stats_free(&s);
	free(sh);

	sh = good_page(20, 100);
	sh->stalls = 0xdeadbeefcafeULL;
	tap_ok(!final_of(sh, &s), "a huge stall count does not read out of bounds (%s)",
	       s.invalid_reason);
	ks_stats_free(&s);
	free(sh);
}

int main(void)
{
	tap_plan(36);
	test_buckets();
	test_percentiles();
	test_validation();
	return tap_done();
}
