// SPDX-License-Identifier: MIT
/*
 * NUMA placement.  Slot i lives on the i-th node (round robin) and each vCPU
 * runs on the CPUs of the node that holds its memory.  A single node is the
 * common case: memory is then left to the kernel's default policy.
 */
#include "config.h"

#define _GNU_SOURCE 1
#include "numa-place.h"

#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "kvmstall.h"
#include "util.h"

void numa__setup(struct ks_vm *vm)
{
	struct bitmask *allowed;
	int n, i;

	vm->nnodes = 0;
	if (!vm->cfg->numa || numa_available() < 0)
		return;
	allowed = numa_get_mems_allowed();
	n = numa_max_node();
	vm->nodes = xcalloc((size_t)n + 1, sizeof(int));
	for (i = 0; i <= n; i++) {
		long long free_b;

		if (!numa_bitmask_isbitset(allowed, (unsigned int)i))
			continue;
		if (numa_node_size64(i, &free_b) <= 0)
			continue; /* CPU-only node */
		vm->nodes[vm->nnodes++] = i;
	}
	numa_bitmask_free(allowed);
}

int numa__slot_node(const struct ks_vm *vm, unsigned int slot)
{
	return vm->nnodes > 1 ? vm->nodes[slot % vm->nnodes] : -1;
}

int numa__bind_memory(const struct ks_vm *vm, void *addr, size_t len, int node)
{
	struct bitmask *mask;
	int rc;

	(void)vm;
	if (node < 0)
		return 0;
	mask = numa_allocate_nodemask();
	numa_bitmask_setbit(mask, (unsigned int)node);
	rc = mbind(addr, len, MPOL_BIND, mask->maskp, mask->size + 1, 0) < 0 ? -1 : 0;
	numa_bitmask_free(mask);
	return rc;
}

unsigned int numa__node_cpus(int node, int *cpus, unsigned int max)
{
	cpu_set_t set;
	unsigned int n = 0;
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	struct bitmask *bm = NULL;
	int c;

	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 0;
	if (node >= 0 && numa_available() >= 0) {
		bm = numa_allocate_cpumask();
		if (numa_node_to_cpus(node, bm) < 0) {
			numa_bitmask_free(bm);
			bm = NULL;
		}
	}
	for (c = 0; c < ncpu && c < CPU_SETSIZE && n < max; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		if (bm && !numa_bitmask_isbitset(bm, (unsigned int)c))
			continue;
		cpus[n++] = c;
	}
	if (bm)
		numa_bitmask_free(bm);
	return n;
}

void numa__place_vcpu(struct ks_vm *vm, struct ks_vcpu *vcpu)
{
	int slot = ks_layout_slot_of(&vm->layout, vcpu->region_gpa);
	int cpus[CPU_SETSIZE];
	unsigned int n, rank = 0, i;

	vcpu->node = slot >= 0 ? numa__slot_node(vm, (unsigned int)slot) : -1;
	if (!vm->cfg->pin)
		return;
	n = numa__node_cpus(vcpu->node, cpus, CPU_SETSIZE);
	if (!n)
		n = numa__node_cpus(-1, cpus, CPU_SETSIZE);
	if (!n)
		return;
	/* Spread the vCPUs of one node over that node's CPUs in order. */
	for (i = 0; i < vcpu->id; i++)
		rank += vm->vcpus[i].node == vcpu->node;
	vcpu->cpu = cpus[rank % n];
}

void numa__bind_thread(const struct ks_vm *vm, int node, int cpu)
{
	cpu_set_t set;

	if (cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
			pr_warning("cannot pin a vCPU thread to CPU %d", cpu);
		return;
	}
	if (node >= 0 && vm->nnodes > 1 && numa_run_on_node(node) < 0)
		pr_warning("cannot run a vCPU thread on node %d: %s", node, strerror(errno));
}
