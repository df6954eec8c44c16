// SPDX-License-Identifier: MIT
/*
 * mn-bounds: MMU-notifier invalidations at the edges of memslots.
 *
 * The patched kernel takes mmu_lock for an invalidation only when its hva
 * range overlaps a memslot.  The classic way to get that wrong is an
 * off-by-one at a slot's edges (KERNEL-NOTES.md, "Bugs that later hit this
 * code upstream"): a range ending exactly at a slot's first byte, or
 * starting exactly at its end, must not count; one page inside must.
 *
 * For each backing (shmem with 4 KiB pages, HugeTLB with 2 MiB pages) one
 * memfd is mapped once, MAP_SHARED, as
 *
 *	[decoy][slot A][slot B][gap][slot C][decoy]
 *
 * (A and B adjacent, the gap mapped but no slot).  Holes punched into the
 * memfd with fallocate() produce exactly one invalidate_range_start/end
 * pair whose range is exactly the punched hva range.  For every case the
 * per-VM counters must say locked or elided as the overlap dictates, and
 * the guest must read 0 from punched pages inside slots (the stale KVM
 * mapping was zapped) and the old pattern from untouched neighbours.
 *
 * The counters (debugfs, /sys/kernel/debug/kvm/<pid>-<vmfd>/mn_*) exist
 * only in the patched kernel; without them only the memory checks run,
 * unless --require-counters makes their absence a failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/memfd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PROG "mn-bounds"
#include "mn-common.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Where 5.10 keeps the per-VM directories; overridable to test this test. */
#ifndef KVM_DEBUGFS
#endif

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif
#ifndef MPOL_LOCAL
#define MPOL_LOCAL 4
#endif

/* Layout of the region, in backing pages. */
enum {
	DECOY0 = 0, DECOY0_N = 2,
	SLOT_A = 2, SLOT_A_N = 4,
	SLOT_B = 6, SLOT_B_N = 4,
	GAP = 10, GAP_N = 2,
	SLOT_C = 12, SLOT_C_N = 4,
	DECOY1 = 16, DECOY1_N = 2,
	REGION_PAGES = 18,
};

/*
 * Guest-physical addresses, 2 MiB aligned so that HugeTLB backing is
 * mapped by KVM with 2 MiB pages, which is what a punched 2 MiB page must
 * zap.  The code slot sits apart from the data slots.
 */
#define CODE_GPA	0x00100000u
#define A_GPA		0x10000000u
#define B_GPA		0x20000000u
#define C_GPA		0x30000000u

/* mov eax,[ebx]; hlt: one guest read of the address in EBX per KVM_RUN. */
static const uint8_t guest_code[] = { 0x8b, 0x03, 0xf4 };

/*
 * Output and counter reads happen between a punch and its checks; keep
 * them free of malloc/free, whose heap trimming would itself be an
 * invalidation of this mm.
 */
static char outbuf[8192];

static int page_in_slot(int p, uint32_t *gpa_page)
{
	static const struct { int first, n; uint32_t gpa; } s[] = {
		{ SLOT_A, SLOT_A_N, A_GPA },
		{ SLOT_B, SLOT_B_N, B_GPA },
		{ SLOT_C, SLOT_C_N, C_GPA },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(s); i++) {
		if (p >= s[i].first && p < s[i].first + s[i].n) {
			if (gpa_page)
				*gpa_page = (uint32_t)(p - s[i].first);
			return (int)i;
		}
	}
	return -1;
}

struct vm {
	int kvm, vm, vcpu;
	struct kvm_run *run;
	size_t run_size;
	int cdir;		/* counter directory, or -1 */
	char cpath[64];
	int code_fd;
	uint8_t *code;
};

struct backing {
	const char *name;
	size_t page;		/* P */
	unsigned int mfd_flags;
};

static const struct backing backings[] = {
	{ "shmem-4K", 4096, 0 },
	{ "hugetlb-2M", 2u << 20, MFD_HUGETLB | MFD_HUGE_2MB },
};

