// SPDX-License-Identifier: MIT
/* Event specs (good and bad) and event ranges against hand-computed offsets. */
#include "config.h"

#include <string.h>

#include "events.h"
#include "tap.h"
#include "util.h"

static void test_parse(void)
{
	struct ks_ev_spec s;
	char err[512];

	tap_ok(ks_ev_parse("madvise-dontneed:outside", &s, err, sizeof(err)) == 0 &&
		       s.kind == KS_EV_DONTNEED && s.target == KS_TGT_OUTSIDE && s.rate == 10 &&
		       s.pages == 1 && s.random && s.edge == KS_EDGE_ALL && s.via == KS_VIA_AUTO,
	       "defaults: rate 10, one page, random, all edges, auto submission");
	tap_ok(ks_ev_parse(
		       "mprotect:inside:rate=2.5,pages=4,placement=seq,slots=1-3+5,delay=2s,count=9,via=syscall",
		       &s, err, sizeof(err)) == 0 &&
		       s.kind == KS_EV_MPROTECT && s.rate == 2.5 && s.pages == 4 && !s.random &&
		       s.slot_mask == 0x2e && s.delay_ns == 2 * NSEC_PER_SEC && s.count == 9 &&
		       s.via == KS_VIA_SYSCALL,
	       "every key parsed");
	tap_ok(ks_ev_parse("punch:edge:burst=100,every=250ms,edge=first", &s, err, sizeof(err)) ==
			       0 &&
		       s.burst == 100 && s.every_ns == 250000000 && s.rate == 0 &&
		       s.edge == KS_EDGE_FIRST,
	       "bursts and a fixed edge");
	tap_ok(ks_ev_parse("madvise-dontneed:inside:hold=met", &s, err, sizeof(err)) == 0 &&
		       s.hold_met && s.kind == KS_EV_DONTNEED,
	       "hold=met on a discarding kind");

	static const struct {
		const char *spec, *must;
	} bad[] = {
		{ "madvise-sleep:inside", "unknown kind 'madvise-sleep'" },
		{ "mprotect:nowhere", "unknown target 'nowhere'" },
		{ "mprotect", "no target" },
		{ "mprotect:inside:speed=3", "unknown key 'speed'" },
		{ "mprotect:inside:rate=0", "bad value '0' for rate" },
		{ "mprotect:inside:rate=-5", "bad value '-5' for rate" },
		{ "mprotect:inside:rate=fast", "bad value 'fast' for rate" },
		{ "mprotect:inside:pages=0", "bad value '0' for pages" },
		{ "mprotect:inside:burst=10", "burst without every" },
		{ "mprotect:inside:rate=5,every=1s", "both rate and every" },
		{ "mprotect:inside:slots=70", "bad value '70' for slots" },
		{ "mprotect:inside:edge=middle", "bad value 'middle' for edge" },
		{ "mprotect:inside:via=carrier-pigeon", "bad value 'carrier-pigeon' for via" },
		{ "mprotect:inside:rate", "'rate' is not key=value" },
		{ "remap:inside", "decoys only" },
		{ "mprotect:inside:hold=forever", "bad value 'forever' for hold" },
		{ "madvise-cold:inside:hold=met", "notices at once" },
		{ "madvise-free:inside:hold=met", "notices at once" },
		{ "mprotect:outside:hold=met", "needs guest memory" },
		{ "madvise-dontneed:edge:hold=met", "needs guest memory" },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = ks_ev_parse(bad[i].spec, &s, err, sizeof(err));

		tap_ok(rc < 0 && strstr(err, bad[i].must) && !strchr(err, '\n') &&
			       strstr(err, bad[i].spec),
		       "'%s' refused: %s", bad[i].spec, err);
	}
}

static struct ks_layout layout_for(uint64_t ps)
{
	struct ks_layout l;
	char err[256];
	uint64_t unit = ps > 2 * MiB ? ps : 2 * MiB;

	/* 2 slots of 4 units, decoys of 4 units on each side. */
	ks_layout_compute(&l, 2, 8 * unit, 2, ps, 4 * unit, err, sizeof(err));
	return l;
}

