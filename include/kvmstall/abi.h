/* SPDX-License-Identifier: MIT */
/*
 * The guest ABI: memory layout, parameter block, shared statistics and
 * ucall ports.  Shared by the freestanding payload in guests/ and the VMM,
 * so it uses fixed-width types only.  The VMM never trusts what the guest
 * writes into any of these structures.
 */
#ifndef KVMSTALL__ABI_H
#define KVMSTALL__ABI_H

#define KS_ABI_VERSION 3
#define KS_PARAMS_MAGIC 0x6b7673746c6c7031    /* "kvstllp1" */
#define KS_SHARED_MAGIC 0x6b7673746c6c7331ULL /* "kvstlls1" */

/* Guest-physical layout of the system region (identity mapped). */
#define KS_GPA_GDT 0x10000ULL  /* 64 KiB: null, code/data, one TSS per vCPU */
#define KS_GPA_IDT 0x20000ULL  /* 4 KiB */
#define KS_GPA_CTRL 0x21000ULL /* struct ks_control, one page */
#define KS_GPA_TSS 0x40000ULL  /* KS_TSS_STRIDE per vCPU */
#define KS_TSS_STRIDE 128ULL
#define KS_GPA_PAYLOAD 0x200000ULL /* the payload is linked here */
#define KS_PAYLOAD_MAX 0x100000ULL
#define KS_GPA_PGTABLE 0x400000ULL	/* page tables, size from the layout */
#define KS_GPA_VCPU_AREA 0x1000000ULL	/* per-vCPU areas from 16 MiB */
#define KS_GPA_TEST_BASE 0x100000000ULL /* test memslots from 4 GiB */

/* Per-vCPU area: params, shared statistics, stacks. */
#define KS_VCPU_PARAMS_OFF 0x0ULL
#define KS_VCPU_SHARED_OFF 0x1000ULL
#define KS_VCPU_STACK0_OFF 0xc000ULL /* ring-0 stack, 8 KiB, top at 0xe000 */
#define KS_VCPU_STACK3_OFF 0xe000ULL /* ring-3 stack, 8 KiB, top at 0x10000 */
#define KS_VCPU_STRIDE 0x10000ULL

/* Segment selectors. */
#define KS_SEL_CODE0 0x08
#define KS_SEL_DATA0 0x10
#define KS_SEL_DATA3 0x18 /* +3 RPL when loaded */
#define KS_SEL_CODE3 0x20 /* +3 RPL when loaded */
#define KS_SEL_TSS 0x28	  /* first TSS, 16 bytes per vCPU */

/*
 * Guest to VMM calls: one "out" to a port, arguments in registers.  Ring 3
 * reaches it with int3 (vector 3); ring 0 does the "out".
 */
#define KS_PORT_UCALL 0x1000
#define KS_ISR_TABLE_OFF 0x100 /* 32 exception stubs, 16 bytes apart */
#define KS_UCALL_HANDLER_OFF 0x400
#define KS_UCALL_READY 1     /* ring 3 reached; rdi = tsc */
#define KS_UCALL_DONE 2	     /* stop flag seen; rdi = tsc */
#define KS_UCALL_ERROR 3     /* rdi = code, rsi = detail */
#define KS_UCALL_EXCEPTION 4 /* rdi = vector, rsi = error code, rcx = rip, r8 = cr2, r9 = cs */

/*
 * Hostile payloads for the test suite: vCPU 0 misbehaves as named, every
 * other vCPU runs the touch workload, so a test can check both that the
 * VMM names the culprit and that the others' results stay right.  The
 * ring-0 ones are acted out in entry.S, hence plain numbers.
 */
#define KS_WL_HOSTILE_FIRST 110
#define KS_WL_HOSTILE_RING 110	      /* stall count far ahead of the ring */
#define KS_WL_HOSTILE_BACKWARDS 111   /* iteration count goes down */
#define KS_WL_HOSTILE_HISTOGRAM 112   /* absurd histogram bucket */
#define KS_WL_HOSTILE_UCALLS 113      /* endless calls the VMM does not know */
#define KS_WL_HOSTILE_PARAMS 114      /* writes over its parameter block */
#define KS_WL_HOSTILE_TRIPLE 115      /* ring 0: no IDT, then #UD */
#define KS_WL_HOSTILE_HLT 116	      /* ring 0: hlt with interrupts off */
#define KS_WL_HOSTILE_NEVER_READY 117 /* ring 0: spins, never reaches ring 3 */
#define KS_WL_HOSTILE_LAST 117
/* Offsets in struct ks_params that entry.S reads. */
#define KS_PARAMS_VCPU_ID_OFF 12
#define KS_PARAMS_WORKLOAD_OFF 16

#define KS_GUEST_ERR_BAD_PARAMS 1
#define KS_GUEST_ERR_WORKLOAD 2

#ifndef __ASSEMBLER__
#include <stdint.h>