static bool require_counters, require_hugetlb;

static int counter_get(const struct vm *v, const char *name, uint64_t *val)
{
	return counter_read(v->cdir, name, val);
}

struct inval { uint64_t seen, locked, elided; };

static void inval_get(const struct vm *v, const char *kind, struct inval *c)
{
	char name[48];

	snprintf(name, sizeof(name), "mn_%s_seen", kind);
	if (counter_get(v, name, &c->seen))
		die("cannot read %s/%s", v->cpath, name);
	snprintf(name, sizeof(name), "mn_%s_locked", kind);
	if (counter_get(v, name, &c->locked))
		die("cannot read %s/%s", v->cpath, name);
	snprintf(name, sizeof(name), "mn_%s_elided", kind);
	if (counter_get(v, name, &c->elided))
		die("cannot read %s/%s", v->cpath, name);
}

/*
 * A consistent snapshot: a notification on another CPU (reclaim aging this
 * mm, say) may land between the three reads, so read until two
 * snapshots in a row agree.
 */
static void inval_stable(const struct vm *v, const char *kind, struct inval *c)
{
	struct inval d;
	int i;

	inval_get(v, kind, c);
	for (i = 0; i < 50; i++) {
		inval_get(v, kind, &d);
		if (!memcmp(c, &d, sizeof(d)))
			return;
		*c = d;
		usleep(20000);
	}
}

static void vm_open(struct vm *v)
{
	memset(v, 0, sizeof(*v));
	v->vm = mn_create_vm(&v->kvm, v->cpath, sizeof(v->cpath), &v->cdir);

	/*
	 * The code slot is shmem too: an anonymous one could be scanned by
	 * NUMA balancing, whose invalidations would land in a slot in the
	 * middle of a case.
	 */
	v->code_fd = memfd_create("mn-bounds-code", MFD_CLOEXEC);
	if (v->code_fd < 0 || ftruncate(v->code_fd, 4096))
		die("memfd for guest code: %s", strerror(errno));
	v->code = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, v->code_fd, 0);
	if (v->code == MAP_FAILED)
		die("mmap guest code: %s", strerror(errno));
	memcpy(v->code, guest_code, sizeof(guest_code));
	if (mn_set_slot(v->vm, 0, CODE_GPA, 4096, v->code))
		die("KVM_SET_USER_MEMORY_REGION (code): %s", strerror(errno));

	v->vcpu = mn_create_vcpu32(v->kvm, v->vm, &v->run, &v->run_size);
}

static void vm_close(struct vm *v)
{
	munmap(v->run, v->run_size);
	close(v->vcpu);
	if (v->cdir >= 0)
		close(v->cdir);
	close(v->vm);
	close(v->kvm);
	munmap(v->code, 4096);
	close(v->code_fd);
}

/* Run the guest once: it reads the dword at gpa and halts. */
static int guest_read(struct vm *v, uint32_t gpa, uint32_t *val, char *err, size_t errlen)
{
	struct kvm_regs regs;

	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE_GPA;
	regs.rbx = gpa;
	regs.rflags = 0x2;
	if (ioctl(v->vcpu, KVM_SET_REGS, &regs)) {
		snprintf(err, errlen, "KVM_SET_REGS: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		if (ioctl(v->vcpu, KVM_RUN, 0)) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "KVM_RUN: %s", strerror(errno));
			return -1;
		}
		if (v->run->exit_reason == KVM_EXIT_HLT)
			break;
		if (v->run->exit_reason == KVM_EXIT_INTR)
			continue;
		snprintf(err, errlen, "guest read of 0x%x: exit reason %u%s", gpa,
			 v->run->exit_reason,
			 v->run->exit_reason == KVM_EXIT_MMIO ? " (MMIO: no slot there)" : "");
		return -1;
	}
	if (ioctl(v->vcpu, KVM_GET_REGS, &regs)) {
		snprintf(err, errlen, "KVM_GET_REGS: %s", strerror(errno));
		return -1;
	}
	*val = (uint32_t)regs.rax;
	return 0;
}

