// SPDX-License-Identifier: MIT
/*
 * mn-test-young: test_young must reach KVM for guest memory, answer from
 * the guest's accesses, and be elided next to it.
 *
 * khugepaged is 5.10's only caller of mmu_notifier_test_young(): before
 * it collapses 512 small pages into a huge page it wants at least one of
 * them referenced, and for a PTE that the host did not access it asks the
 * secondary MMUs.  So:
 *
 *  - G (a memslot) and D (a decoy, no memslot) are 2 MiB each, aligned,
 *    filled with small pages by the host;
 *  - a vCPU reads every page of G in a loop, through its SPTEs;
 *  - once it has read all of them twice, madvise(MADV_COLD) makes every
 *    host PTE of G and D old and their pages unreferenced; from then on
 *    only KVM knows that G is in use; only then madvise(MADV_HUGEPAGE);
 *  - khugepaged (scanning every 10 ms, NUMA balancing off) must collapse
 *    G, which it does only if KVM's test_young answered "young", and must
 *    leave D alone: nobody uses D.
 *
 * Passes when G is a huge page within SECONDS (default 60) while D is not,
 * the guest kept running, and where the patched kernel's counters exist,
 * test_young took mmu_lock for G (mn_test_young_locked) and was elided for
 * D (mn_test_young_elided).  negative/test-young.patch keeps the walk but
 * answers "not young", and G then stays small.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
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

#define PROG "mn-test-young"
#include "mn-common.h"

#define PAGE		4096ul
#define HUGE		(2ul << 20)
#define CODE_GPA	0x00100000u
#define CNT_GPA		(CODE_GPA + 0x1000u)
#define CODE_SIZE	(2 * PAGE)
#define G_SLOT		1
#define G_GPA		0x40000000u
#define THP		"/sys/kernel/mm/transparent_hugepage/"
#define KHUGEPAGED	THP "khugepaged/"
/*
 * NUMA balancing's hinting faults zap G's SPTEs, and KVM then marks the
 * pages accessed on the host: G would collapse without test_young.
 */
#define NUMA_BALANCING	"/proc/sys/kernel/numa_balancing"

/* Reads one dword of every page of G, round and round, counting pages. */
static const uint8_t guest_code[] = {
	0xff, 0x05, 0x00, 0x10, 0x10, 0x00,	/* 0:  inc dword [CNT_GPA] */
	0x8b, 0x06,				/* 6:  mov eax, [esi] */
	0x81, 0xc6, 0x00, 0x10, 0x00, 0x00,	/* 8:  add esi, 0x1000 */
	0x81, 0xe6, 0xff, 0xff, 0x1f, 0x00,	/* 14: and esi, 0x1fffff (HUGE - 1) */
	0x81, 0xce, 0x00, 0x00, 0x00, 0x40,	/* 20: or esi, G_GPA */
	0xeb, 0xe4,				/* 26: jmp 0 */
};

static struct {
	int vcpu;
	struct kvm_run *run;
	volatile uint32_t *count;
	atomic_bool stop, vcpu_done;
	char error[160];
} R;

/* The sysfs settings this test changes, and their values before it. */
static const char *const knob_names[] = {
	THP "enabled", KHUGEPAGED "scan_sleep_millisecs", KHUGEPAGED "alloc_sleep_millisecs",
	KHUGEPAGED "pages_to_scan", NUMA_BALANCING,
};
#define NKNOBS (sizeof(knob_names) / sizeof(knob_names[0]))
static char knob_saved[NKNOBS][64];

static int knob_read(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static int knob_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), n;

	if (fd < 0)
		return -1;
	n = (int)write(fd, val, strlen(val));
	close(fd);
	return n == (int)strlen(val) ? 0 : -1;
}

static void knobs_restore(void)
{
	for (size_t i = 0; i < NKNOBS; i++)
		if (knob_saved[i][0])
			knob_write(knob_names[i], knob_saved[i]);
}

/* "always [madvise] never" -> "madvise": the bracketed word. */
static void bracketed(char *s)
{
	char *a = strchr(s, '['), *b = a ? strchr(a, ']') : NULL;

	if (a && b) {
		memmove(s, a + 1, (size_t)(b - a - 1));
		s[b - a - 1] = 0;
	}
}

