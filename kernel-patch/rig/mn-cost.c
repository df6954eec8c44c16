// SPDX-License-Identifier: MIT
/*
 * mn-cost: what one MMU notification costs the thread that causes it, as
 * a function of the number of memslots, and what a memslot update costs.
 * A benchmark, not a test: it prints figures and fails only on errors.
 *
 * For each N given, a VM (no vCPU) gets N one-page memslots, each at its
 * own hva with a page of space between them, and then, R times over, the
 * thread's CPU time (CLOCK_THREAD_CPUTIME_ID: the system call's kernel
 * time included, time spent preempted not) is taken for K operations of
 * each kind:
 *   irrelevant  madvise(MADV_DONTNEED) of a page that is no memslot's
 *   relevant    madvise(MADV_DONTNEED) of the middle memslot's page
 *   update      KVM_SET_USER_MEMORY_REGION deleting the middle memslot
 *               and creating it again (two updates)
 * and the median and the minimum of the R per-operation figures are
 * printed, one line per N and kind:
 *   mn-cost: slots=N kind=irrelevant ns_per_op_median=... ns_per_op_min=...
 * With the instrumented kernel, the same line gives how many of the
 * notifications took mmu_lock, which tells which path was measured.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PROG "mn-cost"
#include "mn-common.h"

#define PAGE		4096ul
#define MAX_SLOTS	509
#define MAX_REPS	101

static uint64_t thread_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static unsigned long parse(const char *what, const char *s, unsigned long lo, unsigned long hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		die("%s must be a number from %lu to %lu (got '%s')", what, lo, hi, s);
	return v;
}

enum kind { IRRELEVANT, RELEVANT, UPDATE, NR_KINDS };
static const char *const kind_name[NR_KINDS] = { "irrelevant", "relevant", "update" };

static void one(unsigned int nslots, unsigned int reps, unsigned int ops)
{
	uint64_t per_op[NR_KINDS][MAX_REPS], locked0 = 0, locked1 = 0, seen0 = 0, seen1 = 0;
	uint8_t *mem, *decoy, *mid;
	unsigned int i, r, k, midslot = nslots / 2;
	char cpath[64];
	int kvm, vm, cdir;

	vm = mn_create_vm(&kvm, cpath, sizeof(cpath), &cdir);
	mem = mmap(NULL, 2 * PAGE * nslots, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	decoy = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || decoy == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	for (i = 0; i < nslots; i++)
		if (mn_set_slot(vm, i, (uint64_t)(i + 1) << 21, PAGE, mem + 2 * PAGE * i))
			die("creating memslot %u of %u: %s", i, nslots, strerror(errno));
	mid = mem + 2 * PAGE * midslot;

	for (r = 0; r < reps; r++) {
		for (k = 0; k < NR_KINDS; k++) {
			uint64_t t0, t1;
			unsigned int n = k == UPDATE ? (ops + 9) / 10 : ops;

			if (k == RELEVANT && cdir >= 0 && r == 0) {
				counter_read(cdir, "mn_invalidate_seen", &seen0);
				counter_read(cdir, "mn_invalidate_locked", &locked0);
			}
			t0 = thread_ns();
			for (i = 0; i < n; i++) {
				int rc;

				if (k == IRRELEVANT)
					rc = madvise(decoy, PAGE, MADV_DONTNEED);
				else if (k == RELEVANT)
					rc = madvise(mid, PAGE, MADV_DONTNEED);
				else
					rc = mn_set_slot(vm, midslot, (uint64_t)(midslot + 1) << 21, 0,
							 mid) ||
					     mn_set_slot(vm, midslot, (uint64_t)(midslot + 1) << 21,
							 PAGE, mid);
				if (rc)
					die("%s: %s", kind_name[k], strerror(errno));
			}
			t1 = thread_ns();
			if (k == RELEVANT && cdir >= 0 && r == 0) {
				counter_read(cdir, "mn_invalidate_seen", &seen1);
				counter_read(cdir, "mn_invalidate_locked", &locked1);
			}
			per_op[k][r] = (t1 - t0) / (k == UPDATE ? 2 * n : n);
		}
	}
	for (k = 0; k < NR_KINDS; k++) {
		qsort(per_op[k], reps, sizeof(per_op[k][0]), cmp_u64);
		printf(PROG ": slots=%u kind=%s ns_per_op_median=%llu ns_per_op_min=%llu reps=%u ops=%u",
		       nslots, kind_name[k], (unsigned long long)per_op[k][reps / 2],
		       (unsigned long long)per_op[k][0], reps, k == UPDATE ? 2 * ((ops + 9) / 10) : ops);
		if (k == RELEVANT && cdir >= 0)
			printf(" seen=%llu locked=%llu", (unsigned long long)(seen1 - seen0),
			       (unsigned long long)(locked1 - locked0));
		putchar('\n');
	}
	fflush(stdout);
	if (cdir >= 0)
		close(cdir);
	close(vm);
	close(kvm);
	munmap(mem, 2 * PAGE * nslots);
	munmap(decoy, PAGE);
}

int main(int argc, char **argv)
{
	unsigned int reps = 9, ops = 2000;
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = parse("--reps", argv[i + 1], 1, MAX_REPS);
		else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			ops = parse("--ops", argv[i + 1], 10, 10000000);
		else
			die("usage: mn-cost [--reps R] [--ops K] SLOTS...");
		i += 2;
	}
	if (i == argc)
		die("usage: mn-cost [--reps R] [--ops K] SLOTS... (give at least one number of memslots)");
	for (; i < argc; i++)
		one(parse("SLOTS", argv[i], 1, MAX_SLOTS), reps, ops);
	return 0;
}
