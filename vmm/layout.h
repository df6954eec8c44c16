/* SPDX-License-Identifier: MIT */
/*
 * Memory layout arithmetic, kept free of side effects so that it can be
 * unit-tested: where the system region ends, where each test memslot sits in
 * guest-physical space, where its decoys sit around it in the VMM's address
 * space, and which part of the test memory each vCPU walks.
 */
#ifndef KVMSTALL__LAYOUT_H
#define KVMSTALL__LAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* The guest maps memory with 2 MiB pages, so slots come in 2 MiB units. */
#define KS_GUEST_PAGE (2ULL << 20)
#define KS_PGTABLE_BYTES (0x1000000ULL - 0x400000ULL)

struct ks_layout {
	unsigned int nvcpus;
	unsigned int nslots;
	uint64_t page_size; /* backing page size */
	uint64_t unit;	    /* slot size granule: max(page size, guest page) */
	uint64_t sys_size;  /* system region [0, sys_size) */
	uint64_t slot_size;
	uint64_t decoy_size;
	uint64_t region_size;	/* test memory per vCPU */
	uint64_t pgtable_pages; /* page-table pages the identity map needs */
};

/*
 * Fill @l for a run, or return -1 with a one-line reason in @err.  A
 * decoy_size of 0 picks the default: one backing page, at least 2 MiB.
 */
int ks_layout_compute(struct ks_layout *l, unsigned int nvcpus, uint64_t memory,
		      unsigned int nslots, uint64_t page_size, uint64_t decoy_size, char *err,
		      size_t errlen);

/* Guest-physical address of test slot @i. */
uint64_t ks_layout_slot_gpa(const struct ks_layout *l, unsigned int i);
/* Guest-physical address of vCPU @i's region. */
uint64_t ks_layout_region_gpa(const struct ks_layout *l, unsigned int i);
/* Test slot holding guest-physical address @gpa, or -1. */
int ks_layout_slot_of(const struct ks_layout *l, uint64_t gpa);

/* Bytes of address space one slot needs: decoy, slot, decoy. */
uint64_t ks_layout_reserve_size(const struct ks_layout *l);
/* Offsets inside that reservation (from an address aligned to page_size). */
uint64_t ks_layout_decoy_before_off(const struct ks_layout *l);
uint64_t ks_layout_slot_off(const struct ks_layout *l);
uint64_t ks_layout_decoy_after_off(const struct ks_layout *l);

/* Backing pages a run needs, decoys included. */
uint64_t ks_layout_backing_pages(const struct ks_layout *l);

/*
 * The fault workload's recycler drops each vCPU's region in chunks of whole
 * backing pages: at most 8 per region, evenly dividing it.
 */
uint64_t ks_layout_fault_chunks(const struct ks_layout *l);
uint64_t ks_layout_fault_chunk_bytes(const struct ks_layout *l);

#endif
