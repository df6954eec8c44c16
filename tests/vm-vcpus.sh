#!/bin/sh
# SPDX-License-Identifier: MIT
# 1, 4, 64 and 256 vCPUs: every one reaches its workload and does work.
. "${top_srcdir:-.}/tests/lib.sh"
require_kvm

for n in 1 4 64 256; do
	if run_vm "v$n" --vcpus "$n" --memory 512M --workload touch --duration 1; then
		ok 0 "$n vCPUs: run succeeds"
		check "$n vCPUs: one report entry each, all done and valid" jq_true "$TMP/v$n.json" \
			"(.vcpus | length) == $n and all(.vcpus[]; .state == \"done\" and .valid)"
		check "$n vCPUs: every vCPU iterated and touched memory" jq_true "$TMP/v$n.json" \
			'all(.vcpus[]; .iterations > 0 and .touches > 0)'
		check "$n vCPUs: regions do not overlap and stay in test memory" jq_true "$TMP/v$n.json" \
			'[.vcpus[] | .region_gpa] as $g | .layout.region_bytes as $r | ($g | sort) == $g and all(range(1; $g | length); $g[.] - $g[. - 1] >= $r)'
		check "$n vCPUs: startup time reported" jq_true "$TMP/v$n.json" '.timing.startup_ns > 0'
	else
		ok 1 "$n vCPUs: run succeeds"
	fi
done

# The acceptance run: 256 vCPUs on 4 GiB of 2 MiB HugeTLB pages.
hp_lock
if hp_reserve 2048 2050; then
	run_vm big --vcpus 256 --memory 4G --backing hugetlb-2M --duration 2
	ok $? "256 vCPUs, 4 GiB hugetlb-2M: run succeeds"
	check "256 vCPUs, 4 GiB hugetlb-2M: 256 entries, each with iterations and a histogram" \
		jq_true "$TMP/big.json" \
		'(.vcpus | length) == 256 and all(.vcpus[]; .iterations > 0 and (.histogram | type) == "array" and ([.histogram[].count] | add // 0) == .stalls.count)'
	hp_release 2048
else
	skip "256 vCPUs on hugetlb-2M: cannot reserve 2050 2 MiB pages"
fi

# Thread names, seen from /proc while the VM runs.
start_vm names --vcpus 3 --memory 64M --workload spin --duration 600
await_ready names
ok $? "3 vCPUs reached the workload"
names=$(cat /proc/$VM_PID/task/*/comm 2>/dev/null | sort | tr '\n' ' ')
stop_vm TERM
ok $? "a run stopped by SIGTERM exits 0"
check "vCPU threads are named ks-vcpu-N ($names)" sh -c "echo '$names' | grep -q 'ks-vcpu-0 ks-vcpu-1 ks-vcpu-2'"

run_vm pin --vcpus 4 --memory 64M --workload spin --duration 1 --pin
ok $? "--pin runs"
check "--pin: each vCPU reports its CPU" jq_true "$TMP/pin.json" 'all(.vcpus[]; .cpu != null)'
done_testing
