// SPDX-License-Identifier: MIT
/* Guest statistics, read without trusting the guest; histogram arithmetic. */
#include "config.h"

#include "stats.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Enough for minutes of heavy stalling per vCPU without unbounded growth. */
#define KS_MAX_RECS_PER_VCPU (1u << 20)
/* Bucket of the largest 64-bit value; buckets above it cannot be filled. */
#define KS_HIST_LAST (ks_hist_bucket(UINT64_MAX))

void ks_stats_init(struct ks_vcpu_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->valid = true;
}

void ks_stats_free(struct ks_vcpu_stats *s)
{
	free(s->recs);
	s->recs = NULL;
	s->nrecs = s->caprecs = 0;
}

static bool invalid(struct ks_vcpu_stats *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static bool invalid(struct ks_vcpu_stats *s, const char *fmt, ...)
{
	va_list ap;

	s->valid = false;
	va_start(ap, fmt);
	vsnprintf(s->invalid_reason, sizeof(s->invalid_reason), fmt, ap);
	va_end(ap);
	return false;
}

static uint64_t rd(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Monotonic counter: may not go backwards. */
static bool advance(struct ks_vcpu_stats *s, const char *name, uint64_t *mine, uint64_t now)
{
	if (now < *mine)
		return invalid(s, "%s went backwards (%" PRIu64 " after %" PRIu64 ")", name, now,
			       *mine);
	*mine = now;
	return true;
}

static void keep(struct ks_vcpu_stats *s, uint64_t start, uint64_t ticks)
{
	s->drained_ticks += ticks;
	if (ticks > s->interval_max)
		s->interval_max = ticks;
	if (s->nrecs == s->caprecs) {
		if (s->caprecs >= KS_MAX_RECS_PER_VCPU) {
			s->ring_lost++;
			return;
		}
		s->caprecs = s->caprecs ? s->caprecs * 2 : 256;
		s->recs = xrealloc(s->recs, s->caprecs * sizeof(*s->recs));
	}
	s->recs[s->nrecs].start_tsc = start;
	s->recs[s->nrecs].ticks = ticks;
	s->nrecs++;
}

static bool drain(struct ks_vcpu_stats *s, const struct ks_shared *sh,
		  const struct ks_stats_limits *lim, uint64_t head)
{
	struct ks_stall copy[KS_RING_ENTRIES];
	uint64_t i, first, now_head;

	if (head - s->ring_tail > KS_RING_ENTRIES) {
		s->ring_lost += head - s->ring_tail - KS_RING_ENTRIES;
		s->ring_tail = head - KS_RING_ENTRIES;
	}
	for (i = s->ring_tail; i < head; i++) {
		const struct ks_stall *e = &sh->ring[i & (KS_RING_ENTRIES - 1)];

		copy[i - s->ring_tail].start_tsc = rd(&e->start_tsc);
		copy[i - s->ring_tail].ticks = rd(&e->ticks);
	}
	/*
	 * Entries the guest may have overwritten while they were copied are
	 * lost, not judged: a half-written record is not the guest's fault.
	 */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	now_head = __atomic_load_n(&sh->stalls, __ATOMIC_ACQUIRE);
	first = s->ring_tail;
	if (now_head > first + KS_RING_ENTRIES) {
		uint64_t skip = now_head - KS_RING_ENTRIES - first;

		skip = skip > head - first ? head - first : skip;
		s->ring_lost += skip;
		first += skip;
	}
	for (i = first; i < head; i++) {
		uint64_t start = copy[i - s->ring_tail].start_tsc,
			 ticks = copy[i - s->ring_tail].ticks;

		if (ticks <= lim->threshold_ticks || start < lim->tsc_lo || start > lim->tsc_hi ||
		    ticks > lim->tsc_hi - lim->tsc_lo)
			return invalid(s,
				       "stall record %" PRIu64 " is impossible (start %" PRIu64
				       ", %" PRIu64 " ticks)",
				       i, start, ticks);
		keep(s, start, ticks);
	}
	s->ring_tail = head;
	return true;
}

static bool read_counters(struct ks_vcpu_stats *s, const struct ks_shared *sh,
			  const struct ks_stats_limits *lim, uint64_t *stalls)
{
	uint64_t v;

	if (rd(&sh->magic) != KS_SHARED_MAGIC)
		return invalid(s, "shared page magic overwritten (0x%" PRIx64 ")", rd(&sh->magic));
	v = rd(&sh->first_tsc);
	if (v && (v < lim->tsc_lo || v > lim->tsc_hi))
		return invalid(s, "start TSC %" PRIu64 " outside the run", v);
	s->first_tsc = v;
	v = rd(&sh->last_tsc);
	if (v && (v < lim->tsc_lo || v > lim->tsc_hi))
		return invalid(s, "heartbeat TSC %" PRIu64 " outside the run", v);
	if (!advance(s, "heartbeat", &s->heartbeat, rd(&sh->heartbeat)) ||
	    !advance(s, "iterations", &s->iterations, rd(&sh->iterations)) ||
	    !advance(s, "touches", &s->touches, rd(&sh->touches)) ||
	    !advance(s, "position", &s->position, rd(&sh->position)) ||
	    !advance(s, "zeroed count", &s->zeroed, rd(&sh->zeroed)) ||
	    !advance(s, "corrupt count", &s->corrupt, rd(&sh->corrupt)) ||
	    !advance(s, "last TSC", &s->last_tsc, v))
		return false;
	*stalls = rd(&sh->stalls);
	if (*stalls < s->ring_tail)
		return invalid(s, "stall count went backwards (%" PRIu64 " after %" PRIu64 ")",
			       *stalls, s->ring_tail);
	/* In 128 bits: counts near 2^64 must not wrap the sums around. */
	if ((unsigned __int128)s->zeroed + s->corrupt > (unsigned __int128)s->touches + 65536)
		return invalid(s,
			       "more failed read-backs (%" PRIu64 " zeroed, %" PRIu64
			       " corrupt) than touches (%" PRIu64 ")",
			       s->zeroed, s->corrupt, s->touches);
	if (s->position > lim->max_position)
		return invalid(s, "position %" PRIu64 " beyond what the run allows", s->position);
	return true;
}

bool ks_stats_sample(struct ks_vcpu_stats *s, const struct ks_shared *sh,
		     const struct ks_stats_limits *lim)
{
	uint64_t head = 0;

	if (!s->valid)
		return false;
	if (!read_counters(s, sh, lim, &head))
		return false;
	return drain(s, sh, lim, head);
}

bool ks_stats_final(struct ks_vcpu_stats *s, const struct ks_shared *sh,
		    const struct ks_stats_limits *lim)
{
	uint64_t head, total = 0, sum, max, b;
	unsigned int top = 0;

	if (!ks_stats_sample(s, sh, lim))
		return false;
	head = s->ring_tail;
	sum = rd(&sh->stall_ticks);
	max = rd(&sh->max_ticks);
	for (b = 0; b < KS_HIST_BUCKETS; b++) {
		uint64_t c = rd(&sh->hist[b]);

		if (c && b > KS_HIST_LAST)
			return invalid(s, "histogram bucket %" PRIu64 " does not exist", b);
		if (c && ks_hist_hi((unsigned int)b) <= lim->threshold_ticks + 1)
			return invalid(s, "histogram bucket %" PRIu64 " is below the threshold", b);
		/* total <= head here: this cannot wrap, as total + c could. */
		if (c > head - total)
			return invalid(s,
				       "histogram holds more stalls than were recorded (%" PRIu64
				       ")",
				       head);
		total += c;
		s->hist[b] = c;
		if (c)
			top = (unsigned int)b;
	}
	if (total != head)
		return invalid(s, "histogram holds %" PRIu64 " stalls, the counter says %" PRIu64,
			       total, head);
	if (head && (max < ks_hist_lo(top) || max >= ks_hist_hi(top)))
		return invalid(s, "longest stall %" PRIu64 " does not match the histogram", max);
	if (head && (sum / head <= lim->threshold_ticks || sum / head > max))
		return invalid(s, "stall time %" PRIu64 " does not match %" PRIu64 " stalls", sum,
			       head);
	if (!head && (sum || max))
		return invalid(s, "stall time without stalls");
	s->stalls = head;
	s->stall_ticks = sum;
	s->max_ticks = max;
	return true;
}

uint64_t ks_hist_lo(unsigned int b)
{
	unsigned int msb;

	if (b < 2 * KS_HIST_SUB)
		return b;
	if (b > KS_HIST_LAST)
		return UINT64_MAX;
	msb = b / KS_HIST_SUB - 1 + KS_HIST_SUB_BITS;
	return (uint64_t)(KS_HIST_SUB + b % KS_HIST_SUB) << (msb - KS_HIST_SUB_BITS);
}

uint64_t ks_hist_hi(unsigned int b)
{
	unsigned int msb;

	if (b < 2 * KS_HIST_SUB)
		return b + 1;
	if (b >= KS_HIST_LAST)
		return UINT64_MAX;
	msb = b / KS_HIST_SUB - 1 + KS_HIST_SUB_BITS;
	return ks_hist_lo(b) + (1ULL << (msb - KS_HIST_SUB_BITS));
}

double ks_hist_percentile(const uint64_t *hist, uint64_t max, double p)
{
	uint64_t total = 0, cum = 0, rank;
	unsigned int b;

	for (b = 0; b < KS_HIST_BUCKETS; b++)
		total += hist[b];
	if (!total)
		return 0;
	rank = (uint64_t)ceil(p / 100.0 * (double)total);
	if (rank < 1)
		rank = 1;
	if (rank > total)
		rank = total;
	for (b = 0; b < KS_HIST_BUCKETS; b++) {
		double lo, hi, v;

		if (cum + hist[b] < rank) {
			cum += hist[b];
			continue;
		}
		lo = (double)ks_hist_lo(b);
		hi = b >= KS_HIST_LAST ? (double)max + 1 : (double)ks_hist_hi(b);
		if (hi - lo <= 1)
			v = lo; /* exact bucket */
		else
			v = lo + (hi - lo) * ((double)(rank - cum) - 0.5) / (double)hist[b];
		return v > (double)max ? (double)max : v;
	}
	return (double)max;
}

void ks_hist_summarize(const uint64_t *hist, uint64_t max, uint64_t sum, struct ks_summary *out)
{
	unsigned int b;

	memset(out, 0, sizeof(*out));
	for (b = 0; b < KS_HIST_BUCKETS; b++)
		out->count += hist[b];
	out->max = out->count ? max : 0;
	out->sum = sum;
	out->p50 = ks_hist_percentile(hist, max, 50);
	out->p90 = ks_hist_percentile(hist, max, 90);
	out->p99 = ks_hist_percentile(hist, max, 99);
	out->p999 = ks_hist_percentile(hist, max, 99.9);
}

void ks_hist_add(uint64_t *dst, const uint64_t *src)
{
	unsigned int b;

	for (b = 0; b < KS_HIST_BUCKETS; b++)
		dst[b] += src[b];
}
