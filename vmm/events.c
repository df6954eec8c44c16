// SPDX-License-Identifier: MIT
/*
 * The event engine: one thread per stream fires its kind of host memory
 * event at its target on its schedule, through io_uring where the kernel
 * has the operation and plain syscalls otherwise, and logs every event.
 * A kind the host cannot do is reported once and its stream skipped.
 */
#include "config.h"

#define _GNU_SOURCE 1
#include "events.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <numa.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "kvmstall.h"
#include "numa-place.h"
#include "util.h"

#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

/* How long after the planned end overdue events may still be fired. */
#define KS_EVENTS_DRAIN_NS NSEC_PER_SEC
/* Events submitted in one go when the schedule is behind. */
#define KS_BATCH 64

static int advice_of(enum ks_ev_kind k)
{
	switch (k) {
	case KS_EV_DONTNEED:
		return MADV_DONTNEED;
	case KS_EV_FREE:
		return MADV_FREE;
	case KS_EV_COLD:
		return MADV_COLD;
	case KS_EV_PAGEOUT:
		return MADV_PAGEOUT;
	case KS_EV_REMOVE:
		return MADV_REMOVE;
	case KS_EV_HUGEPAGE:
		return MADV_HUGEPAGE;
	case KS_EV_NOHUGEPAGE:
		return MADV_NOHUGEPAGE;
	case KS_EV_MERGEABLE:
		return MADV_MERGEABLE;
	case KS_EV_UNMERGEABLE:
		return MADV_UNMERGEABLE;
	default:
		return -1;
	}
}

/* The advice of event @n: age-ksm alternates between merging and unmerging. */
static int ev_advice(const struct ks_stream *st, uint64_t n)
{
	if (st->spec.kind == KS_EV_AGE_KSM)
		return n % 2 ? MADV_UNMERGEABLE : MADV_MERGEABLE;
	return advice_of(st->spec.kind);
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif

/*
 * Whether this kernel lets @k (MADV_DONTNEED or mremap()) act on HugeTLB
 * memory of @ps-byte pages: older kernels, 5.10 among them, refuse both on
 * a HugeTLB mapping with EINVAL before looking at its pages.  Asked of a
 * mapping of our own that reserves no page; true when it cannot tell.
 */
static bool hugetlb_allows(uint64_t ps, enum ks_ev_kind k)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE |
		    (__builtin_ctzll(ps) << MAP_HUGE_SHIFT);
	uint8_t *a = mmap(NULL, ps, PROT_READ | PROT_WRITE, flags, -1, 0), *to;
	void *room;
	bool ok = true;

	if (a == MAP_FAILED)
		return true;
	if (k == KS_EV_DONTNEED) {
		ok = madvise(a, ps, MADV_DONTNEED) == 0 || errno != EINVAL;
	} else {
		room = mmap(NULL, 2 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			    -1, 0);
		if (room != MAP_FAILED) {
			to = (uint8_t *)align_up((uintptr_t)room, ps);
			if (mremap(a, ps, ps, MREMAP_MAYMOVE | MREMAP_FIXED, to) == MAP_FAILED)
				ok = errno != EINVAL;
			else
				a = to;
			munmap(room, 2 * ps);
		}
	}
	munmap(a, ps);
	return ok;
}

