// SPDX-License-Identifier: MIT
/* Stall anatomy through perf_event_open; see anatomy.h. */
#include "config.h"

#define _GNU_SOURCE 1
#include "anatomy.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kvmstall.h"
#include "util.h"

#define AN_PAGE 4096UL
/* Per vCPU thread and per CPU; a run with many vCPUs gets smaller rings. */
#define AN_RING_BYTES (8 * MiB)
#define AN_CPU_RING_BYTES (256 * KiB)
#define AN_RINGS_MAX_BYTES (128 * MiB)
/* The collector wakes when a ring is half full, or after this many ms. */
#define AN_POLL_MS 100
#define AN_REC_MAX 65536
/* Descriptors a vCPU thread's ring must leave to the rest of the run. */
#define AN_FD_RESERVE 64

/* The tracepoints, per vCPU thread first, then the notifications (per CPU). */
enum {
	TP_EXIT,
	TP_ENTRY,
	TP_USER_EXIT,
	TP_PAGE_FAULT,
	TP_MMU_WALK,
	TP_MMU_SET,
	TP_NTHREAD,
	TP_UNMAP = TP_NTHREAD,
	TP_AGE,
	TP_TEST_AGE,
	TP_SET_SPTE_HVA,
	TP_N,
	KIND_SWITCH = TP_N,
};

static const struct {
	const char *sys;
	const char *name;
} tps[TP_N] = {
	[TP_EXIT] = { "kvm", "kvm_exit" },
	[TP_ENTRY] = { "kvm", "kvm_entry" },
	[TP_USER_EXIT] = { "kvm", "kvm_userspace_exit" },
	[TP_PAGE_FAULT] = { "kvm", "kvm_page_fault" },
	[TP_MMU_WALK] = { "kvmmmu", "kvm_mmu_pagetable_walk" },
	[TP_MMU_SET] = { "kvmmmu", "kvm_mmu_set_spte" },
	[TP_UNMAP] = { "kvm", "kvm_unmap_hva_range" },
	[TP_AGE] = { "kvm", "kvm_age_hva" },
	[TP_TEST_AGE] = { "kvm", "kvm_test_age_hva" },
	[TP_SET_SPTE_HVA] = { "kvm", "kvm_set_spte_hva" },
};

static int perf_open(struct perf_event_attr *a, pid_t pid, int cpu)
{
	return (int)syscall(__NR_perf_event_open, a, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

static void attr_base(struct perf_event_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->sample_type = PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_TID | PERF_SAMPLE_TIME;
	a->sample_id_all = 1;
	/* The clock the stalls are placed on (now_ns()). */
	a->use_clockid = 1;
	a->clockid = CLOCK_MONOTONIC;
}

static void attr_tracepoint(struct perf_event_attr *a, uint64_t id)
{
	attr_base(a);
	a->type = PERF_TYPE_TRACEPOINT;
	a->config = id;
	a->sample_period = 1;
	a->sample_type |= PERF_SAMPLE_RAW;
}

/* The event that owns a ring wakes the collector when the ring is half full. */
static void attr_wake_half(struct perf_event_attr *a, size_t ring_pages)
{
	a->watermark = 1;
	a->wakeup_watermark = (uint32_t)(ring_pages * AN_PAGE / 2);
}

/* The context switches of the calling thread: a dummy event with context_switch. */
static void attr_switches(struct perf_event_attr *a)
{
	attr_base(a);
	a->type = PERF_TYPE_SOFTWARE;
	a->config = PERF_COUNT_SW_DUMMY;
	a->context_switch = 1;
	/* Allowed with perf_event_paranoid 2; switch records are not samples. */
	a->exclude_kernel = 1;
	a->exclude_hv = 1;
}

/* ---- tracefs: ids, fields, exit reason names ---- */

static const char *const events_dirs[] = { "/sys/kernel/tracing/events",
					   "/sys/kernel/debug/tracing/events" };

static char *tp_file(const struct ks_anatomy *an, int tp, const char *file)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s/%s/%s", an->events_dir, tps[tp].sys, tps[tp].name,
		 file);
	return read_file(path);
}

/* Offset and size of the field @name in a tracepoint's format; false if absent. */
static bool field_of(const char *fmt, const char *name, int *off, int *size)
{
	size_t n = strlen(name);
	const char *p;

	for (p = strstr(fmt, "field:"); p; p = strstr(p + 1, "field:")) {
		const char *semi = strchr(p, ';'), *o, *s;

		if (!semi || (size_t)(semi - p) < n + 1)
			continue;
		if (strncmp(semi - n, name, n) ||
		    (semi[-(long)n - 1] != ' ' && semi[-(long)n - 1] != '*'))
			continue;
		o = strstr(semi, "offset:");
		s = strstr(semi, "size:");
		if (!o || !s)
			return false;
		*off = atoi(o + 7);
		*size = atoi(s + 5);
		return *off >= 0 && *size > 0;
	}
	return false;
}

