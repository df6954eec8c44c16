/* SPDX-License-Identifier: MIT */
/*
 * Stall anatomy: where each vCPU thread was on the host while its guest
 * stalled.  Every vCPU thread gets a perf ring (perf_event_open) with its
 * context switches (PERF_RECORD_SWITCH, preempted or blocked) and, where
 * the kernel has them and permissions allow, the KVM tracepoints of its
 * exits, entries and page faults; one ring per host CPU carries the MMU
 * notifications (kvm_unmap_hva_range, kvm_age_hva, ...).  A collector
 * thread drains the rings into a timeline of intervals per vCPU; each
 * stall, placed on the same clock (CLOCK_MONOTONIC), then splits into
 * preempted, blocked, in KVM (by exit reason) and unexplained time.
 *
 * The timeline part (ks_anat_feed, ks_anat_split) is plain arithmetic on
 * records and is unit-tested without perf.
 */
#ifndef KVMSTALL__ANATOMY_H
#define KVMSTALL__ANATOMY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ks_vm;
struct ks_vcpu;

/* Distinct exit reasons a run tells apart; later ones are summed as "other". */
#define KS_AN_MAX_REASONS 48

/* What a vCPU thread was doing during an interval of its timeline. */
enum ks_an_state {
	KS_AN_PREEMPTED, /* switched out while runnable */
	KS_AN_BLOCKED,	 /* switched out asleep (or stopped) */
	KS_AN_IN_KVM,	 /* between an exit and the next entry, on a CPU */
};

/* One record of a vCPU thread's ring, decoded. */
enum ks_an_ev {
	KS_AN_EV_SWITCH_OUT,
	KS_AN_EV_SWITCH_IN,
	KS_AN_EV_EXIT,	     /* kvm_exit: arg = reason index */
	KS_AN_EV_ENTRY,	     /* kvm_entry */
	KS_AN_EV_USER_EXIT,  /* kvm_userspace_exit: KVM_RUN returns */
	KS_AN_EV_PAGE_FAULT, /* kvm_page_fault: addr = the faulting address */
	KS_AN_EV_MMU_WALK,   /* kvmmmu:kvm_mmu_pagetable_walk: a fault's first step */
	KS_AN_EV_MMU_SET,    /* kvmmmu:kvm_mmu_set_spte: the fault is fixed */
};

struct ks_an_iv {
	uint64_t start;
	uint64_t end;
	uint16_t state;	 /* enum ks_an_state */
	uint16_t reason; /* KS_AN_IN_KVM: index into the reason names */
};

struct ks_an_fault {
	uint64_t t;
	uint64_t addr;
};

/* One vCPU thread's ring and timeline. */
struct ks_an_thread {
	/* the ring: written by the kernel, drained by the collector */
	int fds[8];
	unsigned int nfds;
	uint64_t ids[8]; /* PERF_EVENT_IOC_ID of fds[i] */
	int kinds[8];	 /* what fds[i] records */
	void *ring;
	size_t ring_len;  /* the mapping: one header page and the data pages */
	int attach_errno; /* why its ring could not be set up, 0 if it was */
	bool attached;	  /* set last, with release: the collector may drain */
	/* the state machine */
	bool off;
	bool off_preempt;
	uint64_t off_start;
	bool kvm;
	uint16_t kvm_reason;
	uint64_t kvm_start;
	bool exits_seen; /* kvm_exit fired: MMU records no longer delimit faults */
	/*
	 * Without kvm_exit, a fault is in KVM from its walk to its set_spte; one
	 * that ends otherwise (a retry, a fault for the guest itself) has no
	 * known end, so its pieces stay tentative until its set_spte.
	 */
	bool fault;
	uint64_t fault_start;
	struct {
		uint64_t start, end;
	} fault_piece[4];
	unsigned int nfault_pieces;
	/* the timeline */
	struct ks_an_iv *iv;
	size_t niv, capiv;
	struct ks_an_fault *faults; /* from kvm_page_fault */
	size_t nfaults, capfaults;
	struct ks_an_fault *walks; /* from kvm_mmu_pagetable_walk */
	size_t nwalks, capwalks;
	uint64_t records;
	uint64_t lost;
	uint64_t throttles;
};

/* The causes of a set of stalls. */
struct ks_causes {
	uint64_t stalls;
	double stall_ns; /* the stall time that was split */
	double preempted_ns;
	double blocked_ns;
	double in_kvm_ns;
	double unexplained_ns;
	double reason_ns[KS_AN_MAX_REASONS];
	uint64_t page_faults;
	uint64_t repeated_faults; /* faults on an address already faulted on in the same stall */
	uint64_t notifications;	  /* MMU notifications into KVM (any thread) during the stalls */
	uint64_t lost_records;
};

