// SPDX-License-Identifier: MIT
/*
 * mn-destroy: a VM destroyed while one of its invalidations is between
 * range_start and range_end.
 *
 * kvm_destroy_vm() unregisters the MMU notifier.  An invalidation whose
 * range_start already ran then never calls this VM's range_end, so the
 * VM dies with mn_active_invalidate_count (and, when the range hit a
 * memslot, mmu_notifier_count) still raised.  The patched kernel must
 * neither hang nor warn there: nobody can be waiting for the count, and
 * the memslots are freed as usual.  The instrumented kernel counts such
 * destructions in the global debugfs file mn_destroy_in_flight, so the
 * test can require that the window was really hit:
 *
 *  - a storm thread fills a 16 MiB anonymous region once, then makes it
 *    read-only and read-write again, over and over: mprotect() walks the
 *    4096 PTEs inside one invalidation per 2 MiB, so that one is nearly
 *    always in flight (dropping the region with MADV_DONTNEED and
 *    refilling it hit the window in 15 of 467 rounds: the refill's page
 *    faults, outside any invalidation, took most of the time);
 *  - the main thread creates a VM with one memslot over the region (the
 *    notifier's registration waits for the mprotect in flight: it takes
 *    mmap_lock for writing), waits a random time up to 1 ms and closes
 *    the VM, its last reference, which destroys it; the notifier's
 *    unregistration does not take mmap_lock, so the destruction can land
 *    inside an mprotect;
 *  - it repeats until mn_destroy_in_flight rose by --target or for
 *    SECONDS; fewer than --target fails.
 *
 * Splats (a WARN in kvm_destroy_vm, lockdep) fail the rig's run anyway.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
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

#define PROG "mn-destroy"
#include "mn-common.h"

#define REGION_SIZE	(16ul << 20)
#define COUNTER		KVM_DEBUGFS "/mn_destroy_in_flight"

static uint8_t *region;
static atomic_bool stop;
static atomic_ulong toggles;

static void *storm(void *arg)
{
	(void)arg;
	memset(region, 0x5a, REGION_SIZE);
	while (!atomic_load(&stop)) {
		if (mprotect(region, REGION_SIZE, PROT_READ) ||
		    mprotect(region, REGION_SIZE, PROT_READ | PROT_WRITE))
			die("mprotect: %s", strerror(errno));
		atomic_fetch_add(&toggles, 1);
	}
	return NULL;
}

static uint64_t destroyed_in_flight(void)
{
	uint64_t v;

	if (counter_read(AT_FDCWD, COUNTER, &v))
		die("cannot read %s: needs the instrumented patched kernel", COUNTER);
	return v;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long parse_num(const char *what, const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > max)
		die("invalid %s '%s': a whole number from 1 to %lu", what, s, max);
	return v;
}

int main(int argc, char **argv)
{
	unsigned long target = 20, duration = 120, rounds = 0;
	uint64_t c0, c = 0;
	pthread_t t;
	double t0;
	int a;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--target") && a + 1 < argc) {
			target = parse_num("--target", argv[++a], 1000000);
		} else if (argv[a][0] != '-') {
			duration = parse_num("the duration in seconds", argv[a], 86400);
		} else {
			fprintf(stderr, "usage: " PROG " [--target N (default 20)] [SECONDS (default 120)]\n");
			return 2;
		}
	}
	region = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	srand((unsigned int)getpid());
	c0 = destroyed_in_flight();
	if (pthread_create(&t, NULL, storm, NULL))
		die("pthread_create failed");
	t0 = now();
	while (now() - t0 < duration) {
		struct timespec delay = { 0, (rand() % 1000) * 1000l };
		char cpath[64];
		int kvm, vm, cdir;

		vm = mn_create_vm(&kvm, cpath, sizeof(cpath), &cdir);
		if (cdir >= 0)
			close(cdir);
		if (mn_set_slot(vm, 0, 0, REGION_SIZE, region))
			die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		nanosleep(&delay, NULL);
		/* The VM's last reference: kvm_destroy_vm() runs in this close. */
		close(vm);
		close(kvm);
		rounds++;
		c = destroyed_in_flight() - c0;
		if (c >= target)
			break;
	}
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	printf(PROG ": %lu rounds, %lu mprotect pairs, %llu VMs destroyed with an invalidation in flight "
	       "(want %lu) in %.1f s\n",
	       rounds, atomic_load(&toggles), (unsigned long long)c, target, now() - t0);
	if (c < target) {
		printf(PROG ": FAIL the race window was hit %llu times, fewer than --target %lu\n",
		       (unsigned long long)c, target);
		return 1;
	}
	/* Warnings are the rig's to see: it fails the run on any splat. */
	printf(PROG ": PASS no hang\n");
	return 0;
}
