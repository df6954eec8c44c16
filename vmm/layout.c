// SPDX-License-Identifier: MIT
/* Memory layout arithmetic; see layout.h. */
#include "config.h"

#include "layout.h"

#include <inttypes.h>
#include <stdio.h>

#include "kvmstall/abi.h"
#include "util.h"

/* 4-level paging maps 256 TiB of guest-physical space. */
#define KS_GPA_LIMIT (1ULL << 48)
/* Half the VMM's 128 TiB of user address space, for the slots' reservations. */
#define KS_RESERVE_LIMIT (1ULL << 46)

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Page-table pages for an identity map of [0, sys) and [test, test + mem) in 2 MiB pages. */
static uint64_t pgtable_pages(uint64_t sys, uint64_t test, uint64_t mem)
{
	uint64_t pd, pdpt;

	pd = align_up(sys, GiB) / GiB + (align_up(test + mem, GiB) - align_down(test, GiB)) / GiB;
	pdpt = 1 + (align_up(test + mem, 512 * GiB) - align_down(test, 512 * GiB)) / (512 * GiB);
	return 1 + pdpt + pd;
}

int ks_layout_compute(struct ks_layout *l, unsigned int nvcpus, uint64_t memory,
		      unsigned int nslots, uint64_t page_size, uint64_t decoy_size, char *err,
		      size_t errlen)
{
	char a[32], b[32], c[32], d[32];

	*l = (struct ks_layout){ .nvcpus = nvcpus, .nslots = nslots, .page_size = page_size };
	if (!nvcpus || !nslots || !page_size || (page_size & (page_size - 1))) {
		snprintf(err, errlen, "internal: bad layout request");
		return -1;
	}
	l->unit = max_u64(page_size, KS_GUEST_PAGE);
	if (!memory || memory % nslots || (memory / nslots) % l->unit) {
		snprintf(
			err, errlen,
			"--memory %s is not a multiple of %s per slot (%u slot%s; backing page %s, guest page 2 MiB); "
			"use a multiple of %s",
			fmt_size(memory, a, sizeof(a)), fmt_size(l->unit, b, sizeof(b)), nslots,
			nslots == 1 ? "" : "s", fmt_size(page_size, c, sizeof(c)),
			fmt_size(l->unit * nslots, d, sizeof(d)));
		return -1;
	}
	l->slot_size = memory / nslots;
	l->region_size = align_down(memory / nvcpus, page_size);
	if (!l->region_size) {
		snprintf(
			err, errlen,
			"--memory %s is too small for %u vCPUs: each vCPU needs at least one %s page; "
			"use --memory %s or more",
			fmt_size(memory, a, sizeof(a)), nvcpus, fmt_size(page_size, b, sizeof(b)),
			fmt_size(align_up((uint64_t)nvcpus * page_size, l->unit * nslots), c,
				 sizeof(c)));
		return -1;
	}
	if (!decoy_size)
		decoy_size = max_u64(page_size, 2 * MiB);
	if (decoy_size % page_size) {
		snprintf(err, errlen,
			 "--decoy-size %s is not a multiple of the backing page size %s",
			 fmt_size(decoy_size, a, sizeof(a)), fmt_size(page_size, b, sizeof(b)));
		return -1;
	}
	/* Past 2^48 - 4 GiB the end of test memory wraps around in pgtable_pages(). */
	if (memory > KS_GPA_LIMIT - KS_GPA_TEST_BASE) {
		snprintf(err, errlen, "--memory %s is too large for the guest page tables",
			 fmt_size(memory, a, sizeof(a)));
		return -1;
	}
	l->decoy_size = decoy_size;
	l->sys_size = align_up(KS_GPA_VCPU_AREA + (uint64_t)nvcpus * KS_VCPU_STRIDE, KS_GUEST_PAGE);
	l->pgtable_pages = pgtable_pages(l->sys_size, KS_GPA_TEST_BASE, memory);
	if (l->pgtable_pages * 4096 > KS_PGTABLE_BYTES) {
		snprintf(err, errlen, "--memory %s is too large for the guest page tables",
			 fmt_size(memory, a, sizeof(a)));
		return -1;
	}
	/*
	 * Each slot's reservation (decoy, slot, decoy) is mapped: all of them must
	 * fit.  Memory is a few TiB at most here: the decoys are what is too large.
	 */
	if (decoy_size > KS_RESERVE_LIMIT / 2 ||
	    2 * decoy_size + l->slot_size > KS_RESERVE_LIMIT / nslots) {
		snprintf(err, errlen,
			 "--decoy-size %s is too large: %u slot%s of %s, each between two decoys, "
			 "would take more than %s of address space",
			 fmt_size(decoy_size, a, sizeof(a)), nslots, nslots == 1 ? "" : "s",
			 fmt_size(l->slot_size, b, sizeof(b)),
			 fmt_size(KS_RESERVE_LIMIT, c, sizeof(c)));
		return -1;
	}
	return 0;
}

uint64_t ks_layout_slot_gpa(const struct ks_layout *l, unsigned int i)
{
	return KS_GPA_TEST_BASE + (uint64_t)i * l->slot_size;
}

uint64_t ks_layout_region_gpa(const struct ks_layout *l, unsigned int i)
{
	return KS_GPA_TEST_BASE + (uint64_t)i * l->region_size;
}

int ks_layout_slot_of(const struct ks_layout *l, uint64_t gpa)
{
	uint64_t i;

	if (gpa < KS_GPA_TEST_BASE)
		return -1;
	i = (gpa - KS_GPA_TEST_BASE) / l->slot_size;
	return i < l->nslots ? (int)i : -1;
}

uint64_t ks_layout_reserve_size(const struct ks_layout *l)
{
	return 2 * l->decoy_size + l->slot_size;
}

uint64_t ks_layout_decoy_before_off(const struct ks_layout *l)
{
	(void)l;
	return 0;
}

uint64_t ks_layout_slot_off(const struct ks_layout *l)
{
	return l->decoy_size;
}

uint64_t ks_layout_decoy_after_off(const struct ks_layout *l)
{
	return l->decoy_size + l->slot_size;
}

uint64_t ks_layout_backing_pages(const struct ks_layout *l)
{
	return (uint64_t)l->nslots * (ks_layout_reserve_size(l) / l->page_size);
}

uint64_t ks_layout_fault_chunks(const struct ks_layout *l)
{
	uint64_t pages = l->region_size / l->page_size, n = pages < 8 ? pages : 8;

	while (n > 1 && pages % n)
		n--;
	return n ? n : 1;
}

uint64_t ks_layout_fault_chunk_bytes(const struct ks_layout *l)
{
	return l->region_size / ks_layout_fault_chunks(l);
}
