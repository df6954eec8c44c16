// SPDX-License-Identifier: MIT
/*
 * kvmstall: launch a test VM, run a stall-measuring payload on every vCPU,
 * report per-vCPU stall distributions.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attrib.h"
#include "kvmstall.h"
#include "kvmstats.h"
#include "numa-place.h"
#include "options.h"
#include "report.h"
#include "util.h"

/* A stopped guest notices within one heartbeat, but 1000 threads on 2 CPUs take a while. */
#define KS_STOP_GRACE_NS (20 * NSEC_PER_SEC)
#define KS_RECYCLE_PERIOD_NS (5 * 1000 * 1000ULL)

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* Run with SIGINT/SIGTERM blocked so only the main thread ever takes them. */
static void block_signals(bool block)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

static void limits_now(const struct ks_vm *vm, const struct ks_vcpu *v, uint64_t now,
		       struct ks_stats_limits *lim)
{
	/* Slack for the pairing of host and guest clocks. */
	/* The VMM's own copy: the guest can rewrite its parameter block. */
	lim->threshold_ticks = vm->threshold_ticks;
	uint64_t slack = ks_ns_to_ticks(vm->tsc_slack_ns, vm->tsc_khz), hi_slack = slack;

	/*
	 * Where KVM calls the host's TSC unstable, a vCPU's TSC stands still
	 * while its thread is off its CPU and catches up later: at the pairing
	 * it may have lagged by up to the time since KVM_CREATE_VCPU set it,
	 * and the catch-up can put its later readings that far ahead.
	 */
	if (vm->tsc_unstable && v->tsc_paired_ns > v->created_ns)
		hi_slack += ks_ns_to_ticks(v->tsc_paired_ns - v->created_ns, vm->tsc_khz);
	lim->tsc_lo = v->tsc_at_start > slack ? v->tsc_at_start - slack : 0;
	lim->tsc_hi = v->tsc_at_start + ks_ns_to_ticks(now - vm->t0_ns, vm->tsc_khz) + hi_slack;
	lim->max_position = v->stats.iterations + (1ULL << 32);
}

/*
 * How far guest TSC values may stray from their pairing with host time: a
 * second where the host runs on the TSC, a minute where it does not (a
 * nested kernel under emulation, where KVM calls the TSC unstable and
 * moves vCPU TSC offsets as their threads move between CPUs).
 */
static uint64_t tsc_slack_ns(void)
{
	char *cs = read_file("/sys/devices/system/clocksource/clocksource0/current_clocksource");
	bool tsc = cs && !strncmp(cs, "tsc", 3);

	free(cs);
	return (tsc ? 1 : 60) * NSEC_PER_SEC;
}

static void sample_all(struct ks_vm *vm, bool final)
{
	struct ks_stats_limits lim;
	unsigned int i;

	for (i = 0; i < vm->layout.nvcpus; i++) {
		struct ks_vcpu *v = &vm->vcpus[i];
		bool was_valid = v->stats.valid;

		/*
		 * A guest that never reached ring 3 has written nothing to read.
		 * ready_ns is written before the state leaves CREATED.
		 */
		if (v->state == KS_VCPU_CREATED || !v->ready_ns)
			continue;
		/*
		 * The time now, not when the sweep began: reading hundreds of
		 * vCPUs on a loaded host can take longer than the TSC slack.
		 */
		limits_now(vm, v, now_ns(), &lim);
		if (final)
			ks_stats_final(&v->stats, v->shared, &lim);
		else
			ks_stats_sample(&v->stats, v->shared, &lim);
		/* The parameter block is read-only for the guest by contract. */
		if (final && v->stats.valid &&
		    memcmp(v->params, &v->params_set, sizeof(v->params_set))) {
			v->stats.valid = false;
			snprintf(v->stats.invalid_reason, sizeof(v->stats.invalid_reason),
				 "it wrote over its parameter block, which is the VMM's");
		}
		if (was_valid && !v->stats.valid) {
			if (vm->cfg->progress)
				progress__clear();
			pr_warning("vCPU %u wrote inconsistent data into its shared page (%s); its "
				   "stall data is discarded",
				   i, v->stats.invalid_reason);
		}
	}
}

