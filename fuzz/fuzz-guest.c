// SPDX-License-Identifier: MIT
/*
 * Fuzz target: what a hostile guest writes into its shared page (struct
 * ks_shared), read by ks_stats_sample() while the vCPU runs and by
 * ks_stats_final() once it has stopped, then summed up by the report.
 *
 * The input (integers little-endian):
 *   u64 threshold_ticks, u64 tsc_lo, u64 tsc_span: the VMM's limits
 *     (struct ks_stats_limits; tsc_hi = tsc_lo + tsc_span);
 *   then, until the input ends, one record per write of the guest:
 *     u32 advance: tsc_hi grows by this much (time passed);
 *     u16 off: the low 15 bits are where the guest writes (modulo the page
 *       size); bit 15 set: more writes before the VMM looks again;
 *     u16 len, u16 reps: the guest writes the len bytes that follow (fewer
 *       where the input ends) at off, 1 + reps times back to back, as far
 *       as the page goes;
 *     then, unless bit 15 of off is set, the VMM samples the page.
 * The page starts zeroed; the last look is ks_stats_final().  So a single
 * record can hold a whole page of arbitrary bytes, and a few short ones a
 * page that looks valid (magic, counters, a ring of stall records).
 *
 * Checks: a vCPU found invalid stays so and is never changed again; one
 * left valid has counters that only grew, TSCs within the limits, every
 * ring record accounted for (kept + lost = stalls drained), each kept
 * record plausible; after the final read, a histogram that adds up (in
 * 128 bits) to the stall count, a longest stall in the top bucket, a mean
 * above the threshold and percentiles in order below the maximum.  The
 * summary table and the JSON report are written to /dev/null.  Reads out
 * of the page's bounds are ASan's to catch: the page is its own heap block.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "report.h"
#include "stats.h"
#include "util.h"

#define TSC_KHZ 1000000 /* 1 tick = 1 ns */

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	devnull = fopen("/dev/null", "w");
	if (!devnull)
		abort();
	return 0;
}

static uint64_t get(const uint8_t **p, const uint8_t *end, unsigned int bytes)
{
	uint64_t v = 0;
	unsigned int i;

	for (i = 0; i < bytes && *p < end; i++, (*p)++)
		v |= (uint64_t) * *p << (8 * i);
	return v;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* The guest writes @len bytes of @src at @off, 1 + @reps times, as far as the page goes. */
static void guest_write(struct ks_shared *sh, size_t off, const uint8_t *src, size_t len,
			size_t reps)
{
	uint8_t *page = (uint8_t *)sh;
	size_t i, n;

	off %= sizeof(*sh);
	for (i = 0; i <= reps && len && off < sizeof(*sh); i++) {
		n = len < sizeof(*sh) - off ? len : sizeof(*sh) - off;
		memcpy(page + off, src, n);
		off += n;
	}
}

static bool is_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	return !n || (!b[0] && !memcmp(b, b + 1, n - 1));
}

