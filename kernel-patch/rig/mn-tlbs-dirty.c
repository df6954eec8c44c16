// SPDX-License-Identifier: MIT
/*
 * mn-tlbs-dirty: with shadow paging, an invalidation that overlaps a
 * memslot flushes remote TLBs when kvm->tlbs_dirty is set, even if it
 * finds no SPTE to zap; one that overlaps no memslot does not flush.
 *
 * Shadow paging's sync_page drops SPTEs without a remote flush and counts
 * them in tlbs_dirty: a vCPU may still hold a TLB entry for the page such
 * an SPTE mapped, so the next invalidation of that page must flush before
 * the page can be freed.  Patch 4 of the series moves that check from every
 * invalidate_range_start into x86's kvm_unmap_gfn_range(), so it applies
 * only to ranges that hit a memslot.  This test needs kvm_amd.npt=0.
 *
 * The guest runs 32-bit paging with page tables the host built: an
 * identity map of its first 4 MiB, and gva V mapped by a page table page
 * of its own (PT1) to P1 in memslot D.  PT1 also maps V2 = V + 4 KiB to
 * P3, with the accessed bit already set, and the guest never touches V2:
 * KVM prefetches an SPTE for it, not accessed, when it shadows V.  That
 * keeps the shadow page alive through each sync (one left with no
 * present SPTE is zapped, and the zap flushes remote TLBs, which clears
 * tlbs_dirty), without giving sync a reason to flush (an SPTE that was
 * accessed would, when sync makes it speculative again).  Each round it
 *   - reads V, so KVM shadows V -> P1 (and write-protects PT1);
 *   - writes PT1's entry for V to point at P2 instead (KVM lets the shadow
 *     page go out of sync rather than emulate the write);
 *   - reloads CR3, so KVM syncs the shadow page: V's gfn changed, so the
 *     SPTE is dropped and tlbs_dirty goes up;
 *   - stops at an I/O port, then swaps P1 and P2 for the next round.
 * At each stop the host reads tlbs_dirty and mn_tlb_flushes from the
 * instrumentation, then punches a page with MADV_DONTNEED: on odd rounds
 * P1's page in D, whose SPTE is already gone (one remote flush expected,
 * and tlbs_dirty back to 0); on even rounds a page of a buffer that is no
 * memslot (no flush, tlbs_dirty left as it was).  A round in which
 * tlbs_dirty did not rise says nothing and is counted; the test fails if
 * fewer than a quarter of the rounds of each kind say something.
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
#include <unistd.h>

#define PROG "mn-tlbs-dirty"
#include "mn-common.h"

#define PAGE		4096u
#define LOW_SLOT	0
#define LOW_SIZE	(2u << 20)	/* gpa 0: page tables and code */
#define PD_GPA		0x2000u
#define PT0_GPA		0x3000u		/* identity map of 0-4 MiB */
#define PT1_GPA		0x4000u		/* maps V only */
#define CODE_GPA	0x00100000u
#define V_GVA		0x00800000u	/* PD index 2, PT1 entry 0 */
#define D_SLOT		1
#define D_GPA		0x40000000u
#define D_SIZE		(2u << 20)
#define P1_GPA		D_GPA
#define P2_GPA		(D_GPA + PAGE)
#define P3_GPA		(D_GPA + 2 * PAGE)	/* V2 = V + 4 KiB maps it, always */
#define PTE_ACCESSED	0x20u
#define PTE_P_RW	0x3u
#define IO_PORT		0x10

/*
 * esi = V, edi = PT1's entry for V (identity-mapped), ebx = the entry now,
 * ecx = the entry to write.
 */
static const uint8_t guest_code[] = {
	0x8b, 0x06,		/* 0:  mov eax, [esi]	(shadow V) */
	0x89, 0x0f,		/* 2:  mov [edi], ecx	(retarget V) */
	0x0f, 0x20, 0xd8,	/* 4:  mov eax, cr3 */
	0x0f, 0x22, 0xd8,	/* 7:  mov cr3, eax	(sync: drop V's SPTE) */
	0xe6, IO_PORT,		/* 10: out IO_PORT, al */
	0x87, 0xd9,		/* 12: xchg ecx, ebx */
	0xeb, 0xf0,		/* 14: jmp 0 */
};

