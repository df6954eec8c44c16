// SPDX-License-Identifier: MIT
/*
 * mn-race: memslot updates racing with paired MMU-notifier invalidations.
 *
 * The patched kernel decides per invalidation whether it overlaps a
 * memslot, and invalidate_range_start and _end must make the same
 * decision: a memslot created or moved between them would otherwise
 * leave mmu_notifier_count unbalanced (negative: a BUG; stuck positive:
 * every vCPU fault retries forever, the VM stops).  The kernel defends by
 * making memslot updates wait for in-flight invalidations; this test
 * hammers exactly that window:
 *
 *  - a slot thread creates, turns dirty logging on and off for (updates
 *    that change only the flags, and keep the hva), moves (same slot id,
 *    new guest_phys_addr) and deletes two memslots whose hvas slide
 *    across a large anonymous region;
 *  - two storm threads issue paired invalidations (MADV_DONTNEED, and
 *    mprotect read-only/read-write toggles) on ranges that move in and
 *    out of those slots, many of them straddling a slot's edge, plus the
 *    page the guest keeps reading;
 *  - a vCPU thread runs a guest that loops forever: increment a counter,
 *    read the zapped page (so its faults must keep being retried and
 *    completed), read a page of the sliding slots' home window;
 *  - the main thread samples the guest's counter every second and fails
 *    when it stops advancing for --stall seconds.
 *
 * At the end the threads stop (a signal makes KVM_RUN return EINTR) and,
 * where the patched kernel's counters exist, both gauges must be 0 and
 * seen == locked + elided for invalidate.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PROG "mn-race"
#include "mn-common.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Where 5.10 keeps the per-VM directories; overridable to test this test. */
#ifndef KVM_DEBUGFS
#endif

#define PAGE		4096ul
#define REGION_SIZE	(64ul << 20)	/* the anonymous region the slots slide over */
#define SLOT_SIZE	(4ul << 20)
#define NR_MOVING	2

/* Stable slot: code, the guest's counter, the page the storms zap. */
#define STABLE_GPA	0x00100000u
#define STABLE_SLOT	0
#define CNT_GPA		(STABLE_GPA + 0x1000u)
#define ZAP_GPA		(STABLE_GPA + 0x2000u)
#define STABLE_SIZE	(3 * PAGE)

/*
 * The moving slots are created at "home" (adjacent, so the guest reads
 * one 8 MiB window across both) and moved to "away", where the guest does
 * not look; while a slot is away or deleted its reads are MMIO exits.
 */
#define HOME_GPA	0x40000000u
#define AWAY_GPA	0x48000000u

static const uint8_t guest_code[] = {
	0xff, 0x05, 0x00, 0x10, 0x10, 0x00,	/* 0:  inc dword [CNT_GPA] */
	0xa1, 0x00, 0x20, 0x10, 0x00,		/* 6:  mov eax, [ZAP_GPA] */
	0x8b, 0x06,				/* 11: mov eax, [esi] */
	0x81, 0xc6, 0x00, 0x10, 0x00, 0x00,	/* 13: add esi, 0x1000 */
	0x81, 0xe6, 0xff, 0xff, 0x7f, 0x00,	/* 19: and esi, 0x7fffff (8 MiB window) */
	0x81, 0xce, 0x00, 0x00, 0x00, 0x40,	/* 25: or esi, HOME_GPA */
	0xeb, 0xdf,				/* 31: jmp 0 */
};

struct race {
	int kvm, vm, vcpu;
	struct kvm_run *run;
	size_t run_size;
	int cdir;
	char cpath[64];
	uint8_t *stable;
	uint8_t *region;
	pthread_t vcpu_thread;

	atomic_bool stop;
	atomic_bool vcpu_done;
	/* Where the moving slots are now (offset in region + 1), 0 if absent. */
	atomic_ulong slot_off[NR_MOVING];

	/* Operation counts, each written by one thread. */
	atomic_ulong creates, flag_updates, moves, deletes, slot_max_us;
	atomic_ulong madvises, mprotects, storm_errors;
	atomic_ulong mmio_exits;
	double max_gap;		/* longest time the guest counter stood still */
	char vcpu_error[160];
	char slot_error[160];
};

static struct race R;
static char outbuf[8192];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static int counter_get(const char *name, uint64_t *val)
{
	return counter_read(R.cdir, name, val);
}

/* ---- the vCPU ---- */

/*
 * The stop signal may arrive while the vCPU thread is between two
 * KVM_RUNs; immediate_exit makes the next KVM_RUN return EINTR at once
 * instead of entering the guest for good.
 */
