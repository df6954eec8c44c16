// SPDX-License-Identifier: MIT
/*
 * Keeps one VM with one vCPU (no in-kernel irqchip) open until killed.
 * Under multi-threaded TCG the nested guest kernel can lock up when KVM's
 * static keys flip as the first VM/vCPU is created and the last destroyed
 * (DESIGN.md, "The hang, diagnosed"); holding one open from early boot
 * makes them flip once, at a quiet moment, and never back.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm, vcpu;

	if (kvm < 0) {
		perror("kvm-holder: /dev/kvm");
		return 1;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		perror("kvm-holder: KVM_CREATE_VM");
		return 1;
	}
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		perror("kvm-holder: KVM_CREATE_VCPU");
		return 1;
	}
	printf("kvm-holder: holding a VM and a vCPU open\n");
	fflush(stdout);
	for (;;)
		pause();
}
