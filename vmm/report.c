// SPDX-License-Identifier: MIT
/*
 * Reports.  The JSON document is built with jansson; its schema is
 * documented in kvmstall(1) and versioned by KS_REPORT_SCHEMA_VERSION.
 */
#include "config.h"

#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "options.h"
#include "util.h"

static const char *state_name(int s)
{
	switch (s) {
	case KS_VCPU_CREATED:
		return "not-started";
	case KS_VCPU_RUNNING:
		return "running";
	case KS_VCPU_DONE:
		return "done";
	default:
		return "failed";
	}
}

static double ns_of(const struct ks_run *r, double ticks)
{
	return ks_ticks_to_ns(ticks, r->vm->tsc_khz);
}

/*
 * The time a vCPU's counters cover: from its first TSC read in ring 3 to
 * its last heartbeat (or its stop), on the guest's own clock.
 */
static double vcpu_seconds(const struct ks_run *r, const struct ks_vcpu *v)
{
	const struct ks_vcpu_stats *s = &v->stats;

	if (!s->valid || !r->vm->tsc_khz || s->last_tsc <= s->first_tsc)
		return 0;
	return (double)(s->last_tsc - s->first_tsc) / ((double)r->vm->tsc_khz * 1000);
}

/* Summed and longest measured time of the valid vCPUs. */
static void measured_seconds(const struct ks_run *r, double *sum, double *longest)
{
	unsigned int i;

	*sum = *longest = 0;
	for (i = 0; i < r->vm->layout.nvcpus; i++) {
		double t = vcpu_seconds(r, &r->vm->vcpus[i]);

		*sum += t;
		if (t > *longest)
			*longest = t;
	}
}

static double run_seconds(const struct ks_run *r)
{
	if (r->run_end_ns <= r->run_start_ns)
		return 0;
	return (double)(r->run_end_ns - r->run_start_ns) / 1e9;
}

void report__finish(struct ks_run *r)
{
	struct ks_vm *vm = r->vm;
	unsigned int i;

	memset(r->total_hist, 0, sizeof(r->total_hist));
	r->total_max = r->total_sum = 0;
	r->ninvalid = 0;
	for (i = 0; i < vm->layout.nvcpus; i++) {
		const struct ks_vcpu_stats *s = &vm->vcpus[i].stats;

		if (!s->valid) {
			r->ninvalid++;
			continue;
		}
		ks_hist_add(r->total_hist, s->hist);
		r->total_sum += s->stall_ticks;
		if (s->max_ticks > r->total_max)
			r->total_max = s->max_ticks;
	}
}

void report__check_data(struct ks_run *r)
{
	const struct ks_vm *vm = r->vm;
	unsigned int i;

	r->zeroed = r->corrupt = 0;
	for (i = 0; i < vm->layout.nvcpus; i++) {
		const struct ks_vcpu_stats *s = &vm->vcpus[i].stats;

		if (!s->valid)
			continue;
		r->zeroed += s->zeroed;
		r->corrupt += s->corrupt;
	}
	/* Only events that really discarded part of a memslot explain zeroed words. */
	r->discarding_events = false;
	for (i = 0; i < vm->nstreams && !r->discarding_events; i++) {
		const struct ks_stream *st = &vm->streams[i];
		size_t k;

		if (ks_ev_preserves_data(st->spec.kind))
			continue;
		for (k = 0; k < st->nrecs; k++) {
			if (st->recs[k].slot >= 0 && !st->recs[k].result) {
				r->discarding_events = true;
				break;
			}
		}
	}
	if (r->corrupt) {
		pr_err("the guest read back %" PRIu64
		       " words that held neither what it wrote nor zero: "
		       "guest memory was corrupted",
		       r->corrupt);
		r->failed = true;
	}
	if (r->zeroed && !r->discarding_events) {
		pr_err("the guest found %" PRIu64
		       " words zeroed, but no event discarded guest memory",
		       r->zeroed);
		r->failed = true;
	}
}

/* ---- table ---- */

