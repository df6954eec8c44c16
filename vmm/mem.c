// SPDX-License-Identifier: MIT
/*
 * Guest memory: the system region, the test memslots and, directly before
 * and after every slot, a VMM-private decoy of the same backing, so host
 * memory events can hit memory that is and is not guest memory.  Also the
 * parallel prefault and the recycler that keeps the fault workload faulting.
 */
#include "config.h"

#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/mman.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvmstall.h"
#include "numa-place.h"
#include "util.h"

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif

/* mmap flags of the run's backing; @fd >= 0 for the memfd backing. */
static int backing_flags(const struct ks_vm *vm, int fd)
{
	int flags = fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS;

	if (vm->cfg->backing == KS_BACKING_HUGETLB_2M)
		flags |= MAP_HUGETLB | MAP_HUGE_2MB;
	else if (vm->cfg->backing == KS_BACKING_HUGETLB_1G)
		flags |= MAP_HUGETLB | MAP_HUGE_1GB;
	return flags;
}

/* The THP policy of the anonymous backings: "anon" means 4 KiB pages. */
static int backing_advise(const struct ks_vm *vm, void *p, uint64_t len)
{
	if (vm->cfg->backing == KS_BACKING_ANON)
		return madvise(p, len, MADV_NOHUGEPAGE);
	if (vm->cfg->backing == KS_BACKING_THP)
		return madvise(p, len, MADV_HUGEPAGE);
	return 0;
}

static void map_part(struct ks_vm *vm, uint8_t *addr, uint64_t len, int *fd, const char *what)
{
	void *p;

	*fd = -1;
	if (vm->backing->memfd) {
		*fd = memfd_create(what, MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_2MB);
		if (*fd < 0)
			die_perror("memfd_create(MFD_HUGETLB) for %s failed", what);
		if (ftruncate(*fd, (off_t)len) < 0)
			die_perror("cannot size the %s memfd to %" PRIu64 " bytes", what, len);
	}
	p = mmap(addr, len, PROT_READ | PROT_WRITE, MAP_FIXED | backing_flags(vm, *fd), *fd, 0);
	if (p == MAP_FAILED) {
		if (errno == ENOMEM && vm->backing->hugetlb)
			die("cannot map %" PRIu64 " bytes of %s for %s: the hugepage pool ran out "
			    "(another process took pages after the check?)",
			    len, vm->backing->name, what);
		die_perror("mmap of %" PRIu64 " bytes for %s failed", len, what);
	}
	if (backing_advise(vm, p, len) < 0)
		die_perror("madvise of the THP policy for %s failed (THP not built in?)", what);
}

/*
 * The part of slot @s's reservation that holds @off: 0 decoy before, 1 the
 * slot, 2 decoy after; *@part_off is the offset inside that part and
 * *@part_left what is left of it from there.
 */
static int part_of(const struct ks_vm *vm, uint64_t off, uint64_t *part_off, uint64_t *part_left)
{
	const struct ks_layout *l = &vm->layout;

	if (off < l->decoy_size) {
		*part_off = off;
		*part_left = l->decoy_size - off;
		return 0;
	}
	off -= l->decoy_size;
	if (off < l->slot_size) {
		*part_off = off;
		*part_left = l->slot_size - off;
		return 1;
	}
	*part_off = off - l->slot_size;
	*part_left = l->decoy_size - *part_off;
	return 2;
}

int mem__file_piece(const struct ks_vm *vm, const struct ks_slot *s, uint64_t off, uint64_t len,
		    int *fd, uint64_t *file_off, uint64_t *piece)
{
	uint64_t left;
	int part = part_of(vm, off, file_off, &left);

	*fd = s->fd[part];
	*piece = len < left ? len : left;
	return *fd >= 0 ? 0 : -1;
}