static void on_stop_signal(int sig)
{
	(void)sig;
	R.run->immediate_exit = 1;
}

static void *vcpu_main(void *arg)
{
	(void)arg;
	for (;;) {
		int r = ioctl(R.vcpu, KVM_RUN, 0);

		if (r < 0 && errno == EINTR) {
			if (atomic_load(&R.stop))
				break;
			continue;
		}
		if (r < 0) {
			snprintf(R.vcpu_error, sizeof(R.vcpu_error), "KVM_RUN: %s", strerror(errno));
			break;
		}
		if (R.run->exit_reason == KVM_EXIT_MMIO && !R.run->mmio.is_write) {
			/* A sliding slot is away or deleted: reads as zero. */
			memset(R.run->mmio.data, 0, sizeof(R.run->mmio.data));
			atomic_fetch_add(&R.mmio_exits, 1);
			continue;
		}
		if (R.run->exit_reason == KVM_EXIT_INTR) {
			if (atomic_load(&R.stop))
				break;
			continue;
		}
		snprintf(R.vcpu_error, sizeof(R.vcpu_error), "unexpected exit reason %u (%s 0x%llx)",
			 R.run->exit_reason,
			 R.run->exit_reason == KVM_EXIT_INTERNAL_ERROR ? "suberror" : "hardware reason",
			 R.run->exit_reason == KVM_EXIT_INTERNAL_ERROR ?
			 (unsigned long long)R.run->internal.suberror :
			 (unsigned long long)R.run->fail_entry.hardware_entry_failure_reason);
		break;
	}
	atomic_store(&R.vcpu_done, true);
	return NULL;
}

/* ---- the slot thread ---- */

/*
 * Per moving slot: create at home at the next hva, move away, move home,
 * delete; the hva slides by a different odd number of pages per slot so
 * the two slots overlap each other and the storms' ranges in every way.
 */
static void *slot_main(void *arg)
{
	static const unsigned long stride[NR_MOVING] = { 37 * PAGE, 61 * PAGE };
	unsigned long off[NR_MOVING] = { 0, REGION_SIZE / 2 };
	/* 0 absent, 1 home, 2 home and logging dirty pages, 3 home, 4 away, 5 home again */
	int state[NR_MOVING] = { 0, 0 };
	unsigned long span = REGION_SIZE - SLOT_SIZE;
	unsigned int i = 0;

	(void)arg;
	while (!atomic_load(&R.stop)) {
		unsigned int s = i++ % NR_MOVING;
		uint32_t home = HOME_GPA + s * (uint32_t)SLOT_SIZE;
		uint32_t away = AWAY_GPA + s * (uint32_t)SLOT_SIZE;
		double t0 = now_s(), us;
		const char *what;
		int r;

		switch (state[s]) {
		case 0:
			off[s] = (off[s] + stride[s]) % span;
			what = "create";
			r = mn_set_slot(R.vm, 1 + s, home, SLOT_SIZE, R.region + off[s]);
			if (!r) {
				atomic_store(&R.slot_off[s], off[s] + 1);
				atomic_fetch_add(&R.creates, 1);
			}
			break;
		case 1:
		case 2:
			what = "flags-only update";
			r = mn_set_slot_flags(R.vm, 1 + s, home, SLOT_SIZE, R.region + off[s],
					      state[s] == 1 ? KVM_MEM_LOG_DIRTY_PAGES : 0);
			if (!r)
				atomic_fetch_add(&R.flag_updates, 1);
			break;
		case 3:
		case 4:
			what = "move";
			r = mn_set_slot(R.vm, 1 + s, state[s] == 3 ? away : home, SLOT_SIZE, R.region + off[s]);
			if (!r)
				atomic_fetch_add(&R.moves, 1);
			break;
		default:
			what = "delete";
			atomic_store(&R.slot_off[s], 0);
			r = mn_set_slot(R.vm, 1 + s, home, 0, R.region + off[s]);
			if (!r)
				atomic_fetch_add(&R.deletes, 1);
			break;
		}
		if (r) {
			snprintf(R.slot_error, sizeof(R.slot_error), "%s of slot %u: %s", what, 1 + s,
				 strerror(errno));
			break;
		}
		state[s] = (state[s] + 1) % 6;
		us = (now_s() - t0) * 1e6;
		if (us > (double)atomic_load(&R.slot_max_us))
			atomic_store(&R.slot_max_us, (unsigned long)us);
	}
	return NULL;
}

/* ---- the storms ---- */