enum ks_workload {
	KS_WL_SPIN = 0,
	KS_WL_TOUCH = 1,
	KS_WL_FAULT = 2,
	/* test payload behaviours, not for measurement */
	KS_WL_CRASH = 100,   /* takes a #GP in ring 3 */
	KS_WL_GARBAGE = 101, /* writes nonsense into its shared pages */
	KS_WL_T_RING = KS_WL_HOSTILE_RING,
	KS_WL_T_BACKWARDS = KS_WL_HOSTILE_BACKWARDS,
	KS_WL_T_HISTOGRAM = KS_WL_HOSTILE_HISTOGRAM,
	KS_WL_T_UCALLS = KS_WL_HOSTILE_UCALLS,
	KS_WL_T_PARAMS = KS_WL_HOSTILE_PARAMS,
	KS_WL_T_TRIPLE = KS_WL_HOSTILE_TRIPLE,
	KS_WL_T_HLT = KS_WL_HOSTILE_HLT,
	KS_WL_T_NEVER_READY = KS_WL_HOSTILE_NEVER_READY,
};

/* Log-scale histogram: 8 sub-buckets per power of two of TSC ticks. */
#define KS_HIST_SUB_BITS 3
#define KS_HIST_SUB (1 << KS_HIST_SUB_BITS)
#define KS_HIST_BUCKETS (64 * KS_HIST_SUB)

#define KS_RING_ENTRIES 1024 /* power of two */

struct ks_stall {
	uint64_t start_tsc; /* TSC read before the gap */
	uint64_t ticks;	    /* length of the gap */
};

/* Written by the VMM before the vCPU starts; read-only for the guest. */
struct ks_params {
	uint64_t magic;
	uint32_t abi_version;
	uint32_t vcpu_id;
	uint32_t workload;
	uint32_t pad0;
	uint64_t threshold_ticks; /* a gap longer than this is a stall */
	uint64_t region_gva;	  /* this vCPU's test memory */
	uint64_t region_bytes;
	uint64_t stride;	  /* bytes between two touches */
	uint64_t shared_gva;	  /* struct ks_shared */
	uint64_t control_gva;	  /* struct ks_control */
	uint64_t heartbeat_ticks; /* TSC ticks between heartbeats (and stop checks) */
};

/*
 * Written by the guest, read concurrently by the VMM.  Single writer; the
 * counters only grow.
 */
struct ks_shared {
	uint64_t magic;
	uint64_t heartbeat; /* bumped every heartbeat_ticks */
	uint64_t first_tsc; /* TSC when the ring-3 loop started */
	uint64_t last_tsc;  /* TSC at the last heartbeat */
	uint64_t iterations;
	uint64_t touches;     /* memory writes done (touch, fault) */
	uint64_t position;    /* pages walked so far (fault workload) */
	uint64_t zeroed;      /* touch: words that read back as zero, not as written */
	uint64_t corrupt;     /* touch: words that read back as neither */
	uint64_t stalls;      /* stalls recorded = ring entries written */
	uint64_t stall_ticks; /* sum of all stall lengths */
	uint64_t max_ticks;   /* longest stall */
	uint64_t hist[KS_HIST_BUCKETS];
	struct ks_stall ring[KS_RING_ENTRIES];
};

/* One page for the whole VM; written by the VMM only. */
struct ks_control {
	volatile uint64_t stop;
};

_Static_assert(sizeof(struct ks_params) <= 0x1000, "params fit a page");
_Static_assert(__builtin_offsetof(struct ks_params, vcpu_id) == KS_PARAMS_VCPU_ID_OFF,
	       "entry.S reads vcpu_id here");
_Static_assert(__builtin_offsetof(struct ks_params, workload) == KS_PARAMS_WORKLOAD_OFF,
	       "entry.S reads workload here");
_Static_assert(KS_VCPU_SHARED_OFF + sizeof(struct ks_shared) <= KS_VCPU_STACK0_OFF,
	       "shared area overlaps the stacks");
_Static_assert((KS_RING_ENTRIES & (KS_RING_ENTRIES - 1)) == 0, "ring size");

/*
 * What the touch workload writes to the word at index @off in pass @pass:
 * never zero, different from one pass to the next.
 */
static inline uint64_t ks_touch_marker(uint64_t off, uint64_t pass)
{
	return ((off + 1) << 20) | ((pass + 1) & 0xfffff);
}

/* Histogram bucket of a tick count; used by guest and VMM alike. */
static inline unsigned int ks_hist_bucket(uint64_t ticks)
{
	unsigned int msb, sub;

	if (ticks < KS_HIST_SUB)
		return (unsigned int)ticks;
	msb = 63 - (unsigned int)__builtin_clzll(ticks);
	sub = (unsigned int)(ticks >> (msb - KS_HIST_SUB_BITS)) & (KS_HIST_SUB - 1);
	return (msb - KS_HIST_SUB_BITS + 1) * KS_HIST_SUB + sub;
}

#endif /* __ASSEMBLER__ */
#endif