struct bcase {
	const char *name;
	int first, n;		/* punched pages */
	bool overlap;		/* must take mmu_lock */
	bool one;		/* exactly one notification expected */
};

static const struct bcase cases[] = {
	{ "end-at-A-start",	SLOT_A - 1, 1, false, false },
	{ "start-at-C-end",	SLOT_C + SLOT_C_N, 1, false, false },
	{ "A-first-page",	SLOT_A, 1, true, false },
	{ "C-last-page",	SLOT_C + SLOT_C_N - 1, 1, true, false },
	{ "A-last+B-first",	SLOT_B - 1, 2, true, true },
	{ "gap-exact",		GAP, GAP_N, false, false },
	{ "gap+B+C",		GAP - 1, GAP_N + 2, true, false },
};
#define NCASES ((int)ARRAY_SIZE(cases))

static uint32_t pattern(int c, int p, int which)
{
	uint32_t x = 0x5a000000u | (uint32_t)c << 16 | (uint32_t)p << 8 | 0x11;

	return which ? ~x : x;
}

static uint32_t slot_gpa(int p, size_t page)
{
	static const uint32_t base[] = { A_GPA, B_GPA, C_GPA };
	uint32_t idx = 0;
	int s = page_in_slot(p, &idx);

	return base[s] + idx * (uint32_t)page;
}

/* Hugepages: raise the pool by what is missing, remember to give it back. */
static long hp_orig = -1;

static long read_long(const char *path)
{
	char buf[32];
	long v = -1;
	FILE *f = fopen(path, "r");

	if (f) {
		if (fgets(buf, sizeof(buf), f))
			v = strtol(buf, NULL, 10);
		fclose(f);
	}
	return v;
}

static int write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	int r;

	if (!f)
		return -1;
	r = fprintf(f, "%ld\n", v) < 0;
	r |= fclose(f) != 0;
	return r ? -1 : 0;
}

static long hp_available(void)
{
	char line[128];
	long free_ = -1, rsvd = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		long v;

		if (sscanf(line, "HugePages_Free: %ld", &v) == 1)
			free_ = v;
		else if (sscanf(line, "HugePages_Rsvd: %ld", &v) == 1)
			rsvd = v;
	}
	fclose(f);
	return free_ < 0 ? -1 : free_ - rsvd;
}

static const char *hp_reserve(long need)
{
	static char why[160];
	long avail = hp_available(), total;

	if (avail >= need)
		return NULL;
	total = read_long("/proc/sys/vm/nr_hugepages");
	if (total < 0) {
		snprintf(why, sizeof(why), "cannot read /proc/sys/vm/nr_hugepages");
		return why;
	}
	if (write_long("/proc/sys/vm/nr_hugepages", total + need - (avail < 0 ? 0 : avail))) {
		snprintf(why, sizeof(why), "cannot write /proc/sys/vm/nr_hugepages: %s",
			 strerror(errno));
		return why;
	}
	hp_orig = total;
	avail = hp_available();
	if (avail < need) {
		snprintf(why, sizeof(why), "only %ld of %ld 2 MiB hugepages could be reserved",
			 avail < 0 ? 0 : avail, need);
		return why;
	}
	return NULL;
}

static void hp_release(void)
{
	if (hp_orig >= 0 && write_long("/proc/sys/vm/nr_hugepages", hp_orig))
		fprintf(stderr, PROG ": could not give the hugepages back (nr_hugepages=%ld)\n",
			hp_orig);
	hp_orig = -1;
}

/*
 * One case: patterns into the punched pages and two neighbours on each
 * side, guest reads them (KVM maps them), punch, counters, and read back.
 * Returns true on pass.
 */