int mem__remap(struct ks_vm *vm, struct ks_slot *s, uint64_t off, uint64_t len)
{
	uint8_t *addr = s->reserve + off;
	uint64_t foff, left;
	int part = part_of(vm, off, &foff, &left), fd = s->fd[part];
	void *p;

	if (part == 1 || len > left)
		return -EINVAL; /* decoys only: guest memory is never unmapped */
	/*
	 * MAP_FIXED unmaps the old pages and maps fresh ones in one call: a
	 * separate munmap would leave a hole that another thread's mmap could
	 * take.
	 */
	p = mmap(addr, len, PROT_READ | PROT_WRITE, MAP_FIXED | backing_flags(vm, fd), fd,
		 (off_t)(fd >= 0 ? foff : 0));
	if (p == MAP_FAILED)
		return -errno;
	backing_advise(vm, p, len);
	return numa__bind_memory(vm, p, (size_t)len, s->node);
}

static void check_thp(void)
{
	char *s = read_file("/sys/kernel/mm/transparent_hugepage/enabled");

	if (!s)
		die_usage(
			"--backing thp: this kernel has no transparent huge pages; choose another "
			"--backing");
	if (strstr(s, "[never]")) {
		free(s);
		die_usage(
			"--backing thp: transparent huge pages are disabled; run 'echo madvise > "
			"/sys/kernel/mm/transparent_hugepage/enabled' or choose another --backing");
	}
	free(s);
}

static void setup_slot(struct ks_vm *vm, struct ks_slot *s, unsigned int i)
{
	const struct ks_layout *l = &vm->layout;
	uint64_t align = l->page_size, len = ks_layout_reserve_size(l);
	uint8_t *raw, *base;
	char name[48];

	/* Reserve the address range first, aligned, so the three parts are adjacent. */
	raw = mmap(NULL, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
		   0);
	if (raw == MAP_FAILED)
		die_perror("cannot reserve %" PRIu64 " bytes of address space for slot %u", len, i);
	base = (uint8_t *)align_up((uintptr_t)raw, align);
	if (base > raw)
		munmap(raw, (size_t)(base - raw));
	munmap(base + len, (size_t)(raw + len + align - (base + len)));

	s->id = i + 1;
	s->gpa = ks_layout_slot_gpa(l, i);
	s->size = l->slot_size;
	s->reserve = base;
	s->reserve_size = len;
	s->decoy[0] = base + ks_layout_decoy_before_off(l);
	s->hva = base + ks_layout_slot_off(l);
	s->decoy[1] = base + ks_layout_decoy_after_off(l);
	s->node = numa__slot_node(vm, i);

	snprintf(name, sizeof(name), "kvmstall-decoy%u-before", i);
	map_part(vm, s->decoy[0], l->decoy_size, &s->fd[0], name);
	snprintf(name, sizeof(name), "kvmstall-slot%u", i);
	map_part(vm, s->hva, l->slot_size, &s->fd[1], name);
	/*
	 * Guest memory is a VMA of its own, never merged with the decoys
	 * around it: VM_DONTDUMP sets it apart (and guest memory has no place
	 * in the VMM's core dumps, as with QEMU's dump-guest-core=off).  In
	 * one merged VMA, an mprotect of a decoy next to the slot splits it,
	 * and the kernel announces each split with a 2 MiB invalidation around
	 * the split point (vma_adjust_trans_huge()) that covers guest memory,
	 * so "outside" events would reach it.
	 */
	if (madvise(s->hva, l->slot_size, MADV_DONTDUMP) < 0)
		die_perror("madvise(MADV_DONTDUMP) of slot %u failed", i);
	snprintf(name, sizeof(name), "kvmstall-decoy%u-after", i);
	map_part(vm, s->decoy[1], l->decoy_size, &s->fd[2], name);
	if (numa__bind_memory(vm, base, (size_t)len, s->node) < 0)
		die_perror("mbind of slot %u to node %d failed", i, s->node);
	kvm__set_memslot(vm, s->id, s->gpa, s->size, s->hva);
}

/*
 * Pages for slots and decoys, plus headroom for the fault workload: pages
 * it drops come back to the pool asynchronously, so refaults must not have
 * to wait for them.
 */