/* Why the host cannot do @k on this backing, or NULL when it can. */
static const char *unsupported(const struct ks_vm *vm, enum ks_ev_kind k)
{
	const struct ks_backing_info *b = vm->backing;
	char *s;
	bool ok;

	switch (k) {
	case KS_EV_DONTNEED:
		return b->hugetlb && !hugetlb_allows(vm->layout.page_size, k) ?
			       "this kernel refuses MADV_DONTNEED on HugeTLB memory (EINVAL); "
			       "newer kernels accept it" :
			       NULL;
	case KS_EV_MREMAP:
		return b->hugetlb && !hugetlb_allows(vm->layout.page_size, k) ?
			       "this kernel cannot mremap() HugeTLB memory (EINVAL); newer kernels can" :
			       NULL;
	case KS_EV_FREE:
	case KS_EV_COLD:
	case KS_EV_PAGEOUT:
		if (b->hugetlb)
			return "the kernel does not apply this advice to HugeTLB memory";
		if (k == KS_EV_PAGEOUT) {
			s = read_file("/proc/swaps");
			ok = s && strchr(s, '\n') && strchr(s, '\n')[1];
			free(s);
			if (!ok)
				return "there is no swap, so anonymous pages cannot be paged out";
		}
		return NULL;
	case KS_EV_PUNCH:
		return b->memfd ? NULL :
				  "punching holes needs a file: use --backing memfd-hugetlb-2M";
	case KS_EV_REMOVE:
		return b->memfd ?
			       NULL :
			       "MADV_REMOVE works on shared memory only: use --backing memfd-hugetlb-2M";
	case KS_EV_HUGEPAGE:
	case KS_EV_NOHUGEPAGE:
		return b->hugetlb ? "THP advice has no effect on HugeTLB memory" : NULL;
	case KS_EV_MERGEABLE:
	case KS_EV_UNMERGEABLE:
	case KS_EV_AGE_KSM:
		if (b->hugetlb)
			return "KSM does not merge HugeTLB memory";
		if (access("/sys/kernel/mm/ksm/run", F_OK) < 0)
			return "this kernel has no KSM (CONFIG_KSM)";
		if (k == KS_EV_AGE_KSM) {
			uint64_t run = 0;

			if (!read_u64_file("/sys/kernel/mm/ksm/run", &run) || run != 1)
				return "ksmd is not running (echo 1 > /sys/kernel/mm/ksm/run)";
		}
		return NULL;
	case KS_EV_MIGRATE:
		if (!vm->cfg->numa)
			return "NUMA placement is off (--no-numa)";
		if (numa_available() < 0)
			return "libnuma finds no NUMA support on this host";
		if (vm->nnodes < 2)
			return "this host has one NUMA node with memory: there is nowhere to migrate to";
		return NULL;
	case KS_EV_AGE_IDLE:
		if (access("/sys/kernel/mm/page_idle/bitmap", W_OK) < 0)
			return "this kernel has no idle page tracking (CONFIG_IDLE_PAGE_TRACKING)";
		return b->hugetlb ? "idle page tracking covers pages on the LRU lists, and HugeTLB "
				    "pages are not on them" :
				    NULL;
	default:
		return NULL;
	}
}

static bool uring_has(unsigned int op)
{
	struct io_uring_probe *p = io_uring_get_probe();
	bool ok = p && io_uring_opcode_supported(p, (int)op);

	if (p)
		io_uring_free_probe(p);
	return ok;
}

static void skip_stream(struct ks_stream *st, const char *why)
{
	st->skipped = true;
	snprintf(st->reason, sizeof(st->reason), "%s", why);
	pr_warning("--events '%s' skipped: %s", st->spec.text, why);
}

/*
 * A slot the spec allows, chosen for event @n.  Sequential placement takes
 * the slots in turn; *@local counts the events that slot got, so that its
 * ranges (and edge variants) advance independently of the number of slots.
 */
static struct ks_slot *pick_slot(struct ks_stream *st, uint64_t n, uint64_t *local)
{
	struct ks_vm *vm = st->vm;
	unsigned int i, count = 0;
	uint64_t mask = st->spec.slot_mask, want;

	for (i = 0; i < vm->layout.nslots; i++)
		count += !mask || (i < 64 && (mask >> i & 1));
	if (st->spec.random) {
		want = xorshift(&st->rng) % count;
		*local = n;
	} else {
		want = n % count;
		*local = n / count;
	}
	for (i = 0; i < vm->layout.nslots; i++) {
		if (mask && (i >= 64 || !(mask >> i & 1)))
			continue;
		if (!want--)
			return &vm->slots[i];
	}
	return &vm->slots[0];
}

