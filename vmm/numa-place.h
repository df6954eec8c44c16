/* SPDX-License-Identifier: MIT */
/* NUMA placement through libnuma: slots to nodes, vCPUs to their memory's CPUs. */
#ifndef KVMSTALL__NUMA_H
#define KVMSTALL__NUMA_H

#include <stddef.h>

struct ks_vm;
struct ks_vcpu;

void numa__setup(struct ks_vm *vm);
int numa__slot_node(const struct ks_vm *vm, unsigned int slot);
/* mbind @addr to @node (nothing for -1); 0 or -1 with errno. */
int numa__bind_memory(const struct ks_vm *vm, void *addr, size_t len, int node);
void numa__place_vcpu(struct ks_vm *vm, struct ks_vcpu *vcpu);
void numa__bind_thread(const struct ks_vm *vm, int node, int cpu);
/* Online CPUs of @node (all online CPUs for -1), at most @max of them into @cpus. */
unsigned int numa__node_cpus(int node, int *cpus, unsigned int max);

#endif
