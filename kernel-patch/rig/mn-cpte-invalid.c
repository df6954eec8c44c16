// SPDX-License-Identifier: MIT
/*
 * mn-cpte-invalid: change_pte must never act on a memslot that is being
 * deleted.
 *
 * Deleting a memslot publishes it flagged KVM_MEMSLOT_INVALID, zaps it,
 * then publishes the memslots without it.  A copy-on-write in between is
 * a range_start, change_pte, range_end sequence that finds the invalid
 * memslot; if change_pte's handler maps the new page there (arm64 and
 * MIPS would), the mapping outlives the memslot.  x86 would not map
 * anything, but the patched kernel's instrumentation counts the calls:
 * mn_change_pte_invalid_seen when the walker meets an invalid memslot for
 * a change_pte, mn_change_pte_invalid_reached when x86's set_spte handler
 * is called for one anyway.  The test provokes the race and requires
 * seen > 0 (it happened) and reached == 0 (the handler was kept out):
 *
 *  - a slot thread deletes memslot S and creates it again, over and over;
 *  - a COW thread forks (the child waits on a pipe, so S's pages stay
 *    shared) and writes one byte to every page of S: one copy-on-write,
 *    and so one change_pte, per page, then lets the child go; or, with
 *    --source ksm, ksmd makes the change_pte calls: a KSM thread fills S
 *    with equal pages, waits until ksmd has merged them, drops them and
 *    starts again (ksm-storm.h);
 *  - a vCPU reads S's pages in a loop (MMIO exits while S is gone);
 *  - the main thread reads the counters every 100 ms and stops when
 *    reached > 0, when seen reached --target, or after SECONDS.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROG "mn-cpte-invalid"
#include "mn-common.h"
#include "ksm-storm.h"

#define PAGE		4096ul
#define CODE_GPA	0x00100000u
#define CNT_GPA		(CODE_GPA + 0x1000u)
#define CODE_SIZE	(2 * PAGE)
#define S_SLOT		1
#define S_GPA		0x40000000u
#define S_SIZE		(2ul << 20)

static const uint8_t guest_code[] = {
	0xff, 0x05, 0x00, 0x10, 0x10, 0x00,	/* 0:  inc dword [CNT_GPA] */
	0x8b, 0x06,				/* 6:  mov eax, [esi] */
	0x81, 0xc6, 0x00, 0x10, 0x00, 0x00,	/* 8:  add esi, 0x1000 */
	0x81, 0xe6, 0xff, 0xff, 0x1f, 0x00,	/* 14: and esi, 0x1fffff (S_SIZE) */
	0x81, 0xce, 0x00, 0x00, 0x00, 0x40,	/* 20: or esi, S_GPA */
	0xeb, 0xe4,				/* 26: jmp 0 */
};

static struct {
	int kvm, vm, vcpu, cdir;
	char cpath[64];
	struct kvm_run *run;
	size_t run_size;
	uint8_t *code, *s;
	atomic_bool stop, vcpu_done;
	atomic_ulong deletes, creates, forks, cows, mmio_exits, ksm_rounds, ksm_merged;
	char error[160];
} R;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail_once(const char *fmt, const char *what, int err)
{
	if (!R.error[0])
		snprintf(R.error, sizeof(R.error), fmt, what, strerror(err));
	atomic_store(&R.stop, true);
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
		int r = ioctl(R.vcpu, KVM_RUN, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fail_once("%s: %s", "KVM_RUN", errno);
			break;
		}
		if (R.run->exit_reason == KVM_EXIT_MMIO && !R.run->mmio.is_write) {
			/* S is deleted just now: its pages read as zero. */
			memset(R.run->mmio.data, 0, sizeof(R.run->mmio.data));
			atomic_fetch_add(&R.mmio_exits, 1);
			continue;
		}
		if (R.run->exit_reason == KVM_EXIT_INTR)
			continue;
		snprintf(R.error, sizeof(R.error), "unexpected exit reason %u", R.run->exit_reason);
		atomic_store(&R.stop, true);
		break;
	}
	atomic_store(&R.vcpu_done, true);
	return NULL;
}

static void *slot_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&R.stop)) {
		if (mn_set_slot(R.vm, S_SLOT, S_GPA, 0, R.s)) {
			fail_once("%s of S: %s", "delete", errno);
			break;
		}
		atomic_fetch_add(&R.deletes, 1);
		if (mn_set_slot(R.vm, S_SLOT, S_GPA, S_SIZE, R.s)) {
			fail_once("%s of S: %s", "create", errno);
			break;
		}
		atomic_fetch_add(&R.creates, 1);
	}
	return NULL;
}