static bool run_case(struct vm *v, const struct backing *b, int ci, int fd, uint8_t *region)
{
	const struct bcase *c = &cases[ci];
	int lo = c->first - 2, hi = c->first + c->n + 2, p, which;
	struct inval before, after, d = { 0, 0, 0 };
	uint64_t fl0 = 0, fl1 = 0;
	bool flushes = false;
	char err[192] = "", note[160] = "";
	size_t P = b->page;
	uint32_t val;
	bool ok = true;

	if (lo < 0)
		lo = 0;
	if (hi > REGION_PAGES)
		hi = REGION_PAGES;

	for (p = lo; p < hi; p++) {
		uint32_t *w = (uint32_t *)(region + (size_t)p * P);

		w[0] = pattern(ci, p, 0);
		w[P / 4 - 1] = pattern(ci, p, 1);
	}
	for (p = lo; p < hi && ok; p++) {
		if (page_in_slot(p, NULL) < 0)
			continue;
		if (guest_read(v, slot_gpa(p, P), &val, err, sizeof(err))) {
			ok = false;
		} else if (val != pattern(ci, p, 0)) {
			snprintf(err, sizeof(err), "setup: guest read 0x%08x from page %d, host wrote 0x%08x",
				 val, p, pattern(ci, p, 0));
			ok = false;
		}
	}
	if (!ok) {
		printf(PROG ": %-10s %-15s FAIL %s\n", b->name, c->name, err);
		return false;
	}

	if (v->cdir >= 0) {
		inval_stable(v, "invalidate", &before);
		/* The instrumentation's count of the flushes notifiers asked for. */
		flushes = !counter_get(v, "mn_tlb_flushes", &fl0);
	}
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)c->first * (off_t)P, (off_t)c->n * (off_t)P)) {
		printf(PROG ": %-10s %-15s FAIL fallocate(PUNCH_HOLE): %s\n", b->name, c->name,
		       strerror(errno));
		return false;
	}
	if (v->cdir >= 0) {
		inval_stable(v, "invalidate", &after);
		d.seen = after.seen - before.seen;
		d.locked = after.locked - before.locked;
		d.elided = after.elided - before.elided;
		if (c->overlap && (d.locked < 1 || d.elided != 0)) {
			snprintf(note, sizeof(note), "overlapping range: want locked>=1 elided=0");
			ok = false;
		} else if (!c->overlap && (d.locked != 0 || d.seen < 1 || d.elided != d.seen)) {
			snprintf(note, sizeof(note), "range outside slots: want locked=0 elided=seen>=1");
			ok = false;
		} else if (c->one && (d.seen != 1 || d.locked != 1)) {
			snprintf(note, sizeof(note), "one punch: want exactly one locked notification");
			ok = false;
		}
		/*
		 * One punch is one notification: one remote TLB flush if it
		 * zapped anything in any memslot, however many it hit; none
		 * outside them.
		 */
		if (flushes && !counter_get(v, "mn_tlb_flushes", &fl1) && ok &&
		    fl1 - fl0 != (c->overlap ? 1 : 0)) {
			snprintf(note, sizeof(note), "want %d remote TLB flush%s, got %llu",
				 c->overlap ? 1 : 0, c->overlap ? "" : "es",
				 (unsigned long long)(fl1 - fl0));
			ok = false;
		}
	}

	/* Guest first: a host read would repopulate the hole before KVM looks. */
	for (p = lo; p < hi; p++) {
		bool punched = p >= c->first && p < c->first + c->n;

		if (page_in_slot(p, NULL) < 0)
			continue;
		for (which = 0; which < 2; which++) {
			uint32_t want = punched ? 0 : pattern(ci, p, which);
			uint32_t gpa = slot_gpa(p, P) + (which ? (uint32_t)P - 4 : 0);

			if (guest_read(v, gpa, &val, err, sizeof(err))) {
				ok = false;
				goto out;
			}
			if (val != want) {
				snprintf(err, sizeof(err), "guest read 0x%08x at page %d+%s, want 0x%08x%s",
					 val, p, which ? "end" : "0", want,
					 punched ? " (stale mapping not zapped)" : "");
				ok = false;
				goto out;
			}
		}
	}
	for (p = lo; p < hi; p++) {
		bool punched = p >= c->first && p < c->first + c->n;
		uint32_t *w = (uint32_t *)(region + (size_t)p * P);

		for (which = 0; which < 2; which++) {
			uint32_t want = punched ? 0 : pattern(ci, p, which);

			val = w[which ? P / 4 - 1 : 0];
			if (val != want) {
				snprintf(err, sizeof(err), "host read 0x%08x at page %d+%s, want 0x%08x",
					 val, p, which ? "end" : "0", want);
				ok = false;
				goto out;
			}
		}
	}
