// SPDX-License-Identifier: MIT
/*
 * mn-hva: the MMU-notifier walker finds memslots through an index by hva
 * (patch 21: memslot ids sorted by userspace_addr, searched by bisection,
 * and for each position the highest hva end up to it).  This checks that
 * it finds exactly the memslots a range overlaps when hva order and gfn
 * order differ, when memslots alias each other's host memory, and after
 * the index was updated by deletions, creations and moves.
 *
 * One shmem memfd of 2 * N pages: position j is a page at 2j that one
 * small memslot maps, followed by a gap page at 2j + 1 that none of the
 * small ones maps.  Small memslot k sits at position (a * k + b) mod N, so
 * hva order is a shuffle of gfn order.  One more memslot, the alias, maps
 * the first N pages of the memfd again (positions 0 to N/2 - 1 with their
 * gaps) at another gpa: it starts no higher than the small memslots it
 * contains and ends above them, which only the running maximum of the hva
 * ends finds from a range in one of its gaps.
 *
 * A hole punched with fallocate() gives exactly one invalidate_range
 * pair over exactly its hva range.  The guest first maps every page
 * through every memslot; then every small memslot's page and every gap
 * page is punched in turn.  Each punch must take mmu_lock exactly when it
 * overlaps some memslot (seen 1, locked 1 or 0), and the guest must then
 * read 0 from the punched page through every memslot that maps it, and
 * what the host holds from its neighbours (and from every page, half-way
 * through).  Three rounds: as created; after every small memslot was
 * deleted and created again at another position and gpa; after every
 * small memslot was moved to another gpa (the hva stays, memslots[] is
 * reordered).  Needs the instrumented kernel's counters (debugfs).
 *
 * Each punched page is first spliced into a pipe, which holds a reference
 * on it until the VM is gone: a walker that misses a memslot leaves a
 * stale SPTE behind, and without the reference it would point at a freed
 * page, which corrupts the host once KVM zaps it (on a kernel where this
 * test fails, that ended the boot).  The guest still reads the old page
 * through the stale SPTE, which is what the test looks for.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#define PROG "mn-hva"
#include "mn-common.h"

#define PAGE		4096ul
#define N		64u			/* small memslots */
#define REGION_PAGES	(2ul * N)
#define ALIAS_PAGES	((unsigned long)N)	/* the first half of the region */
#define SLOT_GPA	0x00000000u		/* small memslot k: one page */
#define CODE_GPA	0x00100000u
#define ALIAS_GPA	0x00200000u
#define ALIAS_SLOT	N
#define CODE_SLOT	(N + 1)
#define ROUNDS		3

static int memfd, vm, vcpu, cdir;
static int hold[ROUNDS + 1][2];	/* per round, a pipe holding the punched pages */
static char cpath[64];
static struct kvm_run *run;
static uint8_t *region;
static unsigned int pos[N];	/* small memslot k's position */
static uint64_t gpa[N];		/* and its gpa */

static uint8_t guest_read(uint64_t addr)
{
	return mn_read8(vcpu, run, CODE_GPA, addr);
}

static uint64_t counter(const char *name)
{
	uint64_t val;

	if (counter_read(cdir, name, &val))
		die("cannot read %s/%s", cpath, name);
	return val;
}

static void set_small(unsigned int k, unsigned int p, uint64_t g)
{
	if (mn_set_slot(vm, k, g, PAGE, region + 2 * p * PAGE))
		die("KVM_SET_USER_MEMORY_REGION slot %u (gpa %#llx, position %u): %s", k,
		    (unsigned long long)g, p, strerror(errno));
	pos[k] = p;
	gpa[k] = g;
}

static bool punched[REGION_PAGES];

/*
 * Read region page @page through every memslot that maps it and compare
 * with what the host holds there: 0 once punched, else the pattern.
 */
static bool check_page(unsigned int round, const char *what, unsigned long page)
{
	uint8_t want = punched[page] ? 0 : 0xa5, got;
	bool ok = true;
	unsigned int k;

	for (k = 0; k < N; k++) {
		if (2ul * pos[k] != page)
			continue;
		got = guest_read(gpa[k]);
		if (got != want) {
			printf(PROG ": round %u %s FAIL memslot %u reads %#x at region page %lu "
			       "(want %#x)\n", round, what, k, got, page, want);
			ok = false;
		}
	}
	if (page < ALIAS_PAGES) {
		got = guest_read(ALIAS_GPA + page * PAGE);
		if (got != want) {
			printf(PROG ": round %u %s FAIL the alias reads %#x at region page %lu "
			       "(want %#x)\n", round, what, got, page, want);
			ok = false;
		}
	}
	return ok;
}

/* Check every page through every memslot that maps it. */
static bool check_all(unsigned int round, const char *what)
{
	unsigned long p;
	bool ok = true;

	for (p = 0; p < REGION_PAGES; p++)
		ok &= check_page(round, what, p);
	return ok;
}

/*
 * Punch region page @page, then check the counters, and what the guest
 * reads there and next to it.  Returns true if all is as it must be.
 */