/* "{ 0x040 + 14, "PF excp" }, ..." up to the closing parenthesis. */
static void parse_symbolic(const char *p, struct ks_an_name **out, size_t *n)
{
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	p = strchr(p, ',');
	while (p && *p) {
		long long v = 0, x;
		char *end;
		const char *q;
		size_t len;

		while (*p == ',' || *p == ' ')
			p++;
		if (*p != '{')
			return;
		p++;
		for (;;) {
			while (*p == ' ')
				p++;
			x = strtoll(p, &end, 0);
			if (end == p)
				return;
			v += x;
			p = end;
			while (*p == ' ')
				p++;
			if (*p != '+')
				break;
			p++;
		}
		if (*p != ',')
			return;
		p = strchr(p, '"');
		q = p ? strchr(p + 1, '"') : NULL;
		if (!q)
			return;
		len = (size_t)(q - p - 1);
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*out = xrealloc(*out, cap * sizeof(**out));
		}
		(*out)[*n].code = (uint32_t)v;
		snprintf((*out)[*n].name, sizeof((*out)[*n].name), "%.*s", (int)len, p + 1);
		(*n)++;
		p = strchr(q, '}');
		if (p)
			p++;
	}
}

/* kvm_exit's print format names the VMX reasons (isa 1), then the SVM ones. */
void ks_anat_exit_names(struct ks_anatomy *an, const char *fmt)
{
	const char *pf = strstr(fmt, "print fmt:"), *first, *second;

	if (!pf)
		return;
	first = strstr(pf, "__print_symbolic(");
	second = first ? strstr(first + 1, "__print_symbolic(") : NULL;
	if (first && strstr(pf, "isa == 1"))
		parse_symbolic(first, &an->vmx, &an->nvmx);
	if (second)
		parse_symbolic(second, &an->svm, &an->nsvm);
}

static const char *name_of(const struct ks_an_name *t, size_t n, uint32_t code)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (t[i].code == code)
			return t[i].name;
	return NULL;
}

static void module_name(struct ks_anatomy *an)
{
	static const char *const mods[] = { "kvm_intel", "kvm_amd", "kvm_pvm" };
	char path[64];
	struct stat st;
	size_t i;

	snprintf(an->module, sizeof(an->module), "kvm");
	for (i = 0; i < ARRAY_SIZE(mods); i++) {
		snprintf(path, sizeof(path), "/sys/module/%s", mods[i]);
		if (!stat(path, &st)) {
			snprintf(an->module, sizeof(an->module), "%s", mods[i]);
			return;
		}
	}
}

/* The index of a reason already seen, or -1. */
static int reason_seen(const struct ks_anatomy *an, uint32_t isa, uint32_t code)
{
	unsigned int i;

	for (i = 0; i < an->nreasons; i++)
		if (an->reason_isa[i] == isa && an->reason_code[i] == code)
			return (int)i;
	return -1;
}

uint16_t ks_anat_reason(struct ks_anatomy *an, uint32_t isa, uint32_t code, const char *name)
{
	int seen = reason_seen(an, isa, code);
	unsigned int i = an->nreasons;

	if (seen >= 0)
		return (uint16_t)seen;
	if (an->nreasons == KS_AN_MAX_REASONS - 1) {
		snprintf(an->reason_names[i], sizeof(an->reason_names[i]), "other");
		an->reason_isa[i] = UINT32_MAX;
		an->reason_code[i] = UINT32_MAX;
		an->nreasons++;
	}
	if (an->nreasons == KS_AN_MAX_REASONS)
		return KS_AN_MAX_REASONS - 1;
	an->reason_isa[i] = isa;
	an->reason_code[i] = code;
	snprintf(an->reason_names[i], sizeof(an->reason_names[i]), "%s", name);
	return (uint16_t)an->nreasons++;
}

uint16_t ks_anat_exit_reason(struct ks_anatomy *an, uint32_t isa, uint32_t code)
{
	int seen = reason_seen(an, isa, code);
	const char *n = NULL;
	char buf[48];

	/* The common case: no name to look up. */
	if (seen >= 0)
		return (uint16_t)seen;
	if (isa == 1)
		n = name_of(an->vmx, an->nvmx, code & 0xffff);
	else if (isa == 2)
		n = name_of(an->svm, an->nsvm, code);
	if (n)
		snprintf(buf, sizeof(buf), "%s", n);
	else
		snprintf(buf, sizeof(buf), "%s:%" PRIu32, an->module, code);
	return ks_anat_reason(an, isa, code, buf);
}

/* The reason given to the faults of a KVM without kvm_exit (kvmmmu records). */
static uint16_t mmu_reason(struct ks_anatomy *an)
{
	char buf[48];

	snprintf(buf, sizeof(buf), "%s:page_fault", an->module);
	return ks_anat_reason(an, UINT32_MAX - 1, 0, buf);
}

/* ---- the timeline ---- */

static void push_iv(struct ks_an_thread *th, uint64_t s, uint64_t e, int state, uint16_t reason)
{
	struct ks_an_iv *last = th->niv ? &th->iv[th->niv - 1] : NULL;

	if (e <= s)
		return;
	if (last && last->end == s && last->state == state && last->reason == reason) {
		last->end = e;
		return;
	}
	if (th->niv == th->capiv) {
		th->capiv = th->capiv ? th->capiv * 2 : 1024;
		th->iv = xrealloc(th->iv, th->capiv * sizeof(*th->iv));
	}
	th->iv[th->niv++] = (struct ks_an_iv){ s, e, (uint16_t)state, reason };
}

static void push_fault(struct ks_an_fault **v, size_t *n, size_t *cap, uint64_t t, uint64_t addr)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 1024;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = (struct ks_an_fault){ t, addr };
}

/* End the KVM interval that is open at @t, if the thread is on a CPU. */
static void kvm_piece(struct ks_an_thread *th, uint64_t t)
{
	if (th->kvm && !th->off)
		push_iv(th, th->kvm_start, t, KS_AN_IN_KVM, th->kvm_reason);
}

