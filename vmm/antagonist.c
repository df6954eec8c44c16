// SPDX-License-Identifier: MIT
/*
 * Kernel antagonists: NUMA balancing, KSM, khugepaged, reclaim from
 * memory.high; see antagonist.h.
 */
#include "config.h"

#include "antagonist.h"

#include <errno.h>
#include <inttypes.h>
#include <numa.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvmstall.h"
#include "util.h"

#define PAGE 4096UL
#define HUGE (2ULL << 20)

static struct ks_vm *vm_at_exit;

static void restore_at_exit(void)
{
	if (vm_at_exit)
		antagonists__free(vm_at_exit);
}

static void skip(struct ks_antagonist *a, const char *why)
{
	a->skipped = true;
	snprintf(a->reason, sizeof(a->reason), "%s", why);
	pr_warning("--antagonist '%s' skipped: %s", a->spec.text, why);
}

/* Remember a tunable to set for the run; false if it does not exist. */
static bool knob(struct ks_antagonist *a, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static bool knob(struct ks_antagonist *a, const char *path, const char *fmt, ...)
{
	struct ks_ant_knob *k;
	char *now;
	va_list ap;

	if (a->nknobs == KS_ANT_MAX_KNOBS || access(path, W_OK) < 0)
		return false;
	now = read_file(path);
	if (!now)
		return false;
	k = &a->knobs[a->nknobs++];
	snprintf(k->path, sizeof(k->path), "%s", path);
	now[strcspn(now, "\n")] = '\0';
	snprintf(k->saved, sizeof(k->saved), "%s", now);
	free(now);
	va_start(ap, fmt);
	vsnprintf(k->value, sizeof(k->value), fmt, ap);
	va_end(ap);
	return true;
}

static bool write_str(const char *path, const char *v)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (!f)
		return false;
	ok = fputs(v, f) >= 0;
	return fclose(f) == 0 && ok;
}

/*
 * The value of one counter: a /proc/vmstat name, a file of one number, or
 * "FILE KEY" for a file of "key value" lines (memory.stat, memory.events).
 */
static bool counter(const char *name, uint64_t *v)
{
	const char *key = strchr(name, ' '), *path = "/proc/vmstat";
	char file[224], *s, *p;
	size_t n;

	if (key) {
		snprintf(file, sizeof(file), "%.*s", (int)(key - name), name);
		path = file;
		key++;
	} else if (name[0] == '/') {
		return read_u64_file(name, v);
	} else {
		key = name;
	}
	n = strlen(key);
	s = read_file(path);
	if (!s)
		return false;
	for (p = s; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (!strncmp(p, key, n) && p[n] == ' ') {
			*v = strtoull(p + n + 1, NULL, 10);
			free(s);
			return true;
		}
	}
	free(s);
	return false;
}

static void add_counter(struct ks_antagonist *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void add_counter(struct ks_antagonist *a, const char *fmt, ...)
{
	va_list ap;

	if (a->ncounters == KS_ANT_MAX_COUNTERS)
		return;
	va_start(ap, fmt);
	vsnprintf(a->counter_names[a->ncounters++], sizeof(a->counter_names[0]), fmt, ap);
	va_end(ap);
}

/* The mount point of cgroup v2, from /proc/self/mountinfo; false if none. */
static bool cgroup2_mount(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[1024];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char mnt[512], type[64], *sep = strstr(line, " - ");

		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - TYPE SOURCE OPTIONS */
		if (!sep || sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s", type) != 1 || strcmp(type, "cgroup2") ||
		    strlen(mnt) >= len)
			continue;
		snprintf(out, len, "%s", mnt);
		found = true;
	}
	fclose(f);
	return found;
}

/* Whether a space-separated list file (cgroup.controllers) names @word. */
static bool lists(const char *path, const char *word)
{
	char *s = read_file(path), *t, *save = NULL;
	bool found = false;

	for (t = s ? strtok_r(s, " \n", &save) : NULL; t && !found;
	     t = strtok_r(NULL, " \n", &save))
		found = !strcmp(t, word);
	free(s);
	return found;
}

static bool has_swap(void)
{
	char *s = read_file("/proc/swaps"), *nl;
	bool any;

	/* A header line, then one line per swap area. */
	nl = s ? strchr(s, '\n') : NULL;
	any = nl && nl[1] != '\0';
	free(s);
	return any;
}