/* What one sample may have done to @s, given what it was before (@o). */
static void check_sample(const struct ks_vcpu_stats *o, const struct ks_vcpu_stats *s,
			 const struct ks_stats_limits *lim, bool ok)
{
	uint64_t i, sum = 0;

	FUZZ_CHECK(ok == s->valid, "returned %d for a vCPU with valid=%d", ok, s->valid);
	if (!o->valid) {
		FUZZ_CHECK(!memcmp(o, s, sizeof(*s)), "an invalid vCPU's statistics changed");
		return;
	}
	if (!s->valid) {
		FUZZ_CHECK(s->invalid_reason[0] &&
				   memchr(s->invalid_reason, '\0', sizeof(s->invalid_reason)),
			   "invalid without a reason");
		return;
	}
	FUZZ_CHECK(is_zero(s->invalid_reason, sizeof(s->invalid_reason)), "valid with a reason");
	FUZZ_CHECK(s->heartbeat >= o->heartbeat && s->iterations >= o->iterations &&
			   s->touches >= o->touches && s->position >= o->position &&
			   s->zeroed >= o->zeroed && s->corrupt >= o->corrupt &&
			   s->last_tsc >= o->last_tsc,
		   "a counter went backwards");
	FUZZ_CHECK(!s->first_tsc || (s->first_tsc >= lim->tsc_lo && s->first_tsc <= lim->tsc_hi),
		   "first TSC %" PRIu64 " outside [%" PRIu64 ", %" PRIu64 "]", s->first_tsc,
		   lim->tsc_lo, lim->tsc_hi);
	FUZZ_CHECK(!s->last_tsc || (s->last_tsc >= lim->tsc_lo && s->last_tsc <= lim->tsc_hi),
		   "last TSC %" PRIu64 " outside [%" PRIu64 ", %" PRIu64 "]", s->last_tsc,
		   lim->tsc_lo, lim->tsc_hi);
	FUZZ_CHECK(s->position <= lim->max_position, "position %" PRIu64 " above %" PRIu64,
		   s->position, lim->max_position);
	FUZZ_CHECK((unsigned __int128)s->zeroed + s->corrupt <=
			   (unsigned __int128)s->touches + 65536,
		   "%" PRIu64 " + %" PRIu64 " failed read-backs for %" PRIu64 " touches", s->zeroed,
		   s->corrupt, s->touches);
	FUZZ_CHECK(s->ring_tail >= o->ring_tail, "ring tail went backwards");
	FUZZ_CHECK(s->nrecs >= o->nrecs && s->nrecs <= s->caprecs && s->caprecs <= 1u << 20,
		   "%zu records in %zu", s->nrecs, s->caprecs);
	FUZZ_CHECK((unsigned __int128)s->nrecs + s->ring_lost == s->ring_tail,
		   "%zu kept + %" PRIu64 " lost records for %" PRIu64 " stalls", s->nrecs,
		   s->ring_lost, s->ring_tail);
	for (i = o->nrecs; i < s->nrecs; i++) {
		const struct ks_stall_rec *r = &s->recs[i];

		FUZZ_CHECK(r->ticks > lim->threshold_ticks && r->start_tsc >= lim->tsc_lo &&
				   r->start_tsc <= lim->tsc_hi,
			   "kept record %" PRIu64 " (start %" PRIu64 ", %" PRIu64 " ticks)", i,
			   r->start_tsc, r->ticks);
		FUZZ_CHECK(s->interval_max >= r->ticks, "interval max %" PRIu64 " below %" PRIu64,
			   s->interval_max, r->ticks);
		sum += r->ticks;
	}
	if (s->ring_lost == o->ring_lost)
		FUZZ_CHECK(s->drained_ticks - o->drained_ticks == sum,
			   "drained %" PRIu64 " ticks, the new records hold %" PRIu64,
			   s->drained_ticks - o->drained_ticks, sum);
}

static void check_final(const struct ks_vcpu_stats *s, const struct ks_stats_limits *lim)
{
	unsigned __int128 total = 0;
	struct ks_summary sum;
	unsigned int b, top = 0;

	if (!s->valid)
		return;
	for (b = 0; b < KS_HIST_BUCKETS; b++) {
		total += s->hist[b];
		if (s->hist[b]) {
			top = b;
			FUZZ_CHECK(ks_hist_hi(b) > lim->threshold_ticks + 1,
				   "bucket %u, below the threshold, holds %" PRIu64, b, s->hist[b]);
		}
	}
	FUZZ_CHECK(total == s->stalls, "the histogram holds %.0f stalls, the vCPU %" PRIu64,
		   (double)total, s->stalls);
	FUZZ_CHECK(s->stalls == s->ring_tail, "%" PRIu64 " stalls, ring drained to %" PRIu64,
		   s->stalls, s->ring_tail);
	if (!s->stalls) {
		FUZZ_CHECK(!s->stall_ticks && !s->max_ticks, "stall time without stalls");
		return;
	}
	FUZZ_CHECK(s->max_ticks >= ks_hist_lo(top) &&
			   (s->max_ticks < ks_hist_hi(top) || ks_hist_hi(top) == UINT64_MAX),
		   "longest stall %" PRIu64 " outside the top bucket %u", s->max_ticks, top);
	FUZZ_CHECK(s->stall_ticks / s->stalls > lim->threshold_ticks &&
			   s->stall_ticks / s->stalls <= s->max_ticks,
		   "mean stall %" PRIu64 " ticks", s->stall_ticks / s->stalls);
	ks_hist_summarize(s->hist, s->max_ticks, s->stall_ticks, &sum);
	FUZZ_CHECK(sum.count == s->stalls, "summary count %" PRIu64, sum.count);
	FUZZ_CHECK(!isnan(sum.p50) && sum.p50 >= 0 && sum.p50 <= sum.p90 && sum.p90 <= sum.p99 &&
			   sum.p99 <= sum.p999 && sum.p999 <= (double)s->max_ticks,
		   "percentiles %g %g %g %g, max %" PRIu64, sum.p50, sum.p90, sum.p99, sum.p999,
		   s->max_ticks);
}