static const char *fmt_ns(double ns, char *buf, size_t len)
{
	if (ns < 1e3)
		snprintf(buf, len, "%.0fns", ns);
	else if (ns < 1e6)
		snprintf(buf, len, "%.1fus", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.2fms", ns / 1e6);
	else
		snprintf(buf, len, "%.2fs", ns / 1e9);
	return buf;
}

/*
 * @secs: the time the row's stalls were counted over (per-s); @vcpu_secs:
 * the vCPU time they were counted over, summed (stall%).
 */
static void table_row(const struct ks_run *r, FILE *f, const char *label, const uint64_t *hist,
		      uint64_t max, uint64_t sum, uint64_t iters, double secs, double vcpu_secs,
		      const char *note)
{
	struct ks_summary s;
	char b[6][24];

	ks_hist_summarize(hist, max, sum, &s);
	fprintf(f, "%-6s %10" PRIu64 " %9.1f %9s %9s %9s %9s %9s %6.2f%% %12.3g%s%s\n", label,
		s.count, secs > 0 ? (double)s.count / secs : 0, fmt_ns(ns_of(r, s.p50), b[0], 24),
		fmt_ns(ns_of(r, s.p90), b[1], 24), fmt_ns(ns_of(r, s.p99), b[2], 24),
		fmt_ns(ns_of(r, s.p999), b[3], 24), fmt_ns(ns_of(r, (double)s.max), b[4], 24),
		vcpu_secs > 0 ? ns_of(r, (double)sum) / (vcpu_secs * 1e7) : 0, (double)iters,
		note ? "  " : "", note ? note : "");
}

static const char *stream_via(const struct ks_stream *st)
{
	return st->skipped ? "skipped" : st->uring ? "io_uring" : "syscall";
}

/* Per stream: what was fired, how punctually, and the stalls it overlapped. */
static void events_table(const struct ks_run *r, FILE *f)
{
	const struct ks_vm *vm = r->vm;
	const struct ks_attrib *a = &r->attrib;
	char b[4][24];
	unsigned int k;

	fprintf(f,
		"\nhost memory events (stalls matched to the events in flight when they happened):\n");
	fprintf(f, "%-40s %-8s %8s %9s %9s %9s %9s %8s %10s %9s\n", "stream", "via", "events",
		"rate/s", "late-p99", "lat-p50", "lat-p99", "stalls", "stall-ms", "per-vCPU-s");
	for (k = 0; k < vm->nstreams && k < a->n; k++) {
		const struct ks_stream *st = &vm->streams[k];
		const struct ks_attrib_stream *o = &a->s[k];

		if (st->skipped) {
			fprintf(f, "%-40.40s %-8s  (%s)\n", st->spec.text, "skipped", st->reason);
			continue;
		}
		fprintf(f,
			"%-40.40s %-8s %8" PRIu64 " %9.1f %9s %9s %9s %8" PRIu64
			" %10.2f %9.2f%s%s\n",
			st->spec.text, stream_via(st), o->events, o->achieved_rate,
			fmt_ns(o->lateness_ns.p99, b[0], 24), fmt_ns(o->latency_ns.p50, b[1], 24),
			fmt_ns(o->latency_ns.p99, b[2], 24), o->stalls, o->stall_ns / 1e6,
			o->stalls_per_vcpu_s, o->errors ? "  errors: " : "",
			o->errors ? strerror(-o->first_error) : "");
		if (vm->cfg->verify_events)
			fprintf(f,
				"%-40s verified %" PRIu64 " of %" PRIu64 ", %" PRIu64
				" failed, %" PRIu64 " could not be checked\n",
				"", st->verified, o->events, st->verify_failed, st->verify_unknown);
	}
	if (r->zeroed && r->discarding_events)
		fprintf(f,
			"guest read back %" PRIu64
			" zeroed words after events that discard memory\n",
			r->zeroed);
	fprintf(f, "%-40s %-8s %8s %9s %9s %9s %9s %8" PRIu64 " %10.2f %9.2f\n",
		"baseline (no event in flight)", "", "", "", "", "", "", a->base_stalls,
		a->base_stall_ns / 1e6, a->base_per_vcpu_s);
	(void)b[3];
}

/* A KVM statistic of the run by name: its difference, or its end value for gauges. */
static bool kvmstat_value(const struct ks_kvmstats *st, const char *name, uint64_t *out)
{
	unsigned int i;

	for (i = 0; i < st->n; i++) {
		const struct ks_kvmstat *s = &st->v[i];

		if (strcmp(s->name, name))
			continue;
		*out = !s->cumulative ? s->end : s->end >= s->start ? s->end - s->start : 0;
		return true;
	}
	return false;
}

/*
 * The MMU-notifier counters of a kernel with the kvmstall patch series: per
 * kind of notification, how many arrived during the run, how many took
 * mmu_lock (their range overlapped a memslot) and how many did not.
 */
static void notifier_table(const struct ks_run *r, FILE *f)
{
	static const char *const kinds[] = { "invalidate", "clear_flush_young", "clear_young",
					     "test_young", "change_pte" };
	uint64_t seen, locked, elided, active = 0, count = 0;
	char name[64];
	bool header = false;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(kinds); i++) {
		snprintf(name, sizeof(name), "mn_%s_seen", kinds[i]);
		if (!kvmstat_value(&r->kstats, name, &seen))
			continue;
		snprintf(name, sizeof(name), "mn_%s_locked", kinds[i]);
		if (!kvmstat_value(&r->kstats, name, &locked))
			continue;
		snprintf(name, sizeof(name), "mn_%s_elided", kinds[i]);
		if (!kvmstat_value(&r->kstats, name, &elided))
			continue;
		if (!header)
			fprintf(f, "%-18s %12s %14s %12s\n", "mmu notifier", "received",
				"took mmu_lock", "elided");
		header = true;
		if (seen || !i)
			fprintf(f, "%-18s %12" PRIu64 " %14" PRIu64 " %12" PRIu64 "\n", kinds[i],
				seen, locked, elided);
	}
	if (!header)
		return;
	kvmstat_value(&r->kstats, "mn_invalidate_active", &active);
	kvmstat_value(&r->kstats, "mmu_notifier_count", &count);
	fprintf(f,
		"invalidations in progress at the end: %" PRIu64 " (holding off faults: %" PRIu64
		")%s\n",
		active, count, active || count ? " UNBALANCED" : "");
}

/* ---- stall anatomy ---- */

static bool an_in_kvm(const struct ks_anatomy *an)
{
	return an->exits || an->mmu_faults;
}

static bool an_faults(const struct ks_anatomy *an)
{
	return an->page_faults || an->mmu_faults;
}

/* What the in-KVM intervals were delimited by. */
static const char *an_in_kvm_from(const struct ks_vm *vm)
{
	const struct ks_anatomy *an = &vm->anatomy;
	bool exits = false, walks = false;
	unsigned int i;

	for (i = 0; i < vm->layout.nvcpus; i++) {
		exits |= vm->vcpus[i].an.exits_seen;
		walks |= vm->vcpus[i].an.nwalks > 0;
	}
	if (exits)
		return "kvm_exit to kvm_entry";
	if (walks)
		return "kvm_mmu_pagetable_walk to kvm_mmu_set_spte (this KVM fires no kvm_exit)";
	return an_in_kvm(an) ? "kvm_exit to kvm_entry (none fired)" : NULL;
}

/* What the page faults were counted from: what fired, else what could have. */
static const char *an_faults_from(const struct ks_vm *vm)
{
	const struct ks_anatomy *an = &vm->anatomy;
	bool hw = false, walks = false;
	unsigned int i;

	for (i = 0; i < vm->layout.nvcpus; i++) {
		hw |= vm->vcpus[i].an.nfaults > 0;
		walks |= vm->vcpus[i].an.nwalks > 0;
	}
	if (hw)
		return "kvm_page_fault";
	if (walks)
		return "kvm_mmu_pagetable_walk";
	return an->page_faults ? "kvm_page_fault" :
	       an->mmu_faults  ? "kvm_mmu_pagetable_walk" :
				 NULL;
}

static double pct(double part, double whole)
{
	return whole > 0 ? 100 * part / whole : 0;
}

