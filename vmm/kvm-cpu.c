// SPDX-License-Identifier: MIT
/*
 * vCPUs: creation, one named thread each, the run loop and the guest's
 * ucalls.  The loop only dispatches; the steady state makes no exits.
 */
#include "config.h"

#define _GNU_SOURCE 1
#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvmstall.h"
#include "numa-place.h"
#include "util.h"

#define SIG_VCPU_KICK SIGUSR1
/* An mprotect event's read-only window is microseconds to milliseconds long. */
#define KS_EFAULT_PATIENCE_NS (2 * NSEC_PER_SEC)
#define KS_EFAULT_EPISODE_NS (10 * 1000 * 1000ULL)
#define MSR_IA32_TSC 0x10

static const char *const exit_names[] = {
	[KVM_EXIT_UNKNOWN] = "UNKNOWN",
	[KVM_EXIT_EXCEPTION] = "EXCEPTION",
	[KVM_EXIT_IO] = "IO",
	[KVM_EXIT_HYPERCALL] = "HYPERCALL",
	[KVM_EXIT_DEBUG] = "DEBUG",
	[KVM_EXIT_HLT] = "HLT",
	[KVM_EXIT_MMIO] = "MMIO",
	[KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
	[KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
	[KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
	[KVM_EXIT_INTR] = "INTR",
	[KVM_EXIT_SET_TPR] = "SET_TPR",
	[KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
	[KVM_EXIT_NMI] = "NMI",
	[KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
	[KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
};

static const char *const vector_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
	"#NP", "#SS", "#GP", "#PF", "15",  "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

static const char *exit_name(uint32_t r)
{
	return r < ARRAY_SIZE(exit_names) && exit_names[r] ? exit_names[r] : "?";
}

static void kick_handler(int sig)
{
	(void)sig;
}

static void vcpu_fail(struct ks_vcpu *vcpu, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void vcpu_fail(struct ks_vcpu *vcpu, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vcpu->error, sizeof(vcpu->error), fmt, ap);
	va_end(ap);
	vcpu->state = KS_VCPU_FAILED;
}

static void finished(struct ks_vcpu *vcpu)
{
	struct ks_vm *vm = vcpu->vm;

	vcpu->done_ns = now_ns();
	pthread_mutex_lock(&vm->lock);
	vm->nfinished++;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

static void ready(struct ks_vcpu *vcpu)
{
	struct ks_vm *vm = vcpu->vm;

	vcpu->ready_ns = now_ns();
	vcpu->state = KS_VCPU_RUNNING;
	pthread_mutex_lock(&vm->lock);
	if (__atomic_add_fetch(&vm->nready, 1, __ATOMIC_RELEASE) == vm->layout.nvcpus)
		vm->all_ready_ns = vcpu->ready_ns;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

/*
 * Pair the vCPU's TSC with host time: its TSC at the common host time t0.
 * The host time is the middle of the tightest of a few readings around the
 * ioctl, so a thread preempted in between does not shift the pairing.
 */
static bool read_tsc(struct ks_vm *vm, struct ks_vcpu *vcpu)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = { .hdr.nmsrs = 1, .e.index = MSR_IA32_TSC };
	uint64_t best = UINT64_MAX, tsc = 0, t = 0, since_t0;
	unsigned int i;

	for (i = 0; i < 4 && best > 100 * 1000; i++) {
		uint64_t t1 = now_ns(), t2;

		if (ioctl(vcpu->fd, KVM_GET_MSRS, &m) != 1)
			return false;
		t2 = now_ns();
		if (t2 - t1 < best) {
			best = t2 - t1;
			tsc = m.e.data;
			t = t1 + best / 2;
		}
	}
	if (!vm->t0_ns)
		vm->t0_ns = t;
	/*
	 * A TSC that KVM held still while the thread was off its CPU (an
	 * unstable host TSC) can be behind t0's time: its TSC at t0 is then
	 * taken as 0, not wrapped around to near 2^64.
	 */
	since_t0 = ks_ns_to_ticks(t - vm->t0_ns, vm->tsc_khz);
	vcpu->tsc_at_start = tsc > since_t0 ? tsc - since_t0 : 0;
	vcpu->tsc_paired_ns = t;
	return true;
}

/* Returns true when the vCPU should keep running. */
static bool handle_ucall(struct ks_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_regs regs;
	uint32_t nr;

	if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 4 || run->io.count != 1 ||
	    run->io.data_offset > (uint64_t)vcpu->vm->vcpu_mmap_size - 4) {
		vcpu_fail(vcpu, "malformed ucall (direction %u, size %u, count %u)",
			  run->io.direction, run->io.size, run->io.count);
		return false;
	}
	memcpy(&nr, (uint8_t *)run + run->io.data_offset, 4);
	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0) {
		vcpu_fail(vcpu, "KVM_GET_REGS failed: %s", strerror(errno));
		return false;
	}
	switch (nr) {
	case KS_UCALL_READY:
		if (vcpu->state != KS_VCPU_CREATED) {
			vcpu_fail(vcpu, "guest reported ready twice");
			return false;
		}
		/*
		 * Pair again now that the vCPU has run: on a host whose TSC KVM
		 * calls unstable, loading a vCPU on a CPU moves its TSC offset.
		 */
		read_tsc(vcpu->vm, vcpu);
		ready(vcpu);
		return true;
	case KS_UCALL_DONE:
		if (!__atomic_load_n(&vcpu->vm->control->stop, __ATOMIC_SEQ_CST)) {
			vcpu_fail(vcpu, "guest stopped before it was asked to");
			return false;
		}
		vcpu->state = KS_VCPU_DONE;
		return false;
	case KS_UCALL_ERROR:
		vcpu_fail(vcpu, "guest reported error %llu (detail 0x%llx)", regs.rdi, regs.rsi);
		return false;
	case KS_UCALL_EXCEPTION:
		vcpu_fail(
			vcpu,
			"guest exception %s (vector %llu) at RIP 0x%llx, error code 0x%llx, CR2 0x%llx, "
			"ring %llu",
			regs.rdi < 32 && vector_names[regs.rdi] ? vector_names[regs.rdi] : "?",
			regs.rdi, regs.rcx, regs.rsi, regs.r8, regs.r9 & 3);
		return false;
	default:
		vcpu_fail(vcpu, "unknown ucall %u from the guest", nr);
		return false;
	}
}

/* An mprotect event is making, or has just made, memory read-only and back. */
static bool protect_in_flight(struct ks_vm *vm)
{
	uint64_t end = __atomic_load_n(&vm->protect_last_end_ns, __ATOMIC_SEQ_CST);

	return __atomic_load_n(&vm->protect_inflight, __ATOMIC_SEQ_CST) ||
	       (end && now_ns() - end < 100 * 1000 * 1000ULL);
}

static void run_loop(struct ks_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_regs regs;

	uint64_t efault_since = 0, efault_last = 0, t;

	for (;;) {
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			/*
			 * Guest wrote memory an mprotect event had made read-only: wait
			 * for it to be writable again, but not for ever.
			 */
			if (errno == EFAULT && protect_in_flight(vcpu->vm)) {
				t = now_ns();
				/* A new episode unless the last EFAULT was just now. */
				if (t - efault_last > KS_EFAULT_EPISODE_NS)
					efault_since = t;
				efault_last = t;
				if (t - efault_since < KS_EFAULT_PATIENCE_NS) {
					vcpu->efault_retries++;
					__atomic_fetch_add(&vcpu->vm->efault_total, 1,
							   __ATOMIC_RELEASE);
					sched_yield();
					continue;
				}
			}
			if (errno == EINTR || errno == EAGAIN) {
				/* Set by the main thread's kick (kvm_cpu__stop_all). */
				if (__atomic_load_n(&run->immediate_exit, __ATOMIC_ACQUIRE)) {
					if (vcpu->state == KS_VCPU_CREATED)
						vcpu_fail(vcpu,
							  "never reached its workload in ring 3; "
							  "stopped by force");
					else
						vcpu_fail(
							vcpu,
							"did not stop when asked; stopped by force");
					return;
				}
				continue;
			}
			if (errno == EFAULT && vcpu->vm->backing->hugetlb)
				vcpu_fail(vcpu,
					  "KVM_RUN failed: %s (the HugeTLB pool ran dry while "
					  "the guest refaulted memory)",
					  strerror(errno));
			else
				vcpu_fail(vcpu, "KVM_RUN failed: %s", strerror(errno));
			return;
		}
		vcpu->exits++;
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (run->io.port == KS_PORT_UCALL) {
				if (!handle_ucall(vcpu))
					return;
				break;
			}
			vcpu_fail(vcpu, "unexpected port I/O to 0x%x", run->io.port);
			return;
		case KVM_EXIT_MMIO:
			vcpu_fail(vcpu, "guest accessed unbacked guest-physical address 0x%llx",
				  run->mmio.phys_addr);
			return;
		case KVM_EXIT_HLT:
			vcpu_fail(vcpu, "guest halted (hlt) with nothing to wake it: the VM has no "
					"interrupt controller");
			return;
		case KVM_EXIT_SHUTDOWN:
			if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0)
				memset(&regs, 0, sizeof(regs));
			vcpu_fail(vcpu, "triple fault (KVM_EXIT_SHUTDOWN) at RIP 0x%llx", regs.rip);
			return;
		case KVM_EXIT_FAIL_ENTRY:
			vcpu_fail(vcpu, "VM entry failed (hardware reason 0x%llx)",
				  run->fail_entry.hardware_entry_failure_reason);
			return;
		case KVM_EXIT_INTERNAL_ERROR:
			vcpu_fail(vcpu, "KVM internal error, suberror %u", run->internal.suberror);
			return;
		case KVM_EXIT_INTR:
			break;
		default:
			vcpu_fail(vcpu, "unexpected exit %s (%u)", exit_name(run->exit_reason),
				  run->exit_reason);
			return;
		}
	}
}

static void *vcpu_thread(void *arg)
{
	struct ks_vcpu *vcpu = arg;
	char name[16];

	/* Thread names are limited to 15 characters: "ks-vcpu-1023" fits. */
	snprintf(name, sizeof(name), "ks-vcpu-%u", vcpu->id);
	pthread_setname_np(pthread_self(), name);
	numa__bind_thread(vcpu->vm, vcpu->node, vcpu->cpu);
	anatomy__attach(vcpu->vm, vcpu);
	run_loop(vcpu);
	finished(vcpu);
	return NULL;
}

void kvm_cpu__create_all(struct ks_vm *vm)
{
	unsigned int n = vm->layout.nvcpus, i;
	int khz;

	vm->vcpus = xcalloc(n, sizeof(*vm->vcpus));
	for (i = 0; i < n; i++) {
		struct ks_vcpu *vcpu = &vm->vcpus[i];

		vcpu->vm = vm;
		vcpu->id = i;
		vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
		vcpu->created_ns = now_ns();
		if (vcpu->fd < 0) {
			if (errno == EMFILE)
				die("KVM_CREATE_VCPU %u: out of file descriptors; raise the limit "
				    "(ulimit -n)",
				    i);
			die_perror("KVM_CREATE_VCPU %u failed", i);
		}
		vcpu->run = mmap(NULL, (size_t)vm->vcpu_mmap_size, PROT_READ | PROT_WRITE,
				 MAP_SHARED, vcpu->fd, 0);
		if (vcpu->run == MAP_FAILED)
			die_perror("vCPU %u: mmap of kvm_run failed", i);
		vcpu->region_gpa = ks_layout_region_gpa(&vm->layout, i);
		vcpu->region_size = vm->layout.region_size;
		vcpu->cpu = -1;
		vcpu->node = -1;
		ks_stats_init(&vcpu->stats);
		if (i == 0) {
			khz = ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);
			if (khz <= 0)
				die("KVM_GET_TSC_KHZ failed: the guest TSC frequency is unknown, so stalls "
				    "cannot be timed");
			vm->tsc_khz = (uint32_t)khz;
			vm->threshold_ticks = ks_ns_to_ticks(vm->cfg->threshold_ns, vm->tsc_khz);
		}
		x86__setup_vcpu(vm, vcpu);
	}
}

void kvm_cpu__start_all(struct ks_vm *vm)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	unsigned int i;
	int r;

	/* No SA_RESTART: a kick must make KVM_RUN return. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIG_VCPU_KICK, &sa, NULL);
	for (i = 0; i < vm->layout.nvcpus; i++) {
		numa__place_vcpu(vm, &vm->vcpus[i]);
		guest__init_vcpu(vm, &vm->vcpus[i]);
		if (!read_tsc(vm, &vm->vcpus[i]))
			die_perror("vCPU %u: KVM_GET_MSRS(IA32_TSC) failed", i);
	}
	vm->start_ns = now_ns();
	for (i = 0; i < vm->layout.nvcpus; i++) {
		struct ks_vcpu *vcpu = &vm->vcpus[i];

		r = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
		if (r) {
			errno = r;
			die_perror("cannot start the thread of vCPU %u", i);
		}
		vcpu->thread_started = true;
	}
}

/* Whether a vCPU may still stop by itself: it runs, or may yet reach ring 3. */
static bool must_wait(const struct ks_vm *vm)
{
	bool starting = now_ns() < vm->start_ns + vm->cfg->start_timeout_ns;
	unsigned int i;

	for (i = 0; i < vm->layout.nvcpus; i++) {
		const struct ks_vcpu *v = &vm->vcpus[i];
		int state = v->state;

		if (!v->thread_started)
			continue;
		if (state == KS_VCPU_RUNNING || (state == KS_VCPU_CREATED && starting))
			return true;
	}
	return false;
}

void kvm_cpu__stop_all(struct ks_vm *vm, uint64_t grace_ns)
{
	struct timespec ts;
	unsigned int i, n = vm->layout.nvcpus, started = 0;
	uint64_t deadline;

	for (i = 0; i < n; i++)
		started += vm->vcpus[i].thread_started;
	vm->stop_ns = now_ns();
	__atomic_store_n(&vm->control->stop, 1, __ATOMIC_SEQ_CST);

	deadline = realtime_ns() + grace_ns;
	ts.tv_sec = (time_t)(deadline / NSEC_PER_SEC);
	ts.tv_nsec = (long)(deadline % NSEC_PER_SEC);
	/*
	 * Wait for the guests that can see the stop flag, and for those that
	 * may still reach ring 3 before --start-timeout; one that did not get
	 * there in time never will, and is kicked out at once.
	 */
	pthread_mutex_lock(&vm->lock);
	while (vm->nfinished < started && must_wait(vm)) {
		uint64_t slice = realtime_ns() + NSEC_PER_SEC / 20;
		struct timespec t = ts;

		if (slice < deadline) {
			t.tv_sec = (time_t)(slice / NSEC_PER_SEC);
			t.tv_nsec = (long)(slice % NSEC_PER_SEC);
		}
		if (pthread_cond_timedwait(&vm->cond, &vm->lock, &t) == ETIMEDOUT &&
		    realtime_ns() >= deadline)
			break;
	}
	pthread_mutex_unlock(&vm->lock);

	/* A guest that ignores the stop flag is kicked out of KVM_RUN. */
	for (i = 0; i < n; i++) {
		struct ks_vcpu *vcpu = &vm->vcpus[i];

		if (!vcpu->thread_started)
			continue;
		if (vcpu->state != KS_VCPU_DONE && vcpu->state != KS_VCPU_FAILED) {
			__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
			pthread_kill(vcpu->thread, SIG_VCPU_KICK);
		}
	}
	for (i = 0; i < n; i++) {
		if (vm->vcpus[i].thread_started) {
			pthread_join(vm->vcpus[i].thread, NULL);
			vm->vcpus[i].thread_started = false;
		}
	}
}

void kvm_cpu__destroy_all(struct ks_vm *vm)
{
	unsigned int i;

	if (!vm->vcpus)
		return;
	for (i = 0; i < vm->layout.nvcpus; i++) {
		struct ks_vcpu *vcpu = &vm->vcpus[i];

		if (vcpu->run && vcpu->run != MAP_FAILED)
			munmap(vcpu->run, (size_t)vm->vcpu_mmap_size);
		if (vcpu->fd > 0)
			close(vcpu->fd);
		ks_stats_free(&vcpu->stats);
	}
	free(vm->vcpus);
	vm->vcpus = NULL;
}