/* A fault (kvmmmu records) goes off the CPU: keep what it ran so far, tentatively. */
static void fault_piece(struct ks_an_thread *th, uint64_t t)
{
	if (!th->fault || th->off)
		return;
	if (th->nfault_pieces < ARRAY_SIZE(th->fault_piece)) {
		th->fault_piece[th->nfault_pieces].start = th->fault_start;
		th->fault_piece[th->nfault_pieces].end = t;
		th->nfault_pieces++;
	}
}

/* The fault was fixed at @t: all its pieces were in KVM. */
static void fault_fixed(struct ks_an_thread *th, uint64_t t, uint16_t reason)
{
	unsigned int i;

	for (i = 0; i < th->nfault_pieces; i++)
		push_iv(th, th->fault_piece[i].start, th->fault_piece[i].end, KS_AN_IN_KVM, reason);
	if (!th->off)
		push_iv(th, th->fault_start, t, KS_AN_IN_KVM, reason);
	th->fault = false;
	th->nfault_pieces = 0;
}

void ks_anat_feed(struct ks_an_thread *th, enum ks_an_ev ev, uint64_t t, uint16_t reason,
		  uint64_t addr)
{
	th->records++;
	switch (ev) {
	case KS_AN_EV_SWITCH_OUT:
		if (th->off)
			break;
		kvm_piece(th, t);
		fault_piece(th, t);
		th->off = true;
		th->off_start = t;
		th->off_preempt = reason != 0;
		break;
	case KS_AN_EV_SWITCH_IN:
		if (th->off)
			push_iv(th, th->off_start, t,
				th->off_preempt ? KS_AN_PREEMPTED : KS_AN_BLOCKED, 0);
		th->off = false;
		th->kvm_start = t;
		th->fault_start = t;
		break;
	case KS_AN_EV_EXIT:
		th->exits_seen = true;
		kvm_piece(th, t);
		th->kvm = true;
		th->kvm_reason = reason;
		th->kvm_start = t;
		break;
	case KS_AN_EV_ENTRY:
	case KS_AN_EV_USER_EXIT:
		kvm_piece(th, t);
		th->kvm = false;
		th->fault = false; /* a fault not fixed: its end is unknown */
		th->nfault_pieces = 0;
		break;
	case KS_AN_EV_PAGE_FAULT:
		push_fault(&th->faults, &th->nfaults, &th->capfaults, t, addr);
		break;
	case KS_AN_EV_MMU_WALK:
		push_fault(&th->walks, &th->nwalks, &th->capwalks, t, addr);
		if (th->exits_seen)
			break;
		/* No kvm_exit on this KVM: a fault runs from its walk to its spte. */
		th->fault = true;
		th->fault_start = t;
		th->kvm_reason = reason;
		th->nfault_pieces = 0;
		break;
	case KS_AN_EV_MMU_SET:
		if (th->exits_seen || !th->fault)
			break;
		fault_fixed(th, t, th->kvm_reason);
		break;
	}
}

void ks_anat_close(struct ks_an_thread *th, uint64_t t)
{
	if (th->off)
		push_iv(th, th->off_start, t, th->off_preempt ? KS_AN_PREEMPTED : KS_AN_BLOCKED, 0);
	else
		kvm_piece(th, t);
	th->off = th->kvm = th->fault = false;
	th->nfault_pieces = 0;
}

