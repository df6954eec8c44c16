/* SPDX-License-Identifier: MIT */
/*
 * Run configuration and the objects that make up a run: the VM, its memory
 * and its vCPUs.  Each concern has its own file; this header ties them.
 */
#ifndef KVMSTALL__KVMSTALL_H
#define KVMSTALL__KVMSTALL_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvmstall/abi.h"
#include "anatomy.h"
#include "antagonist.h"
#include "events.h"
#include "layout.h"
#include "stats.h"

enum ks_backing {
	KS_BACKING_ANON,
	KS_BACKING_THP,
	KS_BACKING_HUGETLB_2M,
	KS_BACKING_HUGETLB_1G,
	KS_BACKING_MEMFD_HUGETLB_2M,
	KS_BACKING_NR
};

struct ks_backing_info {
	const char *name;
	uint64_t page_size;
	bool hugetlb;
	bool memfd;
	const char *help;
};

const struct ks_backing_info *ks_backing_info(enum ks_backing b);
bool ks_backing_parse(const char *s, enum ks_backing *out);

struct ks_config {
	unsigned int vcpus;
	uint64_t memory;
	enum ks_backing backing;
	unsigned int slots;
	uint64_t decoy_size; /* 0: default (one page, at least 2 MiB) */
	uint64_t duration_ns;
	uint64_t start_timeout_ns; /* vCPUs not in ring 3 by then are reported */
	uint64_t threshold_ns;
	enum ks_workload workload;
	uint64_t stride;
	uint64_t interval_ns; /* sampling period for --csv and progress */
	bool pin;
	bool prefault;
	unsigned int prefault_threads; /* 0: one per online CPU */
	bool reserve_hugepages;
	bool verify_events; /* check that each event took effect */
	bool numa;	    /* place memory and vCPUs with libnuma */
	bool anatomy;	    /* --anatomy: the host side of every stall */
	bool quiet;
	bool progress; /* resolved: live line on a terminal */
	const char *json_path;
	const char *csv_path;
	long long event_log_max; /* --event-log: entries of each stream's log in the JSON; -1: all */
	int ready_fd;		 /* --ready-fd: told when every vCPU runs the workload; -1 */
	struct ks_ev_spec *events; /* --events, in order */
	unsigned int nevents;
	struct ks_ant_spec *ants; /* --antagonist, in order */
	unsigned int nants;
	enum ks_via submit;   /* --submit: default for streams without via= */
	const char *scenario; /* --scenario file, if any */
	char **scenario_argv; /* its options as arguments; cfg points into them */
	char **argv;	      /* the command line, for the report */
	int argc;
};

/* Host and KVM facts, probed up front. */
struct ks_caps {
	int api_version;
	int nr_vcpus;  /* KVM_CAP_NR_VCPUS: recommended */
	int max_vcpus; /* KVM_CAP_MAX_VCPUS */
	int nr_memslots;
	bool tsc_khz;  /* KVM_CAP_GET_TSC_KHZ */
	bool stats_fd; /* KVM_CAP_BINARY_STATS_FD */
	bool user_memory;
	unsigned int online_cpus;
	char kernel[256]; /* uname -r */
};

struct ks_slot {
	unsigned int id; /* KVM slot number */
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	uint8_t *decoy[2]; /* directly before and directly after hva */
	uint8_t *reserve;  /* the whole reservation: decoy, slot, decoy */
	uint64_t reserve_size;
	int fd[3]; /* memfd backing: decoy before, slot, decoy after */
	int node;  /* NUMA node, -1 if not bound */
};

enum ks_vcpu_state {
	KS_VCPU_CREATED,
	KS_VCPU_RUNNING, /* ring 3 reached */
	KS_VCPU_DONE,	 /* stopped on request */
	KS_VCPU_FAILED,
};

struct ks_vcpu {
	struct ks_vm *vm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	int cpu;  /* pinned CPU or -1 */
	int node; /* NUMA node of its memory or -1 */
	uint64_t region_gpa;
	uint64_t region_size;
	struct ks_params *params;    /* in guest memory */
	struct ks_params params_set; /* what the VMM wrote there */
	struct ks_shared *shared;    /* in guest memory, written by the guest */
	/*
	 * enum ks_vcpu_state: written by the vCPU thread, read by the main
	 * thread while it runs.  Every access is sequentially consistent, so
	 * what the vCPU thread wrote before (error, tsc_at_start) is visible
	 * to a reader that sees the new state.
	 */
	_Atomic int state;
	char error[256];
	uint64_t ready_ns; /* host time the guest reported ring 3 */
	uint64_t done_ns;
	uint64_t tsc_at_start;	/* guest TSC at host time vm->t0_ns */
	uint64_t tsc_paired_ns; /* host time of that pairing */
	uint64_t created_ns;	/* host time of KVM_CREATE_VCPU, which zeroes its TSC */
	uint64_t exits;
	uint64_t efault_retries; /* KVM_RUN EFAULTs while mprotect events ran */
	struct ks_vcpu_stats stats;
	uint64_t fault_dropped; /* position up to which the fault recycler dropped */
	struct ks_an_thread an; /* its perf ring and host timeline (anatomy.c) */
};