static void test_ranges(uint64_t ps)
{
	struct ks_layout l = layout_for(ps);
	struct ks_ev_spec s;
	struct ks_ev_range r;
	char err[512], name[32];
	uint64_t D = l.decoy_size, S = l.slot_size, pick;
	bool ok;

	fmt_size(ps, name, sizeof(name));
	ks_ev_parse("madvise-dontneed:edge:pages=3,edge=before", &s, err, sizeof(err));
	ks_ev_range(&l, &s, 0, 0, &r, err, sizeof(err));
	tap_ok(r.off == D - 3 * ps && r.len == 3 * ps && r.off + r.len == D && !r.overlaps_slot,
	       "%s: edge=before ends exactly at the slot's first byte", name);
	s.edge = KS_EDGE_AFTER;
	ks_ev_range(&l, &s, 0, 0, &r, err, sizeof(err));
	tap_ok(r.off == D + S && r.len == 3 * ps && !r.overlaps_slot,
	       "%s: edge=after starts exactly after the slot's last byte", name);
	s.edge = KS_EDGE_FIRST;
	ks_ev_range(&l, &s, 0, 0, &r, err, sizeof(err));
	tap_ok(r.off == D - 2 * ps && r.off + r.len == D + ps && r.overlaps_slot,
	       "%s: edge=first overlaps the slot by exactly its first page", name);
	s.edge = KS_EDGE_LAST;
	ks_ev_range(&l, &s, 0, 0, &r, err, sizeof(err));
	tap_ok(r.off == D + S - ps && r.off + r.len == D + S + 2 * ps && r.overlaps_slot,
	       "%s: edge=last overlaps the slot by exactly its last page", name);
	s.pages = 1;
	s.edge = KS_EDGE_FIRST;
	ks_ev_range(&l, &s, 0, 0, &r, err, sizeof(err));
	tap_ok(r.off == D && r.len == ps,
	       "%s: a one-page edge=first range is the slot's first page", name);
	s.edge = KS_EDGE_ALL;
	ok = true;
	for (pick = 0; pick < 8; pick++) {
		ks_ev_range(&l, &s, pick, 0, &r, err, sizeof(err));
		ok &= r.off == (pick % 4 == 0 ? D - ps :
				pick % 4 == 1 ? D + S :
				pick % 4 == 2 ? D :
						D + S - ps);
	}
	tap_ok(ok, "%s: edge=all cycles before, after, first, last", name);

	ks_ev_parse("madvise-dontneed:inside:pages=2", &s, err, sizeof(err));
	ok = true;
	for (pick = 0; pick < 1000; pick++) {
		ks_ev_range(&l, &s, pick, pick * 7919, &r, err, sizeof(err));
		ok &= r.off >= D && r.off + r.len <= D + S && r.off % ps == 0 && r.overlaps_slot;
	}
	tap_ok(ok, "%s: inside ranges stay within the slot, page aligned", name);
	ks_ev_parse("madvise-dontneed:outside:pages=2", &s, err, sizeof(err));
	ok = true;
	for (pick = 0; pick < 1000; pick++) {
		ks_ev_range(&l, &s, pick, pick * 7919, &r, err, sizeof(err));
		ok &= (r.off + r.len <= D || (r.off >= D + S && r.off + r.len <= 2 * D + S)) &&
		      r.off % ps == 0 && !r.overlaps_slot;
	}
	tap_ok(ok, "%s: outside ranges stay within the decoys", name);
	ks_ev_range(&l, &s, 0, 2, &r, err, sizeof(err));
	tap_ok(r.off == ps, "%s: outside pick 2 is page 1 of the decoy before", name);
	ks_ev_range(&l, &s, 0, 1, &r, err, sizeof(err));
	tap_ok(r.off == D + S, "%s: outside pick 1 is page 0 of the decoy after", name);

	s.pages = D / ps + 1;
	tap_ok(ks_ev_check_fit(&l, &s, err, sizeof(err)) < 0 &&
		       strstr(err, "bigger than the target"),
	       "%s: a range bigger than the decoy is refused: %s", name, err);
	ks_ev_parse("madvise-dontneed:inside", &s, err, sizeof(err));
	s.pages = S / ps;
	tap_ok(ks_ev_check_fit(&l, &s, err, sizeof(err)) == 0, "%s: a whole slot fits", name);
	s.pages++;
	tap_ok(ks_ev_check_fit(&l, &s, err, sizeof(err)) < 0, "%s: one page more does not", name);
}

int main(void)
{
	tap_plan(4 + 20 + 3 * 13);
	test_parse();
	test_ranges(4 * KiB);
	test_ranges(2 * MiB);
	test_ranges(1 * GiB);
	return tap_done();
}
