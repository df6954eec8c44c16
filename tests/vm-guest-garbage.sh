#!/bin/sh
# SPDX-License-Identifier: MIT
# A payload that writes nonsense into its shared pages: a warning, its data
# discarded, no out-of-bounds read, no wrong report.
. "${top_srcdir:-.}/tests/lib.sh"
require_kvm

run_vm garbage --vcpus 3 --memory 64M --workload test-garbage --duration 1
rc=$?
check "exit status 1 when data had to be discarded (got $rc)" test "$rc" -eq 1
check "one warning per vCPU" test "$(grep -c 'wrote inconsistent data into its shared page' "$TMP/garbage.err")" -eq 3
check "JSON: every vCPU marked invalid with a reason" jq_true "$TMP/garbage.json" \
	'all(.vcpus[]; .valid == false and (.invalid_reason | length) > 0)'
check "JSON: no numbers from the garbage reach the report" jq_true "$TMP/garbage.json" \
	'all(.vcpus[]; .iterations == 0 and .stalls.count == 0 and (.histogram | length) == 0) and .total.stalls.count == 0'
check "JSON: the guests themselves stopped cleanly" jq_true "$TMP/garbage.json" \
	'all(.vcpus[]; .state == "done")'
if [ -n "${KVMSTALL_SANITIZERS:-}" ]; then
	skip "valgrind cannot run a build with sanitizers ($KVMSTALL_SANITIZERS)"
elif command -v valgrind > /dev/null 2>&1; then
	timeout 300 valgrind -q --error-exitcode=42 "$KVMSTALL" --vcpus 1 --memory 16M \
		--workload test-garbage --duration 1 --quiet > /dev/null 2> "$TMP/vg.err"
	check "valgrind: no invalid reads while validating garbage" test $? -eq 1
else
	skip "valgrind is not installed"
fi
done_testing