/*
 * Reclaim: kvmstall moves itself into a new cgroup v2, kvmstall-PID under
 * the cgroup root, before guest memory exists, so that the guest's memory
 * (unless it is HugeTLB) and the VMM's are charged there; the thread then
 * sets memory.high below what the cgroup uses, and reclaim runs for the
 * whole run.  Without swap it could reclaim only page cache.
 */
static void prepare_reclaim(struct ks_antagonist *a)
{
	char path[288], pid[24], *self, *p;

	if (!cgroup2_mount(a->cg_root, sizeof(a->cg_root))) {
		skip(a, "no cgroup v2 is mounted: mount -t cgroup2 none /sys/fs/cgroup");
		return;
	}
	snprintf(path, sizeof(path), "%s/cgroup.controllers", a->cg_root);
	if (!lists(path, "memory")) {
		skip(a, "the memory controller is not on cgroup v2 here (this host binds it to "
			"a cgroup v1 hierarchy): boot with systemd.unified_cgroup_hierarchy=1");
		return;
	}
	if (!has_swap()) {
		skip(a, "no swap: memory.high could reclaim only page cache, not the anon memory "
			"of the VMM and its guest; swapon a device (the rig uses zram)");
		return;
	}
	self = read_file("/proc/self/cgroup");
	p = self ? strstr(self, "0::") : NULL;
	if (!p || (p != self && p[-1] != '\n')) {
		free(self);
		skip(a, "/proc/self/cgroup has no cgroup v2 line");
		return;
	}
	p += 3;
	p[strcspn(p, "\n")] = '\0';
	snprintf(a->cg_orig, sizeof(a->cg_orig), "%s", p);
	free(self);
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", a->cg_root);
	if (!lists(path, "memory")) {
		if (!write_str(path, "+memory"))
			die("--antagonist '%s': cannot enable the memory controller in %s (%m); "
			    "run as root",
			    a->spec.text, path);
		a->cg_enabled_memory = true;
	}
	snprintf(a->cg_dir, sizeof(a->cg_dir), "%s/kvmstall-%d", a->cg_root, (int)getpid());
	if (mkdir(a->cg_dir, 0755) < 0 && errno != EEXIST)
		die("--antagonist '%s': cannot make the cgroup %s (%m); run as root", a->spec.text,
		    a->cg_dir);
	a->cg_made = true;
	snprintf(path, sizeof(path), "%s/cgroup.procs", a->cg_dir);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (!write_str(path, pid))
		die("--antagonist '%s': cannot move kvmstall into %s (%m); run as root",
		    a->spec.text, a->cg_dir);
	a->cg_moved = true;
	add_counter(a, "%s/memory.events high", a->cg_dir);
	add_counter(a, "%s/memory.stat pgscan", a->cg_dir);
	add_counter(a, "%s/memory.stat pgsteal", a->cg_dir);
	add_counter(a, "pswpout");
}

/* Back to the cgroup kvmstall came from; the one it made goes. */
static void undo_reclaim(struct ks_antagonist *a)
{
	char path[352], pid[24];

	if (a->cg_moved) {
		snprintf(path, sizeof(path), "%s%s/cgroup.procs", a->cg_root, a->cg_orig);
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if (!write_str(path, pid))
			pr_warning("--antagonist '%s': cannot move kvmstall back to cgroup %s (%m)",
				   a->spec.text, a->cg_orig);
		a->cg_moved = false;
	}
	if (a->cg_made) {
		if (rmdir(a->cg_dir) < 0 && errno != ENOENT)
			pr_warning("--antagonist '%s': cannot remove the cgroup %s (%m)",
				   a->spec.text, a->cg_dir);
		a->cg_made = false;
	}
	if (a->cg_enabled_memory) {
		/* Another cgroup may use it by now (EBUSY): then it stays. */
		snprintf(path, sizeof(path), "%s/cgroup.subtree_control", a->cg_root);
		write_str(path, "-memory");
		a->cg_enabled_memory = false;
	}
}