/*
 * A range for the next invalidation: half of the time across an edge of
 * where a sliding slot is now (or was, just a moment ago), a quarter of
 * the time anywhere in the region, a quarter of the time the page the
 * guest reads.
 */
static void pick_range(uint64_t *seed, uint8_t **addr, size_t *len)
{
	uint64_t x = xorshift(seed);
	unsigned long edge, first, n;

	switch (x & 3) {
	case 0:
	case 1: {
		unsigned long o = atomic_load(&R.slot_off[(x >> 2) & 1]);
		unsigned long below = (x >> 16) & 7;

		if (!o)
			o = (x >> 8) % (REGION_SIZE - SLOT_SIZE) / PAGE * PAGE + 1;
		/* The slot's first page or the page after its last, in pages. */
		edge = (o - 1 + ((x >> 3) & 1 ? SLOT_SIZE : 0)) / PAGE;
		/*
		 * From 0..7 pages below the edge, 1..16 pages long, kept
		 * inside the region and never empty: every call must be a
		 * notification (the end checks count them).
		 */
		first = edge > below ? edge - below : 0;
		if (first > REGION_SIZE / PAGE - 1)
			first = REGION_SIZE / PAGE - 1;
		n = 1 + ((x >> 24) & 15);
		if (first + n > REGION_SIZE / PAGE)
			n = REGION_SIZE / PAGE - first;
		*addr = R.region + first * PAGE;
		*len = n * PAGE;
		break;
	}
	case 2:
		n = 1 + ((x >> 8) & 63);
		first = (x >> 16) % (REGION_SIZE / PAGE - n);
		*addr = R.region + first * PAGE;
		*len = n * PAGE;
		break;
	default:
		*addr = R.stable + (ZAP_GPA - STABLE_GPA);
		*len = PAGE;
		break;
	}
}

static void *madvise_main(void *arg)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	uint8_t *a;
	size_t len;

	(void)arg;
	while (!atomic_load(&R.stop)) {
		pick_range(&seed, &a, &len);
		if (madvise(a, len, MADV_DONTNEED))
			atomic_fetch_add(&R.storm_errors, 1);
		else
			atomic_fetch_add(&R.madvises, 1);
	}
	return NULL;
}

/*
 * mprotect only notifies where page tables exist, so populate the range
 * first.  Read-only, never PROT_NONE: the guest only reads these pages,
 * and a write fault on a read-only hva would be an EFAULT from KVM_RUN.
 * Only this thread writes to the region, so it never writes into a range
 * it has made read-only.
 */
static void *mprotect_main(void *arg)
{
	uint64_t seed = 0xd1b54a32d192ed03ull;
	uint8_t *a;
	size_t len, o;

	(void)arg;
	while (!atomic_load(&R.stop)) {
		pick_range(&seed, &a, &len);
		for (o = 0; o < len; o += PAGE)
			__atomic_store_n(a + o, 1, __ATOMIC_RELAXED);
		if (mprotect(a, len, PROT_READ) || mprotect(a, len, PROT_READ | PROT_WRITE))
			atomic_fetch_add(&R.storm_errors, 1);
		else
			atomic_fetch_add(&R.mprotects, 2);
	}
	return NULL;
}

/* ---- setup ---- */

