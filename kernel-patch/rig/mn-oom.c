// SPDX-License-Identifier: MIT
/*
 * mn-oom: the non-blockable MMU-notifier path.  In 5.10 only the OOM
 * reaper calls mmu_notifier_invalidate_range_start_nonblock(): it unmaps
 * a killed process's anonymous memory before the process has exited, with
 * KVM's notifier still registered, and a notifier must then neither sleep
 * nor wait (the kernel marks the call with non_block_start(), and a debug
 * kernel reports any sleep inside it).
 *
 * A child, the VMM, moves into a cgroup of its own with memory.max set and
 * no swap, creates a VM with a memslot over anonymous memory that its vCPU
 * has mapped page by page, and then allocates until the memory controller
 * kills it.  The parent keeps the two things alive that would otherwise end
 * the notifier's registration before the reaper runs:
 *   - the VM, by a copy of the VM's file descriptor (pidfd_getfd), so that
 *     the child's exit does not destroy it;
 *   - the child's mm, by reading the child's memory through /proc/PID/mem
 *     (a read holds a reference on the mm's users while it runs), so that
 *     exit_mmap(), which releases the notifiers, waits for the reaper.
 *     5.10.223 queues the reaper 2 s after the kill (OOM_REAPER_DELAY), so
 *     one read has to outlast that: the parent times a read of 64 MiB
 *     first, then reads enough in one call to take at least HOLD_SECONDS.
 *     What it reads is a shared mapping, in the child, of a 64 MiB memfd
 *     that the parent filled (so charged to the parent), mapped again and
 *     again: the reaper skips shared mappings, and faults on them still
 *     work once it has marked the mm unstable, so the read is not cut
 *     short (a read of the child's anonymous memory stopped as soon as the
 *     reaper ran, exit_mmap() then released the notifiers in the middle
 *     of the reaper's invalidations, and KVM saw a range_start without
 *     its range_end).  The parent's buffer maps the same memfd.
 * Passes when the kernel log says the OOM reaper reaped the child, the VM's
 * counters say that invalidations reached KVM after the child was killed
 * and took mmu_lock (the memslot was hit), nothing is left in flight, and
 * no kernel report was printed (the rig's runner checks that).  Needs the
 * instrumented kernel's counters (debugfs) and cgroup v2 at /sys/fs/cgroup.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROG "mn-oom"
#include "mn-common.h"

#define PAGE		4096ul
#define SLOT_BYTES	(8ul << 20)	/* the memslot, mapped by the guest */
#define CHUNK		(64ul << 20)	/* the parent's buffer, and the calibration read */
#define HOLD_MAX	(128ul * CHUNK)	/* 8 GiB of the child's address space */
#define HOLD_SECONDS	6
#define CODE_GPA	0x01000000u
#define CG		"/sys/fs/cgroup/mn-oom"
#define CG_LIMIT_MB	48ul

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* What the child tells the parent once its VM is ready. */
struct ready {
	int vm_fd;
	uintptr_t hold;		/* HOLD_MAX of the child's address space: aliases of buf_fd */
	char cpath[64];
};

static void write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		die("%s: writing '%s': %s", path, val, strerror(errno));
	close(fd);
}

/* The parent's memfd of CHUNK bytes, filled before the child exists. */
static int buf_fd;

/*
 * HOLD_MAX bytes whose every CHUNK maps buf_fd, shared: a read of
 * gigabytes costs CHUNK of memory.
 */
