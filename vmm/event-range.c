// SPDX-License-Identifier: MIT
/*
 * Where an event's range lies, as an offset into one slot's reservation:
 * [decoy before][slot][decoy after], every part a whole number of backing
 * pages.  Kept pure for the unit tests.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>

#include "events.h"
#include "util.h"

int ks_ev_check_fit(const struct ks_layout *l, const struct ks_ev_spec *s, char *err, size_t errlen)
{
	uint64_t slot_pages = l->slot_size / l->page_size,
		 decoy_pages = l->decoy_size / l->page_size;
	uint64_t limit = s->target == KS_TGT_INSIDE ? slot_pages : decoy_pages;
	char ps[32];

	if (s->pages <= limit)
		return 0;
	snprintf(err, errlen,
		 "invalid --events '%s': pages=%" PRIu64
		 " is bigger than the target: a %s holds %" PRIu64
		 " pages of %s; use pages=%" PRIu64 " or less%s",
		 s->text, s->pages, s->target == KS_TGT_INSIDE ? "slot" : "decoy", limit,
		 fmt_size(l->page_size, ps, sizeof(ps)), limit,
		 s->target == KS_TGT_INSIDE ? "" : ", or a larger --decoy-size");
	return -1;
}

int ks_ev_range(const struct ks_layout *l, const struct ks_ev_spec *s, uint64_t n, uint64_t pick,
		struct ks_ev_range *r, char *err, size_t errlen)
{
	uint64_t ps = l->page_size, slot_pages = l->slot_size / ps,
		 decoy_pages = l->decoy_size / ps;
	uint64_t np = s->pages, positions;
	enum ks_edge e;

	if (ks_ev_check_fit(l, s, err, errlen) < 0)
		return -1;
	r->len = np * ps;
	switch (s->target) {
	case KS_TGT_INSIDE:
		positions = slot_pages - np + 1;
		r->off = l->decoy_size + (pick % positions) * ps;
		r->overlaps_slot = true;
		return 0;
	case KS_TGT_OUTSIDE:
		/* Both decoys, alternating: even picks before the slot, odd ones after. */
		positions = decoy_pages - np + 1;
		pick %= 2 * positions;
		if (pick % 2 == 0)
			r->off = (pick / 2) * ps;
		else
			r->off = l->decoy_size + l->slot_size + (pick / 2) * ps;
		r->overlaps_slot = false;
		return 0;
	default:
		break;
	}
	e = s->edge == KS_EDGE_ALL ? (enum ks_edge)(n % KS_EDGE_NR) : s->edge;
	switch (e) {
	case KS_EDGE_BEFORE:
		r->off = l->decoy_size - np * ps;
		r->overlaps_slot = false;
		break;
	case KS_EDGE_AFTER:
		r->off = l->decoy_size + l->slot_size;
		r->overlaps_slot = false;
		break;
	case KS_EDGE_FIRST:
		r->off = l->decoy_size - (np - 1) * ps;
		r->overlaps_slot = true;
		break;
	default:
		r->off = l->decoy_size + l->slot_size - ps;
		r->overlaps_slot = true;
		break;
	}
	return 0;
}