static void prepare_pool(struct ks_vm *vm)
{
	const struct ks_layout *l = &vm->layout;
	uint64_t per_slot = ks_layout_reserve_size(l) / l->page_size, total, *per_node = NULL;
	int max_node = -1;
	unsigned int i;

	total = ks_layout_backing_pages(l);
	if (vm->cfg->workload == KS_WL_FAULT)
		total += 2ULL * l->nvcpus * (ks_layout_fault_chunk_bytes(l) / l->page_size);
	for (i = 0; i < vm->nstreams; i++)
		if (!vm->streams[i].skipped)
			total += events__pool_headroom(&vm->streams[i].spec);
	if (vm->nnodes > 1) {
		for (i = 0; i < vm->nnodes; i++)
			max_node = vm->nodes[i] > max_node ? vm->nodes[i] : max_node;
		per_node = xcalloc((size_t)max_node + 1, sizeof(*per_node));
		for (i = 0; i < l->nslots; i++)
			per_node[numa__slot_node(vm, i)] += per_slot;
	}
	vm->pool = hugepool__prepare(l->page_size, total, per_node, max_node,
				     vm->cfg->reserve_hugepages);
	free(per_node);
}

void mem__setup(struct ks_vm *vm)
{
	const struct ks_layout *l = &vm->layout;
	unsigned int i;

	if (vm->cfg->backing == KS_BACKING_THP)
		check_thp();
	if (vm->backing->hugetlb)
		prepare_pool(vm);

	vm->sys =
		mmap(NULL, l->sys_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->sys == MAP_FAILED)
		die_perror("cannot map the %" PRIu64 "-byte system region", l->sys_size);
	kvm__set_memslot(vm, 0, 0, l->sys_size, vm->sys);

	vm->slots = xcalloc(l->nslots, sizeof(*vm->slots));
	for (i = 0; i < l->nslots; i++)
		vm->slots[i].fd[0] = vm->slots[i].fd[1] = vm->slots[i].fd[2] = -1;
	for (i = 0; i < l->nslots; i++)
		setup_slot(vm, &vm->slots[i], i);
}

struct prefault_job {
	struct ks_vm *vm;
	uint64_t next; /* next chunk, shared by the workers */
	uint64_t nchunks;
	uint64_t chunk;
};

/* Chunk @c of the concatenation of all slots and decoys. */
static void prefault_chunk(struct prefault_job *j, uint64_t c)
{
	const struct ks_layout *l = &j->vm->layout;
	uint64_t per_slot = ks_layout_reserve_size(l), off = c * j->chunk, step, end, o;
	struct ks_slot *s = &j->vm->slots[off / per_slot];

	off %= per_slot;
	end = off + j->chunk < per_slot ? off + j->chunk : per_slot;
	/* THP can fall back to 4 KiB pages: touch every one of them. */
	step = j->vm->backing->hugetlb ? l->page_size : 4096;
	for (o = off; o < end; o += step)
		((volatile uint8_t *)s->reserve)[o] = 0;
}

static void *prefault_worker(void *arg)
{
	struct prefault_job *j = arg;
	uint64_t c;

	while ((c = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED)) < j->nchunks)
		prefault_chunk(j, c);
	return NULL;
}

void mem__prefault(struct ks_vm *vm)
{
	const struct ks_layout *l = &vm->layout;
	unsigned int n = vm->cfg->prefault_threads, i;
	uint64_t per_slot = ks_layout_reserve_size(l), t0;
	struct prefault_job j = { .vm = vm };
	pthread_t *th;

	if (!n)
		n = vm->caps.online_cpus;
	/* Chunks never straddle two slots: per_slot is a multiple of the chunk. */
	j.chunk = l->page_size;
	while (j.chunk < 16 * MiB && per_slot % (j.chunk * 2) == 0)
		j.chunk *= 2;
	j.nchunks = (per_slot / j.chunk) * l->nslots;
	if (n > j.nchunks)
		n = (unsigned int)j.nchunks;

	t0 = now_ns();
	th = xcalloc(n, sizeof(*th));
	for (i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, prefault_worker, &j))
			die("cannot start prefault thread %u", i);
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	free(th);
	vm->prefault_ns = now_ns() - t0;
	vm->prefault_bytes = per_slot * l->nslots;
}

