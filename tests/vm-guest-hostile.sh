#!/bin/sh
# SPDX-License-Identifier: MIT
# Hostile guests: vCPU 0 misbehaves, vCPUs 1 and 2 run the touch workload.
# Each misdeed gets one clear report naming vCPU 0, the run fails, and the
# other vCPUs' results stay whole.
. "${top_srcdir:-.}/tests/lib.sh"
require_kvm

hostile() { # hostile WORKLOAD PATTERN: the report on stderr matches PATTERN
	w=$1 pat=$2
	# --start-timeout bounds the wait for a vCPU that never gets to ring 3.
	run_vm "$w" --vcpus 3 --memory 96M --workload "$w" --duration 1 --start-timeout 10s
	rc=$?
	check "$w: exit status 1 (got $rc)" test "$rc" -eq 1
	lines=$(grep -c . "$TMP/$w.err")
	want=1
	[ "$w" = test-never-ready ] && want=2 # and the start-timeout warning
	check "$w: $want line(s) on stderr, each naming vCPU 0 ($lines)" sh -c \
		"[ $lines -eq $want ] && [ \$(grep -c 'vCPU 0\|1 of 3\|2 of 3' '$TMP/$w.err') -eq $want ]"
	check "$w: the report says '$pat'" grep -q -- "$pat" "$TMP/$w.err"
	check "$w: JSON: the run failed, and vCPU 0 is failed or discarded" jq_true "$TMP/$w.json" \
		'.result.status == "failed" and (.vcpus[0] | .state == "failed" or .valid == false)'
	check "$w: JSON: vCPUs 1 and 2 stopped cleanly with whole results" jq_true "$TMP/$w.json" \
		'all(.vcpus[1:][]; .state == "done" and .valid and .iterations > 0 and .touches > 0 and ([.histogram[].count] | add // 0) == .stalls.count)'
	check "$w: JSON: their touches read back intact" jq_true "$TMP/$w.json" \
		'.result.data_check | .zeroed_reads == 0 and .corrupt_reads == 0'
}

hostile test-ring "vCPU 0 wrote inconsistent data.*stall record .* is impossible"
hostile test-backwards "vCPU 0 wrote inconsistent data.*iterations went backwards"
hostile test-histogram "vCPU 0 wrote inconsistent data.*histogram bucket"
hostile test-ucalls "vCPU 0: unknown ucall 2989 from the guest"
hostile test-params "vCPU 0 wrote inconsistent data.*wrote over its parameter block"
hostile test-triple-fault "vCPU 0: triple fault (KVM_EXIT_SHUTDOWN)"
hostile test-hlt "vCPU 0: guest halted (hlt) with nothing to wake it"
hostile test-never-ready "vCPU 0: never reached its workload in ring 3"
done_testing
