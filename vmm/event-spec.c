// SPDX-License-Identifier: MIT
/* The event spec grammar: KIND:TARGET[:key=value,...]. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "util.h"

static const char *const kind_names[KS_EV_NR] = {
	[KS_EV_DONTNEED] = "madvise-dontneed",
	[KS_EV_FREE] = "madvise-free",
	[KS_EV_COLD] = "madvise-cold",
	[KS_EV_PAGEOUT] = "madvise-pageout",
	[KS_EV_REMOVE] = "madvise-remove",
	[KS_EV_HUGEPAGE] = "madvise-hugepage",
	[KS_EV_NOHUGEPAGE] = "madvise-nohugepage",
	[KS_EV_MERGEABLE] = "madvise-mergeable",
	[KS_EV_UNMERGEABLE] = "madvise-unmergeable",
	[KS_EV_MPROTECT] = "mprotect",
	[KS_EV_MIGRATE] = "migrate",
	[KS_EV_REMAP] = "remap",
	[KS_EV_MREMAP] = "mremap",
	[KS_EV_PUNCH] = "punch",
	[KS_EV_AGE_IDLE] = "age-idle",
	[KS_EV_AGE_KSM] = "age-ksm",
};

static const char *const target_names[KS_TGT_NR] = {
	[KS_TGT_INSIDE] = "inside",
	[KS_TGT_OUTSIDE] = "outside",
	[KS_TGT_EDGE] = "edge",
};

static const char *const edge_names[] = { "before", "after", "first", "last", "all" };

#define KINDS_HELP                                                                                 \
	"madvise-dontneed, madvise-free, madvise-cold, madvise-pageout, madvise-remove, "          \
	"madvise-hugepage, madvise-nohugepage, madvise-mergeable, madvise-unmergeable, mprotect, " \
	"migrate, remap, mremap, punch, age-idle or age-ksm"

const char *ks_ev_kind_name(enum ks_ev_kind k)
{
	return k < KS_EV_NR ? kind_names[k] : "?";
}

const char *ks_ev_target_name(enum ks_ev_target t)
{
	return t < KS_TGT_NR ? target_names[t] : "?";
}

bool ks_ev_preserves_data(enum ks_ev_kind k)
{
	switch (k) {
	case KS_EV_DONTNEED:
	case KS_EV_FREE:
	case KS_EV_REMOVE:
	case KS_EV_REMAP:
	case KS_EV_PUNCH:
		return false;
	default:
		return true;
	}
}

bool ks_via_parse(const char *s, enum ks_via *out)
{
	static const char *const names[] = {
		[KS_VIA_AUTO] = "auto", [KS_VIA_URING] = "uring", [KS_VIA_SYSCALL] = "syscall"
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum ks_via)i;
			return true;
		}
	}
	return false;
}

static int lookup(const char *const *names, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (names[i] && !strcmp(names[i], s))
			return (int)i;
	return -1;
}

static bool parse_double(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return !errno && end != s && !*end;
}

/* "0-3,5" into a bit mask of slots. */
static bool parse_slots(const char *s, uint64_t *mask)
{
	char buf[128], *tok, *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return false;
	snprintf(buf, sizeof(buf), "%s", s);
	*mask = 0;
	for (tok = strtok_r(buf, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
		unsigned long long a, b;
		char *dash = strchr(tok, '-');

		if (dash)
			*dash = '\0';
		if (!parse_uint(tok, 63, &a))
			return false;
		b = a;
		if (dash && !parse_uint(dash + 1, 63, &b))
			return false;
		if (b < a)
			return false;
		for (; a <= b; a++)
			*mask |= 1ULL << a;
	}
	return *mask != 0;
}

static int bad(char *err, size_t errlen, const char *text, const char *what, const char *accepted)
{
	snprintf(err, errlen, "invalid --events '%s': %s; %s", text, what, accepted);
	return -1;
}

static int parse_key(struct ks_ev_spec *o, const char *key, const char *val, char *err,
		     size_t errlen, const char *text)
{
	unsigned long long u;
	char what[320];
	int i;

	snprintf(what, sizeof(what), "bad value '%s' for %s", val, key);
	if (!strcmp(key, "rate")) {
		if (!parse_double(val, &o->rate) || !(o->rate > 0) || o->rate > 1e7)
			return bad(err, errlen, text, what,
				   "rate is events per second, above 0 and at most 10000000");
	} else if (!strcmp(key, "burst")) {
		if (!parse_uint(val, 1000000, &u) || !u)
			return bad(err, errlen, text, what, "burst is a count from 1 to 1000000");
		o->burst = (unsigned int)u;
	} else if (!strcmp(key, "every")) {
		if (!parse_duration(val, NSEC_PER_SEC, &o->every_ns) || o->every_ns < 1000)
			return bad(err, errlen, text, what,
				   "every is a time of at least 1us, such as 100ms");
	} else if (!strcmp(key, "delay")) {
		if (!parse_duration(val, NSEC_PER_SEC, &o->delay_ns))
			return bad(err, errlen, text, what, "delay is a time such as 2s or 500ms");
	} else if (!strcmp(key, "count")) {
		if (!parse_uint(val, UINT64_MAX, &u) || !u)
			return bad(err, errlen, text, what,
				   "count is a number of events, at least 1");
		o->count = u;
	} else if (!strcmp(key, "pages")) {
		if (!parse_uint(val, 1ULL << 30, &u) || !u)
			return bad(err, errlen, text, what,
				   "pages is a count of backing pages, at least 1");
		o->pages = u;
	} else if (!strcmp(key, "placement")) {
		if (strcmp(val, "random") && strcmp(val, "seq"))
			return bad(err, errlen, text, what, "placement is random or seq");
		o->random = !strcmp(val, "random");
	} else if (!strcmp(key, "slots")) {
		if (!parse_slots(val, &o->slot_mask))
			return bad(err, errlen, text, what,
				   "slots is a list of slot indexes such as 0, 1-3 or 0+2");
	} else if (!strcmp(key, "edge")) {
		i = lookup(edge_names, 5, val);
		if (i < 0)
			return bad(err, errlen, text, what,
				   "edge is before, after, first, last or all");
		o->edge = (enum ks_edge)i;
	} else if (!strcmp(key, "hold")) {
		if (strcmp(val, "met"))
			return bad(
				err, errlen, text, what,
				"hold takes one value, met: wait until the guest meets each event");
		o->hold_met = true;
	} else if (!strcmp(key, "via")) {
		if (!ks_via_parse(val, &o->via))
			return bad(err, errlen, text, what, "via is auto, uring or syscall");
		o->via_given = true;
	} else {
		snprintf(what, sizeof(what), "unknown key '%s'", key);
		return bad(
			err, errlen, text, what,
			"keys are rate, burst, every, delay, count, pages, placement, slots, edge, via "
			"and hold");
	}
	return 0;
}

int ks_ev_parse(const char *text, struct ks_ev_spec *o, char *err, size_t errlen)
{
	char buf[256], *kind, *target, *keys, *tok, *save = NULL;
	char what[320];
	int i;

	memset(o, 0, sizeof(*o));
	o->edge = KS_EDGE_ALL;
	o->pages = 1;
	o->random = true;
	o->burst = 1;
	snprintf(o->text, sizeof(o->text), "%s", text);
	if (strlen(text) >= sizeof(buf))
		return bad(err, errlen, text, "too long", "keep it under 256 characters");
	snprintf(buf, sizeof(buf), "%s", text);

	kind = buf;
	target = strchr(kind, ':');
	if (!target)
		return bad(err, errlen, text, "no target", "expected KIND:TARGET[:key=value,...]");
	*target++ = '\0';
	keys = strchr(target, ':');
	if (keys)
		*keys++ = '\0';

	i = lookup(kind_names, KS_EV_NR, kind);
	if (i < 0) {
		snprintf(what, sizeof(what), "unknown kind '%s'", kind);
		return bad(err, errlen, text, what, "kinds are " KINDS_HELP);
	}
	o->kind = (enum ks_ev_kind)i;
	i = lookup(target_names, KS_TGT_NR, target);
	if (i < 0) {
		snprintf(what, sizeof(what), "unknown target '%s'", target);
		return bad(err, errlen, text, what, "targets are inside, outside and edge");
	}
	o->target = (enum ks_ev_target)i;

	for (tok = keys ? strtok_r(keys, ",", &save) : NULL; tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq || eq == tok) {
			snprintf(what, sizeof(what), "'%s' is not key=value", tok);
			return bad(err, errlen, text, what,
				   "write options as key=value, separated by commas");
		}
		*eq = '\0';
		if (parse_key(o, tok, eq + 1, err, errlen, text) < 0)
			return -1;
	}

	if (o->burst > 1 && !o->every_ns)
		return bad(err, errlen, text, "burst without every",
			   "give both, such as burst=100,every=1s");
	if (o->every_ns && o->rate)
		return bad(err, errlen, text, "both rate and every",
			   "use rate=N, or burst=N,every=T");
	if (!o->every_ns && !o->rate)
		o->rate = 10;
	if ((o->kind == KS_EV_REMAP || o->kind == KS_EV_MREMAP) && o->target != KS_TGT_OUTSIDE)
		return bad(err, errlen, text, "remap and mremap move decoys only",
			   "use the outside target");
	/* MADV_FREE discards only under memory pressure: the guest may never notice. */
	if (o->hold_met && o->kind != KS_EV_MPROTECT && o->kind != KS_EV_DONTNEED &&
	    o->kind != KS_EV_REMOVE && o->kind != KS_EV_PUNCH)
		return bad(err, errlen, text, "hold=met needs an event the guest notices at once",
			   "use it with mprotect, madvise-dontneed, madvise-remove or punch");
	if (o->hold_met && o->target != KS_TGT_INSIDE)
		return bad(err, errlen, text, "hold=met needs guest memory",
			   "use it with the inside target; the guest never touches the decoys");
	return 0;
}

uint64_t events__pool_headroom(const struct ks_ev_spec *s)
{
	double per_10ms = s->every_ns ? s->burst : s->rate / 100;

	/* Discarded guest pages are refaulted before the kernel has freed them. */
	if (s->target == KS_TGT_OUTSIDE || ks_ev_preserves_data(s->kind))
		return s->kind == KS_EV_REMAP ? s->pages : 0;
	return s->pages * (2 + (uint64_t)(per_10ms > 1024 ? 1024 : per_10ms));
}