struct ks_vm {
	const struct ks_config *cfg;
	struct ks_caps caps;
	struct ks_layout layout;
	const struct ks_backing_info *backing;
	int kvm_fd;
	int vm_fd;
	int vcpu_mmap_size;
	uint8_t *sys; /* system region: GDT, IDT, page tables, per-vCPU areas */
	struct ks_control *control;
	struct ks_slot *slots;
	struct ks_vcpu *vcpus;
	uint32_t tsc_khz;
	uint64_t threshold_ticks; /* --threshold in guest TSC ticks */
	uint64_t tsc_slack_ns;	  /* see tsc_slack_ns() in main.c */
	bool tsc_unstable;	  /* the host does not run on its TSC: see limits_now() */
	uint64_t t0_ns;		  /* host CLOCK_MONOTONIC paired with each vCPU's tsc_at_start */
	uint64_t start_ns;	  /* when vCPU threads were started */
	uint64_t stop_ns;	  /* when the guests were asked to stop */
	uint64_t all_ready_ns;	  /* when the last vCPU reached ring 3 */
	uint64_t prefault_ns;
	uint64_t prefault_bytes;
	uint64_t recycled_bytes; /* dropped behind the fault workload */
	uint64_t recycle_calls;	 /* system calls that dropped them: one invalidation each */
	unsigned int nnodes;	 /* nodes used for placement (0 without libnuma) */
	int *nodes;
	struct ks_hugepool *pool;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int nready;	/* under lock; read without it with __atomic_load_n */
	unsigned int nfinished; /* under lock */
	/* host memory events */
	struct ks_stream *streams;
	unsigned int nstreams;
	struct ks_antagonist *ants; /* --antagonist, in order */
	unsigned int nants;
	struct ks_anatomy anatomy;
	bool events_stop;
	unsigned int protect_inflight; /* mprotect events between read-only and back */
	uint64_t protect_last_end_ns;
	uint64_t efault_total; /* EFAULT retries of all vCPUs, for hold=met */
};

/* kvm.c */
void kvm__probe(struct ks_caps *caps, int *kvm_fd);
void kvm__check_config(const struct ks_caps *caps, const struct ks_config *cfg);
void kvm__create_vm(struct ks_vm *vm);
void kvm__set_memslot(struct ks_vm *vm, unsigned int slot, uint64_t gpa, uint64_t size, void *hva);
void kvm__destroy_vm(struct ks_vm *vm);

/* x86.c */
void x86__setup_system(struct ks_vm *vm);
void x86__setup_vcpu(struct ks_vm *vm, struct ks_vcpu *vcpu);

/* kvm-cpu.c */
void kvm_cpu__create_all(struct ks_vm *vm);
void kvm_cpu__start_all(struct ks_vm *vm);
void kvm_cpu__stop_all(struct ks_vm *vm, uint64_t grace_ns);
void kvm_cpu__destroy_all(struct ks_vm *vm);

/* mem.c */
void mem__setup(struct ks_vm *vm);
void mem__prefault(struct ks_vm *vm);
void mem__teardown(struct ks_vm *vm);
void mem__recycle_fault_regions(struct ks_vm *vm);
/* The memfd, file offset and length of the first piece of [off, off + len) of a reservation. */
int mem__file_piece(const struct ks_vm *vm, const struct ks_slot *s, uint64_t off, uint64_t len,
		    int *fd, uint64_t *file_off, uint64_t *piece);
/* munmap a decoy range and map it again as it was; 0 or -errno. */
int mem__remap(struct ks_vm *vm, struct ks_slot *s, uint64_t off, uint64_t len);

/* hugepool.c */
struct ks_hugepool;
/* Check (or grow) the pool for @needed pages, and each node for node_needed[node]. */
struct ks_hugepool *hugepool__prepare(uint64_t page_size, uint64_t needed,
				      const uint64_t *node_needed, int max_node, bool reserve);
void hugepool__release(struct ks_hugepool *pool);

/* guest.c */
void guest__load(struct ks_vm *vm);
void guest__init_vcpu(struct ks_vm *vm, struct ks_vcpu *vcpu);

#endif
