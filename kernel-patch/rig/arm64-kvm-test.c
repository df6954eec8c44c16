// SPDX-License-Identifier: MIT
/*
 * arm64-kvm-test: run inside the arm64 rig guest (arm64-run.sh), on a
 * kernel with the series applied, with nothing but raw KVM ioctls.
 *
 * A VM with two memslots backed by one anonymous mapping, with decoy pages
 * (ordinary host memory, not guest memory) right before, between and after
 * the slots, and one more decoy mapping elsewhere:
 *
 *   host:  [decoy A][  slot 0  ][decoy B][  slot 1  ][decoy C]   [decoy D]
 *
 * The guest is four instructions that loop forever: ask the host (MMIO
 * read) which guest-physical address to load, load 8 bytes from it, report
 * the value (MMIO write).  So the host can read any guest address through
 * the guest's stage-2 mapping.  The checks:
 *   (a) the guest sees what the host wrote into both slots;
 *   (b) after madvise(MADV_DONTNEED) on pages of the slots (the first and
 *       last page of each slot, two of those calls straddling a decoy and a
 *       slot) the guest reads zero there, so its stage-2 mapping was
 *       invalidated, and then sees what the host writes next;
 *   (c) madvise(MADV_DONTNEED) on the decoys, including ranges that end
 *       exactly where a slot starts or start exactly where one ends, leaves
 *       guest memory intact;
 *   (d) where the series' per-VM counters exist in debugfs
 *       (mn_invalidate_seen, _locked, _elided), the decoy calls raised
 *       "elided" but not "locked" and the in-slot calls raised "locked",
 *       seen = locked + elided over each batch, and the gauges
 *       mn_invalidate_active and mmu_notifier_count, where they exist,
 *       are back at zero;
 *   (e) change_pte racing with memslot deletion (patch 20): a thread forks
 *       and writes every page of a third memslot's two alternative
 *       backings while the child still shares them (a copy-on-write, and
 *       so a change_pte, per page), while another deletes that memslot
 *       and creates it again on the other backing, over and over.  The
 *       instrumentation's counters must show that change_pte met the
 *       memslot while it was being deleted, and that arm64's set_spte
 *       handler, which installs a stage-2 leaf wherever it is asked to,
 *       was never called for it;
 *   (f) the same race with ksmd as the source of the change_pte calls: a
 *       thread fills both backings with equal pages, waits until ksmd has
 *       merged them, drops them and starts again (ksm-storm.h).
 * One line per check; exit 0 only when none failed (a check that cannot
 * run because the counters are absent says SKIP and does not fail).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ksm-storm.h"

#define TAG "arm64-kvm-test: "

#define SLOT_PAGES 16
#define DECOY_PAGES 4
#define NSLOTS 2
/* Guest-physical layout: far apart, so no slot is contiguous with another. */
#define SLOT0_GPA 0x80000000ULL
#define SLOT1_GPA 0x80200000ULL
#define COW_GPA 0x80400000ULL	/* check (e)'s memslot */
#define COW_SLOT NSLOTS
#define COW_PAGES 256	/* per backing: long copy-on-write bursts */
#define COW_SECONDS 60		/* checks (e) and (f) run at most this long */
#define MMIO_GPA 0x10000000ULL	/* no memslot there: accesses exit */
#define CODE_PAGE 0		/* slot 0, page 0 holds the code: never zapped */

static long page;
static int vcpu_fd;
static struct kvm_run *run;
static unsigned char *region;	/* decoy A .. decoy C, one mapping */
static unsigned char *slot_hva[NSLOTS];
static const uint64_t slot_gpa[NSLOTS] = { SLOT0_GPA, SLOT1_GPA };
static unsigned char *decoy[4];	/* A, B, C, D */
static unsigned long mmio_exits;
static int failures;

