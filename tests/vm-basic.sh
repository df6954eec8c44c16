#!/bin/sh
# SPDX-License-Identifier: MIT
# One small VM end to end: table, JSON and CSV outputs, KVM statistics.
. "${top_srcdir:-.}/tests/lib.sh"
require_kvm

"$KVMSTALL" --vcpus 2 --memory 64M --workload spin --duration 1 --interval 200ms \
	--json "$TMP/r.json" --csv "$TMP/r.csv" > "$TMP/table" 2> "$TMP/err"
ok $? "kvmstall runs a 2-vCPU VM for 1 s"
check "the summary table has a total row" grep -q '^total ' "$TMP/table"
check "nothing on stderr without a terminal" test ! -s "$TMP/err" || sed 's/^/# stderr: /' "$TMP/err"
check "JSON: schema and version" jq_true "$TMP/r.json" \
	'.schema == "kvmstall-report" and .schema_version == 1'
check "JSON: status ok, no errors" jq_true "$TMP/r.json" \
	'.result.status == "ok" and (.result.errors | length) == 0'
check "JSON: 2 vCPUs, each with iterations" jq_true "$TMP/r.json" \
	'(.vcpus | length) == 2 and all(.vcpus[]; .iterations > 0 and .valid)'
check "JSON: the run lasted its duration" jq_true "$TMP/r.json" \
	'.timing.run_ns >= 1000000000 and .timing.run_ns < 60000000000'
check "JSON: TSC frequency known" jq_true "$TMP/r.json" '.host.tsc_khz > 0'
check "JSON: histograms add up to the stall counts" jq_true "$TMP/r.json" \
	'all(.vcpus[]; ([.histogram[].count] | add // 0) == .stalls.count)'
check "JSON: percentiles are ordered" jq_true "$TMP/r.json" \
	'all(.vcpus[].stalls; .p50_ns <= .p90_ns and .p90_ns <= .p99_ns and .p99_ns <= .p999_ns and .p999_ns <= .max_ns)'
check "JSON: stalls are above the threshold" jq_true "$TMP/r.json" \
	'all(.vcpus[].stalls; .count == 0 or .max_ns >= 20000)'
check "JSON: KVM statistics were read" jq_true "$TMP/r.json" \
	'.kvm_stats.source != "none" and (.kvm_stats.vcpu_total + .kvm_stats.vm | length) > 0'
check "JSON: the host's memory activity during the run, from /proc/vmstat" jq_true "$TMP/r.json" \
	'(.kvm_stats.host_vmstat | length) == 10 and any(.kvm_stats.host_vmstat[]; type == "number") and all(.kvm_stats.host_vmstat[]; . == null or . >= 0)'
check "JSON: slot with decoys directly before and after" jq_true "$TMP/r.json" \
	'.layout.slots[0] as $s | $s.decoy_before_hva + .layout.decoy_bytes == $s.hva and $s.hva + $s.bytes == $s.decoy_after_hva'
check "CSV: header" sh -c "head -n1 '$TMP/r.csv' | grep -q '^time_s,vcpu,iterations'"
rows=$(($(wc -l < "$TMP/r.csv") - 1))
check "CSV: rows for both vCPUs at several times ($rows)" test "$rows" -ge 6

# Several memslots: contiguous in guest-physical space, each with its own decoys.
run_vm slots --vcpus 4 --memory 64M --slots 4 --workload touch --duration 1
ok $? "4 slots: run succeeds"
check "4 slots: contiguous guest-physical ranges from 4 GiB" jq_true "$TMP/slots.json" \
	'[.layout.slots[] | .gpa] == [range(0; 4) | 4294967296 + . * 16777216]'
check "4 slots: every slot has a decoy directly before and after it" jq_true "$TMP/slots.json" \
	'.layout.decoy_bytes as $d | all(.layout.slots[]; .decoy_before_hva + $d == .hva and .hva + .bytes == .decoy_after_hva)'
check "4 slots: KVM slot ids 1 to 4 (0 is the system region)" jq_true "$TMP/slots.json" \
	'[.layout.slots[].slot] == [1, 2, 3, 4]'
check "4 slots: every vCPU worked" jq_true "$TMP/slots.json" 'all(.vcpus[]; .touches > 0)'
done_testing
