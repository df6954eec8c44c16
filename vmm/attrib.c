// SPDX-License-Identifier: MIT
/* Matching stalls to events on the host clock; see attrib.h. */
#include "config.h"

#include "attrib.h"

#include <stdlib.h>
#include <string.h>

#include "kvmstall.h"
#include "util.h"

struct span {
	uint64_t start;
	uint64_t end;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

struct ks_pct ks_percentiles(uint64_t *v, size_t n)
{
	struct ks_pct p = { 0, 0, 0 };

	if (!n)
		return p;
	qsort(v, n, sizeof(*v), cmp_u64);
	/* nearest rank */
	p.p50 = (double)v[(n * 50 + 99) / 100 - 1];
	p.p99 = (double)v[(n * 99 + 99) / 100 - 1];
	p.max = (double)v[n - 1];
	return p;
}

/* Events of one stream as sorted spans with a running maximum of their ends. */
struct spans {
	struct span *s;
	uint64_t *max_end;
	size_t n;
};

/* Sort by start and compute the running maximum of the ends. */
static void spans_sort(struct spans *sp)
{
	size_t i;

	qsort(sp->s, sp->n, sizeof(*sp->s), cmp_span);
	for (i = 0; i < sp->n; i++)
		sp->max_end[i] = i && sp->max_end[i - 1] > sp->s[i].end ? sp->max_end[i - 1] :
									  sp->s[i].end;
}

static void spans_build(struct spans *sp, const struct ks_stream *st)
{
	size_t i;

	sp->n = st->nrecs;
	sp->s = xcalloc(sp->n, sizeof(*sp->s));
	sp->max_end = xcalloc(sp->n, sizeof(*sp->max_end));
	for (i = 0; i < sp->n; i++) {
		sp->s[i].start = st->recs[i].start_ns;
		sp->s[i].end = st->recs[i].end_ns > st->recs[i].start_ns ? st->recs[i].end_ns :
									   st->recs[i].start_ns + 1;
	}
	spans_sort(sp);
}

/* Whether any span overlaps [a, b). */
static bool spans_hit(const struct spans *sp, uint64_t a, uint64_t b)
{
	size_t lo = 0, hi = sp->n;

	/* last span starting before b */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (sp->s[mid].start < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo-- > 0) {
		if (sp->max_end[lo] <= a)
			return false;
		if (sp->s[lo].end > a)
			return true;
	}
	return false;
}

/* Length of the union of the spans, clipped to [a, b). */
static uint64_t spans_cover(const struct spans *sp, uint64_t a, uint64_t b)
{
	uint64_t total = 0, cur_s = 0, cur_e = 0;
	size_t i;

	for (i = 0; i < sp->n; i++) {
		uint64_t s = sp->s[i].start < a ? a : sp->s[i].start;
		uint64_t e = sp->s[i].end > b ? b : sp->s[i].end;

		if (e <= s)
			continue;
		if (s > cur_e) {
			total += cur_e - cur_s;
			cur_s = s;
			cur_e = e;
		} else if (e > cur_e) {
			cur_e = e;
		}
	}
	return total + (cur_e - cur_s);
}

static void stream_timing(const struct ks_stream *st, struct ks_attrib_stream *o,
			  uint64_t run_end_ns)
{
	uint64_t *lat = xcalloc(st->nrecs, sizeof(uint64_t));
	uint64_t *late = xcalloc(st->nrecs, sizeof(uint64_t));
	uint64_t first_due = st->t_start + st->spec.delay_ns;
	size_t i;

	o->events = st->nrecs;
	o->errors = st->errors;
	for (i = 0; i < st->nrecs; i++) {
		const struct ks_ev_rec *r = &st->recs[i];

		lat[i] = r->end_ns > r->start_ns ? r->end_ns - r->start_ns : 0;
		late[i] = r->start_ns > r->due_ns ? r->start_ns - r->due_ns : 0;
		if (r->result && !o->first_error)
			o->first_error = r->result;
	}
	o->latency_ns = ks_percentiles(lat, st->nrecs);
	o->lateness_ns = ks_percentiles(late, st->nrecs);
	/* Over the run, or longer when the stream caught up after its end. */
	for (i = 0; i < st->nrecs; i++)
		if (st->recs[i].end_ns > run_end_ns)
			run_end_ns = st->recs[i].end_ns;
	if (run_end_ns > first_due)
		o->achieved_rate = (double)st->nrecs * 1e9 / (double)(run_end_ns - first_due);
	free(lat);
	free(late);
}

void attrib__compute(struct ks_vm *vm, uint64_t run_start_ns, uint64_t run_end_ns,
		     struct ks_attrib *a)
{
	struct spans *sp, all = { 0 };
	unsigned int i, k;
	size_t j, total = 0;
	double vcpu_s;