static void prepare_one(struct ks_vm *vm, struct ks_antagonist *a)
{
	uint64_t ms = a->spec.period_ns / 1000000ULL;
	uint64_t pages = a->spec.buffer / PAGE;
	char *s;

	switch (a->spec.kind) {
	case KS_ANT_NUMA_BALANCING:
		if (access("/proc/sys/kernel/numa_balancing", F_OK) < 0) {
			skip(a,
			     "this kernel has no kernel.numa_balancing sysctl (CONFIG_NUMA_BALANCING; "
			     "on 5.10 also CONFIG_SCHED_DEBUG)");
			return;
		}
		if (vm->nnodes < 2) {
			skip(a,
			     "this host has one NUMA node with memory: there is nothing to balance");
			return;
		}
		a->nodes[0] = vm->nodes[0];
		a->nodes[1] = vm->nodes[1];
		knob(a, "/proc/sys/kernel/numa_balancing", "1");
		/* 5.10 has these in procfs; later kernels moved them to debugfs. */
		if (!knob(a, "/proc/sys/kernel/numa_balancing_scan_delay_ms", "0"))
			knob(a, "/sys/kernel/debug/sched/numa_balancing/scan_delay_ms", "0");
		if (!knob(a, "/proc/sys/kernel/numa_balancing_scan_period_min_ms", "%" PRIu64, ms))
			knob(a, "/sys/kernel/debug/sched/numa_balancing/scan_period_min_ms",
			     "%" PRIu64, ms);
		if (!knob(a, "/proc/sys/kernel/numa_balancing_scan_period_max_ms", "%" PRIu64, ms))
			knob(a, "/sys/kernel/debug/sched/numa_balancing/scan_period_max_ms",
			     "%" PRIu64, ms);
		add_counter(a, "numa_pte_updates");
		add_counter(a, "numa_hint_faults");
		add_counter(a, "numa_pages_migrated");
		add_counter(a, "pgmigrate_success");
		break;
	case KS_ANT_KSM:
		if (access("/sys/kernel/mm/ksm/run", F_OK) < 0) {
			skip(a, "this kernel has no KSM (CONFIG_KSM)");
			return;
		}
		knob(a, "/sys/kernel/mm/ksm/run", "1");
		knob(a, "/sys/kernel/mm/ksm/sleep_millisecs", "%" PRIu64, ms);
		knob(a, "/sys/kernel/mm/ksm/pages_to_scan", "%" PRIu64, pages);
		add_counter(a, "/sys/kernel/mm/ksm/full_scans");
		add_counter(a, "/sys/kernel/mm/ksm/pages_sharing");
		/* This process's own merged pages (Linux 5.19 and later). */
		add_counter(a, "/proc/self/ksm_merging_pages");
		break;
	case KS_ANT_KHUGEPAGED:
		s = read_file("/sys/kernel/mm/transparent_hugepage/enabled");
		if (!s) {
			skip(a,
			     "this kernel has no transparent hugepages (CONFIG_TRANSPARENT_HUGEPAGE)");
			return;
		}
		if (strstr(s, "[never]")) {
			free(s);
			skip(a, "transparent hugepages are off: echo madvise > "
				"/sys/kernel/mm/transparent_hugepage/enabled");
			return;
		}
		free(s);
		knob(a, "/sys/kernel/mm/transparent_hugepage/khugepaged/scan_sleep_millisecs",
		     "%" PRIu64, ms);
		knob(a, "/sys/kernel/mm/transparent_hugepage/khugepaged/alloc_sleep_millisecs",
		     "%" PRIu64, ms);
		knob(a, "/sys/kernel/mm/transparent_hugepage/khugepaged/pages_to_scan", "%" PRIu64,
		     pages);
		add_counter(a, "thp_collapse_alloc");
		add_counter(a, "thp_collapse_alloc_failed");
		break;
	case KS_ANT_RECLAIM:
		prepare_reclaim(a);
		break;
	default:
		break;
	}
}

void antagonists__prepare(struct ks_vm *vm)
{
	unsigned int i, k;

	if (!vm->cfg->nants)
		return;
	vm->nants = vm->cfg->nants;
	vm->ants = xcalloc(vm->nants, sizeof(*vm->ants));
	/*
	 * Before anything is set: a failure part way (die) still puts back
	 * what was set, and takes kvmstall out of the cgroup it made.
	 */
	if (!vm_at_exit) {
		vm_at_exit = vm;
		atexit(restore_at_exit);
	}
	for (i = 0; i < vm->nants; i++) {
		struct ks_antagonist *a = &vm->ants[i];

		a->spec = vm->cfg->ants[i];
		prepare_one(vm, a);
		if (a->skipped)
			continue;
		for (k = 0; k < a->nknobs; k++) {
			struct ks_ant_knob *kn = &a->knobs[k];

			if (!write_str(kn->path, kn->value))
				die("--antagonist '%s': cannot write %s to %s (%m); run as root",
				    a->spec.text, kn->value, kn->path);
			kn->set = true;
		}
	}
}

