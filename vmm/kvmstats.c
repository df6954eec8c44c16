// SPDX-License-Identifier: MIT
/* KVM statistics: binary stats fd or debugfs; see kvmstats.h. */
#include "config.h"

#include "kvmstats.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvmstall.h"
#include "util.h"

static struct ks_kvmstat *stat_slot(struct ks_kvmstats *st, const char *name, bool vcpu)
{
	unsigned int i;

	for (i = 0; i < st->n; i++)
		if (st->v[i].vcpu == vcpu && !strcmp(st->v[i].name, name))
			return &st->v[i];
	st->v = xrealloc(st->v, (st->n + 1) * sizeof(*st->v));
	memset(&st->v[st->n], 0, sizeof(st->v[0]));
	snprintf(st->v[st->n].name, sizeof(st->v[0].name), "%s", name);
	st->v[st->n].vcpu = vcpu;
	return &st->v[st->n++];
}

#ifdef KVM_GET_STATS_FD
/* Add every scalar of one stats fd into @st (start or end value). */
static bool read_stats_fd(int fd, struct ks_kvmstats *st, bool vcpu, bool end)
{
	struct kvm_stats_header h;
	size_t dsz;
	uint8_t *descs = NULL;
	uint64_t *data = NULL;
	size_t data_len = 0;
	unsigned int i;
	bool ok = false;

	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return false;
	dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	if (h.num_desc > 4096 || h.name_size > 256)
		return false;
	descs = xcalloc(h.num_desc, dsz);
	if (pread(fd, descs, h.num_desc * dsz, h.desc_offset) != (ssize_t)(h.num_desc * dsz))
		goto out;
	for (i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *d = (void *)(descs + i * dsz);
		size_t need = d->offset + (size_t)d->size * 8;

		if (need > data_len)
			data_len = need;
	}
	data = xcalloc(1, data_len + 8);
	if (pread(fd, data, data_len, h.data_offset) != (ssize_t)data_len)
		goto out;
	for (i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *d = (void *)(descs + i * dsz);
		uint32_t type = d->flags & KVM_STATS_TYPE_MASK;
		struct ks_kvmstat *s;
		char name[64];
		uint64_t v;

		if (d->size != 1)
			continue; /* histograms: not reported */
		memcpy(&v, (uint8_t *)data + d->offset, 8);
		snprintf(name, sizeof(name), "%.*s", (int)h.name_size, d->name);
		s = stat_slot(st, name, vcpu);
		s->cumulative = type == KVM_STATS_TYPE_CUMULATIVE;
		if (end)
			s->end += v;
		else
			s->start += v;
	}
	ok = true;
out:
	free(descs);
	free(data);
	return ok;
}

static bool read_all_fds(struct ks_vm *vm, struct ks_kvmstats *st, bool end)
{
	unsigned int i;
	int fd;

	fd = ioctl(vm->vm_fd, KVM_GET_STATS_FD, NULL);
	if (fd < 0)
		return false;
	if (!read_stats_fd(fd, st, false, end)) {
		close(fd);
		return false;
	}
	close(fd);
	for (i = 0; i < vm->layout.nvcpus; i++) {
		fd = ioctl(vm->vcpus[i].fd, KVM_GET_STATS_FD, NULL);
		if (fd < 0)
			return false;
		read_stats_fd(fd, st, true, end);
		close(fd);
	}
	return true;
}
#endif

/* Gauges among the 5.10 debugfs files; everything else there counts events. */
static bool debugfs_gauge(const char *name)
{
	static const char *const gauges[] = {
		"max_mmu_rmap_size",	"mmu_unsync",	      "largepages", "lpages",
		"mn_invalidate_active", "mmu_notifier_count", "tlbs_dirty"
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(gauges); i++)
		if (!strcmp(name, gauges[i]))
			return true;
	return false;
}

/* debugfs on 5.10: one file per counter, vCPU counters already summed. */
static bool read_debugfs(struct ks_vm *vm, struct ks_kvmstats *st, bool end)
{
	char dir[128], path[400];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "/sys/kernel/debug/kvm/%d-%d", (int)getpid(), vm->vm_fd);
	d = opendir(dir);
	if (!d)
		return false;
	while ((de = readdir(d))) {
		struct ks_kvmstat *s;
		uint64_t v;

		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(st->v[0].name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (!read_u64_file(path, &v))
			continue;
		s = stat_slot(st, de->d_name, false);
		s->cumulative = !debugfs_gauge(de->d_name);
		if (end)
			s->end = v;
		else
			s->start = v;
	}
	closedir(d);
	return st->n > 0;
}

void kvmstats__start(struct ks_vm *vm, struct ks_kvmstats *st)
{
	memset(st, 0, sizeof(*st));
	ks_vmstat_read(st->vmstat_start, st->vmstat_ok);
#ifdef KVM_GET_STATS_FD
	if (vm->caps.stats_fd && read_all_fds(vm, st, false)) {
		st->source = "binary_stats_fd";
		return;
	}
	kvmstats__free(st);
#endif
	if (read_debugfs(vm, st, false)) {
		st->source = "debugfs";
		return;
	}
	kvmstats__free(st);
	st->source = "none";
	snprintf(
		st->why_none, sizeof(st->why_none),
		"no KVM_CAP_BINARY_STATS_FD and no /sys/kernel/debug/kvm/%d-%d (debugfs not mounted?)",
		(int)getpid(), vm->vm_fd);
}

void kvmstats__end(struct ks_vm *vm, struct ks_kvmstats *st)
{
	bool found[KS_VMSTAT_N];
	unsigned int i;

	ks_vmstat_read(st->vmstat_end, found);
	for (i = 0; i < KS_VMSTAT_N; i++)
		st->vmstat_ok[i] = st->vmstat_ok[i] && found[i];
	for (i = 0; i < st->n; i++)
		st->v[i].end = 0;
#ifdef KVM_GET_STATS_FD
	if (!strcmp(st->source, "binary_stats_fd")) {
		read_all_fds(vm, st, true);
		return;
	}
#endif
	if (!strcmp(st->source, "debugfs"))
		read_debugfs(vm, st, true);
}

void kvmstats__free(struct ks_kvmstats *st)
{
	free(st->v);
	st->v = NULL;
	st->n = 0;
}
