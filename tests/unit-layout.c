// SPDX-License-Identifier: MIT
/* Memory layout arithmetic: slots, decoys, regions, for every page size. */
#include "config.h"

#include <string.h>

#include "kvmstall/abi.h"
#include "layout.h"
#include "tap.h"
#include "util.h"

static const uint64_t page_sizes[] = { 4 * KiB, 2 * MiB, 1 * GiB };

static void test_page_size(uint64_t ps)
{
	uint64_t unit = ps > 2 * MiB ? ps : 2 * MiB, mem = 4 * unit * 3;
	struct ks_layout l;
	char err[256], sz[32];
	unsigned int i, slots = 3, vcpus = 5;
	bool ok = true;

	fmt_size(ps, sz, sizeof(sz));
	tap_ok(ks_layout_compute(&l, vcpus, mem, slots, ps, 0, err, sizeof(err)) == 0,
	       "%s: layout of 3 slots x %llu bytes", sz, (unsigned long long)(mem / 3));
	tap_eq_u64(l.slot_size, mem / 3, "slot size is memory / slots");
	tap_eq_u64(l.decoy_size, ps > 2 * MiB ? ps : 2 * MiB, "default decoy: one page, >= 2 MiB");
	tap_eq_u64(ks_layout_decoy_before_off(&l), 0, "decoy before starts the reservation");
	tap_eq_u64(ks_layout_slot_off(&l), l.decoy_size, "slot starts where the decoy ends");
	tap_eq_u64(ks_layout_decoy_after_off(&l), l.decoy_size + l.slot_size,
		   "decoy after starts at the slot's end");
	tap_eq_u64(ks_layout_reserve_size(&l), 2 * l.decoy_size + l.slot_size,
		   "reservation is decoy + slot + decoy");
	tap_ok(is_aligned(ks_layout_slot_off(&l), ps) &&
		       is_aligned(ks_layout_decoy_after_off(&l), ps),
	       "%s: every part is page aligned", sz);
	for (i = 0; i < slots; i++) {
		uint64_t gpa = ks_layout_slot_gpa(&l, i);

		ok &= gpa == KS_GPA_TEST_BASE + i * (mem / 3);
		ok &= is_aligned(gpa, ps);
		ok &= ks_layout_slot_of(&l, gpa) == (int)i;
		ok &= ks_layout_slot_of(&l, gpa + l.slot_size - 1) == (int)i;
	}
	tap_ok(ok, "%s: slots are contiguous, aligned and found again by address", sz);
	tap_eq_u64(ks_layout_slot_of(&l, KS_GPA_TEST_BASE + mem), (uint64_t)-1,
		   "the byte after the last slot belongs to no slot");
	tap_eq_u64(ks_layout_slot_of(&l, KS_GPA_TEST_BASE - 1), (uint64_t)-1,
		   "the byte before the first slot belongs to no slot");
	tap_eq_u64(l.region_size, (mem / vcpus) / ps * ps, "region: memory / vCPUs, page aligned");
	ok = true;
	for (i = 0; i < vcpus; i++)
		ok &= ks_layout_region_gpa(&l, i) + l.region_size <= KS_GPA_TEST_BASE + mem &&
		      is_aligned(ks_layout_region_gpa(&l, i), ps);
	tap_ok(ok, "%s: every region is aligned and inside test memory", sz);
	tap_eq_u64(ks_layout_backing_pages(&l), slots * (2 * l.decoy_size + l.slot_size) / ps,
		   "backing pages count slots and decoys");

	tap_ok(ks_layout_compute(&l, vcpus, mem + ps, slots, ps, 0, err, sizeof(err)) < 0 &&
		       strstr(err, "--memory"),
	       "%s: memory not a multiple of the unit per slot is refused: %s", sz, err);
	tap_ok(ks_layout_compute(&l, vcpus, mem, slots, ps, ps + (ps == 4 * KiB ? 1 : ps / 2), err,
				 sizeof(err)) < 0 &&
		       strstr(err, "--decoy-size"),
	       "%s: decoy not a multiple of the page is refused: %s", sz, err);
}

int main(void)
{
	struct ks_layout l;
	char err[256];
	size_t i;

	tap_plan(3 * 16 + 7);
	for (i = 0; i < sizeof(page_sizes) / sizeof(page_sizes[0]); i++)
		test_page_size(page_sizes[i]);

	tap_ok(ks_layout_compute(&l, 256, 4 * GiB, 1, 2 * MiB, 0, err, sizeof(err)) == 0,
	       "256 vCPUs in 4 GiB of 2 MiB pages");
	tap_eq_u64(l.region_size, 16 * MiB, "each of them walks 16 MiB");
	tap_eq_u64(l.sys_size, KS_GPA_VCPU_AREA + 256 * KS_VCPU_STRIDE,
		   "system region ends after the last vCPU area");
	tap_ok(ks_layout_compute(&l, 8, 2 * MiB, 1, 2 * MiB, 0, err, sizeof(err)) < 0 &&
		       strstr(err, "too small"),
	       "fewer pages than vCPUs is refused: %s", err);
	/* Sizes near 2^64 once wrapped around in the arithmetic and passed. */
	tap_ok(ks_layout_compute(&l, 1, UINT64_MAX - 2 * MiB + 1, 1, 2 * MiB, 0, err, sizeof(err)) <
			       0 &&
		       strstr(err, "too large"),
	       "16 EiB of memory is refused: %s", err);
	tap_ok(ks_layout_compute(&l, 1, GiB, 1, 2 * MiB, 1ULL << 63, err, sizeof(err)) < 0 &&
		       strstr(err, "--decoy-size"),
	       "an 8 EiB decoy is refused: %s", err);
	tap_ok(ks_layout_compute(&l, 4, 4 * GiB, 4, 2 * MiB, 16ULL << 40, err, sizeof(err)) < 0 &&
		       strstr(err, "address space"),
	       "4 slots with 16 TiB decoys are refused: %s", err);
	return tap_done();
}