static void vm_setup(void)
{
	R.vm = mn_create_vm(&R.kvm, R.cpath, sizeof(R.cpath), &R.cdir);

	R.stable = mmap(NULL, STABLE_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	R.region = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (R.stable == MAP_FAILED || R.region == MAP_FAILED)
		die("mmap guest memory: %s", strerror(errno));
	memcpy(R.stable, guest_code, sizeof(guest_code));
	if (mn_set_slot(R.vm, STABLE_SLOT, STABLE_GPA, STABLE_SIZE, R.stable))
		die("KVM_SET_USER_MEMORY_REGION (stable slot): %s", strerror(errno));

	R.vcpu = mn_create_vcpu32(R.kvm, R.vm, &R.run, &R.run_size);
	mn_set_regs32(R.vcpu, STABLE_GPA, HOME_GPA);
}

static uint32_t guest_count(void)
{
	return __atomic_load_n((uint32_t *)(R.stable + (CNT_GPA - STABLE_GPA)), __ATOMIC_RELAXED);
}

static void print_counts(const char *tag, double t, uint64_t iters)
{
	printf(PROG ": %s t=%.0fs guest-iterations=%llu (longest standstill %.0f s) mmio-exits=%lu slot-updates=%lu (create %lu flags %lu move %lu delete %lu, slowest %.1f ms) madvise=%lu mprotect=%lu\n",
	       tag, t, (unsigned long long)iters, R.max_gap, atomic_load(&R.mmio_exits),
	       atomic_load(&R.creates) + atomic_load(&R.flag_updates) + atomic_load(&R.moves) +
		       atomic_load(&R.deletes),
	       atomic_load(&R.creates), atomic_load(&R.flag_updates), atomic_load(&R.moves),
	       atomic_load(&R.deletes),
	       (double)atomic_load(&R.slot_max_us) / 1000.0, atomic_load(&R.madvises),
	       atomic_load(&R.mprotects));
}

static void print_gauges(const char *tag)
{
	static const char *const names[] = {
		"mn_invalidate_seen", "mn_invalidate_locked", "mn_invalidate_elided",
		"mn_invalidate_active", "mmu_notifier_count",
	};
	unsigned int i;
	uint64_t v;

	if (R.cdir < 0)
		return;
	printf(PROG ": %s", tag);
	for (i = 0; i < ARRAY_SIZE(names); i++) {
		if (counter_get(names[i], &v))
			printf(" %s=?", names[i]);
		else
			printf(" %s=%llu", names[i], (unsigned long long)v);
	}
	printf("\n");
}

/*
 * A thread stuck in the kernel (a memslot update waiting for an
 * invalidation count that never drops) must not hang the test silently.
 */
static void join_or_die(pthread_t t, const char *name)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	if (pthread_timedjoin_np(t, NULL, &ts)) {
		printf(PROG ": FAIL the %s thread did not stop within 30 s\n", name);
		print_gauges("stuck");
		fflush(stdout);
		_exit(1);
	}
}

