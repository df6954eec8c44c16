// SPDX-License-Identifier: MIT
/*
 * The HugeTLB pool, checked before anything is mapped: a private or memfd
 * hugetlb mapping reserves its pages at mmap time, so a pool that is big
 * enough up front means no SIGBUS later.  With NUMA placement each node
 * must also hold what its slots need.  With --reserve-hugepages a pool is
 * grown by what is missing and shrunk by as much again at exit.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "kvmstall.h"
#include "util.h"

#define KS_MAX_POOLS 65 /* the global pool and up to 64 nodes */

struct ks_pool_dir {
	char dir[128];
	uint64_t added; /* pages this process added to nr_hugepages */
};

struct ks_hugepool {
	struct ks_pool_dir d[KS_MAX_POOLS];
	unsigned int n;
};

static struct ks_hugepool *pool_at_exit;

static bool pool_read(const struct ks_pool_dir *p, const char *file, uint64_t *v)
{
	char path[192];

	snprintf(path, sizeof(path), "%s/%s", p->dir, file);
	return read_u64_file(path, v);
}

/* Free pages nobody has reserved (per-node directories have no resv count). */
static uint64_t pool_available(const struct ks_pool_dir *p)
{
	uint64_t free_p = 0, resv = 0;

	pool_read(p, "free_hugepages", &free_p);
	pool_read(p, "resv_hugepages", &resv);
	return free_p > resv ? free_p - resv : 0;
}

void hugepool__release(struct ks_hugepool *pool)
{
	char path[192];
	uint64_t nr;
	unsigned int i;

	if (!pool)
		return;
	for (i = pool->n; i-- > 0;) {
		struct ks_pool_dir *p = &pool->d[i];

		if (!p->added)
			continue;
		snprintf(path, sizeof(path), "%s/nr_hugepages", p->dir);
		/* Give back what we added, not an old total: others may have grown it too. */
		if (read_u64_file(path, &nr))
			write_u64_file(path, nr > p->added ? nr - p->added : 0);
		p->added = 0;
	}
	if (pool == pool_at_exit)
		pool_at_exit = NULL;
	free(pool);
}

static void release_at_exit(void)
{
	hugepool__release(pool_at_exit);
}

static void ensure(struct ks_hugepool *pool, const char *dir, const char *where, const char *sz,
		   uint64_t needed, bool reserve)
{
	struct ks_pool_dir *p = &pool->d[pool->n++];
	uint64_t avail, nr = 0, want;
	char path[192];

	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	avail = pool_available(p);
	if (avail >= needed)
		return;
	pool_read(p, "nr_hugepages", &nr);
	want = nr + (needed - avail);
	snprintf(path, sizeof(path), "%s/nr_hugepages", p->dir);
	if (!reserve)
		die_usage("not enough %s hugepages%s: this run needs %" PRIu64
			  " (slots, decoys and "
			  "fault headroom), %" PRIu64 " are free; run 'echo %" PRIu64
			  " > %s' or pass "
			  "--reserve-hugepages",
			  sz, where, needed, avail, want, path);
	if (!pool_at_exit) {
		pool_at_exit = pool;
		atexit(release_at_exit);
	}
	if (!write_u64_file(path, want))
		die_perror("cannot grow the %s hugepage pool through %s (needs root)", sz, path);
	p->added = want - nr;
	avail = pool_available(p);
	if (avail < needed)
		die("asked the kernel for %" PRIu64 " more %s hugepages%s but only %" PRIu64
		    " of the %" PRIu64 " needed are free: memory is too fragmented or too small; "
		    "reserve them at boot (hugepages= on the kernel command line)",
		    want - nr, sz, where, avail, needed);
	pr_debug("reserved %" PRIu64 " %s hugepages%s", p->added, sz, where);
}

struct ks_hugepool *hugepool__prepare(uint64_t page_size, uint64_t needed,
				      const uint64_t *node_needed, int max_node, bool reserve)
{
	struct ks_hugepool *pool = xcalloc(1, sizeof(*pool));
	char dir[128], where[32], sz[32];
	struct stat st;
	int node;

	fmt_size(page_size, sz, sizeof(sz));
	snprintf(dir, sizeof(dir), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB",
		 page_size / 1024);
	if (stat(dir, &st) < 0)
		die_usage("this kernel has no %s HugeTLB pages (%s is missing); choose another "
			  "--backing",
			  sz, dir);
	for (node = 0; node_needed && node <= max_node && node < KS_MAX_POOLS - 1; node++) {
		if (!node_needed[node])
			continue;
		snprintf(dir, sizeof(dir),
			 "/sys/devices/system/node/node%d/hugepages/hugepages-%" PRIu64 "kB", node,
			 page_size / 1024);
		snprintf(where, sizeof(where), " on node %d", node);
		ensure(pool, dir, where, sz, node_needed[node], reserve);
	}
	snprintf(dir, sizeof(dir), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB",
		 page_size / 1024);
	ensure(pool, dir, "", sz, needed, reserve);
	return pool;
}
