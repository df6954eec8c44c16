// SPDX-License-Identifier: MIT
/*
 * x86-64 long mode, set up by the VMM: identity-mapped page tables, a GDT
 * with one TSS per vCPU, an IDT pointing at the payload's exception stubs,
 * and the registers each vCPU starts with.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvmstall.h"
#include "util.h"

#define PTE_P (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_US (1ULL << 2)
#define PTE_PS (1ULL << 7)

#define CR0_PE (1ULL << 0)
#define CR0_MP (1ULL << 1)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_WP (1ULL << 16)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define CR4_OSFXSR (1ULL << 9)
#define CR4_OSXMMEXCPT (1ULL << 10)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

struct pgtable_alloc {
	uint8_t *sys;
	uint64_t next; /* guest-physical address of the next free page-table page */
	uint64_t end;
};

static uint64_t *gpa_ptr(uint8_t *sys, uint64_t gpa)
{
	return (uint64_t *)(sys + gpa);
}

static uint64_t pt_alloc(struct pgtable_alloc *a)
{
	uint64_t gpa = a->next;

	if (gpa + 4096 > a->end)
		die("internal: guest page tables overflow");
	a->next += 4096;
	memset(a->sys + gpa, 0, 4096);
	return gpa;
}

/* Next-level table behind entry @e, created on demand. */
static uint64_t pt_next(struct pgtable_alloc *a, uint64_t *e)
{
	if (!(*e & PTE_P))
		*e = pt_alloc(a) | PTE_P | PTE_RW | PTE_US;
	return *e & ~0xfffULL;
}

/* Identity map [start, end) with 2 MiB pages, user-accessible (ring 3 runs there). */
static void map_range(struct pgtable_alloc *a, uint64_t pml4, uint64_t start, uint64_t end)
{
	uint64_t va;

	for (va = align_down(start, KS_GUEST_PAGE); va < end; va += KS_GUEST_PAGE) {
		uint64_t pdpt = pt_next(a, gpa_ptr(a->sys, pml4) + ((va >> 39) & 511));
		uint64_t pd = pt_next(a, gpa_ptr(a->sys, pdpt) + ((va >> 30) & 511));

		gpa_ptr(a->sys, pd)[(va >> 21) & 511] = va | PTE_P | PTE_RW | PTE_US | PTE_PS;
	}
}

static uint64_t seg_desc(uint64_t flags)
{
	/* base 0, limit 0xfffff, granularity 4 KiB: only the flags differ. */
	return 0x000f00000000ffffULL | (flags << 40);
}

#define IDT_ENTRIES 32

static void set_gate(uint64_t *idt, unsigned int vec, uint64_t addr, unsigned int dpl)
{
	idt[2 * vec] = (addr & 0xffff) | ((uint64_t)KS_SEL_CODE0 << 16) |
		       ((0x8eULL | (uint64_t)dpl << 5) << 40) | ((addr >> 16 & 0xffff) << 48);
	idt[2 * vec + 1] = addr >> 32;
}

void x86__setup_system(struct ks_vm *vm)
{
	const struct ks_layout *l = &vm->layout;
	struct pgtable_alloc a = {
		.sys = vm->sys,
		.next = KS_GPA_PGTABLE,
		.end = KS_GPA_PGTABLE + KS_PGTABLE_BYTES,
	};
	uint64_t *gdt = gpa_ptr(vm->sys, KS_GPA_GDT);
	uint64_t *idt = gpa_ptr(vm->sys, KS_GPA_IDT);
	uint64_t pml4;
	unsigned int i;

	if (KS_GPA_TSS + (uint64_t)l->nvcpus * KS_TSS_STRIDE > KS_GPA_PAYLOAD ||
	    KS_SEL_TSS + 16ULL * l->nvcpus > 0x10000)
		die("internal: %u vCPUs do not fit the GDT/TSS area", l->nvcpus);

	pml4 = pt_alloc(&a);
	map_range(&a, pml4, 0, l->sys_size);
	map_range(&a, pml4, KS_GPA_TEST_BASE, KS_GPA_TEST_BASE + l->slot_size * l->nslots);

	gdt[0] = 0;
	gdt[KS_SEL_CODE0 / 8] = seg_desc(0xa09b); /* L, P, DPL 0, code */
	gdt[KS_SEL_DATA0 / 8] = seg_desc(0xc093); /* DB, P, DPL 0, data */
	gdt[KS_SEL_DATA3 / 8] = seg_desc(0xc0f3); /* DB, P, DPL 3, data */
	gdt[KS_SEL_CODE3 / 8] = seg_desc(0xa0fb); /* L, P, DPL 3, code */
	for (i = 0; i < l->nvcpus; i++) {
		uint64_t tss = KS_GPA_TSS + (uint64_t)i * KS_TSS_STRIDE;
		uint64_t *d = gdt + (KS_SEL_TSS + 16 * i) / 8;
		uint8_t *t = vm->sys + tss;
		uint64_t rsp0 =
			KS_GPA_VCPU_AREA + (uint64_t)i * KS_VCPU_STRIDE + KS_VCPU_STACK3_OFF;

		/* 64-bit TSS: RSP0 at offset 4, I/O map base past the limit. */
		memset(t, 0, KS_TSS_STRIDE);
		memcpy(t + 4, &rsp0, 8);
		t[102] = 104;
		d[0] = 103 | ((tss & 0xffffff) << 16) | (0x89ULL << 40) |
		       ((tss >> 24 & 0xff) << 56);
		d[1] = tss >> 32;
	}

	/* Exceptions: interrupt gates, DPL 0, to the payload's stubs. */
	memset(idt, 0, IDT_ENTRIES * 16);
	for (i = 0; i < 32; i++)
		set_gate(idt, i, KS_GPA_PAYLOAD + KS_ISR_TABLE_OFF + 16ULL * i, 0);
	/* Ucalls: int3 from ring 3 (DPL 3) to the payload's ucall entry. */
	set_gate(idt, 3, KS_GPA_PAYLOAD + KS_UCALL_HANDLER_OFF, 3);
}