	memset(a, 0, sizeof(*a));
	a->n = vm->nstreams;
	a->s = xcalloc(a->n ? a->n : 1, sizeof(*a->s));
	sp = xcalloc(a->n ? a->n : 1, sizeof(*sp));
	for (k = 0; k < a->n; k++) {
		spans_build(&sp[k], &vm->streams[k]);
		stream_timing(&vm->streams[k], &a->s[k], run_end_ns);
		a->s[k].coverage_ns = spans_cover(&sp[k], run_start_ns, run_end_ns);
		total += sp[k].n;
	}
	/* Every event of every stream, for the baseline. */
	all.s = xcalloc(total ? total : 1, sizeof(*all.s));
	all.max_end = xcalloc(total ? total : 1, sizeof(*all.max_end));
	for (k = 0; k < a->n; k++)
		for (j = 0; j < sp[k].n; j++)
			all.s[all.n++] = sp[k].s[j];
	spans_sort(&all);
	a->base_ns = run_end_ns - run_start_ns - spans_cover(&all, run_start_ns, run_end_ns);

	a->has_causes = vm->anatomy.enabled;
	a->vcpu_causes =
		xcalloc(vm->layout.nvcpus ? vm->layout.nvcpus : 1, sizeof(*a->vcpu_causes));
	for (i = 0; i < vm->layout.nvcpus; i++) {
		const struct ks_vcpu *v = &vm->vcpus[i];
		const struct ks_vcpu_stats *st = &v->stats;

		if (!st->valid)
			continue;
		a->nvcpus++;
		a->vcpu_causes[i].lost_records = v->an.lost;
		for (j = 0; j < st->nrecs; j++) {
			struct ks_causes c;
			uint64_t s, e, len;
			bool hit = false;

			if (!ks_stall_place(vm, v, &st->recs[j], &s, &e))
				continue;
			len = e - s;
			memset(&c, 0, sizeof(c));
			if (a->has_causes) {
				ks_anat_split(&vm->anatomy, &v->an, s, e, &c);
				ks_causes_add(&a->vcpu_causes[i], &c);
				ks_causes_add(&a->total_causes, &c);
			}
			if (e <= run_start_ns || s >= run_end_ns)
				continue;
			a->stalls_total++;
			for (k = 0; k < a->n; k++) {
				if (spans_hit(&sp[k], s, e)) {
					a->s[k].stalls++;
					a->s[k].stall_ns += (double)len;
					ks_causes_add(&a->s[k].causes, &c);
					hit = true;
				}
			}
			if (!hit) {
				a->base_stalls++;
				a->base_stall_ns += (double)len;
				ks_causes_add(&a->base_causes, &c);
			}
		}
	}
	/* Records lost anywhere may hide the causes of any stall. */
	a->total_causes.lost_records = a->base_causes.lost_records = vm->anatomy.lost_total;
	for (k = 0; k < a->n; k++)
		a->s[k].causes.lost_records = vm->anatomy.lost_total;
	for (k = 0; k < a->n; k++) {
		vcpu_s = (double)a->s[k].coverage_ns / 1e9 * a->nvcpus;
		a->s[k].stalls_per_vcpu_s = vcpu_s > 0 ? (double)a->s[k].stalls / vcpu_s : 0;
		free(sp[k].s);
		free(sp[k].max_end);
	}
	vcpu_s = (double)a->base_ns / 1e9 * a->nvcpus;
	a->base_per_vcpu_s = vcpu_s > 0 ? (double)a->base_stalls / vcpu_s : 0;
	free(sp);
	free(all.s);
	free(all.max_end);
}

bool ks_stall_place(const struct ks_vm *vm, const struct ks_vcpu *v, const struct ks_stall_rec *r,
		    uint64_t *s, uint64_t *e)
{
	uint64_t dt;

	if (r->start_tsc < v->tsc_at_start || !vm->tsc_khz)
		return false;
	dt = r->start_tsc - v->tsc_at_start;
	*s = vm->t0_ns + (uint64_t)((unsigned __int128)dt * 1000000 / vm->tsc_khz);
	*e = *s + (uint64_t)((unsigned __int128)r->ticks * 1000000 / vm->tsc_khz);
	return true;
}

void attrib__free(struct ks_attrib *a)
{
	free(a->s);
	free(a->vcpu_causes);
	a->vcpu_causes = NULL;
	a->s = NULL;
	a->n = 0;
}