/* Fork, then write every page of S while the child still shares them. */
static void *cow_main(void *arg)
{
	int p[2], status;
	size_t o;
	pid_t pid;
	char c;

	(void)arg;
	while (!atomic_load(&R.stop)) {
		if (pipe(p)) {
			fail_once("%s: %s", "pipe", errno);
			break;
		}
		pid = fork();
		if (pid < 0) {
			fail_once("%s: %s", "fork", errno);
			break;
		}
		if (pid == 0) {
			close(p[1]);
			while (read(p[0], &c, 1) < 0 && errno == EINTR)
				;
			_exit(0);
		}
		close(p[0]);
		for (o = 0; o < S_SIZE; o += PAGE)
			R.s[o]++;
		atomic_fetch_add(&R.cows, S_SIZE / PAGE);
		atomic_fetch_add(&R.forks, 1);
		close(p[1]);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	return NULL;
}

static int stopped(void)
{
	return atomic_load(&R.stop);
}

/* --source ksm: rounds of equal pages for ksmd to merge, then dropped. */
static void *ksm_main(void *arg)
{
	unsigned char *bufs[1] = { R.s };
	long merged;

	(void)arg;
	while (!atomic_load(&R.stop)) {
		/* A new value each round: the stable tree's old KSM page does not match. */
		merged = ksm_storm_round(bufs, 1, S_SIZE, 0x10 + atomic_load(&R.ksm_rounds) % 0xe0,
					 stopped);
		if (merged < 0) {
			fail_once("%s: %s", "ksm round", errno);
			break;
		}
		atomic_fetch_add(&R.ksm_merged, (unsigned long)merged);
		atomic_fetch_add(&R.ksm_rounds, 1);
	}
	return NULL;
}

static void vm_setup(void)
{
	R.vm = mn_create_vm(&R.kvm, R.cpath, sizeof(R.cpath), &R.cdir);
	R.code = mmap(NULL, CODE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	R.s = mmap(NULL, S_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (R.code == MAP_FAILED || R.s == MAP_FAILED)
		die("mmap guest memory: %s", strerror(errno));
	/* Only S is shared with the children: the guest's code and counter stay put. */
	if (madvise(R.code, CODE_SIZE, MADV_DONTFORK))
		die("madvise(MADV_DONTFORK): %s", strerror(errno));
	memcpy(R.code, guest_code, sizeof(guest_code));
	memset(R.s, 0x5a, S_SIZE);
	if (mn_set_slot(R.vm, 0, CODE_GPA, CODE_SIZE, R.code) || mn_set_slot(R.vm, S_SLOT, S_GPA, S_SIZE, R.s))
		die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	R.vcpu = mn_create_vcpu32(R.kvm, R.vm, &R.run, &R.run_size);
	/*
	 * The kvm_run page is a shared mapping of the vCPU fd: the children
	 * need none of it either.
	 */
	madvise(R.run, R.run_size, MADV_DONTFORK);
	mn_set_regs32(R.vcpu, CODE_GPA, S_GPA);
}

static unsigned long parse_num(const char *what, const char *s, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > max || s[0] == '-') {
		fprintf(stderr, PROG ": %s must be a whole number from 1 to %lu, not '%s'\n", what, max,
			s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned long duration = 120, target = 100;
	bool require_counters = false, ok = true, ksm = false;
	struct ksm_knobs knobs;
	uint64_t seen = 0, reached = 0;
	pthread_t vcpu_t, slot_t, cow_t;
	struct sigaction sa;
	uint32_t iters;
	double t0;
	int a;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--require-counters")) {
			require_counters = true;
		} else if (!strcmp(argv[a], "--source") && a + 1 < argc &&
			   (!strcmp(argv[a + 1], "cow") || !strcmp(argv[a + 1], "ksm"))) {
			ksm = !strcmp(argv[++a], "ksm");
		} else if (!strcmp(argv[a], "--target") && a + 1 < argc) {
			target = parse_num("--target", argv[++a], 1000000);
		} else if (argv[a][0] != '-') {
			duration = parse_num("the duration in seconds", argv[a], 86400);
		} else {
			fprintf(stderr,
				"usage: " PROG " [--require-counters] [--source cow|ksm (default cow)] "
				"[--target N (default 100)] [SECONDS (default 120)]\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	vm_setup();
	if (ksm) {
		if (ksm_storm_prepare(R.s, S_SIZE)) {
			printf(PROG ": SKIP madvise(MADV_MERGEABLE): %s (a kernel without CONFIG_KSM)\n",
			       strerror(errno));
			return 77;
		}
		if (ksm_start(&knobs, 2 * S_SIZE / PAGE))
			die("cannot set ksmd going through " KSM_DIR ": %s", strerror(errno));
	}
	if (R.cdir >= 0 && counter_read(R.cdir, "mn_change_pte_invalid_seen", &seen))
		R.cdir = -1;
	if (R.cdir < 0 && require_counters) {
		printf(PROG ": FAIL no mn_change_pte_invalid counters in %s (--require-counters)\n",
		       R.cpath);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;	/* no SA_RESTART: KVM_RUN must see EINTR */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		die("sigaction: %s", strerror(errno));
	if (pthread_create(&vcpu_t, NULL, vcpu_main, NULL) ||
	    pthread_create(&slot_t, NULL, slot_main, NULL) ||
	    pthread_create(&cow_t, NULL, ksm ? ksm_main : cow_main, NULL))
		die("cannot start the threads");

	t0 = now_s();
	while (!atomic_load(&R.stop) && now_s() - t0 < (double)duration) {
		usleep(100000);
		if (R.cdir < 0)
			continue;
		if (counter_read(R.cdir, "mn_change_pte_invalid_seen", &seen) ||
		    counter_read(R.cdir, "mn_change_pte_invalid_reached", &reached))
			die("cannot read the counters in %s", R.cpath);
		if (reached || seen >= target)
			break;
	}
	atomic_store(&R.stop, true);
	pthread_join(slot_t, NULL);
	pthread_join(cow_t, NULL);
	if (ksm)
		ksm_restore(&knobs);
	for (a = 0; a < 100 && !atomic_load(&R.vcpu_done); a++) {
		pthread_kill(vcpu_t, SIGUSR1);
		usleep(100000);
	}
	if (!atomic_load(&R.vcpu_done)) {
		printf(PROG ": FAIL the vCPU thread did not leave KVM_RUN within 10 s\n");
		fflush(stdout);
		_exit(1);
	}
	pthread_join(vcpu_t, NULL);
	if (R.cdir >= 0 && (counter_read(R.cdir, "mn_change_pte_invalid_seen", &seen) ||
			    counter_read(R.cdir, "mn_change_pte_invalid_reached", &reached)))
		die("cannot read the counters in %s", R.cpath);
	iters = __atomic_load_n((uint32_t *)(R.code + (CNT_GPA - CODE_GPA)), __ATOMIC_RELAXED);
	if (ksm)
		printf(PROG ": t=%.0fs deletes=%lu creates=%lu ksm-rounds=%lu ksm-merged-pages=%lu guest-iterations=%u mmio-exits=%lu\n",
		       now_s() - t0, atomic_load(&R.deletes), atomic_load(&R.creates),
		       atomic_load(&R.ksm_rounds), atomic_load(&R.ksm_merged), iters,
		       atomic_load(&R.mmio_exits));
	else
		printf(PROG ": t=%.0fs deletes=%lu creates=%lu forks=%lu cow-writes=%lu guest-iterations=%u mmio-exits=%lu\n",
		       now_s() - t0, atomic_load(&R.deletes), atomic_load(&R.creates),
		       atomic_load(&R.forks), atomic_load(&R.cows), iters,
		       atomic_load(&R.mmio_exits));
	if (R.error[0]) {
		printf(PROG ": FAIL %s\n", R.error);
		ok = false;
	}
	if (!atomic_load(&R.deletes) || !iters ||
	    !(ksm ? atomic_load(&R.ksm_merged) : atomic_load(&R.forks))) {
		printf(PROG ": FAIL a thread made no progress at all\n");
		ok = false;
	}
	if (R.cdir >= 0) {
		printf(PROG ": counters mn_change_pte_invalid_seen=%llu mn_change_pte_invalid_reached=%llu\n",
		       (unsigned long long)seen, (unsigned long long)reached);
		if (reached) {
			printf(PROG ": FAIL change_pte reached the set_spte handler for a memslot being deleted\n");
			ok = false;
		}
		if (!seen) {
			printf(PROG ": FAIL inconclusive: no change_pte met a memslot being deleted in %lu s\n",
			       duration);
			ok = false;
		}
	}
	printf(PROG ": %s\n", ok ? "PASS" : "FAIL");
	return ok ? 0 : 1;
}
