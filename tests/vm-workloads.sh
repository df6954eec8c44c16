#!/bin/sh
# SPDX-License-Identifier: MIT
# Each workload does what it says: spin iterates without touching memory,
# touch writes its region, fault keeps taking faults on recycled memory.
. "${top_srcdir:-.}/tests/lib.sh"
require_kvm

run_vm spin --vcpus 2 --memory 64M --workload spin --duration 1
ok $? "spin: run succeeds"
check "spin: iterates, touches nothing" jq_true "$TMP/spin.json" \
	'all(.vcpus[]; .iterations > 0 and .touches == 0)'

run_vm touch --vcpus 2 --memory 64M --workload touch --stride 64 --duration 1
ok $? "touch: run succeeds"
check "touch: one write per iteration" jq_true "$TMP/touch.json" \
	'all(.vcpus[]; .iterations > 0 and .touches == .iterations)'
check "touch: every vCPU stopped on request and says how long that took" jq_true "$TMP/touch.json" \
	'all(.vcpus[]; .state == "done" and (.stop_ns | type) == "number")'

# 32 MiB of slot, two 2 MiB decoys and two 2 MiB chunks of headroom per vCPU: 22 pages.
for b in anon hugetlb-2M memfd-hugetlb-2M; do
	if [ "$b" != anon ]; then
		hp_lock
		hp_reserve 2048 22 || { skip "fault on $b: cannot reserve 22 2 MiB pages"; continue; }
	fi
	# 4 KiB pages take one fault each: a smaller region, so that the
	# walk laps it even where a fault takes 400 us (the nested rig).
	mem=32M
	[ "$b" != anon ] || mem=8M
	run_vm "fault-$b" --vcpus 2 --memory $mem --backing "$b" --workload fault --duration 2
	ok $? "fault on $b: run succeeds"
	check "fault on $b: walked more pages than its region holds (it lapped)" jq_true \
		"$TMP/fault-$b.json" 'all(.vcpus[]; .pages_walked * 4096 > .region_bytes)' ||
		echo "# $("$JQ" -c '[.vcpus[] | {pages_walked, region_bytes, iterations, measured_ns}]' "$TMP/fault-$b.json")"
	check "fault on $b: the recycler dropped memory behind the guest" jq_true \
		"$TMP/fault-$b.json" '.timing.fault_recycled_bytes > 0'
	check "fault on $b: KVM handled page faults" jq_true "$TMP/fault-$b.json" \
		'.kvm_stats.source == "none" or ((.kvm_stats.vcpu_total.pf_taken // .kvm_stats.vm.pf_fixed // .kvm_stats.vcpu_total.pf_fixed // 1) > 0)'
done
done_testing
