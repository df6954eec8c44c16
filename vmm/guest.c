// SPDX-License-Identifier: MIT
/* Guest loader: payload into the system region, one parameter block per vCPU. */
#include "config.h"

#include <string.h>

#include "kvmstall.h"
#include "util.h"

extern const uint8_t ks_payload_start[];
extern const uint8_t ks_payload_end[];

/*
 * Heartbeats (published counters and a look at the stop flag) every 100 us
 * of guest TSC, whatever an iteration costs: counters are fresh at every
 * sample and a stop takes effect within 0.1 ms of running guest time.
 */
#define KS_HEARTBEAT_NS 100000

void guest__load(struct ks_vm *vm)
{
	size_t len = (size_t)(ks_payload_end - ks_payload_start);

	if (!len || len > KS_PAYLOAD_MAX)
		die("internal: guest payload is %zu bytes (limit %llu)", len,
		    (unsigned long long)KS_PAYLOAD_MAX);
	memcpy(vm->sys + KS_GPA_PAYLOAD, ks_payload_start, len);
	vm->control = (struct ks_control *)(vm->sys + KS_GPA_CTRL);
	memset(vm->control, 0, sizeof(*vm->control));
}

void guest__init_vcpu(struct ks_vm *vm, struct ks_vcpu *vcpu)
{
	uint64_t area = KS_GPA_VCPU_AREA + (uint64_t)vcpu->id * KS_VCPU_STRIDE;
	const struct ks_config *cfg = vm->cfg;
	struct ks_params *p;

	p = (struct ks_params *)(vm->sys + area + KS_VCPU_PARAMS_OFF);
	vcpu->params = p;
	vcpu->shared = (struct ks_shared *)(vm->sys + area + KS_VCPU_SHARED_OFF);
	memset(vcpu->shared, 0, sizeof(*vcpu->shared));
	memset(p, 0, sizeof(*p));
	p->magic = KS_PARAMS_MAGIC;
	p->abi_version = KS_ABI_VERSION;
	p->vcpu_id = vcpu->id;
	p->workload = (uint32_t)cfg->workload;
	p->threshold_ticks = vm->threshold_ticks;
	p->region_gva = vcpu->region_gpa;
	p->region_bytes = vcpu->region_size;
	p->stride = cfg->stride;
	p->shared_gva = area + KS_VCPU_SHARED_OFF;
	p->control_gva = KS_GPA_CTRL;
	p->heartbeat_ticks = ks_ns_to_ticks(KS_HEARTBEAT_NS, vm->tsc_khz);
	vcpu->params_set = *p;
}