void events__prepare(struct ks_vm *vm)
{
	unsigned int i, k;
	char err[256];

	for (i = 0; i < vm->nstreams; i++) {
		struct ks_stream *st = &vm->streams[i];
		const struct ks_ev_spec *s = &st->spec;
		const char *why;
		bool has;
		int op = -1;

		st->vm = vm;
		st->id = i;
		st->rng = 0x9e3779b97f4a7c15ULL * (i + 1);
		if (ks_ev_check_fit(&vm->layout, s, err, sizeof(err)) < 0)
			die_usage("%s", err);
		if (s->slot_mask) {
			for (k = 0; k < 64; k++)
				if ((s->slot_mask >> k & 1) && k >= vm->layout.nslots)
					die_usage(
						"invalid --events '%s': slot %u does not exist; the run has "
						"slots 0 to %u",
						s->text, k, vm->layout.nslots - 1);
		}
		if (s->hold_met && s->kind == KS_EV_MPROTECT && vm->cfg->workload != KS_WL_TOUCH &&
		    vm->cfg->workload != KS_WL_FAULT)
			die_usage(
				"invalid --events '%s': hold=met on mprotect waits for a guest write; "
				"use --workload touch or fault",
				s->text);
		if (s->hold_met && s->kind != KS_EV_MPROTECT && vm->cfg->workload != KS_WL_TOUCH)
			die_usage(
				"invalid --events '%s': hold=met on %s waits for the guest to read "
				"back zeroed memory; use --workload touch",
				s->text, ks_ev_kind_name(s->kind));
		why = unsupported(vm, s->kind);
		if (why) {
			skip_stream(st, why);
			continue;
		}
		if (advice_of(s->kind) >= 0 || s->kind == KS_EV_AGE_KSM)
			op = IORING_OP_MADVISE;
		else if (s->kind == KS_EV_PUNCH)
			op = IORING_OP_FALLOCATE;
		if (s->via == KS_VIA_URING && op < 0 && !s->via_given) {
			/* --submit uring: what io_uring cannot do goes as syscalls */
			st->uring = false;
			continue;
		}
		if (s->via == KS_VIA_URING && op < 0)
			die_usage(
				"invalid --events '%s': io_uring has no operation for %s; use via=syscall "
				"or via=auto",
				s->text, ks_ev_kind_name(s->kind));
		has = op >= 0 && uring_has((unsigned int)op);
		if (s->via == KS_VIA_URING && !has)
			die_usage(
				"invalid --events '%s': this kernel's io_uring lacks the operation for %s; "
				"use via=syscall or via=auto",
				s->text, ks_ev_kind_name(s->kind));
		st->uring = s->via != KS_VIA_SYSCALL && has;
	}
}

static void log_event(struct ks_stream *st, const struct ks_ev_rec *r)
{
	if (st->nrecs == st->caprecs) {
		st->caprecs = st->caprecs ? st->caprecs * 2 : 1024;
		st->recs = xrealloc(st->recs, st->caprecs * sizeof(*st->recs));
	}
	st->recs[st->nrecs++] = *r;
	if (r->result)
		st->errors++;
}

/* Mark each page of the range idle: the kernel clears young bits through the MMU notifiers. */
static int age_idle(uint8_t *addr, uint64_t len)
{
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	int bm = open("/sys/kernel/mm/page_idle/bitmap", O_WRONLY | O_CLOEXEC);
	uint64_t off, ent, pfn, bits;
	int rc = 0;

	if (pm < 0 || bm < 0) {
		rc = -errno;
		goto out;
	}
	for (off = 0; off < len; off += 4096) {
		uint64_t vpn = ((uintptr_t)addr + off) / 4096;

		if (pread(pm, &ent, 8, (off_t)(vpn * 8)) != 8) {
			rc = -EIO;
			break;
		}
		if (!(ent >> 63))
			continue; /* not present: nothing to age */
		pfn = ent & ((1ULL << 55) - 1);
		if (!pfn) {
			rc = -EPERM; /* PFNs hidden: needs CAP_SYS_ADMIN */
			break;
		}
		bits = 1ULL << (pfn % 64);
		if (pwrite(bm, &bits, 8, (off_t)(pfn / 64 * 8)) != 8) {
			rc = -errno;
			break;
		}
	}
out:
	if (pm >= 0)
		close(pm);
	if (bm >= 0)
		close(bm);
	return rc;
}