static bool any_failed(const struct ks_vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->layout.nvcpus; i++)
		if (vm->vcpus[i].state == KS_VCPU_FAILED)
			return true;
	return false;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / NSEC_PER_SEC),
			       .tv_nsec = (long)(ns % NSEC_PER_SEC) };

	/* A signal cuts the sleep short, which is what Ctrl-C wants. */
	nanosleep(&ts, NULL);
}

static void wait_ready(struct ks_vm *vm)
{
	uint64_t deadline = vm->start_ns + vm->cfg->start_timeout_ns;

	while (!stop_signal && !any_failed(vm) && now_ns() < deadline) {
		if (__atomic_load_n(&vm->nready, __ATOMIC_ACQUIRE) == vm->layout.nvcpus)
			return;
		sleep_ns(NSEC_PER_SEC / 1000);
	}
	if (!stop_signal && !any_failed(vm))
		pr_warning("only %u of %u vCPUs reached the workload within %.1f s "
			   "(--start-timeout); the run goes on without the others",
			   __atomic_load_n(&vm->nready, __ATOMIC_ACQUIRE), vm->layout.nvcpus,
			   (double)vm->cfg->start_timeout_ns / 1e9);
}

/*
 * --ready-fd: one line once every vCPU runs its workload and the event
 * streams have started, then the descriptor is closed.  A run that never
 * gets there closes it without a word, so a reader sees end-of-file.
 */
static void tell_ready(struct ks_vm *vm)
{
	int fd = vm->cfg->ready_fd;
	ssize_t n;

	if (fd < 0)
		return;
	if (__atomic_load_n(&vm->nready, __ATOMIC_ACQUIRE) == vm->layout.nvcpus && !stop_signal &&
	    !any_failed(vm)) {
		do
			n = write(fd, "ready\n", 6);
		while (n < 0 && errno == EINTR);
		if (n != 6)
			pr_warning("--ready-fd %d: cannot write to it (%s)", fd,
				   n < 0 ? strerror(errno) : "short write");
	}
	close(fd);
}

static void run(struct ks_vm *vm, struct ks_run *r)
{
	const struct ks_config *cfg = vm->cfg;
	bool fault = cfg->workload == KS_WL_FAULT;
	uint64_t tick = fault ? KS_RECYCLE_PERIOD_NS : NSEC_PER_SEC / 50;

	if (tick > cfg->interval_ns)
		tick = cfg->interval_ns;
	uint64_t next_sample, now, deadline;

	wait_ready(vm);
	/* One look at every guest that got there, before anything else runs. */
	sample_all(vm, false);
	r->run_start_ns = now_ns();
	block_signals(true);
	antagonists__start(vm);
	events__start(vm, r->run_start_ns, r->run_start_ns + cfg->duration_ns);
	block_signals(false);
	tell_ready(vm);
	test_signal_point("run");
	deadline = r->run_start_ns + cfg->duration_ns;
	next_sample = r->run_start_ns + cfg->interval_ns;
	while (!stop_signal && !any_failed(vm)) {
		now = now_ns();
		if (now >= deadline)
			break;
		if (fault)
			mem__recycle_fault_regions(vm);
		sample_all(vm, false);
		if (now >= next_sample) {
			csv__sample(r, now);
			if (cfg->progress)
				progress__update(r, now);
			/* Late wake-ups skip samples rather than pile them up. */
			next_sample += cfg->interval_ns;
			if (next_sample <= now)
				next_sample = now + cfg->interval_ns;
		}
		sleep_ns(deadline - now < tick ? deadline - now : tick);
	}
	r->run_end_ns = now_ns();
	anatomy__run_ended(vm);
	events__stop(vm, stop_signal || any_failed(vm), &stop_signal);
	antagonists__stop(vm);
	if (cfg->progress)
		progress__clear();
}