static void causes_row(const struct ks_anatomy *an, FILE *f, const char *label,
		       const struct ks_causes *c)
{
	char p[4][16], top[160] = "";
	bool used[KS_AN_MAX_REASONS] = { false };
	size_t l = 0;
	unsigned int k, i;

	snprintf(p[0], 16, "%.1f%%", pct(c->preempted_ns, c->stall_ns));
	snprintf(p[1], 16, "%.1f%%", pct(c->blocked_ns, c->stall_ns));
	snprintf(p[2], 16, "%.1f%%", pct(c->in_kvm_ns, c->stall_ns));
	snprintf(p[3], 16, "%.1f%%", pct(c->unexplained_ns, c->stall_ns));
	/* The three reasons that took the most time. */
	for (k = 0; k < 3 && an_in_kvm(an); k++) {
		int best = -1;

		for (i = 0; i < an->nreasons; i++)
			if (!used[i] && c->reason_ns[i] > 0 &&
			    (best < 0 || c->reason_ns[i] > c->reason_ns[best]))
				best = (int)i;
		if (best < 0)
			break;
		used[best] = true;
		l += (size_t)snprintf(top + l, sizeof(top) - l, "%s%s %.1f%%", k ? ", " : "",
				      an->reason_names[best], pct(c->reason_ns[best], c->stall_ns));
		if (l >= sizeof(top))
			break;
	}
	fprintf(f, "%-30.30s %10.2f %9s %8s %8s %11s", label, c->stall_ns / 1e6,
		an->switches ? p[0] : "-", an->switches ? p[1] : "-", an_in_kvm(an) ? p[2] : "-",
		p[3]);
	if (an_faults(an))
		fprintf(f, " %8" PRIu64 " %8" PRIu64, c->page_faults, c->repeated_faults);
	else
		fprintf(f, " %8s %8s", "-", "-");
	fprintf(f, "  %s\n", top);
}

static void anatomy_table(const struct ks_run *r, FILE *f, bool per_vcpu)
{
	const struct ks_vm *vm = r->vm;
	const struct ks_anatomy *an = &vm->anatomy;
	const struct ks_attrib *a = &r->attrib;
	const char *from = an_in_kvm_from(vm);
	char label[48];
	unsigned int i;

	if (!a->has_causes)
		return;
	fprintf(f, "\nwhere the stall time went, seen from the host (context switches%s%s):\n",
		from ? "; in KVM: " : "", from ? from : "");
	fprintf(f, "%-30s %10s %9s %8s %8s %11s %8s %8s  %s\n", "stalls of", "stall-ms",
		"preempted", "blocked", "in-KVM", "unexplained", "faults", "repeated",
		"in KVM, by exit reason");
	for (i = 0; per_vcpu && i < vm->layout.nvcpus; i++) {
		if (!vm->vcpus[i].stats.valid)
			continue;
		snprintf(label, sizeof(label), "vCPU %u", i);
		causes_row(an, f, label, &a->vcpu_causes[i]);
	}
	causes_row(an, f, "total", &a->total_causes);
	for (i = 0; i < vm->nstreams && i < a->n; i++)
		if (!vm->streams[i].skipped)
			causes_row(an, f, vm->streams[i].spec.text, &a->s[i].causes);
	if (vm->nstreams)
		causes_row(an, f, "baseline (no event in flight)", &a->base_causes);
	if (an->notifications)
		fprintf(f,
			"MMU notifications into KVM during the stalls (%s, any VM): %" PRIu64 "\n",
			an->notif_names, a->total_causes.notifications);
	if (an->lost_total)
		fprintf(f, "perf records lost: %" PRIu64 " (the split around them is incomplete)\n",
			an->lost_total);
	if (an->missing[0])
		fprintf(f, "not seen: %s\n", an->missing);
}

void report__table(const struct ks_run *r, FILE *f)
{
	const struct ks_vm *vm = r->vm;
	const struct ks_config *cfg = vm->cfg;
	uint64_t iters = 0;
	unsigned int i, n = vm->layout.nvcpus;
	char a[32], b[24];
	bool per_vcpu = n <= 16 || ks_verbose;
	double vsum, vmax;

	fprintf(f, "kvmstall: %u vCPUs, %s %s in %u slot%s, workload %s, threshold %s, %.2f s%s\n",
		n, fmt_size(cfg->memory, a, sizeof(a)), vm->backing->name, cfg->slots,
		cfg->slots == 1 ? "" : "s", workload_name(cfg->workload),
		fmt_ns((double)cfg->threshold_ns, b, sizeof(b)), run_seconds(r),
		r->signal ? " (interrupted)" : "");
	fprintf(f, "%-6s %10s %9s %9s %9s %9s %9s %9s %7s %12s\n", "vcpu", "stalls", "per-s", "p50",
		"p90", "p99", "p99.9", "max", "stall%", "iterations");
	for (i = 0; i < n; i++) {
		const struct ks_vcpu *v = &vm->vcpus[i];

		iters += v->stats.valid ? v->stats.iterations : 0;
		if (!per_vcpu && v->stats.valid && v->state == KS_VCPU_DONE)
			continue;
		snprintf(a, sizeof(a), "%u", i);
		table_row(r, f, a, v->stats.hist, v->stats.max_ticks, v->stats.stall_ticks,
			  v->stats.iterations, vcpu_seconds(r, v), vcpu_seconds(r, v),
			  !v->stats.valid	     ? "DISCARDED (guest data inconsistent)" :
			  v->state == KS_VCPU_FAILED ? "FAILED" :
						       NULL);
	}
	measured_seconds(r, &vsum, &vmax);
	table_row(r, f, "total", r->total_hist, r->total_max, r->total_sum, iters, vmax, vsum,
		  r->ninvalid ? "(valid vCPUs only)" : NULL);
	if (!per_vcpu)
		fprintf(f, "(%u vCPUs: per-vCPU rows in --json, or with --verbose)\n", n);
	if (vm->nstreams)
		events_table(r, f);
	anatomy_table(r, f, per_vcpu);
	notifier_table(r, f);
}

/* ---- JSON ---- */