static int migrate(struct ks_stream *st, struct ks_slot *s, uint8_t *addr, uint64_t len, uint64_t n)
{
	struct ks_vm *vm = st->vm;
	uint64_t step = vm->backing->hugetlb ? vm->layout.page_size : 4096, np = len / step, i;
	void **pages = xcalloc(np, sizeof(void *));
	int *nodes = xcalloc(np, sizeof(int)), *status = xcalloc(np, sizeof(int));
	int node = vm->nodes[(n + 1) % vm->nnodes], rc = 0;

	(void)s;
	for (i = 0; i < np; i++) {
		pages[i] = addr + i * step;
		nodes[i] = node;
	}
	if (numa_move_pages(0, np, pages, nodes, status, MPOL_MF_MOVE) < 0)
		rc = -errno;
	free(pages);
	free(nodes);
	free(status);
	return rc;
}

/*
 * hold=met: how often the guest has met an event so far.  A write into
 * read-only memory shows as a KVM_RUN EFAULT that the vCPU retries; memory
 * that was discarded shows as words the touch workload reads back as zero.
 * The guest's counters are read only to end a wait early: a guest that
 * lies can make a wait last its full KS_HOLD_MAX_NS, nothing more.
 */
static uint64_t met_count(const struct ks_stream *st)
{
	const struct ks_vm *vm = st->vm;
	uint64_t sum = 0;
	unsigned int i;

	if (st->spec.kind == KS_EV_MPROTECT)
		return __atomic_load_n(&vm->efault_total, __ATOMIC_ACQUIRE);
	for (i = 0; i < vm->layout.nvcpus; i++)
		sum += __atomic_load_n(&vm->vcpus[i].shared->zeroed, __ATOMIC_RELAXED);
	return sum;
}

/* Wait until the guest meets the event (the count moves past @base), or give up. */
static void hold_until_met(struct ks_stream *st, uint64_t base)
{
	const struct timespec nap = { .tv_nsec = 100 * 1000 };
	uint64_t deadline = now_ns() + KS_HOLD_MAX_NS;

	while (met_count(st) == base) {
		if (__atomic_load_n(&st->vm->events_stop, __ATOMIC_ACQUIRE) ||
		    now_ns() >= deadline) {
			st->unmet++;
			return;
		}
		nanosleep(&nap, NULL);
	}
	st->met++;
}

/*
 * hold=met on a kind that discards memory: the guest notices a discard
 * only where it had written something, so wait until every vCPU has
 * written its whole region once (touch publishes its writes), or give up.
 */
static void await_guest_data(struct ks_stream *st)
{
	const struct timespec nap = { .tv_nsec = 1000 * 1000 };
	const struct ks_vm *vm = st->vm;
	uint64_t pass = vm->layout.region_size / vm->cfg->stride;
	uint64_t deadline = now_ns() + KS_HOLD_MAX_NS;
	unsigned int i = 0;

	while (i < vm->layout.nvcpus && now_ns() < deadline &&
	       !__atomic_load_n(&vm->events_stop, __ATOMIC_ACQUIRE)) {
		if (__atomic_load_n(&vm->vcpus[i].shared->touches, __ATOMIC_RELAXED) >= pass)
			i++;
		else
			nanosleep(&nap, NULL);
	}
}