out:
	printf(PROG ": %-10s %-15s %s pages [%d,%d) %s", b->name, c->name, ok ? "PASS" : "FAIL",
	       c->first, c->first + c->n, c->overlap ? "overlap" : "outside");
	if (v->cdir >= 0)
		printf(" invalidate seen=%llu locked=%llu elided=%llu", (unsigned long long)d.seen,
		       (unsigned long long)d.locked, (unsigned long long)d.elided);
	if (flushes)
		printf(" flushes=%llu", (unsigned long long)(fl1 - fl0));
	else
		printf(" counters n/a");
	printf("%s%s%s%s\n", note[0] ? "; " : "", note, err[0] ? "; " : "",
	       err[0] ? err : (ok ? "; memory ok" : ""));
	return ok;
}

/* After all cases: paired balance, consistency, and a vCPU that still runs. */
static bool final_checks(struct vm *v, const struct backing *b)
{
	static const char *const kinds[] = {
		"invalidate", "clear_flush_young", "clear_young", "test_young", "change_pte",
	};
	uint64_t active = 0, count = 0;
	uint32_t val = 0;
	char err[192] = "";
	bool ok = true;
	unsigned int i;

	if (v->cdir >= 0) {
		struct inval c;

		if (counter_get(v, "mn_invalidate_active", &active) ||
		    counter_get(v, "mmu_notifier_count", &count))
			die("cannot read the gauges in %s", v->cpath);
		ok = active == 0 && count == 0;
		printf(PROG ": %-10s %-15s %s mn_invalidate_active=%llu mmu_notifier_count=%llu\n",
		       b->name, "gauges", ok ? "PASS" : "FAIL", (unsigned long long)active,
		       (unsigned long long)count);
		for (i = 0; i < ARRAY_SIZE(kinds); i++) {
			bool k_ok;

			inval_stable(v, kinds[i], &c);
			k_ok = c.seen == c.locked + c.elided;
			ok &= k_ok;
			printf(PROG ": %-10s %-15s %s mn_%s seen=%llu locked=%llu elided=%llu%s\n",
			       b->name, "totals", k_ok ? "PASS" : "FAIL", kinds[i],
			       (unsigned long long)c.seen, (unsigned long long)c.locked,
			       (unsigned long long)c.elided, k_ok ? "" : " (seen != locked + elided)");
		}
	}
	if (guest_read(v, CODE_GPA, &val, err, sizeof(err)) == 0 &&
	    val != (uint32_t)(guest_code[0] | guest_code[1] << 8 | guest_code[2] << 16))
		snprintf(err, sizeof(err), "guest read 0x%08x from its own code", val);
	printf(PROG ": %-10s %-15s %s%s%s\n", b->name, "vcpu-progress", err[0] ? "FAIL" : "PASS",
	       err[0] ? " " : " the vCPU still runs", err);
	return ok && !err[0];
}

