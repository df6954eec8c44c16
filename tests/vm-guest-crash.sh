#!/bin/sh
# SPDX-License-Identifier: MIT
# A payload that faults on purpose: reported with vCPU, vector and RIP,
# never a hang, and the report is still written.
. "${top_srcdir:-.}/tests/lib.sh"
require_kvm

run_vm crash --vcpus 2 --memory 64M --workload test-crash --duration 600
rc=$?
check "exit status 1 for a guest exception (got $rc)" test "$rc" -eq 1
check "the run ended when the guest failed, not after its 600 s" jq_true "$TMP/crash.json" \
	'.timing.run_ns < 300000000000'
check "vCPU, vector, RIP and CR2 reported" grep -q \
	'vCPU 0: guest exception #PF (vector 14) at RIP 0x2[0-9a-f]*, error code 0x[0-9a-f]*, CR2 0x7fff00000000, ring 3' \
	"$TMP/crash.err"
check "JSON: status failed with both vCPUs' errors" jq_true "$TMP/crash.json" \
	'.result.status == "failed" and .result.vcpus_failed == 2 and all(.vcpus[]; .state == "failed" and (.error | test("#PF")))'
done_testing