/* Fire one event with plain syscalls; returns 0 or -errno. */
static int fire_syscall(struct ks_stream *st, struct ks_slot *s, uint64_t off, uint64_t len,
			uint64_t n)
{
	struct ks_vm *vm = st->vm;
	uint8_t *addr = s->reserve + off;
	int fd, rc = 0;
	uint64_t foff, piece, base;

	switch (st->spec.kind) {
	case KS_EV_MPROTECT:
		__atomic_fetch_add(&vm->protect_inflight, 1, __ATOMIC_SEQ_CST);
		base = met_count(st);
		if (mprotect(addr, len, PROT_READ) < 0)
			rc = -errno;
		if (vm->cfg->verify_events) {
			char perm[8];

			st->verify_mid_failed =
				!ks_verify_prot((uintptr_t)addr, perm, sizeof(perm)) ||
				strncmp(perm, "r--", 3) != 0;
		}
		/* The window stays open until a vCPU's write has run into it. */
		if (st->spec.hold_met && !rc)
			hold_until_met(st, base);
		if (mprotect(addr, len, PROT_READ | PROT_WRITE) < 0 && !rc)
			rc = -errno;
		__atomic_store_n(&vm->protect_last_end_ns, now_ns(), __ATOMIC_SEQ_CST);
		__atomic_fetch_sub(&vm->protect_inflight, 1, __ATOMIC_SEQ_CST);
		return rc;
	case KS_EV_MIGRATE:
		return migrate(st, s, addr, len, n);
	case KS_EV_REMAP:
		return mem__remap(vm, s, off, len);
	case KS_EV_MREMAP:
		if (mremap(addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, st->scratch) ==
		    MAP_FAILED)
			return -errno;
		if (mremap(st->scratch, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, addr) ==
		    MAP_FAILED)
			return -errno;
		/* Keep the scratch area reserved, or another mapping could land there. */
		mmap(st->scratch, len, PROT_NONE,
		     MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		return 0;
	case KS_EV_PUNCH:
		while (len) {
			if (mem__file_piece(vm, s, off, len, &fd, &foff, &piece) < 0)
				return -EBADF;
			if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)foff,
				      (off_t)piece) < 0)
				return -errno;
			off += piece;
			len -= piece;
		}
		return 0;
	case KS_EV_AGE_IDLE:
		return age_idle(addr, len);
	default:
		return madvise(addr, len, ev_advice(st, n)) < 0 ? -errno : 0;
	}
}

/* Prepare one io_uring submission for the event; false when it needs syscalls. */
static bool prep_uring(struct ks_stream *st, struct io_uring_sqe *sqe, struct ks_slot *s,
		       uint64_t off, uint64_t len, uint64_t n)
{
	int fd;
	uint64_t foff, piece;

	if (st->spec.kind == KS_EV_PUNCH) {
		if (mem__file_piece(st->vm, s, off, len, &fd, &foff, &piece) < 0 || piece != len)
			return false; /* spans two files: done with syscalls */
		io_uring_prep_fallocate(sqe, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)foff, (off_t)len);
		return true;
	}
	/* io_uring's madvise length is 32 bits wide. */
	if (len > UINT32_MAX)
		return false;
	io_uring_prep_madvise(sqe, s->reserve + off, (off_t)len, ev_advice(st, n));
	return true;
}

struct pending {
	struct ks_ev_rec rec;
	struct ks_slot *slot;
	uint64_t off;
	uint64_t n;
};

static void verify(struct ks_stream *st, const struct pending *p)
{
	char why[160] = "";
	int v = ks_verify_event(st, &p->rec, p->n, why, sizeof(why));

	if (v > 0) {
		st->verified++;
	} else if (v < 0) {
		st->verify_unknown++;
	} else {
		if (!st->verify_failed++)
			snprintf(st->verify_note, sizeof(st->verify_note),
				 "event %" PRIu64 " at 0x%" PRIx64 ": %s", p->n, p->rec.hva, why);
	}
}

static uint64_t due_of(const struct ks_stream *st, uint64_t k)
{
	const struct ks_ev_spec *s = &st->spec;
	uint64_t t = st->t_start + s->delay_ns;

	if (s->every_ns)
		return t + (k / s->burst) * s->every_ns;
	return t + (uint64_t)((double)k * 1e9 / s->rate);
}