static struct kvm_segment segment(uint16_t sel, uint8_t type, uint8_t dpl, bool code)
{
	return (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = type,
		.present = 1,
		.dpl = dpl,
		.db = code ? 0 : 1,
		.s = 1,
		.l = code ? 1 : 0,
		.g = 1,
	};
}

static struct kvm_cpuid2 *supported_cpuid(int kvm_fd)
{
	static struct kvm_cpuid2 *c;
	unsigned int n = 256;

	while (!c) {
		c = xcalloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			break;
		if (errno != E2BIG)
			die_perror("KVM_GET_SUPPORTED_CPUID failed");
		free(c);
		c = NULL;
		n *= 2;
	}
	return c;
}

/* vCPUs are created one after the other by the main thread. */
static void set_cpuid(struct ks_vm *vm, struct ks_vcpu *vcpu)
{
	struct kvm_cpuid2 *c = supported_cpuid(vm->kvm_fd);
	unsigned int i;

	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		/* Give each vCPU its own APIC ID. */
		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffff) | (vcpu->id << 24);
		else if (e->function == 0xb || e->function == 0x1f)
			e->edx = vcpu->id;
	}
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, c) < 0)
		die_perror("vCPU %u: KVM_SET_CPUID2 failed", vcpu->id);
}

void x86__setup_vcpu(struct ks_vm *vm, struct ks_vcpu *vcpu)
{
	uint64_t area = KS_GPA_VCPU_AREA + (uint64_t)vcpu->id * KS_VCPU_STRIDE;
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	set_cpuid(vm, vcpu);
	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		die_perror("vCPU %u: KVM_GET_SREGS failed", vcpu->id);
	sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sregs.cr3 = KS_GPA_PGTABLE;
	sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	sregs.efer = EFER_LME | EFER_LMA;
	sregs.cs = segment(KS_SEL_CODE0, 11, 0, true);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment(KS_SEL_DATA0, 3, 0, false);
	sregs.tr = (struct kvm_segment){
		.base = KS_GPA_TSS + (uint64_t)vcpu->id * KS_TSS_STRIDE,
		.limit = 103,
		.selector = (uint16_t)(KS_SEL_TSS + 16 * vcpu->id),
		.type = 11, /* busy 64-bit TSS */
		.present = 1,
	};
	sregs.ldt = (struct kvm_segment){ .unusable = 1 };
	sregs.gdt.base = KS_GPA_GDT;
	sregs.gdt.limit = (uint16_t)(KS_SEL_TSS + 16 * vm->layout.nvcpus - 1);
	sregs.idt.base = KS_GPA_IDT;
	sregs.idt.limit = IDT_ENTRIES * 16 - 1;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		die_perror("vCPU %u: KVM_SET_SREGS (long mode) failed", vcpu->id);

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 2;
	regs.rip = KS_GPA_PAYLOAD;
	regs.rsp = area + KS_VCPU_STACK3_OFF; /* top of the ring-0 stack */
	regs.rdi = area + KS_VCPU_PARAMS_OFF;
	regs.rsi = area + KS_VCPU_STRIDE; /* top of the ring-3 stack */
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		die_perror("vCPU %u: KVM_SET_REGS failed", vcpu->id);
}