static void nap(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ULL),
			       .tv_nsec = (long)(ns % 1000000000ULL) };

	nanosleep(&ts, NULL);
}

/*
 * NUMA balancing: write every page of the buffer from one node, then the
 * other, switching every second, so that the balancer's hint faults keep
 * migrating VMM memory between the nodes.
 */
static void numa_user(struct ks_antagonist *a)
{
	uint64_t switched = now_ns();
	unsigned int side = 0;
	size_t off;

	numa_run_on_node(a->nodes[side]);
	while (!a->stop) {
		for (off = 0; off < a->len && !a->stop; off += PAGE)
			a->buf[off]++;
		a->passes++;
		if (now_ns() - switched > 1000000000ULL) {
			side ^= 1;
			numa_run_on_node(a->nodes[side]);
			switched = now_ns();
		}
		nap(10 * 1000000ULL);
	}
	numa_run_on_node(-1);
}

/*
 * KSM: the buffer is one repeated page, mergeable. Its first half is never
 * written again, so once ksmd has merged it, it stays merged until the run
 * ends; in the second half a write to every 16th page breaks its sharing
 * (the same byte goes back), so ksmd keeps merging.
 */
static void ksm_user(struct ks_antagonist *a)
{
	size_t half = a->len / 2 / PAGE * PAGE, off, start = 0;

	memset(a->buf, 0x5a, a->len);
	madvise(a->buf, a->len, MADV_MERGEABLE);
	while (!a->stop) {
		for (off = half + start; off < a->len && !a->stop; off += 16 * PAGE)
			((volatile uint8_t *)a->buf)[off] = 0x5a;
		start = (start + PAGE) % (16 * PAGE);
		a->passes++;
		nap(10 * 1000000ULL);
	}
	madvise(a->buf, a->len, MADV_UNMERGEABLE);
}

/*
 * khugepaged: one 2 MiB piece at a time is refilled with small pages (no
 * huge page advice, dropped, touched), then advised huge again, so that
 * khugepaged has a piece to collapse on each of its scans.
 */
static void khugepaged_user(struct ks_antagonist *a)
{
	size_t chunk = 0, nchunks = a->len / HUGE, off;

	madvise(a->buf, a->len, MADV_HUGEPAGE);
	for (off = 0; off < a->len; off += PAGE)
		a->buf[off] = 1;
	while (!a->stop) {
		uint8_t *c = a->buf + chunk * HUGE;

		madvise(c, HUGE, MADV_NOHUGEPAGE);
		madvise(c, HUGE, MADV_DONTNEED);
		for (off = 0; off < HUGE; off += PAGE)
			c[off] = 1;
		madvise(c, HUGE, MADV_HUGEPAGE);
		chunk = (chunk + 1) % nchunks;
		a->passes++;
		nap(a->spec.period_ns);
	}
}

/*
 * Reclaim: every page of the buffer written (each a different word, as
 * real memory), then memory.high set to what the cgroup uses less half the
 * buffer; each pass writes every page again, so that reclaim keeps
 * swapping out what the last pass brought back, the buffer's pages and the
 * guest's alike.
 */
static void reclaim_user(struct ks_antagonist *a)
{
	char path[288];
	uint64_t cur = 0, high;
	size_t off;

	for (off = 0; off < a->len; off += PAGE)
		*(volatile uint64_t *)(a->buf + off) = off;
	snprintf(path, sizeof(path), "%s/memory.current", a->cg_dir);
	if (!read_u64_file(path, &cur)) {
		pr_warning("--antagonist '%s': cannot read %s (%m); no memory.high is set",
			   a->spec.text, path);
		return;
	}
	high = cur > a->len / 2 + (16ULL << 20) ? cur - a->len / 2 : 16ULL << 20;
	snprintf(path, sizeof(path), "%s/memory.high", a->cg_dir);
	/* Its own knob: nothing reads the knobs before the thread is joined. */
	if (knob(a, path, "%" PRIu64, high)) {
		if (write_str(path, a->knobs[a->nknobs - 1].value))
			a->knobs[a->nknobs - 1].set = true;
		else
			pr_warning("--antagonist '%s': cannot write %s (%m)", a->spec.text, path);
	}
	while (!a->stop) {
		a->passes++;
		for (off = 0; off < a->len && !a->stop; off += PAGE)
			*(volatile uint64_t *)(a->buf + off) = off ^ a->passes;
		nap(a->spec.period_ns);
	}
}

