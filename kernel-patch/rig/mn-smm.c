// SPDX-License-Identifier: MIT
/*
 * mn-smm: memslots of the SMM address space (as_id 1).  x86 KVM keeps two
 * sets of memslots; a vCPU in System Management Mode sees only the second.
 * The series' walker must look at both before it decides that a
 * notification touches no guest memory: memory that only SMM maps (SMRAM,
 * TSEG) is guest memory too.
 *
 * One shmem memfd is mapped once as [A][gap][B][gap].  Address space 0 has
 * memslot A at gpa 2 MiB; address space 1 has memslot B at the same gpa,
 * and the SMRAM (64 KiB at 0x30000, anonymous) with the SMI handler.  The
 * vCPU reads A in 32-bit protected mode and B from SMM (entered with
 * KVM_SMI, left with RSM), so both address spaces have SPTEs for every
 * page of their slot.  Then a hole punched with fallocate() gives exactly
 * one invalidate_range_start/end pair:
 *   in A          locks (address space 0)
 *   in B          locks (address space 1 only)
 *   in the gaps   elides
 *   A to B        locks once
 * and afterwards each mode must read 0 from every punched page and the
 * pattern from every other: a page of B that still read the pattern would
 * be a stale SMM mapping of the punched page.  The punched pages are first
 * spliced into a pipe that holds them until the VM is gone, so that such a
 * stale SPTE never points at freed memory (which corrupts the host once
 * KVM zaps it) on a kernel where this test fails.  Needs the instrumented
 * kernel's counters (debugfs).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define PROG "mn-smm"
#include "mn-common.h"

#define PAGE		4096ul
#define SLOT_PAGES	16ul
#define GAP_PAGES	16ul
#define REGION		(2 * (SLOT_PAGES + GAP_PAGES) * PAGE)
#define DATA_GPA	0x00200000u
#define CODE_GPA	0x00100000u
#define SMBASE		0x00030000u	/* the reset value of SMBASE */
#define SMRAM_SIZE	0x10000u
#define SMM_AS		(1u << 16)	/* KVM_SET_USER_MEMORY_REGION: as_id in bits 16+ */

/* Protected mode, address space 0. */
static const uint8_t code[] = {
	0x8b, 0x06,		/* 0: mov eax, [esi] */
	0xe6, 0x10,		/* 2: out 0x10, al */
	0xeb, 0xfa,		/* 4: jmp 0 */
	0xe6, 0x13,		/* 6: out 0x13, al	(back from SMM) */
	0xeb, 0xfc,		/* 8: jmp 6 */
};

/* At SMBASE + 0x8000, in SMM's real mode with 4 GiB data segments at 0. */
static const uint8_t smi_handler[] = {
	0x67, 0x8a, 0x06,	/* mov al, [esi] */
	0xe6, 0x12,		/* out 0x12, al */
	0x0f, 0xaa,		/* rsm */
};

static int kvm, vm, vcpu, cdir;
static char cpath[64];
static struct kvm_run *run;

/* KVM_RUN until an OUT to a port of ours; returns the port, *val the byte. */
static unsigned int run_to_out(uint8_t *val)
{
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			die("KVM_RUN: %s", strerror(errno));
		}
		if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT &&
		    run->io.port >= 0x10 && run->io.port <= 0x13) {
			*val = *((uint8_t *)run + run->io.data_offset);
			return run->io.port;
		}
		if (run->exit_reason != KVM_EXIT_INTR)
			die("unexpected exit reason %u", run->exit_reason);
	}
}

/* Page @page of A, read in protected mode. */
static uint8_t read_normal(unsigned long page)
{
	uint8_t v;

	mn_set_regs32(vcpu, CODE_GPA, DATA_GPA + page * PAGE);
	if (run_to_out(&v) != 0x10)
		die("the protected-mode read did not report at port 0x10");
	return v;
}

/* Page @page of B, read from SMM; the vCPU is back in protected mode after. */
static uint8_t read_smm(unsigned long page)
{
	unsigned int port;
	uint8_t v, dummy;

	mn_set_regs32(vcpu, CODE_GPA + 6, DATA_GPA + page * PAGE);
	if (ioctl(vcpu, KVM_SMI, 0))
		die("KVM_SMI: %s", strerror(errno));
	port = run_to_out(&v);
	if (port != 0x12)
		die("the vCPU did not enter SMM (reported at port 0x%x, want 0x12)", port);
	if (run_to_out(&dummy) != 0x13)
		die("the vCPU did not return from SMM");
	return v;
}

static uint64_t counter(const char *name)
{
	uint64_t val;

	if (counter_read(cdir, name, &val))
		die("cannot read %s/%s", cpath, name);
	return val;
}

