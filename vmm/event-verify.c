// SPDX-License-Identifier: MIT
/*
 * --verify-events: after each event, look through interfaces independent
 * of the call that was made (pagemap, kpageflags, smaps, maps, move_pages)
 * and check that the event really took effect.  Exact when nothing else
 * touches the range meanwhile (the spin workload).  A guest that touches
 * its memory can legitimately undo what an event did to a page (refault it,
 * make it young again), so there a page found in its old state is "cannot
 * tell", never a failure.
 */
#include "config.h"

#define _GNU_SOURCE 1
#include <fcntl.h>
#include <inttypes.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events.h"
#include "kvmstall.h"
#include "util.h"

#define KPF_ACTIVE 6
#define KPF_SWAPBACKED 14
#define KPF_COMPOUND_TAIL 16

/* /proc/self/pagemap, opened once per check (stream threads check concurrently). */
static __thread int pagemap_fd = -1;

static bool pagemap_entry(uintptr_t addr, uint64_t *ent)
{
	return pagemap_fd >= 0 && pread(pagemap_fd, ent, 8, (off_t)(addr / 4096 * 8)) == 8;
}

static bool kpageflags(uint64_t pfn, uint64_t *flags)
{
	int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = pread(fd, flags, 8, (off_t)(pfn * 8)) == 8;
	close(fd);
	return ok;
}