int main(int argc, char **argv)
{
	struct ks_config cfg;
	struct ks_vm vm = { .kvm_fd = -1, .vm_fd = -1 };
	struct ks_run r = { .vm = &vm };
	char err[256];
	unsigned int i;
	int status = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	options__parse(&cfg, argc, argv);
	vm.cfg = &cfg;
	vm.backing = ks_backing_info(cfg.backing);
	pthread_mutex_init(&vm.lock, NULL);
	pthread_cond_init(&vm.cond, NULL);
	r.started_realtime_ns = realtime_ns();

	if (ks_layout_compute(&vm.layout, cfg.vcpus, cfg.memory, cfg.slots, vm.backing->page_size,
			      cfg.decoy_size, err, sizeof(err)) < 0)
		die_usage("%s", err);
	nofile_raise();
	kvm__probe(&vm.caps, &vm.kvm_fd);
	vm.tsc_slack_ns = tsc_slack_ns();
	vm.tsc_unstable = vm.tsc_slack_ns > NSEC_PER_SEC;
	kvm__check_config(&vm.caps, &cfg);
	numa__setup(&vm);
	if (cfg.nevents) {
		vm.nstreams = cfg.nevents;
		vm.streams = xcalloc(cfg.nevents, sizeof(*vm.streams));
		for (i = 0; i < cfg.nevents; i++)
			vm.streams[i].spec = cfg.events[i];
		events__prepare(&vm);
	}
	antagonists__prepare(&vm);
	anatomy__setup(&vm);
	install_signals();
	test_signal_point("setup");

	kvm__create_vm(&vm);
	mem__setup(&vm);
	x86__setup_system(&vm);
	guest__load(&vm);
	kvm_cpu__create_all(&vm);
	if (cfg.prefault && !stop_signal) {
		test_signal_point("prefault");
		mem__prefault(&vm);
	}
	kvmstats__start(&vm, &r.kstats);
	if (cfg.csv_path && csv__open(&r, cfg.csv_path) < 0)
		status = KS_EXIT_FAIL;

	block_signals(true);
	kvm_cpu__start_all(&vm);
	anatomy__start(&vm);
	block_signals(false);
	if (!stop_signal)
		run(&vm, &r);
	else
		r.run_start_ns = r.run_end_ns = now_ns();
	r.signal = stop_signal;

	kvm_cpu__stop_all(&vm, KS_STOP_GRACE_NS);
	anatomy__stop(&vm);
	sample_all(&vm, true);
	kvmstats__end(&vm, &r.kstats);
	report__finish(&r);
	attrib__compute(&vm, r.run_start_ns, r.run_end_ns, &r.attrib);
	csv__sample(&r, now_ns());
	csv__close(&r);
	if (r.csv_failed)
		status = KS_EXIT_FAIL;

	for (i = 0; i < vm.layout.nvcpus; i++) {
		if (vm.vcpus[i].state == KS_VCPU_FAILED) {
			pr_err("vCPU %u: %s", i, vm.vcpus[i].error);
			r.failed = true;
		}
	}
	if (r.ninvalid)
		r.failed = true;
	report__check_data(&r);
	for (i = 0; i < vm.nstreams; i++) {
		const struct ks_stream *st = &vm.streams[i];

		if (st->unmet)
			pr_warning("--events '%s': the guest did not meet %" PRIu64
				   " of %zu events within %llu s (hold=met)",
				   st->spec.text, st->unmet, st->nrecs,
				   (unsigned long long)(KS_HOLD_MAX_NS / NSEC_PER_SEC));
		if (st->verify_failed) {
			pr_err("--events '%s': %" PRIu64
			       " of %zu events did not take effect; first: %s",
			       st->spec.text, st->verify_failed, st->nrecs, st->verify_note);
			r.failed = true;
		}
	}
	test_signal_point("report");
	if (!cfg.quiet)
		report__table(&r, stdout);
	if (cfg.json_path && report__json(&r, cfg.json_path) < 0)
		status = KS_EXIT_FAIL;
	if (r.failed)
		status = KS_EXIT_FAIL;

	test_signal_point("teardown");
	kvmstats__free(&r.kstats);
	attrib__free(&r.attrib);
	events__free(&vm);
	antagonists__free(&vm);
	anatomy__free(&vm);
	kvm_cpu__destroy_all(&vm);
	mem__teardown(&vm);
	kvm__destroy_vm(&vm);
	free(vm.nodes);
	options__free(&cfg);
	return status;
}