static void set(json_t *o, const char *k, json_t *v)
{
	json_object_set_new(o, k, v ? v : json_null());
}

static json_t *jint(uint64_t v)
{
	return json_integer((json_int_t)(v > (uint64_t)INT64_MAX ? INT64_MAX : v));
}

static json_t *jstr_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

/* @secs: the time the stalls were counted over. */
static json_t *stall_summary(const struct ks_run *r, const uint64_t *hist, uint64_t max,
			     uint64_t sum, double secs)
{
	struct ks_summary s;
	json_t *o = json_object();

	ks_hist_summarize(hist, max, sum, &s);
	set(o, "count", jint(s.count));
	set(o, "per_second", json_real(secs > 0 ? (double)s.count / secs : 0));
	set(o, "p50_ns", json_real(ns_of(r, s.p50)));
	set(o, "p90_ns", json_real(ns_of(r, s.p90)));
	set(o, "p99_ns", json_real(ns_of(r, s.p99)));
	set(o, "p999_ns", json_real(ns_of(r, s.p999)));
	set(o, "max_ns", json_real(ns_of(r, (double)s.max)));
	set(o, "total_ns", json_real(ns_of(r, (double)sum)));
	return o;
}

static json_t *histogram(const struct ks_run *r, const uint64_t *hist)
{
	json_t *a = json_array();
	unsigned int b;

	for (b = 0; b < KS_HIST_BUCKETS; b++) {
		json_t *e;

		if (!hist[b])
			continue;
		e = json_object();
		set(e, "lo_ns", json_real(ns_of(r, (double)ks_hist_lo(b))));
		set(e, "hi_ns", json_real(ns_of(r, (double)ks_hist_hi(b))));
		set(e, "lo_ticks", jint(ks_hist_lo(b)));
		set(e, "count", jint(hist[b]));
		json_array_append_new(a, e);
	}
	return a;
}

/* .stall_causes: null where the anatomy is off, and null for what the host did not show. */
static json_t *json_causes(const struct ks_run *r, const struct ks_causes *c)
{
	const struct ks_anatomy *an = &r->vm->anatomy;
	json_t *o, *reasons;
	unsigned int i;

	if (!r->attrib.has_causes)
		return json_null();
	o = json_object();
	set(o, "stalls", jint(c->stalls));
	set(o, "stall_ns", json_real(c->stall_ns));
	set(o, "preempted_ns", an->switches ? json_real(c->preempted_ns) : json_null());
	set(o, "blocked_ns", an->switches ? json_real(c->blocked_ns) : json_null());
	set(o, "in_kvm_ns", an_in_kvm(an) ? json_real(c->in_kvm_ns) : json_null());
	set(o, "unexplained_ns", json_real(c->unexplained_ns));
	reasons = an_in_kvm(an) ? json_object() : json_null();
	for (i = 0; an_in_kvm(an) && i < an->nreasons; i++)
		if (c->reason_ns[i] > 0)
			set(reasons, an->reason_names[i], json_real(c->reason_ns[i]));
	set(o, "exit_reasons", reasons);
	set(o, "page_faults", an_faults(an) ? jint(c->page_faults) : json_null());
	set(o, "repeated_faults", an_faults(an) ? jint(c->repeated_faults) : json_null());
	set(o, "notifications", an->notifications ? jint(c->notifications) : json_null());
	set(o, "lost_records", jint(c->lost_records));
	return o;
}

/* .anatomy: what the host let kvmstall see, and how it went. */
static json_t *json_anatomy(const struct ks_run *r)
{
	const struct ks_vm *vm = r->vm;
	const struct ks_anatomy *an = &vm->anatomy;
	json_t *o = json_object();

	set(o, "requested", json_boolean(vm->cfg->anatomy));
	set(o, "enabled", json_boolean(an->enabled));
	set(o, "context_switches", json_boolean(an->enabled && an->switches));
	set(o, "in_kvm_from", an->enabled ? jstr_or_null(an_in_kvm_from(vm)) : json_null());
	set(o, "page_faults_from", an->enabled ? jstr_or_null(an_faults_from(vm)) : json_null());
	set(o, "notifications_from",
	    an->enabled && an->notifications ? json_string(an->notif_names) : json_null());
	set(o, "kvm_module", an->enabled ? json_string(an->module) : json_null());
	set(o, "missing", jstr_or_null(an->missing));
	set(o, "mounted_tracefs", json_boolean(an->mounted_tracefs));
	set(o, "ring_bytes", jint(an->enabled ? an->ring_pages * 4096 : 0));
	set(o, "records", jint(an->records_total));
	set(o, "lost_records", jint(an->lost_total));
	set(o, "throttled", jint(an->throttles_total));
	return o;
}

static json_t *json_vcpu(const struct ks_run *r, const struct ks_vcpu *v)
{
	const struct ks_vcpu_stats *s = &v->stats;
	static const uint64_t empty[KS_HIST_BUCKETS];
	json_t *o = json_object();

	set(o, "id", json_integer(v->id));
	set(o, "cpu", v->cpu >= 0 ? json_integer(v->cpu) : json_null());
	set(o, "node", v->node >= 0 ? json_integer(v->node) : json_null());
	set(o, "state", json_string(state_name(v->state)));
	set(o, "error", jstr_or_null(v->error));
	set(o, "region_gpa", jint(v->region_gpa));
	set(o, "region_bytes", jint(v->region_size));
	set(o, "startup_ns", v->ready_ns ? jint(v->ready_ns - r->vm->start_ns) : json_null());
	/* From the stop request to the guest's "done" call. */
	set(o, "stop_ns",
	    v->state == KS_VCPU_DONE && v->done_ns >= r->vm->stop_ns ?
		    jint(v->done_ns - r->vm->stop_ns) :
		    json_null());
	set(o, "exits", jint(v->exits));
	set(o, "efault_retries", jint(v->efault_retries));
	set(o, "tsc_at_t0", jint(v->tsc_at_start));
	set(o, "valid", json_boolean(s->valid));
	set(o, "invalid_reason", s->valid ? json_null() : json_string(s->invalid_reason));
	set(o, "iterations", jint(s->valid ? s->iterations : 0));
	set(o, "touches", jint(s->valid ? s->touches : 0));
	set(o, "pages_walked", jint(s->valid ? s->position : 0));
	set(o, "zeroed_reads", jint(s->valid ? s->zeroed : 0));
	set(o, "corrupt_reads", jint(s->valid ? s->corrupt : 0));
	set(o, "stalls",
	    stall_summary(r, s->valid ? s->hist : empty, s->valid ? s->max_ticks : 0,
			  s->valid ? s->stall_ticks : 0, vcpu_seconds(r, v)));
	set(o, "measured_ns", jint((uint64_t)(vcpu_seconds(r, v) * 1e9)));
	set(o, "records_kept", jint(s->valid ? s->nrecs : 0));
	set(o, "records_lost", jint(s->valid ? s->ring_lost : 0));
	set(o, "histogram", histogram(r, s->valid ? s->hist : empty));
	set(o, "stall_causes",
	    s->valid && r->attrib.vcpu_causes ? json_causes(r, &r->attrib.vcpu_causes[v->id]) :
						json_null());
	return o;
}