static void knobs_set(void)
{
	static const char *const want[NKNOBS] = { "madvise", "10", "10", "4096", "0" };

	for (size_t i = 0; i < NKNOBS; i++) {
		if (knob_read(knob_names[i], knob_saved[i], sizeof(knob_saved[i]))) {
			if (!strcmp(knob_names[i], NUMA_BALANCING) && errno == ENOENT) {
				knob_saved[i][0] = 0;	/* no NUMA balancing: nothing to turn off */
				continue;
			}
			printf(PROG ": SKIP %s: %s (%s)\n", knob_names[i], strerror(errno),
			       strcmp(knob_names[i], NUMA_BALANCING) ?
			       "a kernel without transparent huge pages" : "cannot read NUMA balancing's switch");
			exit(77);
		}
		if (i == 0)
			bracketed(knob_saved[i]);
	}
	atexit(knobs_restore);
	for (size_t i = 0; i < NKNOBS; i++)
		if (knob_saved[i][0] && knob_write(knob_names[i], want[i]))
			die("cannot write '%s' to %s: %s", want[i], knob_names[i], strerror(errno));
}

/* The AnonHugePages of the mapping that starts at @addr, in kB; -1 if not found. */
static long anon_huge_kb(const void *addr)
{
	unsigned long start, end;
	char line[256];
	bool in = false;
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		die("/proc/self/smaps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		/* A mapping's first line starts "START-END "; its fields "Name: ". */
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = start == (unsigned long)addr;
		else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/*
 * G and D: two 2 MiB-aligned anonymous mappings filled with small pages,
 * with an inaccessible 2 MiB before, between and after them, so that
 * neither merges with another mapping and each is one VMA.
 */
static void small_pages(uint8_t **g, uint8_t **d)
{
	uint8_t *raw, *p;

	raw = mmap(NULL, 6 * HUGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	p = (uint8_t *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	*g = p + HUGE;
	*d = p + 3 * HUGE;
	if (mprotect(*g, HUGE, PROT_READ | PROT_WRITE) || mprotect(*d, HUGE, PROT_READ | PROT_WRITE))
		die("mprotect: %s", strerror(errno));
	if (madvise(*g, HUGE, MADV_NOHUGEPAGE) || madvise(*d, HUGE, MADV_NOHUGEPAGE))
		die("madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
	memset(*g, 0x6b, HUGE);
	memset(*d, 0x3d, HUGE);
}

static void on_stop_signal(int sig)
{
	(void)sig;
	R.run->immediate_exit = 1;
}

static void *vcpu_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&R.stop)) {
		if (ioctl(R.vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(R.error, sizeof(R.error), "KVM_RUN: %s", strerror(errno));
			break;
		}
		if (R.run->exit_reason == KVM_EXIT_INTR)
			continue;
		snprintf(R.error, sizeof(R.error), "unexpected exit reason %u", R.run->exit_reason);
		break;
	}
	atomic_store(&R.vcpu_done, true);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t counter(int cdir, const char *name)
{
	uint64_t v = 0;

	if (cdir >= 0 && counter_read(cdir, name, &v))
		die("cannot read %s", name);
	return v;
}

int main(int argc, char **argv)
{
	uint64_t seen0 = 0, locked0 = 0, elided0 = 0, seen, locked, elided;
	long duration = 60, g_kb = 0, d_kb = 0;
	struct timespec nap = { 0, 20 * 1000 * 1000 };
	uint32_t before, after;
	int kvm, vm, cdir, a;
	struct sigaction sa;
	uint8_t *code, *g, *d;
	char cpath[64];
	size_t run_size;
	double t0, t;
	pthread_t vt;
	bool ok = true;

	for (a = 1; a < argc; a++) {
		char *end;

		errno = 0;
		duration = strtol(argv[a], &end, 10);
		if (errno || *end || end == argv[a] || duration < 1 || duration > 3600) {
			fprintf(stderr, "usage: " PROG " [SECONDS, 1 to 3600 (default 60)]\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	knobs_set();

	vm = mn_create_vm(&kvm, cpath, sizeof(cpath), &cdir);
	code = mmap(NULL, CODE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (code == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memcpy(code, guest_code, sizeof(guest_code));
	R.count = (volatile uint32_t *)(code + (CNT_GPA - CODE_GPA));
	small_pages(&g, &d);
	if (mn_set_slot(vm, 0, CODE_GPA, CODE_SIZE, code) || mn_set_slot(vm, G_SLOT, G_GPA, HUGE, g))
		die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	R.vcpu = mn_create_vcpu32(kvm, vm, &R.run, &run_size);
	mn_set_regs32(R.vcpu, CODE_GPA, G_GPA);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;	/* no SA_RESTART: KVM_RUN must see EINTR */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		die("sigaction: %s", strerror(errno));
	if (pthread_create(&vt, NULL, vcpu_main, NULL))
		die("cannot start the vCPU thread");

	/* Until the guest has read every page of G twice (a poll with a deadline). */
	t0 = now_s();
	while (*R.count < 2 * HUGE / PAGE && !atomic_load(&R.vcpu_done) && now_s() - t0 < duration)
		nanosleep(&nap, NULL);
	if (*R.count < 2 * HUGE / PAGE) {
		printf(PROG ": FAIL the guest read %u pages of G in %.0f s (want %lu): %s\n",
		       *R.count, now_s() - t0, 2 * HUGE / PAGE, R.error[0] ? R.error : "too slow");
		return 1;
	}
	seen0 = counter(cdir, "mn_test_young_seen");
	locked0 = counter(cdir, "mn_test_young_locked");
	elided0 = counter(cdir, "mn_test_young_elided");
	/*
	 * The host forgets it touched them, and only then may khugepaged
	 * collapse them: in the other order khugepaged, scanning every 10 ms,
	 * can meet G's host PTEs still young from the memset and collapse it
	 * without asking KVM.
	 */
	if (madvise(g, HUGE, MADV_COLD) || madvise(d, HUGE, MADV_COLD))
		die("madvise(MADV_COLD): %s", strerror(errno));
	if (madvise(g, HUGE, MADV_HUGEPAGE) || madvise(d, HUGE, MADV_HUGEPAGE))
		die("madvise(MADV_HUGEPAGE): %s", strerror(errno));

	t0 = now_s();
	before = *R.count;
	/*
	 * khugepaged sends no signal: its effect is polled, with a deadline,
	 * until G is collapsed and (where the counters exist) D was asked about.
	 */
	do {
		nanosleep(&nap, NULL);
		g_kb = anon_huge_kb(g);
		d_kb = anon_huge_kb(d);
		t = now_s();
	} while ((g_kb < (long)(HUGE >> 10) ||
		  (cdir >= 0 && counter(cdir, "mn_test_young_elided") == elided0)) &&
		 !atomic_load(&R.vcpu_done) && t - t0 < duration);
	after = *R.count;
	seen = counter(cdir, "mn_test_young_seen") - seen0;
	locked = counter(cdir, "mn_test_young_locked") - locked0;
	elided = counter(cdir, "mn_test_young_elided") - elided0;

	atomic_store(&R.stop, true);
	for (a = 0; a < 100 && !atomic_load(&R.vcpu_done); a++) {
		pthread_kill(vt, SIGUSR1);
		nanosleep(&nap, NULL);
	}
	if (!atomic_load(&R.vcpu_done)) {
		printf(PROG ": FAIL the vCPU thread did not leave KVM_RUN within 2 s\n");
		knobs_restore();	/* _exit() skips atexit(), and later jobs share the boot */
		_exit(1);
	}
	pthread_join(vt, NULL);

	printf(PROG ": after %.1f s: G AnonHugePages %ld kB, D %ld kB; the guest read %u pages meanwhile\n",
	       t - t0, g_kb, d_kb, after - before);
	if (R.error[0]) {
		printf(PROG ": FAIL %s\n", R.error);
		ok = false;
	}
	if (g_kb < (long)(HUGE >> 10)) {
		printf(PROG ": FAIL khugepaged did not collapse G in %ld s: KVM never said that the guest "
		       "uses it\n", duration);
		ok = false;
	}
	if (d_kb != 0) {
		printf(PROG ": FAIL khugepaged collapsed D, which nobody used (%ld kB)\n", d_kb);
		ok = false;
	}
	if (after == before) {
		printf(PROG ": FAIL the guest made no progress\n");
		ok = false;
	}
	if (cdir >= 0) {
		printf(PROG ": counters mn_test_young_seen=+%llu locked=+%llu elided=+%llu\n",
		       (unsigned long long)seen, (unsigned long long)locked,
		       (unsigned long long)elided);
		if (g_kb >= (long)(HUGE >> 10) && !locked)
			printf(PROG ": FAIL G collapsed although KVM was never asked about it: "
			       "the host saw G's pages young, so this run shows nothing\n");
		if (!locked || !elided || seen != locked + elided) {
			printf(PROG ": FAIL want test_young locked > 0 (G), elided > 0 (D) and "
			       "seen = locked + elided\n");
			ok = false;
		}
	}
	printf(PROG ": %s\n", ok ? "PASS" : "FAIL");
	return ok ? 0 : 1;
}