struct ks_anatomy {
	bool enabled;
	/* what the host let us see */
	bool switches;	    /* context switches of every vCPU thread */
	bool exits;	    /* kvm_exit and kvm_entry */
	bool page_faults;   /* kvm_page_fault */
	bool mmu_faults;    /* kvmmmu walk and set_spte (KVMs without kvm_exit, shadow paging) */
	bool notifications; /* per-CPU notification tracepoints */
	char missing[512];  /* what was missing, in one line; empty if nothing */
	char notif_names[160];
	char module[32];      /* kvm_intel, kvm_amd, kvm_pvm, ... */
	bool mounted_tracefs; /* by this run; left mounted */
	const char *events_dir;
	/* tracepoint ids and field offsets, -1 if absent */
	long long tp_id[16];
	int exit_reason_off, exit_isa_off, pf_addr_off, pf_addr_size, walk_addr_off;
	/* exit reason names: VMX and SVM tables from kvm_exit's format */
	struct ks_an_name {
		uint32_t code;
		char name[40];
	} * vmx, *svm;
	size_t nvmx, nsvm;
	/* reasons seen: index -> name */
	char reason_names[KS_AN_MAX_REASONS][48];
	uint32_t reason_isa[KS_AN_MAX_REASONS];
	uint32_t reason_code[KS_AN_MAX_REASONS];
	unsigned int nreasons;
	/* per-thread attributes, shared by every vCPU */
	size_t ring_pages;
	/* per-CPU notification rings */
	struct ks_an_thread *cpus;
	unsigned int ncpus;
	uint64_t *notif_t; /* sorted after the run */
	size_t nnotif, capnotif;
	int anchors[16]; /* tracepoints held open from the start, so none is switched on late */
	unsigned int nanchors;
	/* the collector */
	pthread_t collector;
	bool collector_started;
	int wake_fd;	 /* eventfd: drain now, or stop */
	int drain_once;	 /* atomic: drain now even with no_drain */
	uint64_t drains; /* atomic: the collector's passes */
	int stop;	 /* atomic */
	bool no_drain;	 /* test hook: drain only at the end, so the rings overflow */
	uint64_t lost_total;
	uint64_t throttles_total;
	uint64_t records_total;
};

/* Before the VM exists: find what the host has, open the anchors. */
void anatomy__setup(struct ks_vm *vm);
/* In a vCPU thread, before its first KVM_RUN: its ring. */
void anatomy__attach(struct ks_vm *vm, struct ks_vcpu *vcpu);
/* Once vCPU threads run: start draining. */
void anatomy__start(struct ks_vm *vm);
/*
 * The run is over, the vCPUs still run: drain now, so that a ring that
 * overflowed has room to say how much it lost before its thread stops.
 */
void anatomy__run_ended(struct ks_vm *vm);
/* Once vCPU threads have stopped: last drain, close everything. */
void anatomy__stop(struct ks_vm *vm);
void anatomy__free(struct ks_vm *vm);

/* The timeline, fed record by record in time order (the collector). */
void ks_anat_feed(struct ks_an_thread *th, enum ks_an_ev ev, uint64_t t, uint16_t reason,
		  uint64_t addr);
/* Close what is still open at @t (the end of the run). */
void ks_anat_close(struct ks_an_thread *th, uint64_t t);
/* Index of a reason by name, added if new; the last index collects the rest. */
uint16_t ks_anat_reason(struct ks_anatomy *an, uint32_t isa, uint32_t code, const char *name);
/* One perf record of a ring, in a buffer of @len bytes; anything malformed is ignored. */
void ks_anat_record(struct ks_anatomy *an, struct ks_an_thread *th, const void *rec, size_t len,
		    bool cpu_ring);
/* The VMX and SVM exit reason names of kvm_exit's format file. */
void ks_anat_exit_names(struct ks_anatomy *an, const char *fmt);
/* Index of a kvm_exit reason: by name for VMX (isa 1) and SVM (2), else "module:number". */
uint16_t ks_anat_exit_reason(struct ks_anatomy *an, uint32_t isa, uint32_t code);
/* After the run: sort what needs sorting. */
void ks_anat_sort_thread(struct ks_an_thread *th);
void ks_anat_sort_notifications(struct ks_anatomy *an);
/* Add the split of the stall [s, e) of @th to @c. */
void ks_anat_split(const struct ks_anatomy *an, const struct ks_an_thread *th, uint64_t s,
		   uint64_t e, struct ks_causes *c);
void ks_causes_add(struct ks_causes *dst, const struct ks_causes *src);

#endif