static json_t *json_kvmstats(const struct ks_kvmstats *st)
{
	json_t *o = json_object(), *vm = json_object(), *vcpu = json_object(),
	       *host = json_object();
	unsigned int i;

	set(o, "source", json_string(st->source ? st->source : "none"));
	set(o, "unavailable_reason", jstr_or_null(st->why_none));
	for (i = 0; i < st->n; i++) {
		const struct ks_kvmstat *s = &st->v[i];
		uint64_t v = s->cumulative ? s->end - s->start : s->end;

		if (s->cumulative && s->end < s->start)
			v = 0;
		set(s->vcpu ? vcpu : vm, s->name, jint(v));
	}
	set(o, "vm", vm);
	set(o, "vcpu_total", vcpu);
	for (i = 0; i < KS_VMSTAT_N; i++) {
		uint64_t a = st->vmstat_start[i], b = st->vmstat_end[i];

		set(host, ks_vmstat_names[i],
		    st->vmstat_ok[i] ? jint(b >= a ? b - a : 0) : json_null());
	}
	set(o, "host_vmstat", host);
	return o;
}

static json_t *json_layout(const struct ks_vm *vm)
{
	json_t *o = json_object(), *slots = json_array();
	unsigned int i;

	set(o, "system_bytes", jint(vm->layout.sys_size));
	set(o, "slot_bytes", jint(vm->layout.slot_size));
	set(o, "decoy_bytes", jint(vm->layout.decoy_size));
	set(o, "region_bytes", jint(vm->layout.region_size));
	for (i = 0; i < vm->layout.nslots; i++) {
		const struct ks_slot *s = &vm->slots[i];
		json_t *e = json_object();

		set(e, "slot", json_integer(s->id));
		set(e, "gpa", jint(s->gpa));
		set(e, "bytes", jint(s->size));
		set(e, "hva", jint((uintptr_t)s->hva));
		set(e, "decoy_before_hva", jint((uintptr_t)s->decoy[0]));
		set(e, "decoy_after_hva", jint((uintptr_t)s->decoy[1]));
		set(e, "node", s->node >= 0 ? json_integer(s->node) : json_null());
		json_array_append_new(slots, e);
	}
	set(o, "slots", slots);
	return o;
}

static json_t *json_config(const struct ks_vm *vm)
{
	const struct ks_config *c = vm->cfg;
	json_t *o = json_object();

	set(o, "vcpus", json_integer(c->vcpus));
	set(o, "memory_bytes", jint(c->memory));
	set(o, "backing", json_string(vm->backing->name));
	set(o, "page_size", jint(vm->backing->page_size));
	set(o, "slots", json_integer(c->slots));
	set(o, "workload", json_string(workload_name(c->workload)));
	set(o, "duration_ns", jint(c->duration_ns));
	set(o, "threshold_ns", jint(c->threshold_ns));
	set(o, "threshold_ticks", jint(vm->threshold_ticks));
	set(o, "stride", jint(c->stride));
	set(o, "pin", json_boolean(c->pin));
	set(o, "prefault", json_boolean(c->prefault));
	set(o, "numa", json_boolean(c->numa));
	set(o, "reserve_hugepages", json_boolean(c->reserve_hugepages));
	set(o, "verify_events", json_boolean(c->verify_events));
	set(o, "submit",
	    json_string(c->submit == KS_VIA_URING   ? "uring" :
			c->submit == KS_VIA_SYSCALL ? "syscall" :
						      "auto"));
	set(o, "scenario", jstr_or_null(c->scenario));
	return o;
}

static json_t *json_host(const struct ks_vm *vm)
{
	json_t *o = json_object(), *kvm = json_object(), *nodes = json_array();
	unsigned int i;

	set(o, "kernel", json_string(vm->caps.kernel));
	set(o, "online_cpus", json_integer(vm->caps.online_cpus));
	for (i = 0; i < vm->nnodes; i++)
		json_array_append_new(nodes, json_integer(vm->nodes[i]));
	set(o, "numa_nodes", nodes);
	set(o, "tsc_khz", json_integer(vm->tsc_khz));
	set(o, "tsc_stable", json_boolean(!vm->tsc_unstable));
	set(kvm, "api_version", json_integer(vm->caps.api_version));
	set(kvm, "nr_vcpus", json_integer(vm->caps.nr_vcpus));
	set(kvm, "max_vcpus", json_integer(vm->caps.max_vcpus));
	set(kvm, "nr_memslots", json_integer(vm->caps.nr_memslots));
	set(kvm, "binary_stats_fd", json_boolean(vm->caps.stats_fd));
	set(o, "kvm", kvm);
	return o;
}

static json_t *json_pct(const struct ks_pct *p)
{
	return json_pack("{s:f, s:f, s:f}", "p50", p->p50, "p99", p->p99, "max", p->max);
}

