#!/bin/sh
# SPDX-License-Identifier: MIT
# Ctrl-C (SIGINT) and SIGTERM end the run and the full report is written.
. "${top_srcdir:-.}/tests/lib.sh"
require_kvm

for sig in INT TERM; do
	start_vm "$sig" --vcpus 4 --memory 64M --workload touch --duration 600 \
		--csv "$TMP/$sig.csv"
	await_ready "$sig"
	ok $? "SIG$sig: every vCPU reached the workload"
	stop_vm "$sig"
	rc=$?
	check "SIG$sig: exit status 0 (got $rc)" test "$rc" -eq 0
	check "SIG$sig: the JSON report is complete and says interrupted" jq_true "$TMP/$sig.json" \
		"(.vcpus | length) == 4 and .result.status == \"interrupted\" and .result.signal == \"SIG$sig\""
	check "SIG$sig: every vCPU stopped cleanly and did work" jq_true "$TMP/$sig.json" \
		'all(.vcpus[]; .state == "done" and .valid and .iterations > 0)'
	check "SIG$sig: the run time is the time that ran, not the 600 s asked for" \
		jq_true "$TMP/$sig.json" '.timing.run_ns > 0 and .timing.run_ns < 600000000000'
	check "SIG$sig: the CSV has its last rows, one per vCPU" \
		test "$(grep -c '^[0-9.]*,[0-3],' "$TMP/$sig.csv")" -ge 4
done
done_testing