static uint64_t counter(int cdir, const char *name)
{
	uint64_t v;

	if (counter_read(cdir, name, &v))
		die("cannot read %s from the VM's debugfs directory: %s", name, strerror(errno));
	return v;
}

/* What the shadow MMU did, from 5.10's VM statistics, when a round says nothing. */
static void show_mmu_stats(int cdir, unsigned int round)
{
	static const char *const names[] = { "mmu_unsync",	  "mmu_pte_write",   "mmu_flooded",
					     "mmu_shadow_zapped", "remote_tlb_flush", "mmu_cache_miss" };
	unsigned int i;
	uint64_t v;

	printf(PROG ": round %u: tlbs_dirty was 0;", round);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!counter_read(cdir, names[i], &v))
			printf(" %s=%llu", names[i], (unsigned long long)v);
	putchar('\n');
}

static void put32(uint8_t *low, uint32_t gpa, uint32_t val)
{
	memcpy(low + gpa, &val, sizeof(val));
}

static bool npt_is_off(void)
{
	char buf[8] = "";
	FILE *f = fopen("/sys/module/kvm_amd/parameters/npt", "r");

	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return buf[0] == 'N' || buf[0] == '0';
}

int main(int argc, char **argv)
{
	unsigned int rounds = 20, r, told[2] = { 0, 0 }, silent[2] = { 0, 0 };
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *low, *d, *decoy;
	char cpath[64];
	int kvm, vm, vcpu, cdir, fails = 0;
	uint32_t i;

	if (argc > 1) {
		char *end;

		rounds = (unsigned int)strtoul(argv[1], &end, 10);
		if (*end || rounds < 4 || rounds > 100000)
			die("ROUNDS must be a number from 4 to 100000 (got '%s')", argv[1]);
	}
	if (!npt_is_off())
		die("needs shadow paging: boot with kvm_amd.npt=0 (or load kvm_amd with npt=0)");

	vm = mn_create_vm(&kvm, cpath, sizeof(cpath), &cdir);
	if (cdir < 0)
		die("no MMU-notifier counters in %s: needs the instrumented kernel", cpath);
	low = mmap(NULL, LOW_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	d = mmap(NULL, D_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	decoy = mmap(NULL, D_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (low == MAP_FAILED || d == MAP_FAILED || decoy == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	/*
	 * 4 KiB pages only: punching a page of a transparent huge page first
	 * splits it, which is one more invalidation, of the whole 2 MiB.
	 */
	if ((madvise(low, LOW_SIZE, MADV_NOHUGEPAGE) || madvise(d, D_SIZE, MADV_NOHUGEPAGE) ||
	     madvise(decoy, D_SIZE, MADV_NOHUGEPAGE)) &&
	    errno != EINVAL) /* EINVAL: a kernel without THP */
		die("madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
	memset(d, 0x5a, D_SIZE);

	/* 32-bit paging: PD[0] -> PT0 (identity), PD[2] -> PT1 (V -> P1). */
	put32(low, PD_GPA + 0 * 4, PT0_GPA | PTE_P_RW);
	put32(low, PD_GPA + 2 * 4, PT1_GPA | PTE_P_RW);
	for (i = 0; i < 1024; i++)
		put32(low, PT0_GPA + i * 4, i * PAGE | PTE_P_RW);
	put32(low, PT1_GPA, P1_GPA | PTE_P_RW);
	put32(low, PT1_GPA + 4, P3_GPA | PTE_ACCESSED | PTE_P_RW);
	memcpy(low + CODE_GPA, guest_code, sizeof(guest_code));
	if (mn_set_slot(vm, LOW_SLOT, 0, LOW_SIZE, low) || mn_set_slot(vm, D_SLOT, D_GPA, D_SIZE, d))
		die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));

	vcpu = mn_create_vcpu32(kvm, vm, &run, &run_size);
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs))
		die("KVM_GET_SREGS: %s", strerror(errno));
	sregs.cr3 = PD_GPA;
	sregs.cr0 |= 0x80000000u; /* PG */
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs))
		die("KVM_SET_SREGS: %s", strerror(errno));
	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE_GPA;
	regs.rsi = V_GVA;
	regs.rdi = PT1_GPA;
	regs.rbx = P1_GPA | PTE_P_RW;
	regs.rcx = P2_GPA | PTE_P_RW;
	regs.rflags = 0x2;
	if (ioctl(vcpu, KVM_SET_REGS, &regs))
		die("KVM_SET_REGS: %s", strerror(errno));

	for (r = 1; r <= rounds; r++) {
		bool inside = r % 2;
		uint64_t dirty0, flush0, dirty1, flush1;
		void *punch = inside ? (void *)d : (void *)decoy;

		for (;;) {
			if (ioctl(vcpu, KVM_RUN, 0) < 0) {
				if (errno == EINTR)
					continue;
				die("KVM_RUN: %s", strerror(errno));
			}
			if (run->exit_reason == KVM_EXIT_IO && run->io.port == IO_PORT)
				break;
			if (run->exit_reason == KVM_EXIT_INTR)
				continue;
			die("round %u: unexpected exit reason %u", r, run->exit_reason);
		}
		/* The decoy is populated, so the punch really unmaps something. */
		if (!inside)
			memset(decoy, r, PAGE);
		dirty0 = counter(cdir, "tlbs_dirty");
		flush0 = counter(cdir, "mn_tlb_flushes");
		if (madvise(punch, PAGE, MADV_DONTNEED))
			die("madvise: %s", strerror(errno));
		dirty1 = counter(cdir, "tlbs_dirty");
		flush1 = counter(cdir, "mn_tlb_flushes");
		if (!dirty0) {
			silent[inside]++;
			if (silent[0] + silent[1] <= 2) {
				uint32_t pt1e, pt0e4, pde2;

				memcpy(&pt1e, low + PT1_GPA, 4);
				memcpy(&pt0e4, low + PT0_GPA + 4 * 4, 4);
				memcpy(&pde2, low + PD_GPA + 2 * 4, 4);
				printf(PROG ": round %u: PT1[0]=%#x PT0[4]=%#x PD[2]=%#x\n", r, pt1e,
				       pt0e4, pde2);
				show_mmu_stats(cdir, r);
			}
			continue;
		}
		told[inside]++;
		if (inside && (flush1 != flush0 + 1 || dirty1)) {
			printf(PROG ": FAIL round %u: a punch inside memslot D with tlbs_dirty=%llu "
			       "asked for %llu remote flushes (want 1), tlbs_dirty now %llu (want 0)\n",
			       r, (unsigned long long)dirty0, (unsigned long long)(flush1 - flush0),
			       (unsigned long long)dirty1);
			fails++;
		} else if (!inside && flush1 != flush0) {
			printf(PROG ": FAIL round %u: a punch outside every memslot with "
			       "tlbs_dirty=%llu asked for %llu remote flushes (want 0)\n",
			       r, (unsigned long long)dirty0, (unsigned long long)(flush1 - flush0));
			fails++;
		}
	}
	printf(PROG ": %u rounds: inside %u with tlbs_dirty set and %u without, "
	       "outside %u and %u\n",
	       rounds, told[1], silent[1], told[0], silent[0]);
	if (told[1] < (rounds / 2 + 3) / 4 || told[0] < (rounds / 2 + 3) / 4) {
		printf(PROG ": FAIL shadow paging left tlbs_dirty set in too few rounds "
		       "to tell anything (want a quarter of each kind)\n");
		fails++;
	}
	if (fails)
		return 1;
	printf(PROG ": PASS an invalidation flushes for tlbs_dirty if and only if it hits a "
	       "memslot\n");
	return 0;
}
