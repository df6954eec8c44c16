// SPDX-License-Identifier: MIT
/*
 * Ring-3 workloads.  Every iteration reads the TSC; a gap between two reads
 * longer than the threshold is a stall, recorded in the shared ring and
 * histogram.  The loop makes no exits: the VMM reads the shared page while
 * the guest runs and asks it to stop through the control page.
 */
#include <stdint.h>

#include "kvmstall/abi.h"

void ks_guest_main(const struct ks_params *p) __attribute__((noreturn, used));

/* KS_WL_HOSTILE_BACKWARDS publishes this, less the iterations so far. */
#define KS_BACKWARDS_FROM (1ULL << 40)

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void ucall(uint32_t nr, uint64_t a0, uint64_t a1)
{
	__asm__ volatile("int3"
			 :
			 : "a"(nr), "d"((uint16_t)KS_PORT_UCALL), "D"(a0), "S"(a1)
			 : "memory");
}

static __attribute__((noreturn)) void fail(uint64_t code, uint64_t detail)
{
	for (;;)
		ucall(KS_UCALL_ERROR, code, detail);
}

/* Keep the compiler from turning the shared-page stores into anything clever. */
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))

static void record(struct ks_shared *sh, uint64_t start, uint64_t ticks)
{
	uint64_t n = sh->stalls;
	struct ks_stall *e = &sh->ring[n & (KS_RING_ENTRIES - 1)];

	WRITE_ONCE(e->start_tsc, start);
	WRITE_ONCE(e->ticks, ticks);
	WRITE_ONCE(sh->hist[ks_hist_bucket(ticks)], sh->hist[ks_hist_bucket(ticks)] + 1);
	WRITE_ONCE(sh->stall_ticks, sh->stall_ticks + ticks);
	if (ticks > sh->max_ticks)
		WRITE_ONCE(sh->max_ticks, ticks);
	/* The entry is complete before the count that publishes it. */
	__atomic_store_n(&sh->stalls, n + 1, __ATOMIC_RELEASE);
}

/* Nonsense a hostile guest could write: the VMM must catch every piece. */
static void scribble(struct ks_shared *sh, uint64_t seed)
{
	unsigned int i;

	for (i = 0; i < KS_HIST_BUCKETS; i++)
		WRITE_ONCE(sh->hist[i], seed * (i + 1));
	for (i = 0; i < KS_RING_ENTRIES; i++) {
		WRITE_ONCE(sh->ring[i].start_tsc, ~seed);
		WRITE_ONCE(sh->ring[i].ticks, seed << (i & 31));
	}
	WRITE_ONCE(sh->stalls, 0xdeadbeefcafeULL);
	WRITE_ONCE(sh->max_ticks, 1);
}

