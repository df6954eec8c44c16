#!/bin/sh
# SPDX-License-Identifier: MIT
# Ctrl-C (SIGINT) and SIGTERM end the run and the full report is written.
. "${top_srcdir:-.}/tests/lib.sh"
require_kvm

for sig in INT TERM; do
	"$KVMSTALL" --vcpus 4 --memory 64M --workload touch --duration 120 --quiet \
		--json "$TMP/$sig.json" --csv "$TMP/$sig.csv" 2> "$TMP/$sig.err" &
	pid=$!
	sleep 2
	kill -s "$sig" $pid
	wait $pid
	rc=$?
	check "SIG$sig: exit status 0 (got $rc)" test "$rc" -eq 0
	check "SIG$sig: the JSON report is complete and says interrupted" jq_true "$TMP/$sig.json" \
		"(.vcpus | length) == 4 and .result.status == \"interrupted\" and .result.signal == \"SIG$sig\""
	check "SIG$sig: every vCPU stopped cleanly and did work" jq_true "$TMP/$sig.json" \
		'all(.vcpus[]; .state == "done" and .valid and .iterations > 0)'
	check "SIG$sig: the run time is the time that ran" jq_true "$TMP/$sig.json" \
		'.timing.run_ns > 500000000 and .timing.run_ns < 60000000000'
	check "SIG$sig: the CSV has its last rows" test "$(wc -l < "$TMP/$sig.csv")" -ge 5
done
done_testing
