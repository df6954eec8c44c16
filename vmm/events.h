/* SPDX-License-Identifier: MIT */
/*
 * Host memory events: what to fire (kind), where (target), on what
 * schedule, and the log of what happened.  Parsing and range arithmetic
 * are pure (event-spec.c, event-range.c); the engine is events.c and the
 * matching of stalls to events is attrib.c.
 */
#ifndef KVMSTALL__EVENTS_H
#define KVMSTALL__EVENTS_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"

enum ks_ev_kind {
	KS_EV_DONTNEED,
	KS_EV_FREE,
	KS_EV_COLD,
	KS_EV_PAGEOUT,
	KS_EV_REMOVE,
	KS_EV_HUGEPAGE,
	KS_EV_NOHUGEPAGE,
	KS_EV_MERGEABLE,
	KS_EV_UNMERGEABLE,
	KS_EV_MPROTECT,
	KS_EV_MIGRATE,
	KS_EV_REMAP,
	KS_EV_MREMAP,
	KS_EV_PUNCH,
	KS_EV_AGE_IDLE,
	KS_EV_AGE_KSM,
	KS_EV_NR
};

enum ks_ev_target {
	KS_TGT_INSIDE,	/* within a memslot's hva range */
	KS_TGT_OUTSIDE, /* within a decoy: not guest memory */
	KS_TGT_EDGE,	/* touching or overlapping a slot boundary */
	KS_TGT_NR
};

/* Which boundary an edge range is placed at. */
enum ks_edge {
	KS_EDGE_BEFORE, /* ends exactly at the slot's first byte */
	KS_EDGE_AFTER,	/* starts exactly after the slot's last byte */
	KS_EDGE_FIRST,	/* overlaps the slot's first page only */
	KS_EDGE_LAST,	/* overlaps the slot's last page only */
	KS_EDGE_NR,
	KS_EDGE_ALL = KS_EDGE_NR /* cycle through the four */
};

enum ks_via {
	KS_VIA_AUTO, /* io_uring where the kernel has the operation */
	KS_VIA_URING,
	KS_VIA_SYSCALL,
};

struct ks_ev_spec {
	enum ks_ev_kind kind;
	enum ks_ev_target target;
	enum ks_edge edge;
	double rate;	    /* events per second; 0 with bursts */
	unsigned int burst; /* events per burst (1 for a plain rate) */
	uint64_t every_ns;  /* burst period */
	uint64_t delay_ns;  /* start delay from the start of the run */
	uint64_t count;	    /* stop after this many; 0: no limit */
	uint64_t pages;	    /* range length in backing pages */
	bool random;	    /* random placement, else sequential */
	uint64_t slot_mask; /* slots to aim at (bit i: slot i); all when 0 */
	enum ks_via via;
	bool via_given; /* via= in the spec: --submit does not override it */
	bool hold_met;	/* hold=met: wait for the guest to meet each event */
	char text[256]; /* the spec as given, for reports */
};

const char *ks_ev_kind_name(enum ks_ev_kind k);
/* "auto", "uring" or "syscall". */
bool ks_via_parse(const char *s, enum ks_via *out);
const char *ks_ev_target_name(enum ks_ev_target t);
/* Whether the kind keeps the data of the range (guest reads back what it wrote). */
bool ks_ev_preserves_data(enum ks_ev_kind k);

/*
 * Parse "KIND:TARGET[:key=value,...]".  Returns 0, or -1 with a one-line
 * message (naming the bad part and what is accepted) in @err.
 */
int ks_ev_parse(const char *text, struct ks_ev_spec *out, char *err, size_t errlen);

/* A range, as an offset into a slot's reservation (decoy, slot, decoy). */
struct ks_ev_range {
	uint64_t off;
	uint64_t len;
	bool overlaps_slot;
};

/*
 * The @n-th range of a stream (n counts the stream's events): @pick is a
 * random or sequential page index the caller chose, reduced here to the
 * valid positions.  Returns -1 with @err when the range cannot fit.
 */
int ks_ev_range(const struct ks_layout *l, const struct ks_ev_spec *s, uint64_t n, uint64_t pick,
		struct ks_ev_range *r, char *err, size_t errlen);
/* Check once, before the run, that every range of @s fits the layout. */
int ks_ev_check_fit(const struct ks_layout *l, const struct ks_ev_spec *s, char *err,
		    size_t errlen);

/* One event that happened. */
struct ks_ev_rec {
	uint64_t due_ns; /* when the schedule wanted it (CLOCK_MONOTONIC) */
	uint64_t start_ns;
	uint64_t end_ns;
	uint64_t hva;
	uint64_t len;
	int16_t slot; /* test slot index (as in slots=) it overlapped, -1 for none */
	uint8_t via_uring;
	int32_t result; /* 0 or -errno */
};

struct ks_vm;

struct ks_stream {
	struct ks_vm *vm;
	unsigned int id;
	struct ks_ev_spec spec;
	bool uring;   /* resolved submission path */
	bool skipped; /* the host cannot do it; reason says why */
	char reason[192];
	pthread_t thread;
	bool thread_started;
	struct ks_ev_rec *recs;
	size_t nrecs;
	size_t caprecs;
	uint64_t errors;
	uint64_t rng;
	uint64_t t_start;   /* the run's start, the schedule's origin */
	uint8_t *scratch;   /* mremap: where the range moves to and back from */
	uint64_t t_end;	    /* no event due at or after this is fired */
	uint64_t cpu_ns;    /* CPU time of the stream's thread, set when it ends */
	uint64_t scheduled; /* events due before the planned end */
	uint64_t given_up;  /* of those, not fired: still catching up long after the end */
	/* --verify-events */
	uint64_t verified;
	uint64_t verify_failed;
	uint64_t verify_unknown;
	bool verify_mid_failed;
	/* hold=met */
	uint64_t met;	       /* events the guest met */
	uint64_t unmet;	       /* events it did not meet within KS_HOLD_MAX_NS */
	char verify_note[160]; /* the first failure */
};

/* hold=met gives up on an event that the guest has not met after this long. */
#define KS_HOLD_MAX_NS (10 * 1000 * 1000 * 1000ULL)

/* HugeTLB pages a stream may need beyond slots and decoys. */
uint64_t events__pool_headroom(const struct ks_ev_spec *s);

/* event-verify.c: 1 the event took effect, 0 it did not (@why), -1 cannot tell. */
int ks_verify_event(struct ks_stream *st, const struct ks_ev_rec *rec, uint64_t n, char *why,
		    size_t wl);
bool ks_verify_prot(uintptr_t addr, char *perm, size_t len);

/* events.c */
void events__prepare(struct ks_vm *vm); /* check each stream against the host */
void events__start(struct ks_vm *vm, uint64_t run_start_ns, uint64_t run_end_ns);
/* Join the stream threads; @abort stops them now instead of at the schedule's end. */
void events__stop(struct ks_vm *vm, bool abort, volatile sig_atomic_t *signalled);
void events__free(struct ks_vm *vm);

#endif