/* The line of /proc/self/@file about the mapping holding @addr, from @field on. */
static bool vma_line(const char *file, uintptr_t addr, const char *field, char *out, size_t len)
{
	char path[64], line[512];
	bool in = false, found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/%s", file);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		/* A mapping's header line starts "lo-hi "; field lines start with a name. */
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			in = addr >= lo && addr < hi;
			if (in && !field[0]) {
				snprintf(out, len, "%s", line);
				found = true;
				break;
			}
			continue;
		}
		if (in && field[0] && !strncmp(line, field, strlen(field))) {
			snprintf(out, len, "%s", line + strlen(field));
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

static bool vmflag(uintptr_t addr, const char *flag, bool *set)
{
	char flags[256], pat[8];

	if (!vma_line("smaps", addr, "VmFlags:", flags, sizeof(flags)))
		return false;
	snprintf(pat, sizeof(pat), " %s", flag);
	*set = strstr(flags, pat) != NULL;
	return true;
}

static bool idle_bit(uint64_t pfn, bool *set)
{
	int fd = open("/sys/kernel/mm/page_idle/bitmap", O_RDONLY | O_CLOEXEC);
	uint64_t word;
	bool ok;

	if (fd < 0)
		return false;
	ok = pread(fd, &word, 8, (off_t)(pfn / 64 * 8)) == 8;
	close(fd);
	if (ok)
		*set = word >> (pfn % 64) & 1;
	return ok;
}

/* "rw-p" of the mapping at @addr. */
bool ks_verify_prot(uintptr_t addr, char *perm, size_t len)
{
	char line[512], *sp;

	if (!vma_line("maps", addr, "", line, sizeof(line)))
		return false;
	sp = strchr(line, ' ');
	if (!sp)
		return false;
	snprintf(perm, len, "%.4s", sp + 1);
	return true;
}

static int verify_kind(struct ks_stream *st, uintptr_t addr, uint64_t len, uint64_t n, char *why,
		       size_t wl);

/*
 * Whether the guest may have touched the event's range since: it overlaps a
 * test slot and the workload writes memory (every workload but spin, and
 * the hostile ones make their other vCPUs touch).
 */
static bool guest_may_touch(const struct ks_stream *st, const struct ks_ev_rec *rec)
{
	return rec->slot >= 0 && st->vm->cfg->workload != KS_WL_SPIN;
}

/* Kinds whose effect a guest access undoes: a refault, a young or active page. */
static bool guest_undoes(enum ks_ev_kind k)
{
	switch (k) {
	case KS_EV_DONTNEED:
	case KS_EV_REMOVE:
	case KS_EV_PUNCH:
	case KS_EV_REMAP:
	case KS_EV_PAGEOUT:
	case KS_EV_COLD:
	case KS_EV_AGE_IDLE:
		return true;
	default:
		return false;
	}
}

/* 1 verified, 0 not (why says what was seen), -1 cannot tell. */
int ks_verify_event(struct ks_stream *st, const struct ks_ev_rec *rec, uint64_t n, char *why,
		    size_t wl)
{
	int v;

	pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	v = verify_kind(st, rec->hva, rec->len, n, why, wl);
	if (pagemap_fd >= 0)
		close(pagemap_fd);
	pagemap_fd = -1;
	/* Pages back in their old state: the guest's doing as likely as the kernel's. */
	if (v == 0 && guest_undoes(st->spec.kind) && guest_may_touch(st, rec))
		v = -1;
	return v;
}

static int verify_kind(struct ks_stream *st, uintptr_t addr, uint64_t len, uint64_t n, char *why,
		       size_t wl)
{
	enum ks_ev_kind k = st->spec.kind;
	uint64_t off, ent, fl, present = 0;
	bool set;
	char perm[8];
	int node = -1;
	void *page = (void *)addr;

	switch (k) {
	case KS_EV_DONTNEED:
	case KS_EV_REMOVE:
	case KS_EV_PUNCH:
	case KS_EV_REMAP:
	case KS_EV_PAGEOUT:
		/* Gone, or for pageout also swapped out (bit 62: swap entry). */
		for (off = 0; off < len; off += 4096) {
			if (!pagemap_entry(addr + off, &ent))
				return -1;
			present += (ent >> 63) & 1;
		}
		if (present)
			snprintf(why, wl, "%" PRIu64 " of %" PRIu64 " pages still mapped", present,
				 len / 4096);
		return !present;
	case KS_EV_FREE:
	case KS_EV_COLD:
		/*
		 * The kernel applies lazy-free and deactivation through per-CPU
		 * batches; moving a page to the node it is on drains them.
		 */
		if (move_pages(0, 1, &page, NULL, &node, 0) == 0 && node >= 0)
			move_pages(0, 1, &page, &node, &node, MPOL_MF_MOVE);
		for (off = 0; off < len; off += 4096) {
			if (!pagemap_entry(addr + off, &ent))
				return -1;
			if (!(ent >> 63))
				continue;
			if (!(ent & ((1ULL << 55) - 1)) ||
			    !kpageflags(ent & ((1ULL << 55) - 1), &fl))
				return -1; /* PFNs hidden without CAP_SYS_ADMIN */
			if (k == KS_EV_FREE ? fl >> KPF_SWAPBACKED & 1 : fl >> KPF_ACTIVE & 1)
				present++;
		}
		if (present)
			snprintf(why, wl, "%" PRIu64 " pages still %s", present,
				 k == KS_EV_FREE ? "swap-backed (not lazily freed)" : "active");
		return !present;
	case KS_EV_HUGEPAGE:
	case KS_EV_NOHUGEPAGE:
	case KS_EV_MERGEABLE:
	case KS_EV_UNMERGEABLE:
	case KS_EV_AGE_KSM: {
		const char *flag = k == KS_EV_HUGEPAGE ? "hg" : k == KS_EV_NOHUGEPAGE ? "nh" : "mg";
		bool want = k != KS_EV_UNMERGEABLE && !(k == KS_EV_AGE_KSM && n % 2);

		if (!vmflag(addr, flag, &set))
			return -1;
		if (set != want)
			snprintf(why, wl, "VmFlags %s '%s'", set ? "still has" : "lacks", flag);
		return set == want;
	}
	case KS_EV_MPROTECT:
		/* The read-only half is checked inside the event; here the way back. */
		if (!ks_verify_prot(addr, perm, sizeof(perm)))
			return -1;
		if (strncmp(perm, "rw", 2) || st->verify_mid_failed) {
			snprintf(why, wl, "%s",
				 st->verify_mid_failed ? "was never read-only" :
							 "not writable again");
			st->verify_mid_failed = false;
			return 0;
		}
		return 1;
	case KS_EV_MREMAP:
		if (ks_verify_prot(addr, perm, sizeof(perm)) && !strncmp(perm, "rw", 2))
			return 1;
		snprintf(why, wl, "the range is not mapped read-write after moving it back");
		return 0;
	case KS_EV_AGE_IDLE: {
		uint64_t checked = 0;

		for (off = 0; off < len; off += 4096) {
			uint64_t pfn;

			if (!pagemap_entry(addr + off, &ent))
				return -1;
			if (!(ent >> 63))
				continue;
			pfn = ent & ((1ULL << 55) - 1);
			if (!pfn || !kpageflags(pfn, &fl))
				return -1;
			/* A huge page's idleness is its head's: older kernels read its tails as
			 * busy. */
			if (fl >> KPF_COMPOUND_TAIL & 1)
				continue;
			if (!idle_bit(pfn, &set))
				return -1;
			checked++;
			present += !set;
		}
		if (present)
			snprintf(why, wl, "%" PRIu64 " pages not marked idle", present);
		return checked ? !present : -1;
	}
	case KS_EV_MIGRATE:
		if (move_pages(0, 1, &page, NULL, &node, 0) < 0)
			return -1;
		if (node != st->vm->nodes[(n + 1) % st->vm->nnodes])
			snprintf(why, wl, "page is on node %d", node);
		return node == st->vm->nodes[(n + 1) % st->vm->nnodes];
	default:
		return -1;
	}
}
