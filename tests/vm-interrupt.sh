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

# SIGINT at each phase, sent by kvmstall to itself at that exact point
# (KVMSTALL_TEST_SIGNAL), on HugeTLB memory the run reserves itself: a
# report complete for what ran, and the pool given back.  teardown:2 is a
# second Ctrl-C while the VM is being torn down.
hp_lock
b=anon
d=$(hp_dir 2048)
if [ -d "$d" ] && hp_reserve 2048 0; then
	b=hugetlb-2M
	nr0=$(cat "$d/nr_hugepages")
fi
for phase in setup prefault run report teardown:2; do
	p=${phase%%:*}
	KVMSTALL_TEST_SIGNAL=$phase run_vm "phase-$p" --vcpus 2 --memory 32M --backing $b \
		--reserve-hugepages --duration 1 --csv "$TMP/phase-$p.csv"
	ok $? "SIGINT at $phase: exit status 0"
	case $p in
	setup | prefault) want='.result.status == "interrupted" and .timing.run_ns == 0' ;;
	run) want='.result.status == "interrupted" and .timing.run_ns < 1000000000' ;;
	*) want='.result.status == "ok" and .timing.run_ns >= 1000000000' ;;
	esac
	check "SIGINT at $phase: the report says what ran" jq_true "$TMP/phase-$p.json" \
		"$want and (.vcpus | length) == 2 and all(.vcpus[]; .state == \"done\" and .valid)"
	check "SIGINT at $phase: the CSV is complete" sh -c \
		"head -n1 '$TMP/phase-$p.csv' | grep -q '^time_s,' && [ \$(grep -c '^[0-9.]*,[01],' '$TMP/phase-$p.csv') -ge 2 ]"
	if [ $b = hugetlb-2M ]; then
		check "SIGINT at $phase: the hugepages it reserved went back ($nr0)" \
			test "$(cat "$d/nr_hugepages")" -eq "$nr0"
	fi
done
done_testing