void ks_guest_main(const struct ks_params *p)
{
	struct ks_shared *sh;
	const struct ks_control *ctl;
	volatile uint64_t *mem;
	uint64_t thr, prev, now, gap, iter = 0, hb_ticks, hb_next, words, pos = 0, page_words;
	uint64_t off = 0, step, touches = 0, pass = 0, old;
	uint32_t wl;

	if (p->magic != KS_PARAMS_MAGIC || p->abi_version != KS_ABI_VERSION)
		fail(KS_GUEST_ERR_BAD_PARAMS, p->magic);
	sh = (struct ks_shared *)p->shared_gva;
	ctl = (const struct ks_control *)p->control_gva;
	mem = (volatile uint64_t *)p->region_gva;
	words = p->region_bytes / 8;
	step = p->stride / 8 ? p->stride / 8 : 1;
	page_words = 4096 / 8;
	thr = p->threshold_ticks;
	hb_ticks = p->heartbeat_ticks;
	wl = p->workload;
	/* Hostile payloads: vCPU 0 misbehaves, the others touch memory. */
	if (wl >= KS_WL_HOSTILE_FIRST && wl <= KS_WL_HOSTILE_LAST && p->vcpu_id != 0)
		wl = KS_WL_TOUCH;
	if (wl == KS_WL_HOSTILE_BACKWARDS)
		WRITE_ONCE(sh->iterations, KS_BACKWARDS_FROM);

	prev = rdtsc();
	WRITE_ONCE(sh->first_tsc, prev);
	WRITE_ONCE(sh->last_tsc, prev);
	WRITE_ONCE(sh->magic, KS_SHARED_MAGIC);
	ucall(KS_UCALL_READY, prev, 0);
	prev = rdtsc();
	hb_next = prev + hb_ticks;

	for (;;) {
		now = rdtsc();
		gap = now - prev;
		if (__builtin_expect(gap > thr, 0))
			record(sh, prev, gap);
		prev = now;
		iter++;

		switch (wl) {
		case KS_WL_SPIN:
			break;
		case KS_WL_TOUCH:
			/* Read back what the last pass wrote: events must not lose it silently. */
			old = mem[off];
			if (old != (pass ? ks_touch_marker(off, pass - 1) : 0)) {
				if (old)
					WRITE_ONCE(sh->corrupt, sh->corrupt + 1);
				else
					WRITE_ONCE(sh->zeroed, sh->zeroed + 1);
			}
			mem[off] = ks_touch_marker(off, pass);
			off += step;
			if (off >= words) {
				off = 0;
				pass++;
			}
			touches++;
			break;
		case KS_WL_FAULT:
			/* One write per 4 KiB page, always ahead into memory the VMM dropped. */
			mem[(pos % (words / page_words)) * page_words] = iter;
			pos++;
			/* Published every page: the VMM's recycler drops what lies behind. */
			WRITE_ONCE(sh->position, pos);
			touches++;
			break;
		case KS_WL_CRASH:
			if (iter == 1000)
				*(volatile uint64_t *)0x7fff00000000ULL = iter; /* unmapped: #PF */
			break;
		case KS_WL_GARBAGE:
			if (iter == 1000)
				scribble(sh, now);
			break;
		case KS_WL_HOSTILE_RING:
			/* Claims a million stalls whose records were never written. */
			if (iter == 1000)
				__atomic_store_n(&sh->stalls, sh->stalls + 1000000,
						 __ATOMIC_RELEASE);
			break;
		case KS_WL_HOSTILE_BACKWARDS:
			break; /* see the heartbeat below */
		case KS_WL_HOSTILE_HISTOGRAM:
			if (iter == 1000)
				WRITE_ONCE(sh->hist[100], 0x7fffffffffffffffULL);
			break;
		case KS_WL_HOSTILE_UCALLS:
			for (;;)
				ucall(0xbad, iter, 0);
		case KS_WL_HOSTILE_PARAMS:
			/* The parameter block is the VMM's; the VMM keeps its own copy. */
			if (iter == 1000) {
				struct ks_params *w = (struct ks_params *)p;

				WRITE_ONCE(w->threshold_ticks, 1);
				WRITE_ONCE(w->region_bytes, ~0ULL);
				WRITE_ONCE(w->vcpu_id, 4242);
			}
			break;
		default:
			fail(KS_GUEST_ERR_WORKLOAD, wl);
		}

		/* Time-based: as often for a 10 ns spin as for a 100 us fault. */
		if (__builtin_expect(now >= hb_next, 0)) {
			hb_next = now + hb_ticks;
			WRITE_ONCE(sh->iterations,
				   wl == KS_WL_HOSTILE_BACKWARDS ? KS_BACKWARDS_FROM - iter : iter);
			WRITE_ONCE(sh->touches, touches);
			WRITE_ONCE(sh->position, pos);
			WRITE_ONCE(sh->last_tsc, now);
			WRITE_ONCE(sh->heartbeat, sh->heartbeat + 1);
			if (READ_ONCE(ctl->stop))
				break;
		}
	}
	WRITE_ONCE(sh->iterations, wl == KS_WL_HOSTILE_BACKWARDS ? KS_BACKWARDS_FROM - iter : iter);
	WRITE_ONCE(sh->touches, touches);
	WRITE_ONCE(sh->position, pos);
	WRITE_ONCE(sh->last_tsc, prev);
	ucall(KS_UCALL_DONE, prev, 0);
	fail(KS_GUEST_ERR_WORKLOAD, 0);
}