static unsigned long parse_seconds(const char *what, const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 86400 || s[0] == '-') {
		fprintf(stderr, PROG ": %s must be a whole number of seconds from 1 to 86400, not '%s'\n",
			what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned long duration = 600, stall = 30;
	bool require_counters = false, ok = true, have_duration = false;
	pthread_t slot_t, madv_t, mprot_t;
	uint64_t iters = 0, last_count;
	double t0, t_progress, t_report, t;
	struct sigaction sa;
	uint32_t c;
	int a;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--require-counters")) {
			require_counters = true;
		} else if (!strcmp(argv[a], "--stall")) {
			if (++a == argc) {
				fprintf(stderr, PROG ": --stall needs a number of seconds\n");
				return 2;
			}
			stall = parse_seconds("--stall", argv[a]);
		} else if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
			printf("usage: " PROG " [--require-counters] [--stall SECONDS] [SECONDS (default 600)]\n");
			return 0;
		} else if (argv[a][0] != '-' && !have_duration) {
			duration = parse_seconds("the duration", argv[a]);
			have_duration = true;
		} else {
			fprintf(stderr, PROG ": unexpected argument '%s' (usage: " PROG
				" [--require-counters] [--stall SECONDS] [SECONDS])\n", argv[a]);
			return 2;
		}
	}
	setvbuf(stdout, outbuf, _IOLBF, sizeof(outbuf));

	vm_setup();
	if (R.cdir < 0 && require_counters) {
		printf(PROG ": FAIL no MMU-notifier counters in %s (--require-counters)\n", R.cpath);
		return 1;
	}
	printf(PROG ": %lu s, stall limit %lu s, counters %s\n", duration, stall,
	       R.cdir >= 0 ? R.cpath : "absent (counter checks skipped)");

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;	/* no SA_RESTART: KVM_RUN must see EINTR */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		die("sigaction: %s", strerror(errno));

	if (pthread_create(&R.vcpu_thread, NULL, vcpu_main, NULL) ||
	    pthread_create(&slot_t, NULL, slot_main, NULL) ||
	    pthread_create(&madv_t, NULL, madvise_main, NULL) ||
	    pthread_create(&mprot_t, NULL, mprotect_main, NULL))
		die("cannot start the threads");

	t0 = t_progress = t_report = now_s();
	last_count = guest_count();
	for (;;) {
		sleep(1);
		t = now_s();
		c = guest_count();
		/* The guest counter is 32 bits: count differences, not values. */
		if (c != (uint32_t)last_count) {
			iters += (uint32_t)(c - (uint32_t)last_count);
			last_count = c;
			t_progress = t;
		} else if (t - t_progress > R.max_gap) {
			R.max_gap = t - t_progress;
		}
		if (atomic_load(&R.vcpu_done)) {
			printf(PROG ": FAIL the vCPU stopped: %s\n", R.vcpu_error);
			ok = false;
			break;
		}
		if (R.slot_error[0]) {
			printf(PROG ": FAIL %s\n", R.slot_error);
			ok = false;
			break;
		}
		if (t - t_progress >= (double)stall) {
			printf(PROG ": FAIL STALL: the guest made no progress for %.0f s (iterations stuck at %llu)\n",
			       t - t_progress, (unsigned long long)iters);
			/* Before stopping anything, which may itself hang now. */
			print_counts("stalled", t - t0, iters);
			print_gauges("stalled");
			ok = false;
			break;
		}
		if (t - t_report >= 60) {
			print_counts("progress", t - t0, iters);
			t_report = t;
		}
		if (t - t0 >= (double)duration)
			break;
	}

	/*
	 * Stop: storms and slot thread first (a slot update waits for
	 * in-flight invalidations; it must still finish once they stop), then
	 * the vCPU, re-signalled until it notices.
	 */
	atomic_store(&R.stop, true);
	join_or_die(madv_t, "madvise");
	join_or_die(mprot_t, "mprotect");
	join_or_die(slot_t, "memslot");
	for (a = 0; a < 100 && !atomic_load(&R.vcpu_done); a++) {
		pthread_kill(R.vcpu_thread, SIGUSR1);
		usleep(100000);
	}
	if (!atomic_load(&R.vcpu_done)) {
		printf(PROG ": FAIL the vCPU thread did not leave KVM_RUN within 10 s of the stop signal\n");
		fflush(stdout);
		_exit(1);
	}
	pthread_join(R.vcpu_thread, NULL);
	if (R.vcpu_error[0] && ok) {
		printf(PROG ": FAIL the vCPU stopped: %s\n", R.vcpu_error);
		ok = false;
	}
	c = guest_count();
	iters += (uint32_t)(c - (uint32_t)last_count);
	print_counts("done", now_s() - t0, iters);

	if (!atomic_load(&R.creates) || !atomic_load(&R.madvises) || !atomic_load(&R.mprotects) ||
	    !iters) {
		printf(PROG ": FAIL a thread made no progress at all\n");
		ok = false;
	}
	if (atomic_load(&R.storm_errors)) {
		printf(PROG ": FAIL %lu madvise/mprotect calls failed\n", atomic_load(&R.storm_errors));
		ok = false;
	}

	if (R.cdir >= 0) {
		uint64_t active = 1, count = 1, seen = 0, locked = 0, elided = 0, s2 = 1;
		int i;

		/*
		 * Quiescent now, except for the kernel's own reclaim or
		 * compaction passing over this mm: give such a transient a
		 * moment, a stuck gauge stays stuck.
		 */
		for (i = 0; i < 20; i++) {
			if (counter_get("mn_invalidate_active", &active) ||
			    counter_get("mmu_notifier_count", &count) ||
			    counter_get("mn_invalidate_seen", &seen) ||
			    counter_get("mn_invalidate_locked", &locked) ||
			    counter_get("mn_invalidate_elided", &elided) ||
			    counter_get("mn_invalidate_seen", &s2))
				die("cannot read the counters in %s", R.cpath);
			if (!active && !count && seen == s2 && seen == locked + elided)
				break;
			usleep(100000);
		}
		printf(PROG ": counters mn_invalidate seen=%llu locked=%llu elided=%llu mn_invalidate_active=%llu mmu_notifier_count=%llu\n",
		       (unsigned long long)seen, (unsigned long long)locked,
		       (unsigned long long)elided, (unsigned long long)active,
		       (unsigned long long)count);
		if (active || count) {
			printf(PROG ": FAIL the gauges are not 0 at quiescence (unbalanced start/end)\n");
			ok = false;
		}
		if (seen != locked + elided) {
			printf(PROG ": FAIL mn_invalidate seen != locked + elided\n");
			ok = false;
		}
		/* Every MADV_DONTNEED is at least one invalidate_range_start. */
		if (seen < atomic_load(&R.madvises)) {
			printf(PROG ": FAIL mn_invalidate_seen=%llu < %lu madvise calls\n",
			       (unsigned long long)seen, atomic_load(&R.madvises));
			ok = false;
		}
		/* Ranges inside and outside slots both happened: both paths ran. */
		if (!locked || !elided) {
			printf(PROG ": FAIL expected both locked and elided invalidations\n");
			ok = false;
		}
	}
	printf(PROG ": %s\n", ok ? "PASS" : "FAIL");
	/* Tear down by exit: the kernel must cope with a VM freed mid-use too. */
	return ok ? 0 : 1;
}
