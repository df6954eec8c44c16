/* SPDX-License-Identifier: MIT */
/* Output of a run: summary table, JSON document, CSV time series, progress line. */
#ifndef KVMSTALL__REPORT_H
#define KVMSTALL__REPORT_H

#include <limits.h>
#include <stdio.h>

#include "attrib.h"
#include "kvmstall.h"
#include "kvmstats.h"

#define KS_REPORT_SCHEMA_VERSION 1

/* One row of the --csv time series: one vCPU at one sample. */
struct ks_csv_row {
	double t;
	unsigned int vcpu;
	bool valid;
	uint64_t iterations;
	double iterations_per_s;
	uint64_t stalls;
	double stalls_per_s;
	double stall_ms;
	double max_us;
	size_t nrecs; /* stall records kept up to this sample */
};

struct ks_run {
	struct ks_vm *vm;
	struct ks_kvmstats kstats;
	uint64_t started_realtime_ns;
	uint64_t run_start_ns; /* all vCPUs in ring 3 (or the start timeout) */
	uint64_t run_end_ns;   /* stop requested */
	int signal;	       /* SIGINT/SIGTERM that ended the run, 0 if none */
	bool failed;
	uint64_t total_hist[KS_HIST_BUCKETS];
	uint64_t total_max;
	uint64_t total_sum;
	unsigned int ninvalid;
	struct ks_attrib attrib;
	uint64_t zeroed;	/* touch read-backs that found zero */
	uint64_t corrupt;	/* ... that found neither zero nor what was written */
	bool discarding_events; /* some event discarded guest memory */
	/* CSV state: rows are kept and written at the end, with their stall causes */
	struct ks_csv_row *csv_rows;
	size_t ncsv_rows, capcsv_rows;
	FILE *csv;
	const char *csv_path;
	char csv_tmp[PATH_MAX + 16]; /* written here, renamed to csv_path at the end */
	int csv_errno;		     /* the first failed write's errno */
	bool csv_failed;
	uint64_t *csv_prev_iter;
	uint64_t *csv_prev_stalls;
	uint64_t csv_prev_ns;
};

/* Totals over the vCPUs whose data is valid; call once after the final read. */
void report__finish(struct ks_run *r);
/*
 * Judge what the touch workload read back: corruption always fails the run,
 * zeroed words fail it unless an event discarded guest memory.
 */
void report__check_data(struct ks_run *r);
void report__table(const struct ks_run *r, FILE *f);
/* Write the JSON report; returns 0 or -1 with errno-style reason printed. */
int report__json(const struct ks_run *r, const char *path);

int csv__open(struct ks_run *r, const char *path);
void csv__sample(struct ks_run *r, uint64_t now);
void csv__close(struct ks_run *r);

void progress__update(const struct ks_run *r, uint64_t now);
void progress__clear(void);

#endif
