// SPDX-License-Identifier: MIT
/*
 * mn-two-vms: two VMs in one process, and so two MMU notifiers on one mm.
 * Every notification of the process reaches both VMs; each must take
 * mmu_lock only if the range overlaps one of its own memslots, not one of
 * the other VM's.
 *
 * One shmem memfd is mapped once as [A][gap][B][gap]: VM 1 has memslot A,
 * VM 2 memslot B, both at gpa 0, and a vCPU in each VM reads its slot in a
 * loop (after each punch it must read 0 from the punched page).  Holes
 * punched with fallocate() give exactly one invalidate_range_start/end pair
 * each, over exactly the punched hva range:
 *   in A           VM 1 locks, VM 2 elides
 *   in B           VM 1 elides, VM 2 locks
 *   in the gaps    both elide
 *   A to B         both lock
 * and each VM's per-VM counters must say so.  Needs the instrumented
 * kernel's counters (debugfs).
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
#include <sys/syscall.h>
#include <unistd.h>

#define PROG "mn-two-vms"
#include "mn-common.h"

#define PAGE		4096ul
#define SLOT_PAGES	16ul
#define GAP_PAGES	16ul
#define REGION		(2 * (SLOT_PAGES + GAP_PAGES) * PAGE)
#define CODE_GPA	0x00100000u

struct vm {
	int kvm, fd, vcpu, cdir;
	char cpath[64];
	struct kvm_run *run;
	size_t run_size;
	uint8_t *code;
};

static void vm_init(struct vm *v, uint8_t *slot_hva)
{
	v->fd = mn_create_vm(&v->kvm, v->cpath, sizeof(v->cpath), &v->cdir);
	if (v->cdir < 0)
		die("no MMU-notifier counters in %s: needs the instrumented kernel", v->cpath);
	v->code = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v->code == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	mn_read8_code(v->code);
	if (mn_set_slot(v->fd, 0, 0, SLOT_PAGES * PAGE, slot_hva) ||
	    mn_set_slot(v->fd, 1, CODE_GPA, 2 * PAGE, v->code))
		die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	v->vcpu = mn_create_vcpu32(v->kvm, v->fd, &v->run, &v->run_size);
}

/* Run the vCPU until it reads the page at gpa 4 KiB * @page; return the word. */
static uint8_t vm_read(struct vm *v, unsigned long page)
{
	return mn_read8(v->vcpu, v->run, CODE_GPA, page * PAGE);
}

static uint64_t counter(struct vm *v, const char *name)
{
	uint64_t val;

	if (counter_read(v->cdir, name, &val))
		die("cannot read %s/%s", v->cpath, name);
	return val;
}

int main(void)
{
	static const struct {
		const char *name;
		unsigned long first, pages;	/* in the region, in pages */
		bool lock1, lock2;
	} cases[] = {
		{ "in-A", 3, 2, true, false },
		{ "in-B", SLOT_PAGES + GAP_PAGES + 5, 1, false, true },
		{ "gap-after-A", SLOT_PAGES, GAP_PAGES, false, false },
		{ "gap-after-B", 2 * SLOT_PAGES + GAP_PAGES, GAP_PAGES, false, false },
		{ "A-to-B", SLOT_PAGES - 1, GAP_PAGES + 2, true, true },
	};
	struct vm v1, v2;
	uint8_t *region;
	unsigned int i, fails = 0;
	int memfd;

	memfd = memfd_create("mn-two-vms", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, REGION))
		die("memfd: %s", strerror(errno));
	region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (region == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	vm_init(&v1, region);
	vm_init(&v2, region + (SLOT_PAGES + GAP_PAGES) * PAGE);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t s1, l1, s2, l2, ds1, dl1, ds2, dl2;
		unsigned long p;
		bool ok;

		memset(region, 0xa5, REGION);
		/* Each VM maps every page of its slot before the punch. */
		for (p = 0; p < SLOT_PAGES; p++)
			if (vm_read(&v1, p) != 0xa5 || vm_read(&v2, p) != 0xa5)
				die("%s: a guest does not read the host's pattern", cases[i].name);
		s1 = counter(&v1, "mn_invalidate_seen");
		l1 = counter(&v1, "mn_invalidate_locked");
		s2 = counter(&v2, "mn_invalidate_seen");
		l2 = counter(&v2, "mn_invalidate_locked");
		if (fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)(cases[i].first * PAGE), (off_t)(cases[i].pages * PAGE)))
			die("fallocate(PUNCH_HOLE): %s", strerror(errno));
		ds1 = counter(&v1, "mn_invalidate_seen") - s1;
		dl1 = counter(&v1, "mn_invalidate_locked") - l1;
		ds2 = counter(&v2, "mn_invalidate_seen") - s2;
		dl2 = counter(&v2, "mn_invalidate_locked") - l2;
		ok = ds1 == 1 && ds2 == 1 && dl1 == cases[i].lock1 && dl2 == cases[i].lock2;
		/* What each guest reads now: 0 where punched, the pattern elsewhere. */
		for (p = 0; p < SLOT_PAGES && ok; p++) {
			unsigned long r1 = p, r2 = SLOT_PAGES + GAP_PAGES + p;
			bool z1 = r1 >= cases[i].first && r1 < cases[i].first + cases[i].pages;
			bool z2 = r2 >= cases[i].first && r2 < cases[i].first + cases[i].pages;

			if (vm_read(&v1, p) != (z1 ? 0 : 0xa5) || vm_read(&v2, p) != (z2 ? 0 : 0xa5)) {
				printf(PROG ": %-12s FAIL page %lu reads stale data\n", cases[i].name, p);
				ok = false;
			}
		}
		printf(PROG ": %-12s %s VM 1 seen=%llu locked=%llu (want %d), VM 2 seen=%llu "
		       "locked=%llu (want %d)\n",
		       cases[i].name, ok ? "PASS" : "FAIL", (unsigned long long)ds1,
		       (unsigned long long)dl1, cases[i].lock1, (unsigned long long)ds2,
		       (unsigned long long)dl2, cases[i].lock2);
		fails += !ok;
	}
	if (fails) {
		printf(PROG ": FAIL %u case(s)\n", fails);
		return 1;
	}
	printf(PROG ": PASS each VM took mmu_lock only for its own memslots\n");
	return 0;
}