/* The summary table and the JSON report of a one-vCPU run with these statistics. */
static void report(const struct ks_vcpu_stats *s, uint64_t threshold_ticks)
{
	static struct ks_vcpu vcpu;
	static struct ks_run r;
	static char prog[] = "kvmstall";
	static char *argv[] = { prog, NULL };
	struct ks_config cfg = { .vcpus = 1,
				 .memory = GiB,
				 .slots = 1,
				 .workload = KS_WL_TOUCH,
				 .threshold_ns = threshold_ticks,
				 .duration_ns = NSEC_PER_SEC,
				 .stride = 4096,
				 .argc = 1,
				 .argv = argv };
	struct ks_vm vm = { .cfg = &cfg,
			    .vcpus = &vcpu,
			    .tsc_khz = TSC_KHZ,
			    .threshold_ticks = threshold_ticks,
			    .kvm_fd = -1,
			    .vm_fd = -1 };

	memset(&r, 0, sizeof(r));
	vcpu = (struct ks_vcpu){ .id = 0, .cpu = -1, .node = -1, .state = KS_VCPU_DONE };
	vcpu.stats = *s;
	vm.backing = ks_backing_info(KS_BACKING_ANON);
	vm.layout = (struct ks_layout){ .nvcpus = 1, .page_size = 4096, .slot_size = GiB };
	r.vm = &vm;
	r.run_start_ns = 1;
	r.run_end_ns = 1 + NSEC_PER_SEC;
	report__finish(&r);
	FUZZ_CHECK(r.ninvalid == !s->valid, "%u vCPUs discarded", r.ninvalid);
	report__table(&r, devnull);
	FUZZ_CHECK(report__json(&r, "/dev/null") == 0, "no JSON report");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	struct ks_stats_limits lim;
	struct ks_vcpu_stats s, before;
	struct ks_shared *sh;
	uint64_t tsc_hi;
	bool ok;

	if (size < 24)
		return 0;
	lim.threshold_ticks = get(&p, end, 8);
	lim.tsc_lo = get(&p, end, 8);
	tsc_hi = sat_add(lim.tsc_lo, get(&p, end, 8));
	sh = calloc(1, sizeof(*sh));
	if (!sh)
		abort();
	ks_stats_init(&s);
	do {
		size_t off, len, reps;

		tsc_hi = sat_add(tsc_hi, get(&p, end, 4));
		off = get(&p, end, 2);
		len = get(&p, end, 2);
		reps = get(&p, end, 2);
		len = len < (size_t)(end - p) ? len : (size_t)(end - p);
		guest_write(sh, off & 0x7fff, p, len, reps);
		p += len;
		if ((off & 0x8000) && p < end)
			continue;

		/* As the VMM's limits_now(). */
		lim.tsc_hi = tsc_hi;
		lim.max_position = s.iterations + (1ULL << 32);
		memcpy(&before, &s, sizeof(s));
		if (p < end) {
			ok = ks_stats_sample(&s, sh, &lim);
			check_sample(&before, &s, &lim, ok);
		} else {
			ok = ks_stats_final(&s, sh, &lim);
			check_sample(&before, &s, &lim, ok);
			check_final(&s, &lim);
		}
	} while (p < end);
	report(&s, lim.threshold_ticks);
	ks_stats_free(&s);
	free(sh);
	return 0;
}
