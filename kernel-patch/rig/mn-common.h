/* SPDX-License-Identifier: MIT */
/*
 * What mn-bounds, mn-race and mn-cpte-invalid share: errors, the patched kernel's debugfs
 * counters, and a VM whose vCPU runs 32-bit flat code.  Each program
 * defines PROG before including this and is built as a single file.
 */
#ifndef KVMSTALL_MN_COMMON_H
#define KVMSTALL_MN_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define KVM_DEBUGFS "/sys/kernel/debug/kvm"

static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* One counter file, a decimal number; reopened per read, so never stale. */
static int counter_read(int dirfd, const char *name, uint64_t *val)
{
	char buf[32], *end;
	ssize_t n;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	errno = 0;
	*val = strtoull(buf, &end, 10);
	return errno || end == buf ? -1 : 0;
}

/*
 * Open /dev/kvm and create a VM.  @cpath gets its debugfs directory, which
 * 5.10 names after the creator's pid and the VM's fd; *cdir an fd of it if
 * the patched kernel's counters are there, else -1.  Returns the VM fd.
 */
static int mn_create_vm(int *kvm, char *cpath, size_t cpath_len, int *cdir)
{
	char probe[128];
	int vm;

	*cdir = -1;
	*kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (*kvm < 0)
		die("/dev/kvm: %s", strerror(errno));
	if (ioctl(*kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		die("/dev/kvm: unexpected KVM API version");
	vm = ioctl(*kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM: %s", strerror(errno));
	snprintf(cpath, cpath_len, KVM_DEBUGFS "/%d-%d", getpid(), vm);
	snprintf(probe, sizeof(probe), "%s/mn_invalidate_seen", cpath);
	if (access(probe, R_OK) == 0) {
		*cdir = open(cpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (*cdir < 0)
			die("%s: %s", cpath, strerror(errno));
	}
	/* Not needed on SVM; VMX without unrestricted guest wants it. */
	ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul);
	return vm;
}

/*
 * Create vCPU 0 in 32-bit protected mode with flat 4 GiB segments and no
 * paging (gva == gpa), and map its kvm_run.  Returns the vCPU fd.
 */
static inline int mn_create_vcpu32(int kvm, int vm, struct kvm_run **run, size_t *run_size)
{
	struct kvm_sregs sregs;
	struct kvm_segment seg;
	int vcpu, r;

	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU: %s", strerror(errno));
	r = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < (int)sizeof(struct kvm_run))
		die("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	*run_size = (size_t)r;
	*run = mmap(NULL, *run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (*run == MAP_FAILED)
		die("mmap kvm_run: %s", strerror(errno));

	if (ioctl(vcpu, KVM_GET_SREGS, &sregs))
		die("KVM_GET_SREGS: %s", strerror(errno));
	seg = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 3,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg;
	seg.selector = 0x08;
	seg.type = 11;
	sregs.cs = seg;
	sregs.cr0 = 0x11;	/* PE | ET; caches on */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs))
		die("KVM_SET_SREGS: %s", strerror(errno));
	return vcpu;
}

/* Start vCPU @vcpu at @rip with @rsi set (the guests' data pointer). */
static inline void mn_set_regs32(int vcpu, uint64_t rip, uint64_t rsi)
{
	struct kvm_regs regs;

	memset(&regs, 0, sizeof(regs));
	regs.rip = rip;
	regs.rsi = rsi;
	regs.rflags = 0x2;
	if (ioctl(vcpu, KVM_SET_REGS, &regs))
		die("KVM_SET_REGS: %s", strerror(errno));
}

/*
 * The guests' reader: reads the byte at gpa esi and reports it with an
 * OUT to port MN_READ8_PORT, in a loop.  Copies its code to @dst.
 */
#define MN_READ8_PORT 0x10
static inline size_t mn_read8_code(uint8_t *dst)
{
	static const uint8_t code[] = {
		0x8b, 0x06,		/* 0: mov eax, [esi] */
		0xe6, MN_READ8_PORT,	/* 2: out 0x10, al */
		0xeb, 0xfa,		/* 4: jmp 0 */
	};

	memcpy(dst, code, sizeof(code));
	return sizeof(code);
}

/*
 * Run vCPU @vcpu, whose mn_read8_code() is at @code_gpa, until it reads the
 * byte at gpa @addr; return the byte.
 */
static inline uint8_t mn_read8(int vcpu, struct kvm_run *run, uint64_t code_gpa, uint64_t addr)
{
	mn_set_regs32(vcpu, code_gpa, addr);
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			die("KVM_RUN: %s", strerror(errno));
		}
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == MN_READ8_PORT)
			return *((uint8_t *)run + run->io.data_offset);
		if (run->exit_reason != KVM_EXIT_INTR)
			die("unexpected exit reason %u reading gpa %#llx", run->exit_reason,
			    (unsigned long long)addr);
	}
}

/* Create, move, change the flags of or (size 0) delete a memslot of address space 0. */
static inline int mn_set_slot_flags(int vm, uint32_t slot, uint64_t gpa, uint64_t size,
				    const void *hva, uint32_t flags)
{
	struct kvm_userspace_memory_region m = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};

	return ioctl(vm, KVM_SET_USER_MEMORY_REGION, &m);
}

static inline int mn_set_slot(int vm, uint32_t slot, uint64_t gpa, uint64_t size, const void *hva)
{
	return mn_set_slot_flags(vm, slot, gpa, size, hva, 0);
}

#endif