static json_t *json_stream(const struct ks_run *r, const struct ks_stream *st,
			   const struct ks_attrib_stream *o)
{
	const struct ks_ev_spec *sp = &st->spec;
	json_t *j = json_object(), *att = json_object(), *log = json_array();
	size_t i;

	set(j, "spec", json_string(sp->text));
	set(j, "kind", json_string(ks_ev_kind_name(sp->kind)));
	set(j, "target", json_string(ks_ev_target_name(sp->target)));
	set(j, "via", json_string(stream_via(st)));
	set(j, "skipped", json_boolean(st->skipped));
	set(j, "skip_reason", st->skipped ? json_string(st->reason) : json_null());
	set(j, "requested_rate",
	    sp->every_ns ? json_real((double)sp->burst * 1e9 / (double)sp->every_ns) :
			   json_real(sp->rate));
	set(j, "burst", json_integer(sp->burst));
	set(j, "every_ns", jint(sp->every_ns));
	set(j, "delay_ns", jint(sp->delay_ns));
	set(j, "pages", jint(sp->pages));
	set(j, "bytes_per_event", jint(sp->pages * r->vm->layout.page_size));
	set(j, "events", jint(o->events));
	set(j, "scheduled", jint(st->scheduled));
	set(j, "given_up", jint(st->given_up));
	set(j, "errors", jint(o->errors));
	set(j, "first_error",
	    o->first_error ? json_string(strerror(-o->first_error)) : json_null());
	set(j, "achieved_rate", json_real(o->achieved_rate));
	set(j, "cpu_ns", jint(st->cpu_ns));
	if (sp->hold_met) {
		json_t *h = json_object();

		set(h, "met", jint(st->met));
		set(h, "unmet", jint(st->unmet));
		set(j, "hold", h);
	} else {
		set(j, "hold", json_null());
	}
	set(j, "latency_ns", json_pct(&o->latency_ns));
	set(j, "lateness_ns", json_pct(&o->lateness_ns));
	set(att, "stalls", jint(o->stalls));
	set(att, "stall_ns", json_real(o->stall_ns));
	set(att, "in_flight_ns", jint(o->coverage_ns));
	set(att, "stalls_per_vcpu_s", json_real(o->stalls_per_vcpu_s));
	set(j, "attribution", att);
	set(j, "stall_causes", json_causes(r, &o->causes));
	if (r->vm->cfg->verify_events) {
		json_t *v = json_object();

		set(v, "verified", jint(st->verified));
		set(v, "failed", jint(st->verify_failed));
		set(v, "unknown", jint(st->verify_unknown));
		set(v, "first_failure",
		    st->verify_failed ? json_string(st->verify_note) : json_null());
		set(j, "verify", v);
	}
	for (i = 0; i < st->nrecs; i++) {
		const struct ks_ev_rec *e = &st->recs[i];

		if (r->vm->cfg->event_log_max >= 0 &&
		    i >= (unsigned long long)r->vm->cfg->event_log_max)
			break;

		json_array_append_new(log,
				      json_pack("[I, I, I, I, I, i, b, i]", (json_int_t)e->due_ns,
						(json_int_t)e->start_ns, (json_int_t)e->end_ns,
						(json_int_t)e->hva, (json_int_t)e->len,
						(int)e->slot, (int)e->via_uring, (int)e->result));
	}
	set(j, "log", log);
	set(j, "log_omitted", jint(st->nrecs - i));
	return j;
}

/* --antagonist: what was set for the run, and what the kernel did. */
static json_t *json_antagonists(const struct ks_vm *vm)
{
	json_t *arr = json_array();
	unsigned int i, k;

	for (i = 0; i < vm->nants; i++) {
		const struct ks_antagonist *a = &vm->ants[i];
		json_t *j = json_object(), *knobs = json_object(), *ctr = json_object();

		set(j, "spec", json_string(a->spec.text));
		set(j, "kind", json_string(ks_ant_kind_name(a->spec.kind)));
		set(j, "period_ns", jint(a->spec.period_ns));
		set(j, "buffer_bytes", jint(a->spec.buffer));
		set(j, "skipped", json_boolean(a->skipped));
		set(j, "skip_reason", a->skipped ? json_string(a->reason) : json_null());
		for (k = 0; k < a->nknobs; k++)
			set(knobs, a->knobs[k].path,
			    json_pack("{s:s, s:s}", "run", a->knobs[k].value, "before",
				      a->knobs[k].saved));
		set(j, "settings", knobs);
		for (k = 0; k < a->ncounters; k++) {
			/* "FILE KEY" is named by its key, a path by its file. */
			const char *n = strchr(a->counter_names[k], ' ');

			if (!n)
				n = strrchr(a->counter_names[k], '/');

			set(ctr, n ? n + 1 : a->counter_names[k],
			    a->counter_ok[k] ? json_pack("{s:I, s:I}", "start",
							 (json_int_t)a->counter_start[k], "end",
							 (json_int_t)a->counter_end[k]) :
					       json_null());
		}
		set(j, "counters", ctr);
		set(j, "passes", jint(a->passes));
		json_array_append_new(arr, j);
	}
	return arr;
}

static json_t *json_events(const struct ks_run *r)
{
	const struct ks_vm *vm = r->vm;
	const struct ks_attrib *a = &r->attrib;
	json_t *o = json_object(), *streams = json_array(), *base = json_object();
	unsigned int k;

	set(o, "log_columns",
	    json_pack("[s, s, s, s, s, s, s, s]", "due_ns", "start_ns", "end_ns", "hva", "bytes",
		      "slot", "io_uring", "result"));
	for (k = 0; k < vm->nstreams && k < a->n; k++)
		json_array_append_new(streams, json_stream(r, &vm->streams[k], &a->s[k]));
	set(o, "streams", streams);
	set(base, "stalls", jint(a->base_stalls));
	set(base, "stall_ns", json_real(a->base_stall_ns));
	set(base, "no_event_ns", jint(a->base_ns));
	set(base, "stalls_per_vcpu_s", json_real(a->base_per_vcpu_s));
	set(base, "stall_causes", json_causes(r, &a->base_causes));
	set(o, "baseline", base);
	set(o, "stalls_in_run", jint(a->stalls_total));
	return o;
}