static int cmp_iv(const void *a, const void *b)
{
	const struct ks_an_iv *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_fault(const void *a, const void *b)
{
	const struct ks_an_fault *x = a, *y = b;

	return x->t < y->t ? -1 : x->t > y->t;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void ks_anat_sort_thread(struct ks_an_thread *th)
{
	/* A thread's ring is in time order; sort anyway, the split relies on it. */
	if (th->niv)
		qsort(th->iv, th->niv, sizeof(*th->iv), cmp_iv);
	if (th->nfaults)
		qsort(th->faults, th->nfaults, sizeof(*th->faults), cmp_fault);
	if (th->nwalks)
		qsort(th->walks, th->nwalks, sizeof(*th->walks), cmp_fault);
}

void ks_anat_sort_notifications(struct ks_anatomy *an)
{
	/* The per-CPU rings interleave. */
	if (an->nnotif)
		qsort(an->notif_t, an->nnotif, sizeof(*an->notif_t), cmp_u64);
}

/* First fault at or after @t. */
static size_t fault_lb(const struct ks_an_fault *f, size_t n, uint64_t t)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f[mid].t < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t u64_lb(const uint64_t *v, size_t n, uint64_t t)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void ks_anat_split(const struct ks_anatomy *an, const struct ks_an_thread *th, uint64_t s,
		   uint64_t e, struct ks_causes *c)
{
	const struct ks_an_fault *f = th->nfaults ? th->faults : th->walks;
	size_t nf = th->nfaults ? th->nfaults : th->nwalks;
	double seen = 0, len = (double)(e - s);
	size_t lo = 0, hi = th->niv, i, a, b;

	if (e <= s)
		return;
	c->stalls++;
	c->stall_ns += len;
	/* Intervals do not overlap: their ends are sorted like their starts. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (th->iv[mid].end <= s)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < th->niv && th->iv[i].start < e; i++) {
		const struct ks_an_iv *v = &th->iv[i];
		uint64_t x = v->start > s ? v->start : s, y = v->end < e ? v->end : e;
		double ov;

		if (y <= x)
			continue;
		ov = (double)(y - x);
		seen += ov;
		if (v->state == KS_AN_PREEMPTED)
			c->preempted_ns += ov;
		else if (v->state == KS_AN_BLOCKED)
			c->blocked_ns += ov;
		else {
			c->in_kvm_ns += ov;
			c->reason_ns[v->reason < KS_AN_MAX_REASONS ? v->reason :
								     KS_AN_MAX_REASONS - 1] += ov;
		}
	}
	c->unexplained_ns += len > seen ? len - seen : 0;
	/* Page faults in the stall, and those on an address already faulted on in it. */
	a = fault_lb(f, nf, s);
	b = fault_lb(f, nf, e);
	if (b > a) {
		uint64_t *addr = xcalloc(b - a, sizeof(*addr));

		for (i = a; i < b; i++)
			addr[i - a] = f[i].addr;
		qsort(addr, b - a, sizeof(*addr), cmp_u64);
		for (i = 1; i < b - a; i++)
			c->repeated_faults += addr[i] == addr[i - 1];
		c->page_faults += b - a;
		free(addr);
	}
	if (an)
		c->notifications +=
			u64_lb(an->notif_t, an->nnotif, e) - u64_lb(an->notif_t, an->nnotif, s);
}

void ks_causes_add(struct ks_causes *d, const struct ks_causes *s)
{
	unsigned int i;

	d->stalls += s->stalls;
	d->stall_ns += s->stall_ns;
	d->preempted_ns += s->preempted_ns;
	d->blocked_ns += s->blocked_ns;
	d->in_kvm_ns += s->in_kvm_ns;
	d->unexplained_ns += s->unexplained_ns;
	for (i = 0; i < KS_AN_MAX_REASONS; i++)
		d->reason_ns[i] += s->reason_ns[i];
	d->page_faults += s->page_faults;
	d->repeated_faults += s->repeated_faults;
	d->notifications += s->notifications;
}

/* ---- rings ---- */

static void ring_copy(const struct ks_an_thread *th, uint64_t pos, void *dst, size_t n)
{
	const struct perf_event_mmap_page *pg = th->ring;
	uint64_t size = pg->data_size ? pg->data_size : th->ring_len - AN_PAGE;
	uint64_t off = pg->data_offset ? pg->data_offset : AN_PAGE;
	const uint8_t *data = (const uint8_t *)th->ring + off;
	size_t at = (size_t)(pos % size), first = n < size - at ? n : (size_t)(size - at);

	memcpy(dst, data + at, first);
	memcpy((uint8_t *)dst + first, data, n - first);
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static int kind_of(const struct ks_an_thread *th, uint64_t id)
{
	unsigned int i;

	for (i = 0; i < th->nfds; i++)
		if (th->ids[i] == id)
			return th->kinds[i];
	return -1;
}

static void add_notification(struct ks_anatomy *an, uint64_t t)
{
	if (an->nnotif == an->capnotif) {
		an->capnotif = an->capnotif ? an->capnotif * 2 : 4096;
		an->notif_t = xrealloc(an->notif_t, an->capnotif * sizeof(*an->notif_t));
	}
	an->notif_t[an->nnotif++] = t;
}

/* A field of a raw tracepoint record, if it lies inside it. */
static bool raw_u64(const uint8_t *raw, uint32_t rawlen, int off, int size, uint64_t *v)
{
	if (off < 0 || size <= 0 || (uint64_t)off + (uint64_t)size > rawlen)
		return false;
	*v = size == 8 ? get_u64(raw + off) : size == 4 ? get_u32(raw + off) : 0;
	return size == 8 || size == 4;
}

void ks_anat_record(struct ks_anatomy *an, struct ks_an_thread *th, const void *rec, size_t len,
		    bool cpu_ring)
{
	const uint8_t *r = rec;
	const struct perf_event_header *h = rec;
	uint64_t t, v;
	int kind;

	if (len < sizeof(*h) || h->size != len)
		return;
	switch (h->type) {
	case PERF_RECORD_LOST:
		if (len >= sizeof(*h) + 16)
			th->lost += get_u64(r + sizeof(*h) + 8);
		return;
	case PERF_RECORD_THROTTLE:
		th->throttles++;
		return;
	case PERF_RECORD_SWITCH:
		/* sample_id trailer: pid, tid, time, identifier */
		if (cpu_ring || len < sizeof(*h) + 24)
			return;
		t = get_u64(r + len - 16);
		ks_anat_feed(th,
			     h->misc & PERF_RECORD_MISC_SWITCH_OUT ? KS_AN_EV_SWITCH_OUT :
								     KS_AN_EV_SWITCH_IN,
			     t, (h->misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT) ? 1 : 0, 0);
		return;
	case PERF_RECORD_SAMPLE:
		break;
	default:
		return;
	}
	/* identifier, pid/tid, time, raw size, raw data */
	if (len < sizeof(*h) + 28)
		return;
	kind = kind_of(th, get_u64(r + sizeof(*h)));
	t = get_u64(r + sizeof(*h) + 16);
	{
		uint32_t rawlen = get_u32(r + sizeof(*h) + 24);
		const uint8_t *raw = r + sizeof(*h) + 28;

		if ((uint64_t)rawlen > len - sizeof(*h) - 28)
			return;
		if (cpu_ring) {
			if (kind >= TP_NTHREAD && kind < TP_N)
				add_notification(an, t);
			return;
		}
		switch (kind) {
		case TP_EXIT: {
			uint64_t code = 0, isa = 0;

			raw_u64(raw, rawlen, an->exit_reason_off, 4, &code);
			raw_u64(raw, rawlen, an->exit_isa_off, 4, &isa);
			ks_anat_feed(th, KS_AN_EV_EXIT, t,
				     ks_anat_exit_reason(an, (uint32_t)isa, (uint32_t)code), 0);
			break;
		}
		case TP_ENTRY:
			ks_anat_feed(th, KS_AN_EV_ENTRY, t, 0, 0);
			break;
		case TP_USER_EXIT:
			ks_anat_feed(th, KS_AN_EV_USER_EXIT, t, 0, 0);
			break;
		case TP_PAGE_FAULT:
			v = 0;
			raw_u64(raw, rawlen, an->pf_addr_off, an->pf_addr_size, &v);
			ks_anat_feed(th, KS_AN_EV_PAGE_FAULT, t, 0, v);
			break;
		case TP_MMU_WALK:
			v = 0;
			raw_u64(raw, rawlen, an->walk_addr_off, 8, &v);
			ks_anat_feed(th, KS_AN_EV_MMU_WALK, t, mmu_reason(an), v);
			break;
		case TP_MMU_SET:
			ks_anat_feed(th, KS_AN_EV_MMU_SET, t, 0, 0);
			break;
		default:
			break;
		}
	}
}

static void drain(struct ks_anatomy *an, struct ks_an_thread *th, bool cpu_ring, uint8_t *buf)
{
	struct perf_event_mmap_page *pg = th->ring;
	uint64_t head, tail;

	if (!__atomic_load_n(&th->attached, __ATOMIC_ACQUIRE))
		return;
	head = __atomic_load_n(&pg->data_head, __ATOMIC_ACQUIRE);
	tail = pg->data_tail;
	while (tail < head) {
		struct perf_event_header h;

		ring_copy(th, tail, &h, sizeof(h));
		if (h.size < sizeof(h) || h.size > head - tail)
			break; /* cannot happen with a sane kernel: drop the rest */
		ring_copy(th, tail, buf, h.size);
		ks_anat_record(an, th, buf, h.size, cpu_ring);
		tail += h.size;
	}
	__atomic_store_n(&pg->data_tail, head, __ATOMIC_RELEASE);
}

static void drain_all(struct ks_vm *vm, uint8_t *buf)
{
	struct ks_anatomy *an = &vm->anatomy;
	unsigned int i;

	for (i = 0; i < vm->layout.nvcpus; i++)
		drain(an, &vm->vcpus[i].an, false, buf);
	for (i = 0; i < an->ncpus; i++)
		drain(an, &an->cpus[i], true, buf);
}

/* Add the ring of @th to the poll set, once it is attached. */
static void poll_add(struct pollfd *p, unsigned int *n, struct ks_an_thread *th)
{
	if (!__atomic_load_n(&th->attached, __ATOMIC_ACQUIRE) || !th->nfds)
		return;
	p[*n].fd = th->fds[0];
	p[*n].events = POLLIN;
	p[*n].revents = 0;
	(*n)++;
}

/*
 * Sleeps in poll() until a ring is half full (the watermark), the run ends
 * (the eventfd) or AN_POLL_MS pass, so a quiet run costs its vCPUs nothing.
 */
static void *collector(void *arg)
{
	struct ks_vm *vm = arg;
	struct ks_anatomy *an = &vm->anatomy;
	uint8_t *buf = xcalloc(1, AN_REC_MAX);
	unsigned int max = vm->layout.nvcpus + an->ncpus + 1, n, i;
	struct pollfd *p = xcalloc(max, sizeof(*p));
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_setname_np(pthread_self(), "ks-anatomy");
	while (!__atomic_load_n(&an->stop, __ATOMIC_ACQUIRE)) {
		n = 0;
		p[n].fd = an->wake_fd;
		p[n].events = POLLIN;
		p[n++].revents = 0;
		for (i = 0; !an->no_drain && i < vm->layout.nvcpus; i++)
			poll_add(p, &n, &vm->vcpus[i].an);
		for (i = 0; !an->no_drain && i < an->ncpus; i++)
			poll_add(p, &n, &an->cpus[i]);
		if (poll(p, n, AN_POLL_MS) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLIN) {
			uint64_t v;

			if (read(an->wake_fd, &v, sizeof(v)) < 0)
				pr_debug("stall anatomy: eventfd read: %s", strerror(errno));
		}
		if (__atomic_load_n(&an->stop, __ATOMIC_ACQUIRE))
			break;
		/* With the test hook, once, when the run ends: overflowed rings report it. */
		if (__atomic_exchange_n(&an->drain_once, 0, __ATOMIC_ACQ_REL) || !an->no_drain)
			drain_all(vm, buf);
		__atomic_add_fetch(&an->drains, 1, __ATOMIC_RELEASE);
	}
	free(p);
	free(buf);
	return NULL;
}

/* Map a ring on @fd, halving it when the locked-memory limit says no. */
static bool map_ring(struct ks_an_thread *th, int fd, size_t pages)
{
	for (; pages >= 1; pages /= 2) {
		size_t len = (pages + 1) * AN_PAGE;
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		if (p != MAP_FAILED) {
			th->ring = p;
			th->ring_len = len;
			return true;
		}
		if (errno != EPERM && errno != ENOMEM)
			return false;
	}
	return false;
}

static void add_fd(struct ks_an_thread *th, int fd, int kind)
{
	uint64_t id = 0;

	if (th->nfds == ARRAY_SIZE(th->fds) || ioctl(fd, PERF_EVENT_IOC_ID, &id) < 0) {
		close(fd);
		return;
	}
	th->fds[th->nfds] = fd;
	th->ids[th->nfds] = id;
	th->kinds[th->nfds] = kind;
	th->nfds++;
}

/* The tracepoints @lo..@hi-1 on the ring of @th (pid/cpu as for perf_event_open). */
static void add_tracepoints(struct ks_anatomy *an, struct ks_an_thread *th, int ring_fd, int lo,
			    int hi, pid_t pid, int cpu)
{
	struct perf_event_attr a;
	int k, fd;

	for (k = lo; k < hi; k++) {
		if (an->tp_id[k] < 0)
			continue;
		attr_tracepoint(&a, (uint64_t)an->tp_id[k]);
		fd = perf_open(&a, pid, cpu);
		if (fd < 0)
			continue;
		if (ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, ring_fd) < 0) {
			close(fd);
			continue;
		}
		add_fd(th, fd, k);
	}
}

static void close_thread(struct ks_an_thread *th)
{
	unsigned int i;

	__atomic_store_n(&th->attached, false, __ATOMIC_RELEASE);
	for (i = 0; i < th->nfds; i++)
		close(th->fds[i]);
	th->nfds = 0;
	if (th->ring)
		munmap(th->ring, th->ring_len);
	th->ring = NULL;
}

static void free_thread(struct ks_an_thread *th)
{
	close_thread(th);
	free(th->iv);
	free(th->faults);
	free(th->walks);
	th->iv = NULL;
	th->faults = th->walks = NULL;
	th->niv = th->nfaults = th->nwalks = 0;
}

static void note_missing(struct ks_anatomy *an, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note_missing(struct ks_anatomy *an, const char *fmt, ...)
{
	size_t n = strlen(an->missing);
	va_list ap;

	if (n && n + 2 < sizeof(an->missing)) {
		strcpy(an->missing + n, "; ");
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(an->missing + n, sizeof(an->missing) - n, fmt, ap);
	va_end(ap);
}

static int paranoid(void)
{
	char *s = read_file("/proc/sys/kernel/perf_event_paranoid");
	int p = s ? atoi(s) : 2;

	free(s);
	return p;
}

/*
 * Find the tracepoints, mounting tracefs when it is not and we may.  It
 * stays mounted: another kvmstall may be reading it, as on most systems.
 */
static void find_tracefs(struct ks_anatomy *an)
{
	struct stat st;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(events_dirs); i++) {
		char p[128];

		snprintf(p, sizeof(p), "%s/kvm", events_dirs[i]);
		if (!stat(p, &st)) {
			an->events_dir = events_dirs[i];
			return;
		}
	}
	if (!stat("/sys/kernel/tracing/events", &st)) {
		note_missing(an, "no KVM tracepoints: tracefs has no events/kvm");
		return;
	}
	if (!stat("/sys/kernel/tracing", &st) &&
	    !mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL)) {
		an->mounted_tracefs = true;
		if (!stat("/sys/kernel/tracing/events/kvm", &st)) {
			an->events_dir = events_dirs[0];
			return;
		}
		note_missing(an, "no KVM tracepoints: tracefs has no events/kvm");
		return;
	}
	/*
	 * EBUSY: another process (a second kvmstall, say) mounted tracefs there
	 * between the stat and the mount.  It is there now: use it.
	 */
	if (errno == EBUSY && !stat("/sys/kernel/tracing/events/kvm", &st)) {
		an->events_dir = events_dirs[0];
		return;
	}
	note_missing(an,
		     "no KVM tracepoints: tracefs is not mounted and could not be (%s); as root: "
		     "mount -t tracefs nodev /sys/kernel/tracing",
		     strerror(errno));
}

void anatomy__setup(struct ks_vm *vm)
{
	struct ks_anatomy *an = &vm->anatomy;
	struct perf_event_attr a;
	int k, fd, tp_errno = 0;
	unsigned int i, n = vm->layout.nvcpus;
	size_t per;
	char *s;
	long ncpu;

	an->enabled = vm->cfg->anatomy;
	for (k = 0; k < (int)ARRAY_SIZE(an->tp_id); k++)
		an->tp_id[k] = -1;
	an->exit_reason_off = an->exit_isa_off = an->pf_addr_off = an->walk_addr_off = -1;
	if (!an->enabled)
		return;
	an->no_drain = getenv("KVMSTALL_TEST_ANATOMY") &&
		       !strcmp(getenv("KVMSTALL_TEST_ANATOMY"), "no-drain");
	module_name(an);
	/* Rings: the default size, less with many vCPUs, in pages of a power of two. */
	per = AN_RING_BYTES;
	while (per > 4 * AN_PAGE && per * n > AN_RINGS_MAX_BYTES)
		per /= 2;
	an->ring_pages = per / AN_PAGE;
	/* The test hook: one page, so that any run overflows it. */
	if (an->no_drain)
		an->ring_pages = 1;

	/* Context switches: can this process see its own? */
	attr_switches(&a);
	fd = perf_open(&a, 0, -1);
	if (fd < 0) {
		note_missing(
			an,
			"no perf events at all (perf_event_open: %s; kernel.perf_event_paranoid "
			"is %d): run as root, or lower it",
			strerror(errno), paranoid());
		an->enabled = false;
		return;
	}
	close(fd);
	an->switches = true;

	find_tracefs(an);
	for (k = 0; an->events_dir && k < TP_N; k++) {
		s = tp_file(an, k, "id");
		if (!s)
			continue;
		an->tp_id[k] = atoll(s);
		free(s);
		/* Held open on this thread from now on: no tracepoint is switched on mid-run. */
		attr_tracepoint(&a, (uint64_t)an->tp_id[k]);
		fd = perf_open(&a, 0, -1);
		if (fd < 0) {
			tp_errno = errno;
			an->tp_id[k] = -1;
			continue;
		}
		if (an->nanchors < ARRAY_SIZE(an->anchors))
			an->anchors[an->nanchors++] = fd;
		else
			close(fd);
	}
	if (an->events_dir && tp_errno && an->tp_id[TP_EXIT] < 0 && an->tp_id[TP_MMU_WALK] < 0)
		note_missing(
			an,
			"no KVM tracepoints (perf_event_open: %s; kernel.perf_event_paranoid is "
			"%d): run as root or with CAP_PERFMON; in-KVM time is left unexplained",
			strerror(tp_errno), paranoid());
	if (an->tp_id[TP_EXIT] >= 0 && an->tp_id[TP_ENTRY] < 0)
		an->tp_id[TP_EXIT] = -1; /* an exit without its entry explains nothing */
	an->exits = an->tp_id[TP_EXIT] >= 0;
	an->page_faults = an->tp_id[TP_PAGE_FAULT] >= 0;
	an->mmu_faults = an->tp_id[TP_MMU_WALK] >= 0 && an->tp_id[TP_MMU_SET] >= 0;
	if (!an->mmu_faults)
		an->tp_id[TP_MMU_WALK] = an->tp_id[TP_MMU_SET] = -1;
	if (an->exits) {
		s = tp_file(an, TP_EXIT, "format");
		if (s) {
			int size;

			if (!field_of(s, "exit_reason", &an->exit_reason_off, &size) || size != 4)
				an->exit_reason_off = -1;
			if (!field_of(s, "isa", &an->exit_isa_off, &size) || size != 4)
				an->exit_isa_off = -1;
			ks_anat_exit_names(an, s);
			free(s);
		}
	}
	if (an->page_faults) {
		s = tp_file(an, TP_PAGE_FAULT, "format");
		if (!s || !field_of(s, "fault_address", &an->pf_addr_off, &an->pf_addr_size))
			an->pf_addr_off = -1;
		free(s);
	}
	if (an->mmu_faults) {
		int size;

		s = tp_file(an, TP_MMU_WALK, "format");
		if (!s || !field_of(s, "addr", &an->walk_addr_off, &size) || size != 8)
			an->walk_addr_off = -1;
		free(s);
	}

	/* Notifications come from any thread: one ring per CPU (root only). */
	ncpu = sysconf(_SC_NPROCESSORS_CONF);
	an->cpus = xcalloc(ncpu > 0 ? (size_t)ncpu : 1, sizeof(*an->cpus));
	for (i = 0; ncpu > 0 && i < (unsigned int)ncpu; i++) {
		struct ks_an_thread *c = &an->cpus[an->ncpus];
		int first = -1;

		for (k = TP_NTHREAD; k < TP_N && first < 0; k++) {
			if (an->tp_id[k] < 0)
				continue;
			attr_tracepoint(&a, (uint64_t)an->tp_id[k]);
			attr_wake_half(&a, AN_CPU_RING_BYTES / AN_PAGE);
			first = perf_open(&a, -1, (int)i);
			if (first >= 0 && !map_ring(c, first, AN_CPU_RING_BYTES / AN_PAGE)) {
				close(first);
				first = -1;
			}
			if (first >= 0) {
				add_fd(c, first, k);
				add_tracepoints(an, c, first, k + 1, TP_N, -1, (int)i);
			}
		}
		if (first < 0)
			continue;
		__atomic_store_n(&c->attached, true, __ATOMIC_RELEASE);
		an->ncpus++;
	}
	an->notifications = an->ncpus > 0;
	for (k = TP_NTHREAD; k < TP_N; k++) {
		size_t l = strlen(an->notif_names);

		if (an->tp_id[k] >= 0 && an->notifications)
			snprintf(an->notif_names + l, sizeof(an->notif_names) - l, "%s%s",
				 l ? "," : "", tps[k].name);
	}
}

void anatomy__attach(struct ks_vm *vm, struct ks_vcpu *vcpu)
{
	struct ks_anatomy *an = &vm->anatomy;
	struct ks_an_thread *th = &vcpu->an;
	struct perf_event_attr a;
	int fd;

	if (!an->enabled)
		return;
	attr_switches(&a);
	attr_wake_half(&a, an->ring_pages);
	fd = perf_open(&a, 0, -1);
	if (fd < 0) {
		th->attach_errno = errno;
		return;
	}
	if (!map_ring(th, fd, an->ring_pages)) {
		th->attach_errno = errno;
		close(fd);
		return;
	}
	add_fd(th, fd, KIND_SWITCH);
	add_tracepoints(an, th, fd, 0, TP_NTHREAD, 0, -1);
	/*
	 * Descriptors are handed out lowest first, so the highest one this
	 * thread holds says how many are in use.  The rest of the run (its
	 * reports, the collector's eventfd, event streams) must still get
	 * theirs: a thread that leaves fewer than AN_FD_RESERVE goes without.
	 */
	if (th->nfds && th->fds[th->nfds - 1] >= nofile_limit() - AN_FD_RESERVE) {
		close_thread(th);
		th->attach_errno = EMFILE;
		return;
	}
	__atomic_store_n(&th->attached, true, __ATOMIC_RELEASE);
}

/* The tracepoints held open from the start (anchors), closed once. */
static void close_anchors(struct ks_anatomy *an)
{
	unsigned int i;

	for (i = 0; i < an->nanchors; i++)
		close(an->anchors[i]);
	an->nanchors = 0;
}

/* Off after all: every ring and descriptor goes back before the reports need theirs. */
static void turn_off(struct ks_vm *vm)
{
	struct ks_anatomy *an = &vm->anatomy;
	unsigned int i;

	an->enabled = false;
	if (an->wake_fd >= 0)
		close(an->wake_fd);
	an->wake_fd = -1;
	for (i = 0; i < vm->layout.nvcpus; i++)
		close_thread(&vm->vcpus[i].an);
	for (i = 0; i < an->ncpus; i++)
		close_thread(&an->cpus[i]);
	close_anchors(an);
}

void anatomy__start(struct ks_vm *vm)
{
	struct ks_anatomy *an = &vm->anatomy;
	int r;

	if (!an->enabled)
		return;
	an->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (an->wake_fd < 0) {
		pr_warning("stall anatomy: cannot create an eventfd (%s); it is off",
			   strerror(errno));
		turn_off(vm);
		return;
	}
	r = pthread_create(&an->collector, NULL, collector, vm);
	if (r) {
		pr_warning("stall anatomy: cannot start its collector thread (%s); it is off",
			   strerror(r));
		turn_off(vm);
		return;
	}
	an->collector_started = true;
}

void anatomy__run_ended(struct ks_vm *vm)
{
	struct ks_anatomy *an = &vm->anatomy;
	uint64_t one = 1;

	struct timespec ms = { 0, 1000 * 1000 };
	uint64_t gen;
	unsigned int i;

	if (!an->collector_started)
		return;
	gen = __atomic_load_n(&an->drains, __ATOMIC_ACQUIRE);
	__atomic_store_n(&an->drain_once, 1, __ATOMIC_RELEASE);
	if (write(an->wake_fd, &one, sizeof(one)) < 0)
		pr_debug("stall anatomy: eventfd write: %s", strerror(errno));
	/*
	 * Until a pass that began after the request is over (the one under way
	 * may have begun before): at most 5 s, it is only a courtesy.
	 */
	for (i = 0; i < 5000 && __atomic_load_n(&an->drains, __ATOMIC_ACQUIRE) < gen + 2; i++)
		nanosleep(&ms, NULL);
}

void anatomy__stop(struct ks_vm *vm)
{
	struct ks_anatomy *an = &vm->anatomy;
	uint64_t end = now_ns();
	unsigned int i, failed = 0;
	int err = 0;
	uint8_t *buf;

	if (!an->enabled)
		return;
	if (an->collector_started) {
		uint64_t one = 1;

		__atomic_store_n(&an->stop, 1, __ATOMIC_RELEASE);
		if (write(an->wake_fd, &one, sizeof(one)) < 0)
			pr_debug("stall anatomy: eventfd write: %s", strerror(errno));
		pthread_join(an->collector, NULL);
		an->collector_started = false;
	}
	if (an->wake_fd > 0)
		close(an->wake_fd);
	an->wake_fd = -1;
	buf = xcalloc(1, AN_REC_MAX);
	drain_all(vm, buf);
	free(buf);
	for (i = 0; i < vm->layout.nvcpus; i++) {
		struct ks_an_thread *th = &vm->vcpus[i].an;

		if (th->attach_errno || !th->ring) {
			failed++;
			err = th->attach_errno;
		}
		ks_anat_close(th, end);
		close_thread(th);
		an->lost_total += th->lost;
		an->throttles_total += th->throttles;
		an->records_total += th->records;
	}
	for (i = 0; i < an->ncpus; i++) {
		close_thread(&an->cpus[i]);
		an->lost_total += an->cpus[i].lost;
		an->throttles_total += an->cpus[i].throttles;
	}
	close_anchors(an);
	if (failed) {
		if (err == EMFILE)
			note_missing(an,
				     "%u of %u vCPU threads had no perf ring (the open file limit, "
				     "%d, is too low for them all: raise ulimit -n)",
				     failed, vm->layout.nvcpus, nofile_limit());
		else
			note_missing(an, "%u of %u vCPU threads had no perf ring (%s)", failed,
				     vm->layout.nvcpus, strerror(err));
		if (failed == vm->layout.nvcpus)
			an->switches = an->exits = an->page_faults = an->mmu_faults = false;
	}
	ks_anat_sort_notifications(an);
	for (i = 0; i < vm->layout.nvcpus; i++)
		ks_anat_sort_thread(&vm->vcpus[i].an);
	if (an->missing[0])
		pr_warning("stall anatomy: %s", an->missing);
}

void anatomy__free(struct ks_vm *vm)
{
	struct ks_anatomy *an = &vm->anatomy;
	unsigned int i;

	for (i = 0; vm->vcpus && i < vm->layout.nvcpus; i++)
		free_thread(&vm->vcpus[i].an);
	for (i = 0; i < an->ncpus; i++)
		free_thread(&an->cpus[i]);
	close_anchors(an);
	free(an->cpus);
	free(an->notif_t);
	free(an->vmx);
	free(an->svm);
	an->cpus = NULL;
	an->notif_t = NULL;
	an->vmx = an->svm = NULL;
	an->ncpus = 0;
}
