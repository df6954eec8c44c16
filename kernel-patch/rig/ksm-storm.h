/* SPDX-License-Identifier: MIT */
/*
 * ksm-storm.h: change_pte notifications made by ksmd and by nothing else,
 * for the rig's change_pte tests (mn-cpte-invalid --source ksm on x86,
 * check (f) of arm64-kvm-test).
 *
 * A round writes one byte value over every page of the buffers, so that
 * all their pages are equal, and waits until ksmd has merged them.  For
 * each page it merges, ksmd write-protects the PTE (write_protect_page())
 * and then points it at the shared KSM page (replace_page()), each time
 * with set_pte_at_notify() between invalidate_range_start and
 * invalidate_range_end: a change_pte notification.  The round then drops
 * the pages with MADV_DONTNEED; the next round's writes fault in fresh
 * pages, which takes no change_pte (only a write to a page that is still
 * shared copies it, and the pages are gone by then).
 *
 * The buffers must be anonymous private mappings, MADV_MERGEABLE and
 * MADV_NOHUGEPAGE (ksm_storm_prepare() does both).  The caller runs
 * ksm_start() first and ksm_restore() at the end: ksmd is switched on, set
 * to scan every page of the buffers in one batch with 1 ms pauses, and
 * given back its previous settings.
 */
#ifndef KVMSTALL_KSM_STORM_H
#define KVMSTALL_KSM_STORM_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define KSM_DIR "/sys/kernel/mm/ksm/"
/* A round gives up on ksmd after this long: it merges 2 x 512 pages in well under a second. */
#define KSM_ROUND_NS (10 * 1000 * 1000 * 1000LL)

struct ksm_knobs {
	long run, pages_to_scan, sleep_millisecs;
};

static inline int ksm_read(const char *name, long *v)
{
	char path[96], buf[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		errno = n < 0 ? errno : EIO;
		return -1;
	}
	buf[n] = 0;
	*v = strtol(buf, NULL, 10);
	return 0;
}

static inline int ksm_write(const char *name, long v)
{
	char path[96], buf[32];
	int fd, n, len;

	snprintf(path, sizeof(path), KSM_DIR "%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	len = snprintf(buf, sizeof(buf), "%ld\n", v);
	n = write(fd, buf, len);
	close(fd);
	return n == len ? 0 : -1;
}

/* Saves ksmd's settings in *saved and starts it; -1 with errno if this kernel has no KSM. */
static inline int ksm_start(struct ksm_knobs *saved, long pages_to_scan)
{
	if (ksm_read("run", &saved->run) || ksm_read("pages_to_scan", &saved->pages_to_scan) ||
	    ksm_read("sleep_millisecs", &saved->sleep_millisecs))
		return -1;
	if (ksm_write("pages_to_scan", pages_to_scan) || ksm_write("sleep_millisecs", 1) ||
	    ksm_write("run", 1))
		return -1;
	return 0;
}

static inline void ksm_restore(const struct ksm_knobs *saved)
{
	ksm_write("run", saved->run);
	ksm_write("pages_to_scan", saved->pages_to_scan);
	ksm_write("sleep_millisecs", saved->sleep_millisecs);
}

static inline int ksm_storm_prepare(unsigned char *buf, size_t len)
{
	madvise(buf, len, MADV_NOHUGEPAGE);	/* not fatal: a kernel without THP */
	return madvise(buf, len, MADV_MERGEABLE);
}

static inline long long ksm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * One round over N buffers of LEN bytes each.  It ends when half of the
 * pages are merged, or when ksmd has finished three full scans since the
 * writes with some merged (two scans find equal pages that stayed
 * unchanged; the rest were busy, and the next round tries again), or when
 * STOPPED() turns true.  Returns the pages merged at that point
 * (pages_sharing), or -1 with errno set: ETIMEDOUT if ksmd merged nothing
 * for KSM_ROUND_NS, or madvise()'s error.
 */
static inline long ksm_storm_round(unsigned char *const *buf, int n, size_t len, int value,
				   int (*stopped)(void))
{
	long want = (long)(n * (len / (size_t)sysconf(_SC_PAGESIZE))) / 2, sharing = 0;
	struct timespec nap = { 0, 2 * 1000 * 1000 };
	long scans0 = 0, scans = 0;
	long long deadline;
	int i;

	for (i = 0; i < n; i++)
		memset(buf[i], value, len);
	ksm_read("full_scans", &scans0);
	deadline = ksm_now_ns() + KSM_ROUND_NS;
	/* A poll with a deadline: ksmd signals nothing when it merges. */
	while (!stopped() && !ksm_read("pages_sharing", &sharing) && sharing < want &&
	       !(sharing > 0 && !ksm_read("full_scans", &scans) && scans - scans0 >= 3) &&
	       ksm_now_ns() < deadline)
		nanosleep(&nap, NULL);
	if (sharing == 0 && !stopped()) {
		errno = ETIMEDOUT;
		return -1;
	}
	for (i = 0; i < n; i++)
		if (madvise(buf[i], len, MADV_DONTNEED))
			return -1;
	return sharing;
}

#endif