/* Events of the schedule due before the planned end: the first k due at or after it. */
static uint64_t due_before_end(const struct ks_stream *st)
{
	uint64_t lo = 0, hi = 1;

	while (due_of(st, hi) < st->t_end)
		hi *= 2;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (due_of(st, mid) < st->t_end)
			lo = mid + 1;
		else
			hi = mid;
	}
	return st->spec.count && st->spec.count < lo ? st->spec.count : lo;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / NSEC_PER_SEC),
			       .tv_nsec = (long)(t % NSEC_PER_SEC) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void *stream_thread(void *arg)
{
	struct ks_stream *st = arg;
	struct ks_vm *vm = st->vm;
	const struct ks_ev_spec *s = &st->spec;
	struct pending batch[KS_BATCH];
	struct io_uring ring;
	bool uring = st->uring;
	uint64_t k = 0, now, base = 0;
	char err[256], name[16];
	unsigned int nb, i;
	/* hold=met on a discarding kind waits after each event (mprotect waits inside it). */
	bool hold_after = s->hold_met && s->kind != KS_EV_MPROTECT;

	snprintf(name, sizeof(name), "ks-events-%u", st->id);
	pthread_setname_np(pthread_self(), name);
	/* Wake-ups on time: the default 50 us slack would blur high rates. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	if (uring && io_uring_queue_init(2 * KS_BATCH, &ring, 0) < 0) {
		pr_warning("--events '%s': io_uring setup failed, using syscalls", s->text);
		uring = false;
		st->uring = false;
	}

	if (hold_after)
		await_guest_data(st);
	while (!__atomic_load_n(&vm->events_stop, __ATOMIC_ACQUIRE)) {
		uint64_t due = due_of(st, k);

		/* Events due before the end still fire, unless hopelessly late. */
		if ((s->count && k >= s->count) || due >= st->t_end)
			break;
		if (now_ns() > st->t_end + KS_EVENTS_DRAIN_NS) {
			st->given_up = st->scheduled - k;
			break;
		}
		now = now_ns();
		if (due > now) {
			/* Sleep in slices so that a stop request is seen soon. */
			sleep_until(due - now > 50000000 ? now + 50000000 : due);
			continue;
		}
		/*
		 * hold=met: one event at a time, each waited for.  age-ksm too: its
		 * events undo each other (mergeable, then unmergeable), so a batch
		 * that fell behind must not run them together (io_uring may run a
		 * batch in any order, and the check after it sees only the last).
		 */
		for (nb = 0; nb < (s->hold_met || s->kind == KS_EV_AGE_KSM ? 1 : KS_BATCH) &&
			     (!s->count || k + nb < s->count) && due_of(st, k + nb) <= now &&
			     due_of(st, k + nb) < st->t_end;
		     nb++) {
			struct pending *p = &batch[nb];
			struct ks_ev_range r;
			uint64_t local, pick;

			memset(p, 0, sizeof(*p));
			p->n = k + nb;
			p->slot = pick_slot(st, p->n, &local);
			pick = s->random ? xorshift(&st->rng) : local;
			if (ks_ev_range(&vm->layout, s, local, pick, &r, err, sizeof(err)) < 0)
				die("internal: %s", err);
			p->off = r.off;
			p->rec.due_ns = due_of(st, p->n);
			p->rec.hva = (uintptr_t)(p->slot->reserve + r.off);
			p->rec.len = r.len;
			p->rec.slot = r.overlaps_slot ? (int16_t)(p->slot - vm->slots) : -1;
		}
		if (hold_after)
			base = met_count(st);
		if (uring) {
			unsigned int queued = 0;

			for (i = 0; i < nb; i++) {
				struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

				batch[i].rec.via_uring =
					sqe && prep_uring(st, sqe, batch[i].slot, batch[i].off,
							  batch[i].rec.len, batch[i].n);
				if (batch[i].rec.via_uring) {
					io_uring_sqe_set_data64(sqe, i);
					queued++;
				} else if (sqe) {
					io_uring_prep_nop(sqe);
					io_uring_sqe_set_data64(sqe, UINT64_MAX);
					queued++;
				}
			}
			now = now_ns();
			for (i = 0; i < nb; i++)
				batch[i].rec.start_ns = now;
			io_uring_submit_and_wait(&ring, queued);
			while (queued) {
				struct io_uring_cqe *cqe;
				uint64_t idx;

				int rc = io_uring_wait_cqe(&ring, &cqe);

				if (rc == -EINTR)
					continue;
				if (rc < 0)
					break;
				idx = io_uring_cqe_get_data64(cqe);
				if (idx < nb) {
					batch[idx].rec.result = cqe->res < 0 ? cqe->res : 0;
					batch[idx].rec.end_ns = now_ns();
				}
				io_uring_cqe_seen(&ring, cqe);
				queued--;
			}
		}
		for (i = 0; i < nb; i++) {
			struct pending *p = &batch[i];

			if (!p->rec.via_uring) {
				p->rec.start_ns = now_ns();
				p->rec.result = fire_syscall(st, p->slot, p->off, p->rec.len, p->n);
				p->rec.end_ns = now_ns();
			}
			if (hold_after && !p->rec.result)
				hold_until_met(st, base);
			log_event(st, &p->rec);
			if (vm->cfg->verify_events && !p->rec.result)
				verify(st, p);
		}
		k += nb;
	}
	if (uring)
		io_uring_queue_exit(&ring);
	{
		struct timespec ts;

		if (!clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
			st->cpu_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	}
	return NULL;
}