int main(void)
{
	static const struct {
		const char *name;
		unsigned long first, pages;	/* in the region, in pages */
		bool lock;
	} cases[] = {
		{ "in-A", 3, 2, true },
		{ "in-B", SLOT_PAGES + GAP_PAGES + 5, 1, true },
		{ "gap-after-A", SLOT_PAGES, GAP_PAGES, false },
		{ "gap-after-B", 2 * SLOT_PAGES + GAP_PAGES, GAP_PAGES, false },
		{ "A-to-B", SLOT_PAGES - 1, GAP_PAGES + 2, true },
	};
	uint8_t *region, *text, *smram;
	unsigned int i, fails = 0;
	size_t run_size;
	int memfd, r, hold[2];

	vm = mn_create_vm(&kvm, cpath, sizeof(cpath), &cdir);
	if (cdir < 0)
		die("no MMU-notifier counters in %s: needs the instrumented kernel", cpath);
	r = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MULTI_ADDRESS_SPACE);
	if (r < 2)
		die("KVM_CAP_MULTI_ADDRESS_SPACE is %d: this KVM has no SMM address space", r);
	memfd = memfd_create("mn-smm", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, REGION))
		die("memfd: %s", strerror(errno));
	region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	text = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	smram = mmap(NULL, SMRAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED || text == MAP_FAILED || smram == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memcpy(text, code, sizeof(code));
	memcpy(smram + 0x8000, smi_handler, sizeof(smi_handler));
	if (mn_set_slot(vm, 0, DATA_GPA, SLOT_PAGES * PAGE, region) ||
	    mn_set_slot(vm, 1, CODE_GPA, PAGE, text) ||
	    mn_set_slot(vm, SMM_AS | 0, DATA_GPA, SLOT_PAGES * PAGE,
			region + (SLOT_PAGES + GAP_PAGES) * PAGE) ||
	    mn_set_slot(vm, SMM_AS | 1, SMBASE, SMRAM_SIZE, smram))
		die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	vcpu = mn_create_vcpu32(kvm, vm, &run, &run_size);
	/* After the VM's file descriptors: an exit closes them first. */
	if (pipe(hold) || fcntl(hold[1], F_SETPIPE_SZ, (int)(REGION / PAGE * PAGE)) < 0)
		die("pipe: %s", strerror(errno));

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t s, l, ds, dl;
		struct iovec iov;
		unsigned long p;
		bool ok;

		memset(region, 0xa5, REGION);
		/* Both address spaces map every page of their slot before the punch. */
		for (p = 0; p < SLOT_PAGES; p++)
			if (read_normal(p) != 0xa5 || read_smm(p) != 0xa5)
				die("%s: page %lu does not read the host's pattern", cases[i].name, p);
		iov.iov_base = region + cases[i].first * PAGE;
		iov.iov_len = cases[i].pages * PAGE;
		if (vmsplice(hold[1], &iov, 1, 0) != (ssize_t)iov.iov_len)
			die("vmsplice: %s", strerror(errno));
		s = counter("mn_invalidate_seen");
		l = counter("mn_invalidate_locked");
		if (fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)(cases[i].first * PAGE), (off_t)(cases[i].pages * PAGE)))
			die("fallocate(PUNCH_HOLE): %s", strerror(errno));
		ds = counter("mn_invalidate_seen") - s;
		dl = counter("mn_invalidate_locked") - l;
		ok = ds == 1 && dl == cases[i].lock;
		/* 0 where punched, the pattern elsewhere, in each address space. */
		for (p = 0; p < SLOT_PAGES; p++) {
			unsigned long ra = p, rb = SLOT_PAGES + GAP_PAGES + p;
			bool za = ra >= cases[i].first && ra < cases[i].first + cases[i].pages;
			bool zb = rb >= cases[i].first && rb < cases[i].first + cases[i].pages;
			uint8_t a = read_normal(p), b = read_smm(p);

			if (a != (za ? 0 : 0xa5) || b != (zb ? 0 : 0xa5)) {
				printf(PROG ": %-12s FAIL page %lu reads 0x%02x in protected mode "
				       "(want 0x%02x), 0x%02x in SMM (want 0x%02x)\n",
				       cases[i].name, p, a, za ? 0 : 0xa5, b, zb ? 0 : 0xa5);
				ok = false;
				break;
			}
		}
		printf(PROG ": %-12s %s seen=%llu locked=%llu (want %d)\n", cases[i].name,
		       ok ? "PASS" : "FAIL", (unsigned long long)ds, (unsigned long long)dl,
		       cases[i].lock);
		fails += !ok;
	}
	/* The VM first, then the pages it might still map. */
	munmap(run, run_size);
	close(vcpu);
	close(vm);
	close(hold[0]);
	close(hold[1]);
	if (fails) {
		printf(PROG ": FAIL %u case(s)\n", fails);
		return 1;
	}
	printf(PROG ": PASS mmu_lock and the zap reached the SMM address space's memslots\n");
	return 0;
}