static bool punch_case(unsigned int round, const char *what, unsigned long page)
{
	bool hits = page < ALIAS_PAGES, ok;
	uint64_t s, l, ds, dl;
	struct iovec iov;
	unsigned int k;

	for (k = 0; k < N; k++)
		hits |= 2ul * pos[k] == page;
	iov.iov_base = region + page * PAGE;
	iov.iov_len = PAGE;
	if (vmsplice(hold[round][1], &iov, 1, 0) != (ssize_t)PAGE)
		die("vmsplice: %s", strerror(errno));
	s = counter("mn_invalidate_seen");
	l = counter("mn_invalidate_locked");
	if (fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(page * PAGE),
		      (off_t)PAGE))
		die("fallocate(PUNCH_HOLE): %s", strerror(errno));
	ds = counter("mn_invalidate_seen") - s;
	dl = counter("mn_invalidate_locked") - l;
	punched[page] = true;
	ok = ds == 1 && dl == hits;
	if (!ok)
		printf(PROG ": round %u %s (region page %lu) FAIL seen=%llu locked=%llu "
		       "(want 1 and %d)\n", round, what, page, (unsigned long long)ds,
		       (unsigned long long)dl, hits);
	ok &= check_page(round, what, page);
	if (page > 0)
		ok &= check_page(round, what, page - 1);
	if (page + 1 < REGION_PAGES)
		ok &= check_page(round, what, page + 1);
	return ok;
}

/* One round: every small memslot's page, then every gap page. */
static unsigned int punch_round(unsigned int round)
{
	unsigned int k, j, fails = 0, locked = 0;
	char what[32];

	/*
	 * The host's pattern everywhere, and the guest maps every page
	 * through every memslot, so that a missed zap leaves a stale mapping
	 * behind.  Every page is punched once in the round.
	 */
	memset(region, 0xa5, REGION_PAGES * PAGE);
	memset(punched, 0, sizeof(punched));
	if (!check_all(round, "before the punches"))
		die("round %u: the guest does not read the host's pattern", round);
	for (k = 0; k < N; k++) {
		snprintf(what, sizeof(what), "memslot %u", k);
		fails += !punch_case(round, what, 2ul * pos[k]);
	}
	fails += !check_all(round, "after the memslot punches");
	for (j = 0; j < N; j++) {
		snprintf(what, sizeof(what), "gap %u", j);
		fails += !punch_case(round, what, 2ul * j + 1);
		locked += 2ul * j + 1 < ALIAS_PAGES;
	}
	printf(PROG ": round %u %s: %u punches in memslots, %u in gaps (%u of them inside "
	       "the alias), %u failed\n", round, fails ? "FAIL" : "PASS", N, N, locked, fails);
	return fails;
}

int main(void)
{
	unsigned int k, fails = 0;
	size_t run_size;
	uint8_t *code;
	int kvm;

	memfd = memfd_create("mn-hva", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, (off_t)(REGION_PAGES * PAGE)))
		die("memfd: %s", strerror(errno));
	region = mmap(NULL, REGION_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	code = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED || code == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	mn_read8_code(code);

	vm = mn_create_vm(&kvm, cpath, sizeof(cpath), &cdir);
	if (cdir < 0)
		die("no MMU-notifier counters in %s: needs the instrumented kernel", cpath);
	if (mn_set_slot(vm, CODE_SLOT, CODE_GPA, PAGE, code) ||
	    mn_set_slot(vm, ALIAS_SLOT, ALIAS_GPA, ALIAS_PAGES * PAGE, region))
		die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	vcpu = mn_create_vcpu32(kvm, vm, &run, &run_size);
	/*
	 * After the VM's file descriptors, so that an exit closes them first
	 * and the VM is gone before the pages are let go.
	 */
	for (k = 1; k <= ROUNDS; k++)
		if (pipe(hold[k]) || fcntl(hold[k][1], F_SETPIPE_SZ, (int)(REGION_PAGES * PAGE)) < 0)
			die("pipe: %s", strerror(errno));

	/* Round 1: gfn order k, hva order (37k + 5) mod N. */
	for (k = 0; k < N; k++)
		set_small(k, (37 * k + 5) % N, SLOT_GPA + k * PAGE);
	fails += punch_round(1);

	/* Round 2: every memslot deleted, then created elsewhere. */
	for (k = 0; k < N; k++)
		if (mn_set_slot(vm, k, 0, 0, region))
			die("deleting memslot %u: %s", k, strerror(errno));
	for (k = 0; k < N; k++)
		set_small(k, (13 * k + 11) % N, SLOT_GPA + (N - 1 - k) * PAGE);
	fails += punch_round(2);

	/*
	 * Round 3: every memslot moved to the gpa of its mirror image, two
	 * at a time through a free gpa, so that memslots[] is reordered
	 * while every hva stays.
	 */
	for (k = 0; k < N / 2; k++) {
		unsigned int m = N - 1 - k;
		uint64_t gk = gpa[k], gm = gpa[m], spare = SLOT_GPA + N * PAGE;

		set_small(k, pos[k], spare);
		set_small(m, pos[m], gk);
		set_small(k, pos[k], gm);
	}
	fails += punch_round(3);

	/* The VM first, then the pages it might still map. */
	munmap(run, run_size);
	close(vcpu);
	close(vm);
	for (k = 1; k <= ROUNDS; k++) {
		close(hold[k][0]);
		close(hold[k][1]);
	}
	if (fails) {
		printf(PROG ": FAIL %u case(s)\n", fails);
		return 1;
	}
	printf(PROG ": PASS %u memslots and an alias, 3 rounds: every punch took mmu_lock "
	       "exactly when it overlapped a memslot, and the guest read what it must\n", N);
	return 0;
}