static uint8_t *alias_map(int prot)
{
	uint8_t *m;
	size_t o;

	m = mmap(NULL, HOLD_MAX, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	for (o = 0; o < HOLD_MAX; o += CHUNK)
		if (mmap(m + o, CHUNK, prot, MAP_SHARED | MAP_FIXED, buf_fd, 0) == MAP_FAILED)
			die("mmap: %s", strerror(errno));
	return m;
}

/* The cgroup's memory.current, in bytes. */
static unsigned long cgroup_usage(void)
{
	char buf[32];
	ssize_t n;
	int fd;

	fd = open(CG "/memory.current", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(CG "/memory.current: %s", strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		die(CG "/memory.current: %s", n < 0 ? strerror(errno) : "empty");
	buf[n] = '\0';
	return strtoul(buf, NULL, 10);
}

/* The child: the VMM that the memory controller kills. */
static void vmm(int ready_fd, int go_fd)
{
	const unsigned long limit = CG_LIMIT_MB << 20;
	struct kvm_run *run;
	struct ready r;
	size_t run_size;
	uint8_t *slot, *code, *hold;
	unsigned long p;
	int kvm, vcpu, cdir;
	char pid[16], c;

	snprintf(pid, sizeof(pid), "%d", getpid());
	write_file(CG "/cgroup.procs", pid);
	write_file("/proc/self/oom_score_adj", "1000");

	memset(&r, 0, sizeof(r));
	r.vm_fd = mn_create_vm(&kvm, r.cpath, sizeof(r.cpath), &cdir);
	if (cdir < 0)
		die("no MMU-notifier counters in %s: needs the instrumented kernel", r.cpath);
	slot = mmap(NULL, SLOT_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	code = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	hold = alias_map(PROT_READ);
	if (slot == MAP_FAILED || code == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memset(slot, 0xa5, SLOT_BYTES);
	mn_read8_code(code);
	if (mn_set_slot(r.vm_fd, 0, 0, SLOT_BYTES, slot) ||
	    mn_set_slot(r.vm_fd, 1, CODE_GPA, PAGE, code))
		die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	vcpu = mn_create_vcpu32(kvm, r.vm_fd, &run, &run_size);
	/* The guest maps every page of the memslot, so the reaper's unmap of it has work. */
	for (p = 0; p < SLOT_BYTES / PAGE; p++) {
		if (mn_read8(vcpu, run, CODE_GPA, p * PAGE) != 0xa5)
			die("the guest does not read the host's pattern at page %lu", p);
	}
	/*
	 * Fill memory up to a few MiB below the limit now, so that the kill
	 * comes right after "go", well inside the parent's holding read:
	 * reclaim and a slow machine could otherwise make it come late.
	 */
	while (cgroup_usage() + (4ul << 20) < limit) {
		uint8_t *m = mmap(NULL, 1ul << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				  -1, 0);

		if (m == MAP_FAILED)
			die("mmap while filling memory: %s", strerror(errno));
		memset(m, 0x5a, 1ul << 20);
	}
	r.hold = (uintptr_t)hold;
	if (write(ready_fd, &r, sizeof(r)) != sizeof(r))
		die("pipe: %s", strerror(errno));
	if (read(go_fd, &c, 1) != 1)
		die("pipe: %s", strerror(errno));
	/* Allocate until the memory controller kills this process. */
	for (;;) {
		uint8_t *m = mmap(NULL, 1ul << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				  -1, 0);

		if (m == MAP_FAILED)
			die("mmap while filling memory: %s", strerror(errno));
		memset(m, 0x5a, 1ul << 20);
	}
}

/*
 * The parent's reader: one read of the child's memory, started just before
 * the child is told to fill its memory, holds the child's mm until well
 * after the reaper's delay.
 */
static int mem_fd, go_fd;
static uintptr_t hold_at;
static size_t hold_len;
static ssize_t hold_got;
static uint8_t *buf;
static double read_end;

static double now(void);

static void *holder(void *arg)
{
	(void)arg;
	if (write(go_fd, "g", 1) != 1)
		die("pipe: %s", strerror(errno));
	hold_got = pread(mem_fd, buf, hold_len, (off_t)hold_at);
	read_end = now();
	return NULL;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Wait up to @secs for a kernel log line containing @needle; true if seen. */
static bool kmsg_wait(int kmsg, const char *needle, int secs)
{
	struct timespec t0, t;
	char rec[2048];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		ssize_t n = read(kmsg, rec, sizeof(rec) - 1);

		if (n > 0) {
			rec[n] = '\0';
			if (strstr(rec, needle))
				return true;
			continue;
		}
		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records: read on */
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= secs)
			return false;
		usleep(10000);	/* a poll with a deadline: /dev/kmsg gives no signal here */
	}
}

static uint64_t counter(int cdir, const char *cpath, const char *name)
{
	uint64_t v;

	if (counter_read(cdir, name, &v))
		die("cannot read %s/%s", cpath, name);
	return v;
}

int main(void)
{
	int ready_p[2], go_p[2], kmsg, pidfd, vm_fd, cdir, status;
	uint64_t seen0, locked0, seen1, locked1, active, count;
	char path[128], needle[96];
	double t0, per_chunk, t_go, t_dead, t_reaped;
	pthread_t th;
	struct ready r;
	bool reaped, ok;
	pid_t child;

	if (mkdir(CG, 0755) && errno != EEXIST)
		die("mkdir %s: %s (needs cgroup v2 at /sys/fs/cgroup)", CG, strerror(errno));
	write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	snprintf(path, sizeof(path), "%luM", CG_LIMIT_MB);
	write_file(CG "/memory.max", path);
	write_file(CG "/memory.swap.max", "0");
	write_file("/proc/self/oom_score_adj", "-1000");
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg < 0 || lseek(kmsg, 0, SEEK_END) < 0)
		die("/dev/kmsg: %s", strerror(errno));
	buf_fd = memfd_create("mn-oom-buf", MFD_CLOEXEC);
	if (buf_fd < 0 || ftruncate(buf_fd, (off_t)CHUNK))
		die("memfd: %s", strerror(errno));
	buf = alias_map(PROT_READ | PROT_WRITE);
	memset(buf, 0x3c, CHUNK);
	if (pipe(ready_p) || pipe(go_p))
		die("setup: %s", strerror(errno));

	child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		close(ready_p[0]);
		close(go_p[1]);
		vmm(ready_p[1], go_p[0]);
		_exit(1);
	}
	close(ready_p[1]);
	close(go_p[0]);
	if (read(ready_p[0], &r, sizeof(r)) != sizeof(r))
		die("the VMM child died before its VM was ready");

	/* Keep the VM and the child's mm. */
	pidfd = (int)syscall(SYS_pidfd_open, child, 0);
	if (pidfd < 0)
		die("pidfd_open: %s", strerror(errno));
	vm_fd = (int)syscall(SYS_pidfd_getfd, pidfd, r.vm_fd, 0);
	if (vm_fd < 0)
		die("pidfd_getfd: %s", strerror(errno));
	cdir = open(r.cpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cdir < 0)
		die("%s: %s", r.cpath, strerror(errno));
	snprintf(path, sizeof(path), "/proc/%d/mem", child);
	mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (mem_fd < 0)
		die("%s: %s", path, strerror(errno));
	hold_at = r.hold;
	t0 = now();
	if (pread(mem_fd, buf, CHUNK, (off_t)hold_at) != (ssize_t)CHUNK)
		die("reading %s: %s", path, strerror(errno));
	per_chunk = now() - t0;
	/* Past the chunk just read, whose pages the child now has mapped. */
	hold_at += CHUNK;
	hold_len = CHUNK * (size_t)(HOLD_SECONDS / per_chunk + 1);
	if (hold_len > HOLD_MAX - CHUNK)
		hold_len = HOLD_MAX - CHUNK;
	printf(PROG ": reading 64 MiB of the child took %.3f s; the holding read takes %zu MiB "
	       "(about %.1f s)\n", per_chunk, hold_len >> 20, per_chunk * (double)(hold_len / CHUNK));

	seen0 = counter(cdir, r.cpath, "mn_invalidate_seen");
	locked0 = counter(cdir, r.cpath, "mn_invalidate_locked");
	go_fd = go_p[1];
	t_go = now();
	if ((errno = pthread_create(&th, NULL, holder, NULL)))
		die("pthread_create: %s", strerror(errno));
	if (waitpid(child, &status, 0) != child)
		die("waitpid: %s", strerror(errno));
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		die("the VMM child was not killed by the OOM killer (status %#x)", status);
	t_dead = now();
	snprintf(needle, sizeof(needle), "oom_reaper: reaped process %d (", child);
	reaped = kmsg_wait(kmsg, needle, 30);
	t_reaped = now();
	pthread_join(th, NULL);
	printf(PROG ": killed %.1f s after go; reaper's message %.1f s after the kill; the holding "
	       "read ended %.1f s after the kill\n", t_dead - t_go, t_reaped - t_dead,
	       read_end - t_dead);

	seen1 = counter(cdir, r.cpath, "mn_invalidate_seen");
	locked1 = counter(cdir, r.cpath, "mn_invalidate_locked");
	active = counter(cdir, r.cpath, "mn_invalidate_active");
	count = counter(cdir, r.cpath, "mmu_notifier_count");
	ok = reaped && locked1 > locked0 && active == 0 && count == 0;
	printf(PROG ": %s the OOM reaper %s the VMM (pid %d; the holding read got %zd bytes); invalidations "
	       "after the kill: seen %llu, locked %llu (want > 0); in flight after: active %llu, "
	       "mmu_notifier_count %llu (want 0)\n",
	       ok ? "PASS" : "FAIL", reaped ? "reaped" : "did NOT reap", child, hold_got,
	       (unsigned long long)(seen1 - seen0), (unsigned long long)(locked1 - locked0),
	       (unsigned long long)active, (unsigned long long)count);
	close(vm_fd);
	if (rmdir(CG))
		printf(PROG ": note: rmdir %s: %s\n", CG, strerror(errno));
	return ok ? 0 : 1;
}
