/* SPDX-License-Identifier: MIT */
/*
 * Kernel antagonists: the kernel's own memory work that users meet in
 * production (NUMA balancing, KSM, khugepaged, reclaim from memory.high),
 * switched on for the run
 * with short periods and fed with VMM memory that is not guest memory, so
 * that their MMU notifications reach KVM for ranges outside the memslots.
 * --antagonist KIND[:key=value,...]; the settings are restored at exit.
 */
#ifndef KVMSTALL_ANTAGONIST_H
#define KVMSTALL_ANTAGONIST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ks_ant_kind {
	KS_ANT_NUMA_BALANCING,
	KS_ANT_KSM,
	KS_ANT_KHUGEPAGED,
	KS_ANT_RECLAIM,
	KS_ANT_NR,
};

struct ks_ant_spec {
	enum ks_ant_kind kind;
	uint64_t period_ns; /* scan period (numa, khugepaged), ksmd's sleep, or the
			     * pause between reclaim's passes over its buffer */
	uint64_t buffer;    /* bytes of VMM memory for the kernel to work on */
	char text[128];	    /* as given */
};

/* One tunable: its path, the value before the run, the value for it. */
struct ks_ant_knob {
	char path[128];
	char saved[64];
	char value[64];
	bool set;
};

#define KS_ANT_MAX_KNOBS 6
#define KS_ANT_MAX_COUNTERS 4

struct ks_vm;

struct ks_antagonist {
	struct ks_ant_spec spec;
	bool skipped;
	char reason[192];
	struct ks_ant_knob knobs[KS_ANT_MAX_KNOBS];
	unsigned int nknobs;
	/* What the kernel did: /proc/vmstat or sysfs counters, start and end. */
	/* A /proc/vmstat name, a file of one number, or "FILE KEY" (memory.stat). */
	char counter_names[KS_ANT_MAX_COUNTERS][224];
	uint64_t counter_start[KS_ANT_MAX_COUNTERS];
	uint64_t counter_end[KS_ANT_MAX_COUNTERS];
	bool counter_ok[KS_ANT_MAX_COUNTERS];
	unsigned int ncounters;
	uint8_t *buf; /* the VMM memory the antagonist works on */
	size_t len;
	pthread_t thread; /* keeps the memory interesting for it */
	bool thread_started;
	_Atomic int stop;
	int nodes[2]; /* numa-balancing: the two nodes the user thread moves between */
	/* reclaim: the cgroup v2 made around kvmstall, and the one it came from. */
	char cg_root[128];
	char cg_orig[192];
	char cg_dir[224];
	bool cg_made, cg_moved, cg_enabled_memory;
	uint64_t passes;
};

/* Parse KIND[:key=value,...]; 0, or -1 with a one-line message in @err. */
int ks_ant_parse(const char *text, struct ks_ant_spec *out, char *err, size_t errlen);
const char *ks_ant_kind_name(enum ks_ant_kind k);

/* One antagonist per --antagonist: check what the host supports (skipping
 * with a reason), set the knobs. */
void antagonists__prepare(struct ks_vm *vm);
/* Allocate the buffers and start the threads; read the counters. */
void antagonists__start(struct ks_vm *vm);
/* Stop the threads, read the counters again. */
void antagonists__stop(struct ks_vm *vm);
/* Restore the knobs and free the antagonists (also run at exit). */
void antagonists__free(struct ks_vm *vm);

#endif