static void die(const char *what)
{
	printf(TAG "FAIL setup: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void die_msg(const char *what)
{
	printf(TAG "FAIL setup: %s\n", what);
	exit(2);
}

/*
 * The guest, at the start of slot 0 (A64, little endian; the vCPU starts
 * at EL1 with its MMU off, so every access is a stage-2 access):
 *	loop:	ldr	x3, [x2]	// MMIO read: the address to load
 *		ldr	x1, [x3]	// the load under test
 *		str	x1, [x2, #8]	// MMIO write: report the value
 *		b	loop
 * Single-register loads and stores without writeback, so the stage-2
 * aborts carry a valid syndrome (ISV) and KVM can hand them to us as
 * KVM_EXIT_MMIO.  x2 = MMIO_GPA is set through KVM_SET_ONE_REG.
 */
static const uint32_t guest_code[] = {
	0xf9400043,	/* ldr x3, [x2] */
	0xf9400061,	/* ldr x1, [x3] */
	0xf9000441,	/* str x1, [x2, #8] */
	0x17fffffd,	/* b .-12 */
};

#define CORE_REG(r) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | \
		     KVM_REG_ARM_CORE_REG(r))

static void set_reg(uint64_t id, uint64_t val)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uint64_t)(uintptr_t)&val };

	if (ioctl(vcpu_fd, KVM_SET_ONE_REG, &reg) < 0)
		die("KVM_SET_ONE_REG");
}

