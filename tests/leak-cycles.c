// SPDX-License-Identifier: MIT
/*
 * 1000 VMs created, run to ring 3, stopped and destroyed in one process,
 * with the VMM's own objects: file descriptors, heap, address space and
 * hugepages must be back where they were after the first few cycles.
 * Usage: leak-cycles [CYCLES [BACKING]] (default 1000 anon).  Skips (77)
 * without /dev/kvm.
 */
#include "config.h"

#include <dirent.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvmstall.h"
#include "numa-place.h"
#include "options.h"
#include "tap.h"
#include "util.h"

/* Cycles before the baseline: thread stacks, malloc arenas and the like. */
#define WARMUP 20

/* A sanitizer's allocator keeps freed memory in quarantine: heap and address
 * space say nothing there, and LeakSanitizer checks leaks at exit instead. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

struct usage {
	unsigned int fds;
	size_t heap;	  /* bytes in use by malloc */
	uint64_t vm_kb;	  /* address space */
	uint64_t hp_free; /* free 2 MiB hugepages */
};

static unsigned int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned int n = 0;

	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static uint64_t status_kb(const char *key)
{
	char *s = read_file("/proc/self/status"), *p;
	uint64_t v = 0;

	p = s ? strstr(s, key) : NULL;
	if (p)
		v = strtoull(p + strlen(key), NULL, 10);
	free(s);
	return v;
}

static void measure(struct usage *u)
{
	struct mallinfo2 mi = mallinfo2();

	u->fds = count_fds();
	u->heap = mi.uordblks + mi.hblkhd;
	u->vm_kb = status_kb("VmSize:");
	u->hp_free = 0;
	read_u64_file("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", &u->hp_free);
}

/* One VM, the way main() builds and tears it down, run until every vCPU is in ring 3. */
static bool cycle(const struct ks_config *cfg)
{
	struct ks_vm vm = { .kvm_fd = -1, .vm_fd = -1, .cfg = cfg };
	char err[256];
	bool ok;

	vm.backing = ks_backing_info(cfg->backing);
	pthread_mutex_init(&vm.lock, NULL);
	pthread_cond_init(&vm.cond, NULL);
	if (ks_layout_compute(&vm.layout, cfg->vcpus, cfg->memory, cfg->slots,
			      vm.backing->page_size, cfg->decoy_size, err, sizeof(err)) < 0)
		die("%s", err);
	kvm__probe(&vm.caps, &vm.kvm_fd);
	kvm__check_config(&vm.caps, cfg);
	numa__setup(&vm);
	kvm__create_vm(&vm);
	mem__setup(&vm);
	x86__setup_system(&vm);
	guest__load(&vm);
	kvm_cpu__create_all(&vm);
	mem__prefault(&vm);
	kvm_cpu__start_all(&vm);
	pthread_mutex_lock(&vm.lock);
	while (vm.nready + vm.nfinished < vm.layout.nvcpus)
		pthread_cond_wait(&vm.cond, &vm.lock);
	ok = vm.nready == vm.layout.nvcpus;
	pthread_mutex_unlock(&vm.lock);
	kvm_cpu__stop_all(&vm, 20 * NSEC_PER_SEC);
	kvm_cpu__destroy_all(&vm);
	mem__teardown(&vm);
	kvm__destroy_vm(&vm);
	free(vm.nodes);
	pthread_cond_destroy(&vm.cond);
	pthread_mutex_destroy(&vm.lock);
	return ok;
}

int main(int argc, char **argv)
{
	unsigned int cycles = argc > 1 ? (unsigned int)strtoul(argv[1], NULL, 10) : 1000, i;
	const char *backing = argc > 2 ? argv[2] : "anon";
	const char *args[] = { "leak-cycles", "--vcpus", "2",	    "--memory", "16M",
			       "--backing",   backing,	 "--quiet", NULL };
	struct ks_config cfg;
	struct usage base = { 0 }, end;
	unsigned int failed = 0;

	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		printf("1..0 # SKIP no usable /dev/kvm\n");
		return 77;
	}
	if (cycles <= WARMUP)
		cycles = WARMUP + 1;
	options__parse(&cfg, (int)(sizeof(args) / sizeof(args[0])) - 1, (char **)args);
	tap_plan(5);
	for (i = 0; i < cycles; i++) {
		if (i == WARMUP)
			measure(&base);
		failed += !cycle(&cfg);
	}
	measure(&end);
	tap_ok(!failed, "%u VMs (%s) reached ring 3 and stopped; %u did not", cycles, backing,
	       failed);
	tap_ok(end.fds == base.fds, "file descriptors: %u after cycle %u, %u after cycle %u",
	       base.fds, WARMUP, end.fds, cycles);
#ifdef SANITIZED
	tap_ok(true, "# SKIP heap in use: the sanitizer's allocator keeps freed memory");
	tap_ok(true, "# SKIP address space: the sanitizer's allocator keeps freed memory");
#else
	/* Free lists may keep a few blocks; a leak of one allocation per cycle would not hide. */
	tap_ok(end.heap <= base.heap + 4096, "heap in use: %zu bytes, then %zu", base.heap,
	       end.heap);
	tap_ok(end.vm_kb <= base.vm_kb, "address space: %" PRIu64 " KiB, then %" PRIu64 " KiB",
	       base.vm_kb, end.vm_kb);
#endif
	tap_ok(end.hp_free == base.hp_free, "free 2 MiB hugepages: %" PRIu64 ", then %" PRIu64,
	       base.hp_free, end.hp_free);
	options__free(&cfg);
	return tap_done();
}
