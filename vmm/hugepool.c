// SPDX-License-Identifier: MIT
/*
 * The HugeTLB pool, checked before anything is mapped: a private or memfd
 * hugetlb mapping reserves its pages at mmap time, so a pool that is big
 * enough up front means no SIGBUS later.  With --reserve-hugepages the pool
 * is grown by what is missing and shrunk by as much again at exit.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "kvmstall.h"
#include "util.h"

struct ks_hugepool {
	char dir[96];
	uint64_t added; /* pages this process added to nr_hugepages */
};

static struct ks_hugepool *pool_at_exit;

static bool pool_read(const struct ks_hugepool *p, const char *file, uint64_t *v)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/%s", p->dir, file);
	return read_u64_file(path, v);
}

static uint64_t pool_available(const struct ks_hugepool *p)
{
	uint64_t free_p = 0, resv = 0;

	pool_read(p, "free_hugepages", &free_p);
	pool_read(p, "resv_hugepages", &resv);
	return free_p > resv ? free_p - resv : 0;
}

void hugepool__release(struct ks_hugepool *p)
{
	char path[160];
	uint64_t nr;

	if (!p || !p->added)
		return;
	snprintf(path, sizeof(path), "%s/nr_hugepages", p->dir);
	/* Give back what we added, not an old total: other users may have grown it too. */
	if (read_u64_file(path, &nr))
		write_u64_file(path, nr > p->added ? nr - p->added : 0);
	p->added = 0;
}

static void release_at_exit(void)
{
	hugepool__release(pool_at_exit);
}

struct ks_hugepool *hugepool__prepare(uint64_t page_size, uint64_t needed, bool reserve)
{
	struct ks_hugepool *p = xcalloc(1, sizeof(*p));
	uint64_t avail, nr = 0, want;
	char path[160], sz[32];
	struct stat st;

	fmt_size(page_size, sz, sizeof(sz));
	snprintf(p->dir, sizeof(p->dir), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB",
		 page_size / 1024);
	if (stat(p->dir, &st) < 0)
		die_usage("this kernel has no %s HugeTLB pages (%s is missing); choose another "
			  "--backing",
			  sz, p->dir);
	avail = pool_available(p);
	if (avail >= needed)
		return p;
	pool_read(p, "nr_hugepages", &nr);
	want = nr + (needed - avail);
	snprintf(path, sizeof(path), "%s/nr_hugepages", p->dir);
	if (!reserve)
		die_usage("not enough %s hugepages: this run needs %" PRIu64
			  " (slots and decoys), %" PRIu64 " are free; run 'echo %" PRIu64
			  " > %s' or pass --reserve-hugepages",
			  sz, needed, avail, want, path);
	if (!write_u64_file(path, want))
		die_perror("cannot grow the %s hugepage pool through %s (needs root)", sz, path);
	p->added = want - nr;
	pool_at_exit = p;
	atexit(release_at_exit);
	avail = pool_available(p);
	if (avail < needed) {
		hugepool__release(p);
		die("asked the kernel for %" PRIu64 " more %s hugepages but only %" PRIu64
		    " of the %" PRIu64 " needed are free: memory is too fragmented or too small; "
		    "reserve them at boot (hugepages= on the kernel command line)",
		    want - nr, sz, avail, needed);
	}
	pr_debug("reserved %" PRIu64 " %s hugepages", p->added, sz);
	return p;
}