static bool run_backing(const struct backing *b)
{
	struct kvm_userspace_memory_region slot;
	size_t size = REGION_PAGES * b->page;
	uint8_t *region;
	bool ok = true;
	struct vm v;
	int fd, ci;

	if (b->mfd_flags & MFD_HUGETLB) {
		const char *why = hp_reserve(REGION_PAGES + 2);

		if (why) {
			hp_release();
			if (require_hugetlb) {
				printf(PROG ": %-10s FAIL %s (--require-hugetlb)\n", b->name, why);
				return false;
			}
			printf(PROG ": %-10s SKIP %s\n", b->name, why);
			return true;
		}
	}
	fd = memfd_create(b->name, MFD_CLOEXEC | b->mfd_flags);
	if (fd < 0)
		die("memfd_create(%s): %s", b->name, strerror(errno));
	if (ftruncate(fd, (off_t)size))
		die("ftruncate(%s, %zu): %s", b->name, size, strerror(errno));
	region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (region == MAP_FAILED)
		die("mmap %s memfd (%zu bytes): %s", b->name, size, strerror(errno));

	vm_open(&v);
	if (v.cdir < 0 && require_counters) {
		printf(PROG ": %-10s FAIL no MMU-notifier counters in %s (--require-counters)\n",
		       b->name, v.cpath);
		ok = false;
		goto out;
	}
	if (v.cdir < 0)
		printf(PROG ": %-10s note: no counters in %s, memory checks only\n", b->name,
		       v.cpath);

	for (ci = 0; ci < 3; ci++) {
		static const int first[] = { SLOT_A, SLOT_B, SLOT_C }, n[] = { SLOT_A_N, SLOT_B_N, SLOT_C_N };
		static const uint32_t gpa[] = { A_GPA, B_GPA, C_GPA };

		slot = (struct kvm_userspace_memory_region){
			.slot = (uint32_t)ci + 1, .guest_phys_addr = gpa[ci],
			.memory_size = (uint64_t)n[ci] * b->page,
			.userspace_addr = (uintptr_t)(region + (size_t)first[ci] * b->page),
		};
		if (ioctl(v.vm, KVM_SET_USER_MEMORY_REGION, &slot))
			die("KVM_SET_USER_MEMORY_REGION (slot %c): %s", 'A' + ci, strerror(errno));
	}
	printf(PROG ": %-10s region %p: decoy [0,%d) A [%d,%d) B [%d,%d) gap [%d,%d) C [%d,%d) decoy [%d,%d) pages of %zu KiB\n",
	       b->name, (void *)region, SLOT_A, SLOT_A, SLOT_B, SLOT_B, GAP, GAP, SLOT_C, SLOT_C,
	       DECOY1, DECOY1, REGION_PAGES, b->page >> 10);

	for (ci = 0; ci < NCASES; ci++)
		ok &= run_case(&v, b, ci, fd, region);
	ok &= final_checks(&v, b);
out:
	vm_close(&v);
	munmap(region, size);
	close(fd);
	hp_release();
	return ok;
}

static void usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, PROG ": ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (usage: " PROG " [--require-counters] [--require-hugetlb])\n");
	exit(2);
}

int main(int argc, char **argv)
{
	bool ok = true;
	unsigned int i;
	int a;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--require-counters")) {
			require_counters = true;
		} else if (!strcmp(argv[a], "--require-hugetlb")) {
			require_hugetlb = true;
		} else if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
			printf("usage: " PROG " [--require-counters] [--require-hugetlb]\n");
			return 0;
		} else {
			usage_error("unknown argument '%s'", argv[a]);
		}
	}
	setvbuf(stdout, outbuf, _IOLBF, sizeof(outbuf));
	/* die() must not leave the hugepage pool raised either. */
	atexit(hp_release);

	/*
	 * Keep other invalidations of this mm out of the measurements: no
	 * khugepaged collapses, and a task policy without MPOL_F_MOF so that
	 * NUMA balancing skips our VMAs (shmem and HugeTLB VMAs it skips
	 * anyway).  Failure only means a kernel without those features.
	 */
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	syscall(SYS_set_mempolicy, MPOL_LOCAL, NULL, 0UL);

	for (i = 0; i < ARRAY_SIZE(backings); i++)
		ok &= run_backing(&backings[i]);
	printf(PROG ": %s\n", ok ? "PASS" : "FAIL");
	return ok ? 0 : 1;
}