int report__json(const struct ks_run *r, const char *path)
{
	const struct ks_vm *vm = r->vm;
	json_t *root = json_object(), *a, *o, *t;
	uint64_t iters = 0, touches = 0;
	double vsum, vmax;
	unsigned int i;
	char ts[64];
	time_t secs = (time_t)(r->started_realtime_ns / NSEC_PER_SEC);
	struct tm tm;
	char tmp[PATH_MAX + 16];
	FILE *f;
	int rc;

	gmtime_r(&secs, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	set(root, "schema", json_string("kvmstall-report"));
	set(root, "schema_version", json_integer(KS_REPORT_SCHEMA_VERSION));
	set(root, "tool", json_pack("{s:s, s:s}", "name", "kvmstall", "version", PACKAGE_VERSION));
	set(root, "started_at", json_string(ts));
	a = json_array();
	for (i = 0; i < (unsigned int)vm->cfg->argc; i++)
		json_array_append_new(a, json_string(vm->cfg->argv[i]));
	set(root, "command", a);
	set(root, "host", json_host(vm));
	set(root, "config", json_config(vm));
	set(root, "layout", json_layout(vm));

	t = json_object();
	set(t, "startup_ns",
	    vm->all_ready_ns ? jint(vm->all_ready_ns - vm->start_ns) : json_null());
	set(t, "prefault_ns", jint(vm->prefault_ns));
	set(t, "prefault_bytes", jint(vm->prefault_bytes));
	set(t, "t0_monotonic_ns", jint(vm->t0_ns));
	set(t, "run_start_monotonic_ns", jint(r->run_start_ns));
	set(t, "run_ns",
	    jint(r->run_end_ns > r->run_start_ns ? r->run_end_ns - r->run_start_ns : 0));
	set(t, "fault_recycled_bytes", jint(vm->recycled_bytes));
	set(t, "fault_recycles", jint(vm->recycle_calls));
	set(root, "timing", t);

	o = json_object();
	set(o, "status", json_string(r->failed ? "failed" : r->signal ? "interrupted" : "ok"));
	set(o, "signal",
	    r->signal ? json_string(r->signal == 2 ? "SIGINT" : "SIGTERM") : json_null());
	set(o, "vcpus_discarded", json_integer(r->ninvalid));
	set(o, "data_check",
	    json_pack("{s:I, s:I, s:b}", "zeroed_reads", (json_int_t)r->zeroed, "corrupt_reads",
		      (json_int_t)r->corrupt, "explained_by_events",
		      r->discarding_events || !r->zeroed));
	a = json_array();
	for (i = 0; i < vm->layout.nvcpus; i++)
		if (vm->vcpus[i].state == KS_VCPU_FAILED)
			json_array_append_new(a,
					      json_sprintf("vCPU %u: %s", i, vm->vcpus[i].error));
	set(o, "vcpus_failed", json_integer((json_int_t)json_array_size(a)));
	set(o, "errors", a);
	set(root, "result", o);

	a = json_array();
	for (i = 0; i < vm->layout.nvcpus; i++) {
		const struct ks_vcpu *v = &vm->vcpus[i];

		if (v->stats.valid) {
			iters += v->stats.iterations;
			touches += v->stats.touches;
		}
		json_array_append_new(a, json_vcpu(r, v));
	}
	o = json_object();
	measured_seconds(r, &vsum, &vmax);
	set(o, "iterations", jint(iters));
	set(o, "touches", jint(touches));
	set(o, "vcpu_seconds", json_real(vsum));
	set(o, "stalls", stall_summary(r, r->total_hist, r->total_max, r->total_sum, vmax));
	set(o, "histogram", histogram(r, r->total_hist));
	set(o, "stall_causes", json_causes(r, &r->attrib.total_causes));
	set(root, "total", o);
	set(root, "anatomy", json_anatomy(r));
	set(root, "vcpus", a);
	set(root, "kvm_stats", json_kvmstats(&r->kstats));
	set(root, "antagonists", json_antagonists(r->vm));
	set(root, "events", json_events(r));

	/* A temporary file renamed into place: never a truncated report. */
	f = out_file_open(path, tmp, sizeof(tmp));
	if (!f) {
		json_decref(root);
		pr_err("cannot write the JSON report %s: %s", path, strerror(errno));
		return -1;
	}
	errno = 0;
	rc = json_dumpf(root, f, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
	json_decref(root);
	if (rc < 0) {
		rc = errno ? errno : EIO;
		out_file_abort(f, tmp);
		pr_err("cannot write the JSON report %s: %s; no report was written", path,
		       strerror(rc));
		return -1;
	}
	rc = out_file_commit(f, tmp, path);
	if (rc < 0) {
		pr_err("cannot write the JSON report %s: %s; no report was written", path,
		       strerror(-rc));
		return -1;
	}
	return 0;
}

/* ---- CSV ---- */

int csv__open(struct ks_run *r, const char *path)
{
	unsigned int n = r->vm->layout.nvcpus;

	/* Written beside @path and renamed over it when the run is over. */
	r->csv = out_file_open(path, r->csv_tmp, sizeof(r->csv_tmp));
	if (!r->csv) {
		pr_err("cannot write the CSV time series %s: %s", path, strerror(errno));
		return -1;
	}
	r->csv_path = path;
	r->csv_prev_iter = xcalloc(n, sizeof(uint64_t));
	r->csv_prev_stalls = xcalloc(n, sizeof(uint64_t));
	return 0;
}

static void csv_row(struct ks_run *r, const struct ks_csv_row *row)
{
	if (r->ncsv_rows == r->capcsv_rows) {
		r->capcsv_rows = r->capcsv_rows ? r->capcsv_rows * 2 : 256;
		r->csv_rows = xrealloc(r->csv_rows, r->capcsv_rows * sizeof(*r->csv_rows));
	}
	r->csv_rows[r->ncsv_rows++] = *row;
}

/*
 * The rows, each with the causes of the vCPU's stalls up to it (cumulative,
 * like stall_ms_total), known only once the host timeline is complete.
 */
static void csv_write(struct ks_run *r)
{
	const struct ks_vm *vm = r->vm;
	const struct ks_anatomy *an = &vm->anatomy;
	unsigned int n = vm->layout.nvcpus;
	struct ks_causes *cum = xcalloc(n ? n : 1, sizeof(*cum));
	size_t *next = xcalloc(n ? n : 1, sizeof(*next)), i;

	/*
	 * The first error is the one to report (a full disk): stdio may fail a
	 * write inside any fprintf and drop what it held, so that the final
	 * fflush has nothing left to fail on, and errno moves on.
	 */
	if (fprintf(r->csv,
		    "time_s,vcpu,iterations,iterations_per_s,stalls,stalls_per_s,"
		    "stall_ms_total,max_stall_us_interval,valid,"
		    "preempted_ms_total,blocked_ms_total,in_kvm_ms_total,unexplained_ms_total\n") <
		    0 &&
	    !r->csv_errno)
		r->csv_errno = errno;
	for (i = 0; i < r->ncsv_rows; i++) {
		const struct ks_csv_row *w = &r->csv_rows[i];
		const struct ks_vcpu *v = &vm->vcpus[w->vcpu];
		struct ks_causes *c = &cum[w->vcpu];
		char cause[4][32] = { "", "", "", "" };

		for (; r->attrib.has_causes && v->stats.valid && next[w->vcpu] < w->nrecs &&
		       next[w->vcpu] < v->stats.nrecs;
		     next[w->vcpu]++) {
			uint64_t s, e;

			if (ks_stall_place(vm, v, &v->stats.recs[next[w->vcpu]], &s, &e))
				ks_anat_split(an, &v->an, s, e, c);
		}
		if (r->attrib.has_causes && v->stats.valid) {
			if (an->switches) {
				snprintf(cause[0], 32, "%.3f", c->preempted_ns / 1e6);
				snprintf(cause[1], 32, "%.3f", c->blocked_ns / 1e6);
			}
			if (an_in_kvm(an))
				snprintf(cause[2], 32, "%.3f", c->in_kvm_ns / 1e6);
			snprintf(cause[3], 32, "%.3f", c->unexplained_ns / 1e6);
		}
		if (fprintf(r->csv,
			    "%.3f,%u,%" PRIu64 ",%.0f,%" PRIu64 ",%.1f,%.3f,%.1f,%d,%s,%s,%s,%s\n",
			    w->t, w->vcpu, w->iterations, w->iterations_per_s, w->stalls,
			    w->stalls_per_s, w->stall_ms, w->max_us, w->valid, cause[0], cause[1],
			    cause[2], cause[3]) < 0 &&
		    !r->csv_errno)
			r->csv_errno = errno;
	}
	if (fflush(r->csv) != 0 && !r->csv_errno)
		r->csv_errno = errno;
	free(cum);
	free(next);
}

void csv__sample(struct ks_run *r, uint64_t now)
{
	const struct ks_vm *vm = r->vm;
	double t = (double)(now - r->run_start_ns) / 1e9;
	double dt = r->csv_prev_ns ? (double)(now - r->csv_prev_ns) / 1e9 : t;
	unsigned int i;

	if (!r->csv)
		return;
	for (i = 0; i < vm->layout.nvcpus; i++) {
		struct ks_vcpu_stats *s = &vm->vcpus[i].stats;
		uint64_t ticks = s->drained_ticks, max = s->interval_max;

		s->interval_max = 0;
		csv_row(r, &(struct ks_csv_row){
				   .t = t,
				   .vcpu = i,
				   .valid = s->valid,
				   .iterations = s->iterations,
				   .iterations_per_s =
					   dt > 0 ? (double)(s->iterations - r->csv_prev_iter[i]) /
							    dt :
						    0,
				   .stalls = s->ring_tail,
				   .stalls_per_s =
					   dt > 0 ? (double)(s->ring_tail - r->csv_prev_stalls[i]) /
							    dt :
						    0,
				   .stall_ms = ns_of(r, (double)ticks) / 1e6,
				   .max_us = ns_of(r, (double)max) / 1e3,
				   .nrecs = s->nrecs,
			   });
		r->csv_prev_iter[i] = s->iterations;
		r->csv_prev_stalls[i] = s->ring_tail;
	}
	r->csv_prev_ns = now;
}

void csv__close(struct ks_run *r)
{
	int rc;

	if (r->csv) {
		csv_write(r);
		rc = out_file_commit(r->csv, r->csv_tmp, r->csv_path);
		if (rc < 0) {
			pr_err("cannot write the CSV time series %s: %s; it was not written",
			       r->csv_path, strerror(r->csv_errno ? r->csv_errno : -rc));
			r->csv_failed = true;
		}
	}
	r->csv = NULL;
	free(r->csv_prev_iter);
	free(r->csv_prev_stalls);
	free(r->csv_rows);
	r->csv_rows = NULL;
	r->ncsv_rows = r->capcsv_rows = 0;
	r->csv_prev_iter = r->csv_prev_stalls = NULL;
}

/* ---- progress ---- */

void progress__update(const struct ks_run *r, uint64_t now)
{
	const struct ks_vm *vm = r->vm;
	uint64_t stalls = 0, iters = 0, max = 0;
	unsigned int i, running = 0;
	char b[24];

	for (i = 0; i < vm->layout.nvcpus; i++) {
		const struct ks_vcpu *v = &vm->vcpus[i];

		running += v->state == KS_VCPU_RUNNING;
		stalls += v->stats.ring_tail;
		iters += v->stats.iterations;
		if (v->stats.nrecs && v->stats.recs[v->stats.nrecs - 1].ticks > max)
			max = v->stats.recs[v->stats.nrecs - 1].ticks;
	}
	fprintf(stderr,
		"\r\033[K[%6.1f/%.1f s] %u/%u vCPUs running, %.3g iterations, %" PRIu64
		" stalls, last %s",
		r->run_start_ns && now > r->run_start_ns ? (double)(now - r->run_start_ns) / 1e9 :
							   0,
		(double)vm->cfg->duration_ns / 1e9, running, vm->layout.nvcpus, (double)iters,
		stalls, fmt_ns(ns_of(r, (double)max), b, sizeof(b)));
	fflush(stderr);
}

void progress__clear(void)
{
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
}
