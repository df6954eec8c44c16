// SPDX-License-Identifier: MIT
/* /dev/kvm, capabilities, the VM file descriptor and memslots. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kvmstall.h"
#include "util.h"

#ifndef KVM_CAP_BINARY_STATS_FD
#define KVM_CAP_BINARY_STATS_FD 203
#endif

static int check_ext(int fd, long cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

void kvm__probe(struct ks_caps *caps, int *kvm_fd)
{
	struct utsname u;
	long ncpu;
	int fd;

	memset(caps, 0, sizeof(*caps));
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			die("/dev/kvm does not exist: this host has no KVM (load kvm_intel or kvm_amd, "
			    "or run in a VM with nested virtualization)");
		if (errno == EACCES || errno == EPERM)
			die("/dev/kvm is not accessible to this user: run as root or join the group "
			    "that owns /dev/kvm (usually 'kvm')");
		die_perror("cannot open /dev/kvm");
	}
	caps->api_version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (caps->api_version != KVM_API_VERSION)
		die("/dev/kvm speaks KVM API version %d, kvmstall needs %d", caps->api_version,
		    KVM_API_VERSION);
	caps->user_memory = check_ext(fd, KVM_CAP_USER_MEMORY);
	if (!caps->user_memory)
		die("KVM lacks KVM_CAP_USER_MEMORY");
	caps->nr_vcpus = check_ext(fd, KVM_CAP_NR_VCPUS);
	caps->max_vcpus = check_ext(fd, KVM_CAP_MAX_VCPUS);
	if (!caps->max_vcpus)
		caps->max_vcpus = caps->nr_vcpus ? caps->nr_vcpus : 4;
	caps->nr_memslots = check_ext(fd, KVM_CAP_NR_MEMSLOTS);
	if (!caps->nr_memslots)
		caps->nr_memslots = 32;
	caps->tsc_khz = check_ext(fd, KVM_CAP_GET_TSC_KHZ);
	caps->stats_fd = check_ext(fd, KVM_CAP_BINARY_STATS_FD);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	caps->online_cpus = ncpu > 0 ? (unsigned int)ncpu : 1;
	if (uname(&u) == 0)
		snprintf(caps->kernel, sizeof(caps->kernel), "%s", u.release);
	*kvm_fd = fd;
}

void kvm__check_config(const struct ks_caps *caps, const struct ks_config *cfg)
{
	if (cfg->vcpus > (unsigned int)caps->max_vcpus)
		die_usage(
			"--vcpus %u is more than this host's KVM allows (KVM_CAP_MAX_VCPUS = %d); "
			"use 1 to %d",
			cfg->vcpus, caps->max_vcpus, caps->max_vcpus);
	/* One slot for the system region. */
	if (cfg->slots + 1 > (unsigned int)caps->nr_memslots)
		die_usage(
			"--slots %u is more than this host's KVM allows (KVM_CAP_NR_MEMSLOTS = %d, "
			"one is kvmstall's own); use 1 to %d",
			cfg->slots, caps->nr_memslots, caps->nr_memslots - 1);
	if (!caps->tsc_khz)
		die("KVM cannot report the guest TSC frequency (no KVM_CAP_GET_TSC_KHZ): stalls "
		    "cannot be timed on this host");
}

void kvm__create_vm(struct ks_vm *vm)
{
	/* Registering the MMU notifier takes every mm lock and gives up with EINTR on a signal. */
	do
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0)
		die_perror("KVM_CREATE_VM failed");
	vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->vcpu_mmap_size < (int)sizeof(struct kvm_run))
		die_perror("KVM_GET_VCPU_MMAP_SIZE failed");
}

void kvm__set_memslot(struct ks_vm *vm, unsigned int slot, uint64_t gpa, uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		die_perror("KVM_SET_USER_MEMORY_REGION slot %u gpa 0x%" PRIx64 " size 0x%" PRIx64
			   " hva %p failed",
			   slot, gpa, size, hva);
}

void kvm__destroy_vm(struct ks_vm *vm)
{
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
}