static void *ant_thread(void *arg)
{
	struct ks_antagonist *a = arg;
	char name[16];

	snprintf(name, sizeof(name), "ks-ant-%s",
		 a->spec.kind == KS_ANT_NUMA_BALANCING ? "numa" :
		 a->spec.kind == KS_ANT_KSM	       ? "ksm" :
		 a->spec.kind == KS_ANT_RECLAIM	       ? "reclaim" :
							 "thp");
	pthread_setname_np(pthread_self(), name);
	switch (a->spec.kind) {
	case KS_ANT_NUMA_BALANCING:
		numa_user(a);
		break;
	case KS_ANT_KSM:
		ksm_user(a);
		break;
	case KS_ANT_KHUGEPAGED:
		khugepaged_user(a);
		break;
	case KS_ANT_RECLAIM:
		reclaim_user(a);
		break;
	default:
		break;
	}
	return NULL;
}

void antagonists__start(struct ks_vm *vm)
{
	unsigned int i, k;
	int r;

	for (i = 0; i < vm->nants; i++) {
		struct ks_antagonist *a = &vm->ants[i];
		uint8_t *p;

		if (a->skipped)
			continue;
		/* 2 MiB aligned, for khugepaged; the others do not mind. */
		p = mmap(NULL, a->spec.buffer + HUGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			die("--antagonist '%s': cannot map %" PRIu64 " bytes of VMM memory (%m)",
			    a->spec.text, a->spec.buffer);
		a->buf = (uint8_t *)align_up((uintptr_t)p, HUGE);
		if (a->buf > p)
			munmap(p, (size_t)(a->buf - p));
		munmap(a->buf + a->spec.buffer, (size_t)(p + HUGE - a->buf));
		a->len = a->spec.buffer;
		for (k = 0; k < a->ncounters; k++)
			a->counter_ok[k] = counter(a->counter_names[k], &a->counter_start[k]);
		a->stop = 0;
		r = pthread_create(&a->thread, NULL, ant_thread, a);
		if (r)
			die("--antagonist '%s': cannot start its thread (%s)", a->spec.text,
			    strerror(r));
		a->thread_started = true;
	}
}

void antagonists__stop(struct ks_vm *vm)
{
	unsigned int i, k;

	for (i = 0; i < vm->nants; i++) {
		struct ks_antagonist *a = &vm->ants[i];

		if (!a->thread_started)
			continue;
		/* Before the thread undoes its work (KSM unmerges its buffer). */
		for (k = 0; k < a->ncounters; k++)
			a->counter_ok[k] = a->counter_ok[k] &&
					   counter(a->counter_names[k], &a->counter_end[k]);
		a->stop = 1;
		pthread_join(a->thread, NULL);
		a->thread_started = false;
	}
}

void antagonists__free(struct ks_vm *vm)
{
	unsigned int i, k;

	for (i = 0; i < vm->nants; i++) {
		struct ks_antagonist *a = &vm->ants[i];

		if (a->thread_started) {
			a->stop = 1;
			pthread_join(a->thread, NULL);
			a->thread_started = false;
		}
		/* The kernel's settings go back in reverse order (run=1 last set, first undone). */
		for (k = a->nknobs; k-- > 0;) {
			struct ks_ant_knob *kn = &a->knobs[k];

			if (kn->set && !write_str(kn->path, kn->saved))
				pr_warning("--antagonist '%s': cannot restore %s to %s (%m)",
					   a->spec.text, kn->path, kn->saved);
			kn->set = false;
		}
		undo_reclaim(a);
		if (a->buf) {
			munmap(a->buf, a->len);
			a->buf = NULL;
		}
	}
	free(vm->ants);
	vm->ants = NULL;
	vm->nants = 0;
	if (vm_at_exit == vm)
		vm_at_exit = NULL;
}