/*
 * Drop what the fault workload walked through, so that it faults again on
 * the next lap.  The guest's position is only used modulo its region.
 */
static void drop_one(struct ks_vm *vm, struct ks_slot *s, uint64_t off, uint64_t len)
{
	void *p;

	vm->recycle_calls++;
	if (s->fd[1] >= 0) {
		if (fallocate(s->fd[1], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			      (off_t)len) < 0)
			pr_warning("fault recycler: punch hole failed: %s", strerror(errno));
		return;
	}
	if (madvise(s->hva + off, len, MADV_DONTNEED) == 0)
		return;
	/* Older kernels reject MADV_DONTNEED on hugetlb: map fresh pages instead. */
	p = mmap(s->hva + off, len, PROT_READ | PROT_WRITE, MAP_FIXED | backing_flags(vm, -1), -1,
		 0);
	if (p == MAP_FAILED || numa__bind_memory(vm, p, (size_t)len, s->node) < 0)
		pr_warning("fault recycler: remapping failed: %s", strerror(errno));
}

/* Drop [gpa, gpa + len) of test memory, which may span adjacent slots. */
static void drop_range(struct ks_vm *vm, uint64_t gpa, uint64_t len)
{
	while (len) {
		int si = ks_layout_slot_of(&vm->layout, gpa);
		struct ks_slot *s;
		uint64_t off, n;

		if (si < 0)
			return;
		s = &vm->slots[si];
		off = gpa - s->gpa;
		n = s->size - off < len ? s->size - off : len;
		drop_one(vm, s, off, n);
		gpa += n;
		len -= n;
	}
}

void mem__recycle_fault_regions(struct ks_vm *vm)
{
	const struct ks_layout *l = &vm->layout;
	uint64_t nchunks = ks_layout_fault_chunks(l), chunk_bytes = ks_layout_fault_chunk_bytes(l);
	uint64_t chunk4k = chunk_bytes / 4096, pages4k = l->region_size / 4096;
	unsigned int i;

	for (i = 0; i < l->nvcpus; i++) {
		struct ks_vcpu *v = &vm->vcpus[i];
		uint64_t pos = __atomic_load_n(&v->shared->position, __ATOMIC_RELAXED);
		/* Chunks need not be a power of two pages long. */
		uint64_t done = pos - pos % chunk4k, lap_start;

		if (v->state != KS_VCPU_RUNNING || pos < v->fault_dropped)
			continue;
		/* Every chunk walked since the last drop, at most one lap of them. */
		lap_start = done > pages4k ? done - pages4k : 0;
		if (v->fault_dropped < lap_start)
			v->fault_dropped = lap_start;
		while (v->fault_dropped + chunk4k <= done) {
			uint64_t c = (v->fault_dropped / chunk4k) % nchunks;

			drop_range(vm, v->region_gpa + c * chunk_bytes, chunk_bytes);
			v->fault_dropped += chunk4k;
			vm->recycled_bytes += chunk_bytes;
		}
	}
}

void mem__teardown(struct ks_vm *vm)
{
	unsigned int i, k;

	if (vm->slots) {
		for (i = 0; i < vm->layout.nslots; i++) {
			struct ks_slot *s = &vm->slots[i];

			if (s->reserve)
				munmap(s->reserve, s->reserve_size);
			for (k = 0; k < 3; k++)
				if (s->fd[k] >= 0)
					close(s->fd[k]);
		}
		free(vm->slots);
		vm->slots = NULL;
	}
	if (vm->sys && vm->sys != MAP_FAILED)
		munmap(vm->sys, vm->layout.sys_size);
	vm->sys = NULL;
	hugepool__release(vm->pool);
	vm->pool = NULL;
}
