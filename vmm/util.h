/* SPDX-License-Identifier: MIT */
#ifndef KVMSTALL__UTIL_H
#define KVMSTALL__UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdnoreturn.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define NSEC_PER_SEC 1000000000ULL

/* Exit codes: 1 for failures at run time, 2 for anything the user got wrong. */
#define KS_EXIT_FAIL 1
#define KS_EXIT_USAGE 2

extern const char *ks_prog;
extern int ks_verbose;

/*
 * Every exit of die(), die_perror(), die_usage(), --help and --version goes
 * through ks_exit(): it calls ks_exit_hook when one is set (a fuzz harness
 * longjmp()s back from it), then exit().
 */
extern void (*ks_exit_hook)(int status);
noreturn void ks_exit(int status);
noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void die_perror(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pr_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pr_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pr_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pr_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);

uint64_t now_ns(void);	    /* CLOCK_MONOTONIC */
uint64_t realtime_ns(void); /* CLOCK_REALTIME */

/*
 * Open file descriptors: raise the soft limit to the hard one (a VM with
 * hundreds of vCPUs and their perf rings needs thousands), and the limit
 * in force.
 */
void nofile_raise(void);
int nofile_limit(void);

static inline uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static inline uint64_t align_down(uint64_t v, uint64_t a)
{
	return v & ~(a - 1);
}

static inline bool is_aligned(uint64_t v, uint64_t a)
{
	return (v & (a - 1)) == 0;
}

/* "4K", "2M", "1G", "4096" -> bytes; false on junk or overflow. */
bool parse_size(const char *s, uint64_t *out);
/* "10", "2.5", "500ms", "20us", "100ns", "3s" -> nanoseconds; bare numbers use def_unit_ns. */
bool parse_duration(const char *s, uint64_t def_unit_ns, uint64_t *out);
bool parse_uint(const char *s, unsigned long long max, unsigned long long *out);
/* Human-readable size into buf ("2 MiB"). */
const char *fmt_size(uint64_t bytes, char *buf, size_t len);

/* Read a whole small file (sysfs, procfs); NULL on failure. */
char *read_file(const char *path);
bool read_u64_file(const char *path, uint64_t *out);
bool write_u64_file(const char *path, uint64_t v);

/*
 * Test hook: when the environment has KVMSTALL_TEST_SIGNAL=PHASE (or
 * PHASE:N for N signals), kvmstall sends itself SIGINT at that point of
 * its run, so that tests interrupt each phase exactly, not by timing.
 */
void test_signal_point(const char *phase);

/*
 * Output files that never exist half-written: out_file_open() creates a
 * temporary file beside @path (its name in @tmp), out_file_commit() flushes
 * it to disk and renames it over @path, out_file_abort() removes it.  Both
 * return 0 or -errno; on failure nothing is left but the old @path, if any.
 */
FILE *out_file_open(const char *path, char *tmp, size_t tmplen);
int out_file_commit(FILE *f, const char *tmp, const char *path);
void out_file_abort(FILE *f, const char *tmp);

#endif