/* Run until the next MMIO exit; signals are no reason to give up. */
static void run_to_mmio(int want_write, uint64_t want_addr)
{
	for (;;) {
		if (ioctl(vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN");
		}
		if (run->exit_reason == KVM_EXIT_INTR)
			continue;
		break;
	}
	if (run->exit_reason != KVM_EXIT_MMIO) {
		printf(TAG "FAIL setup: unexpected exit reason %u", run->exit_reason);
		if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
			printf(" (fail_entry hardware_entry_failure_reason 0x%llx)",
			       (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		printf(" after %lu MMIO exits\n", mmio_exits);
		exit(2);
	}
	mmio_exits++;
	if (!!run->mmio.is_write != want_write || run->mmio.phys_addr != want_addr ||
	    run->mmio.len != 8) {
		printf(TAG "FAIL setup: unexpected MMIO %s of %u bytes at 0x%llx (wanted a %s at 0x%llx)\n",
		       run->mmio.is_write ? "write" : "read", run->mmio.len,
		       (unsigned long long)run->mmio.phys_addr, want_write ? "write" : "read",
		       (unsigned long long)want_addr);
		exit(2);
	}
}

/*
 * Load 8 bytes from guest-physical GPA through the guest.  The vCPU always
 * waits in the MMIO read of "ldr x3, [x2]" between two calls.
 */
static uint64_t guest_load(uint64_t gpa)
{
	uint64_t val;

	memcpy(run->mmio.data, &gpa, 8);
	run_to_mmio(1, MMIO_GPA + 8);
	memcpy(&val, run->mmio.data, 8);
	run_to_mmio(0, MMIO_GPA);
	return val;
}

/* What the host writes at the start and end of each page, per generation. */
static uint64_t pattern(int slot, int pg, int end, int gen)
{
	return 0xc0de000000000000ULL | (uint64_t)slot << 40 | (uint64_t)pg << 24 |
	       (uint64_t)end << 16 | (uint64_t)gen;
}

static uint64_t *word(int slot, int pg, int end)
{
	return (uint64_t *)(slot_hva[slot] + pg * page + (end ? page - 8 : 0));
}

static void host_fill(int slot, int pg, int gen)
{
	*word(slot, pg, 0) = pattern(slot, pg, 0, gen);
	*word(slot, pg, 1) = pattern(slot, pg, 1, gen);
}

/* expect[slot][page]: generation the guest should see, 0 for zeroed. */
static int expect[NSLOTS][SLOT_PAGES];

/* Read every data page through the guest; print mismatches, count them. */
static int guest_check_all(const char *check, unsigned *nread)
{
	int bad = 0;

	*nread = 0;
	for (int s = 0; s < NSLOTS; s++) {
		for (int p = 0; p < SLOT_PAGES; p++) {
			if (s == 0 && p == CODE_PAGE)
				continue;
			for (int end = 0; end < 2; end++) {
				uint64_t gpa = slot_gpa[s] + p * page + (end ? page - 8 : 0);
				uint64_t want = expect[s][p] ? pattern(s, p, end, expect[s][p]) : 0;
				uint64_t got = guest_load(gpa);

				(*nread)++;
				if (got != want && bad++ < 8)
					printf(TAG "  %s: slot %d page %d %s (gpa 0x%llx): guest read 0x%016llx, expected 0x%016llx\n",
					       check, s, p, end ? "end" : "start",
					       (unsigned long long)gpa, (unsigned long long)got,
					       (unsigned long long)want);
			}
		}
	}
	return bad;
}

/* The series' per-VM counters, if this kernel has them. */
static const char *const counter_name[3] = {
	"mn_invalidate_seen", "mn_invalidate_locked", "mn_invalidate_elided"
};
static char counter_dir[128];
static int counters_present;	/* 1 all three, 0 none, -1 some */

static void counters_probe(int vm_fd)
{
	struct stat st;
	int n = 0;

	snprintf(counter_dir, sizeof(counter_dir), "/sys/kernel/debug/kvm/%d-%d",
		 (int)getpid(), vm_fd);
	if (stat(counter_dir, &st) < 0) {
		printf(TAG "counters: the VM's debugfs directory %s is missing (%s): is debugfs mounted?\n",
		       counter_dir, strerror(errno));
		counters_present = 0;
		return;
	}
	for (int i = 0; i < 3; i++) {
		char path[192];

		snprintf(path, sizeof(path), "%s/%s", counter_dir, counter_name[i]);
		n += stat(path, &st) == 0;
	}
	counters_present = n == 3 ? 1 : n == 0 ? 0 : -1;
	printf(TAG "counters: %s in %s\n",
	       n == 3 ? "present (mn_invalidate_seen, _locked, _elided)" :
	       n == 0 ? "ABSENT (no mn_invalidate_* files; check (d) will be skipped)" :
	       "only some of mn_invalidate_seen, _locked, _elided present",
	       counter_dir);
}

/*
 * No printf, malloc or free between two snapshots: those can move the
 * heap, and every heap change is an MMU notification of its own.
 */
static int counters_read(uint64_t v[3])
{
	if (counters_present != 1)
		return 0;
	for (int i = 0; i < 3; i++) {
		char path[192], buf[32];
		ssize_t len;
		int fd;

		snprintf(path, sizeof(path), "%s/%s", counter_dir, counter_name[i]);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			return -1;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			return -1;
		buf[len] = 0;
		v[i] = strtoull(buf, NULL, 10);
	}
	return 1;
}

struct range {
	unsigned char *start;
	long pages;
	const char *what;
};

static int zap(const struct range *r, int n)
{
	for (int i = 0; i < n; i++)
		if (madvise(r[i].start, r[i].pages * page, MADV_DONTNEED) < 0)
			return i;
	return n;
}

/*
 * (e): the thread that makes change_pte notifications.  Each round forks
 * a child that only waits to be killed, writes one byte of every page of
 * both backings while the child shares them (each write copies the page:
 * an invalidate_range_start, change_pte, invalidate_range_end sequence on
 * this process), then kills and reaps the child.
 */
static unsigned char *cow[2];
static volatile int cow_stop;
static unsigned long cow_rounds, ksm_merged;
static int cow_errno;

static void *cow_storm(void *arg)
{
	(void)arg;
	while (!cow_stop) {
		pid_t pid = fork();

		if (pid < 0) {
			cow_errno = errno;
			break;
		}
		if (pid == 0)
			for (;;)
				pause();
		for (int b = 0; b < 2; b++)
			for (long p = 0; p < COW_PAGES; p++)
				cow[b][p * page + 8]++;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		cow_rounds++;
	}
	return NULL;
}

static int cow_stopped(void)
{
	return cow_stop;
}

/* (f): ksmd makes the change_pte notifications, rounds of equal pages merged. */
static void *ksm_storm(void *arg)
{
	(void)arg;
	while (!cow_stop) {
		long merged = ksm_storm_round(cow, 2, COW_PAGES * page, 0x10 + cow_rounds % 0xe0,
					      cow_stopped);

		if (merged < 0) {
			cow_errno = errno;
			break;
		}
		ksm_merged += merged;
		cow_rounds++;
	}
	return NULL;
}

static int cow_vm;
static volatile int slot_stop;
static unsigned long slot_deletes;
static int slot_errno;

static int cow_slot(int vm, int b, uint64_t size)
{
	struct kvm_userspace_memory_region mr = {
		.slot = COW_SLOT,
		.guest_phys_addr = COW_GPA,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)cow[b],
	};

	return ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mr);
}

/* (e): deletes the memslot and creates it again, on the other backing. */
static void *slot_churn(void *arg)
{
	int b = 0;

	(void)arg;
	while (!slot_stop) {
		if (cow_slot(cow_vm, b, 0) < 0) {
			slot_errno = errno;
			break;
		}
		slot_deletes++;
		b = !b;
		if (cow_slot(cow_vm, b, COW_PAGES * page) < 0) {
			slot_errno = errno;
			break;
		}
	}
	return NULL;
}

/* A counter of the instrumentation, or -1 if this kernel has none. */
static int64_t read_counter(const char *name)
{
	char path[192], buf[32];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", counter_dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[len > 0 ? len : 0] = 0;
	return len > 0 ? (int64_t)strtoull(buf, NULL, 10) : -1;
}

/*
 * Checks (e) and (f), as mn-cpte-invalid does them on x86: one thread
 * deletes the memslot and creates it again as fast as it can, alternately
 * on two backings, while cow_storm() (e) or ksmd (f) makes change_pte
 * calls on both.  The
 * instrumentation counts the change_pte walks that meet the memslot while
 * a deletion has it marked invalid (mn_change_pte_invalid_seen: the race
 * happened) and the calls of arm64's kvm_set_spte_gfn() for such a
 * memslot (mn_change_pte_invalid_reached: a stage-2 leaf was installed
 * into it, which patch 20 prevents).  Runs until reached rises, seen
 * reaches 20, or COW_SECONDS pass, polling the counters every 100 ms.
 * Passes with seen > 0 and reached == 0.  Returns 1 if it failed.
 */
static int check_cpte(int vm, int ksm)
{
	const char *id = ksm ? "(f)" : "(e)";
	int64_t seen0, reached0, seen = 0, reached = 0;
	struct timespec t0, t, nap = { 0, 100 * 1000 * 1000 };
	struct ksm_knobs knobs;
	pthread_t storm, churn;
	int ok;

	for (int i = 0; i < 2; i++) {
		cow[i] = mmap(NULL, COW_PAGES * page, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (cow[i] == MAP_FAILED)
			die("mmap");
		madvise(cow[i], COW_PAGES * page, MADV_NOHUGEPAGE);
		memset(cow[i], 0x3c + i, COW_PAGES * page);
		if (ksm && ksm_storm_prepare(cow[i], COW_PAGES * page)) {
			printf(TAG "(f) SKIP: madvise(MADV_MERGEABLE): %s (no CONFIG_KSM)\n",
			       strerror(errno));
			return 0;
		}
	}
	seen0 = read_counter("mn_change_pte_invalid_seen");
	reached0 = read_counter("mn_change_pte_invalid_reached");
	if (seen0 < 0 || reached0 < 0) {
		printf(TAG "%s SKIP: no mn_change_pte_invalid_{seen,reached} counters in %s\n", id,
		       counter_dir);
		return 0;
	}
	if (ksm && ksm_start(&knobs, 4 * COW_PAGES))
		die("cannot set ksmd going through " KSM_DIR);
	cow_vm = vm;
	cow_stop = slot_stop = 0;
	cow_rounds = slot_deletes = ksm_merged = 0;
	if (cow_slot(vm, 0, COW_PAGES * page) < 0)
		die("KVM_SET_USER_MEMORY_REGION (e)");
	errno = pthread_create(&storm, NULL, ksm ? ksm_storm : cow_storm, NULL);
	if (!errno)
		errno = pthread_create(&churn, NULL, slot_churn, NULL);
	if (errno)
		die("pthread_create");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		nanosleep(&nap, NULL);	/* a poll with a deadline: the counters send no signal */
		seen = read_counter("mn_change_pte_invalid_seen") - seen0;
		reached = read_counter("mn_change_pte_invalid_reached") - reached0;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < COW_SECONDS && !reached && seen < 20 && !cow_errno &&
		 !slot_errno);
	cow_stop = slot_stop = 1;
	pthread_join(storm, NULL);
	pthread_join(churn, NULL);
	if (ksm)
		ksm_restore(&knobs);
	if (cow_errno) {
		errno = cow_errno;
		die(ksm ? "a round of KSM merging (f)" : "fork (e)");
	}
	if (slot_errno) {
		errno = slot_errno;
		die("KVM_SET_USER_MEMORY_REGION (e)");
	}
	/* The memslot goes, so that (f) starts from the same place as (e). */
	if (cow_slot(vm, 0, 0) < 0)
		die("KVM_SET_USER_MEMORY_REGION (e)");
	for (int i = 0; i < 2; i++)
		munmap(cow[i], COW_PAGES * page);
	ok = seen > 0 && reached == 0;
	if (ksm)
		printf(TAG "(f) %s: in %ld s, %lu memslot deletions while ksmd merged %lu pages in "
		       "%lu rounds",
		       ok ? "PASS" : "FAIL", (long)(t.tv_sec - t0.tv_sec), slot_deletes, ksm_merged,
		       cow_rounds);
	else
		printf(TAG "(e) %s: in %ld s, %lu memslot deletions while %lu fork-and-write rounds "
		       "made %lu change_pte calls",
		       ok ? "PASS" : "FAIL", (long)(t.tv_sec - t0.tv_sec), slot_deletes, cow_rounds,
		       cow_rounds * 2 * COW_PAGES);
	printf(": change_pte met the memslot being deleted %" PRId64 " times (want > 0), arm64's "
	       "set_spte handler was called for it %" PRId64 " times (want 0)\n", seen, reached);
	return !ok;
}

int main(void)
{
	uint64_t before[3], after[3], decoy_delta[3] = { 0 }, slot_delta[3] = { 0 };
	int kvm, vm, rc_before, rc_after, bad, done;
	long region_pages = 3 * DECOY_PAGES + NSLOTS * SLOT_PAGES;
	struct kvm_vcpu_init init;
	unsigned nread;
	size_t run_size;

	setvbuf(stdout, NULL, _IOLBF, 0);
	page = sysconf(_SC_PAGESIZE);

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("open /dev/kvm");
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		die_msg("KVM_GET_API_VERSION is not 12");
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");

	/*
	 * One mapping for decoys and slots, so that the decoys are exactly
	 * adjacent to the slots' host ranges: the boundary cases.  It is far
	 * smaller than a huge page, and NOHUGEPAGE says so anyway, so that
	 * no THP split widens a decoy's invalidation onto a slot.
	 */
	region = mmap(NULL, region_pages * page, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	decoy[3] = mmap(NULL, DECOY_PAGES * page, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED || decoy[3] == MAP_FAILED)
		die("mmap");
	madvise(region, region_pages * page, MADV_NOHUGEPAGE);
	madvise(decoy[3], DECOY_PAGES * page, MADV_NOHUGEPAGE);
	decoy[0] = region;
	slot_hva[0] = decoy[0] + DECOY_PAGES * page;
	decoy[1] = slot_hva[0] + SLOT_PAGES * page;
	slot_hva[1] = decoy[1] + DECOY_PAGES * page;
	decoy[2] = slot_hva[1] + SLOT_PAGES * page;
	for (int d = 0; d < 4; d++)
		memset(decoy[d], 0x5a, DECOY_PAGES * page);

	for (int s = 0; s < NSLOTS; s++) {
		struct kvm_userspace_memory_region mr = {
			.slot = s,
			.guest_phys_addr = slot_gpa[s],
			.memory_size = SLOT_PAGES * page,
			.userspace_addr = (uint64_t)(uintptr_t)slot_hva[s],
		};

		if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mr) < 0)
			die("KVM_SET_USER_MEMORY_REGION");
	}
	memcpy(slot_hva[0] + CODE_PAGE * page, guest_code, sizeof(guest_code));

	vcpu_fd = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu_fd < 0)
		die("KVM_CREATE_VCPU");
	memset(&init, 0, sizeof(init));
	if (ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init) < 0)
		die("KVM_ARM_PREFERRED_TARGET");
	if (ioctl(vcpu_fd, KVM_ARM_VCPU_INIT, &init) < 0)
		die("KVM_ARM_VCPU_INIT");
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if ((long)run_size <= 0)
		die("KVM_GET_VCPU_MMAP_SIZE");
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");
	set_reg(CORE_REG(regs.pc), SLOT0_GPA + CODE_PAGE * page);
	set_reg(CORE_REG(regs.regs[2]), MMIO_GPA);
	printf(TAG "VM fd %d, target %u, slots at gpa 0x%llx and 0x%llx, %d pages each, decoys of %d pages\n",
	       vm, init.target, SLOT0_GPA, SLOT1_GPA, SLOT_PAGES, DECOY_PAGES);
	counters_probe(vm);
	/* Into the guest's first MMIO read, where guest_load() expects it. */
	run_to_mmio(0, MMIO_GPA);

	/* (a) */
	for (int s = 0; s < NSLOTS; s++)
		for (int p = 0; p < SLOT_PAGES; p++)
			if (!(s == 0 && p == CODE_PAGE)) {
				host_fill(s, p, 1);
				expect[s][p] = 1;
			}
	bad = guest_check_all("(a)", &nread);
	printf(TAG "(a) %s: guest read %u words the host wrote in %d slots, %d wrong\n",
	       bad ? "FAIL" : "PASS", nread, NSLOTS, bad);
	failures += !!bad;

	/* (c), with the guest's stage-2 mappings of every page now in place. */
	const struct range decoys[] = {
		{ decoy[0], DECOY_PAGES, "decoy A, ends where slot 0 starts" },
		{ decoy[1], DECOY_PAGES, "decoy B, from slot 0's end to slot 1's start" },
		{ decoy[2], DECOY_PAGES, "decoy C, starts where slot 1 ends" },
		{ decoy[3], DECOY_PAGES, "decoy D, a mapping of its own" },
		{ decoy[1], 1, "decoy B's first page" },
		{ decoy[1] + (DECOY_PAGES - 1) * page, 1, "decoy B's last page" },
	};
	const int ndecoys = sizeof(decoys) / sizeof(decoys[0]);
	rc_before = counters_read(before);
	done = zap(decoys, ndecoys);
	rc_after = counters_read(after);
	if (done < ndecoys) {
		printf(TAG "(c) FAIL: madvise(%s): %s\n", decoys[done].what, strerror(errno));
		return 1;
	}
	if (rc_before == 1 && rc_after == 1)
		for (int i = 0; i < 3; i++)
			decoy_delta[i] = after[i] - before[i];
	bad = guest_check_all("(c)", &nread);
	for (int d = 0; d < 4; d++)
		for (long i = 0; i < DECOY_PAGES * page; i++)
			if (decoy[d][i] != 0) {
				printf(TAG "  (c): decoy %c still holds data after MADV_DONTNEED\n", 'A' + d);
				bad++;
				break;
			}
	printf(TAG "(c) %s: %d madvise(MADV_DONTNEED) calls on decoys next to the slots, guest memory %s (%u words read back, %d wrong)\n",
	       bad ? "FAIL" : "PASS", ndecoys, bad ? "CHANGED" : "intact", nread, bad);
	failures += !!bad;

	/* (b) */
	const struct range in_slot[] = {
		{ slot_hva[0] + 1 * page, 1, "slot 0's first data page" },
		{ slot_hva[0] + (SLOT_PAGES - 1) * page, 1, "slot 0's last page" },
		{ decoy[1] + (DECOY_PAGES - 1) * page, 2, "decoy B's last page and slot 1's first" },
		{ slot_hva[1] + (SLOT_PAGES - 1) * page, 2, "slot 1's last page and decoy C's first" },
	};
	const int nin_slot = sizeof(in_slot) / sizeof(in_slot[0]);
	rc_before = counters_read(before);
	done = zap(in_slot, nin_slot);
	rc_after = counters_read(after);
	if (done < nin_slot) {
		printf(TAG "(b) FAIL: madvise(%s): %s\n", in_slot[done].what, strerror(errno));
		return 1;
	}
	if (rc_before == 1 && rc_after == 1)
		for (int i = 0; i < 3; i++)
			slot_delta[i] = after[i] - before[i];
	expect[0][1] = expect[0][SLOT_PAGES - 1] = 0;
	expect[1][0] = expect[1][SLOT_PAGES - 1] = 0;
	bad = guest_check_all("(b)", &nread);
	/* Then the host writes again: the guest must follow it there too. */
	host_fill(0, 1, 2);
	host_fill(0, SLOT_PAGES - 1, 2);
	host_fill(1, 0, 2);
	host_fill(1, SLOT_PAGES - 1, 2);
	expect[0][1] = expect[0][SLOT_PAGES - 1] = 2;
	expect[1][0] = expect[1][SLOT_PAGES - 1] = 2;
	int bad2 = guest_check_all("(b) rewrite", &nread);
	printf(TAG "(b) %s: after %d madvise(MADV_DONTNEED) calls on 4 slot pages the guest read %s there, and %s what the host wrote next (%d + %d wrong)\n",
	       bad || bad2 ? "FAIL" : "PASS", nin_slot, bad ? "STALE data" : "zero",
	       bad2 ? "NOT" : "then", bad, bad2);
	failures += bad || bad2;

	/* (d) */
	if (counters_present == 0) {
		printf(TAG "(d) SKIP: counters absent, nothing to check\n");
	} else if (counters_present < 0 || rc_before != 1 || rc_after != 1) {
		printf(TAG "(d) FAIL: counters %s\n",
		       counters_present < 0 ? "only partly present" : "could not be read");
		failures++;
	} else {
		/*
		 * At least one count per call (whether a range_start/end pair
		 * counts once or twice is the series' business), and every
		 * notification decided one way or the other.
		 */
		int ok = decoy_delta[2] >= (uint64_t)ndecoys && decoy_delta[1] == 0 &&
			 decoy_delta[0] >= (uint64_t)ndecoys &&
			 decoy_delta[0] == decoy_delta[1] + decoy_delta[2] &&
			 slot_delta[1] >= (uint64_t)nin_slot && slot_delta[0] >= (uint64_t)nin_slot &&
			 slot_delta[0] == slot_delta[1] + slot_delta[2];

		printf(TAG "(d) %s: %d decoy calls: seen +%" PRIu64 " locked +%" PRIu64 " elided +%" PRIu64
		       "; %d in-slot calls: seen +%" PRIu64 " locked +%" PRIu64 " elided +%" PRIu64 "\n",
		       ok ? "PASS" : "FAIL", ndecoys, decoy_delta[0], decoy_delta[1], decoy_delta[2],
		       nin_slot, slot_delta[0], slot_delta[1], slot_delta[2]);
		failures += !ok;
		/* Nothing is in flight now: a gauge left above zero is a leak. */
		for (int i = 0; i < 2; i++) {
			static const char *const gauge[2] = { "mn_invalidate_active", "mmu_notifier_count" };
			char path[192], buf[32];
			ssize_t len;
			int fd;

			snprintf(path, sizeof(path), "%s/%s", counter_dir, gauge[i]);
			fd = open(path, O_RDONLY);
			if (fd < 0)
				continue;
			len = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			buf[len > 0 ? len : 0] = 0;
			if (len <= 0 || strtoll(buf, NULL, 10) != 0) {
				printf(TAG "(d) FAIL: %s is %s with no invalidation in flight\n", gauge[i],
				       len > 0 ? strtok(buf, "\n") : "unreadable");
				failures++;
			}
		}
	}
	/* (e) */
	failures += check_cpte(vm, 0);
	/* (f) */
	failures += check_cpte(vm, 1);

	printf(TAG "%s: %d check(s) failed, %lu MMIO exits\n", failures ? "FAIL" : "PASS",
	       failures, mmio_exits);
	return failures ? 1 : 0;
}