void events__start(struct ks_vm *vm, uint64_t run_start_ns, uint64_t run_end_ns)
{
	unsigned int i;

	for (i = 0; i < vm->nstreams; i++) {
		struct ks_stream *st = &vm->streams[i];
		int r;

		if (st->skipped)
			continue;
		st->t_start = run_start_ns;
		st->t_end = run_end_ns;
		st->scheduled = due_before_end(st);
		if (st->spec.kind == KS_EV_MREMAP) {
			/* Somewhere to move the range to and back from, aligned like it. */
			uint64_t len = st->spec.pages * vm->layout.page_size,
				 a = vm->layout.page_size;
			uint8_t *raw = mmap(NULL, len + a, PROT_NONE,
					    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

			if (raw == MAP_FAILED)
				die_perror("cannot reserve address space for mremap events");
			st->scratch = (uint8_t *)align_up((uintptr_t)raw, a);
		}
		r = pthread_create(&st->thread, NULL, stream_thread, st);
		if (r) {
			errno = r;
			die_perror("cannot start the thread of event stream %u", i);
		}
		st->thread_started = true;
	}
}

void events__stop(struct ks_vm *vm, bool abort, volatile sig_atomic_t *signalled)
{
	struct timespec ts;
	unsigned int i;

	/* At the planned end, streams fire what fell due before it and stop by themselves. */
	if (abort)
		__atomic_store_n(&vm->events_stop, true, __ATOMIC_RELEASE);
	for (i = 0; i < vm->nstreams; i++) {
		struct ks_stream *st = &vm->streams[i];

		while (st->thread_started) {
			/* A Ctrl-C while streams catch up stops them at once. */
			if (*signalled)
				__atomic_store_n(&vm->events_stop, true, __ATOMIC_RELEASE);
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (pthread_timedjoin_np(st->thread, NULL, &ts) == 0)
				st->thread_started = false;
		}
		if (st->given_up)
			pr_warning("--events '%s' fell behind its schedule: %" PRIu64 " of %" PRIu64
				   " events fired, the rest given up 1 s after the planned end"
				   " (this host did not keep up with the rate)",
				   st->spec.text, st->scheduled - st->given_up, st->scheduled);
	}
}

void events__free(struct ks_vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->nstreams; i++)
		free(vm->streams[i].recs);
	free(vm->streams);
	vm->streams = NULL;
	vm->nstreams = 0;
}
