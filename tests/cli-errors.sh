#!/bin/sh
# SPDX-License-Identifier: MIT
# Wrong invocations: one clear line on stderr naming the problem, exit 2.
. "${top_srcdir:-.}/tests/lib.sh"

expect_usage() { # expect_usage PATTERN ARGS...
	pat=$1
	shift
	timeout 60 "$KVMSTALL" "$@" > "$TMP/out" 2> "$TMP/err"
	rc=$?
	check "$*: exit 2 (got $rc)" test $rc -eq 2
	check "$*: one line on stderr" test "$(wc -l < "$TMP/err")" -eq 1
	check "$*: the line says '$pat'" grep -q -- "$pat" "$TMP/err"
	[ "$(wc -l < "$TMP/err")" -eq 1 ] || sed 's/^/#   /' "$TMP/err"
}

expect_usage "invalid --backing 'hugetlb-3M'" --backing hugetlb-3M
expect_usage "invalid --vcpus '0'" --vcpus 0
expect_usage "invalid --workload" --workload nap
expect_usage "not a multiple of 2 MiB" --memory 3M --backing hugetlb-2M
expect_usage "not a multiple of" --memory 1G --slots 3
expect_usage "invalid --json '/nonexistent/out.json'" --json /nonexistent/out.json
expect_usage "invalid --csv" --csv /proc/no-such-dir/x.csv
expect_usage "unknown option '--frob'" --frob
expect_usage "unknown kind 'madvise-nap'" --events madvise-nap:inside
expect_usage "unknown key 'speed'" --events mprotect:inside:speed=3
expect_usage "bad value '0' for rate" --events mprotect:inside:rate=0
expect_usage "bad value '-10' for rate" --events mprotect:inside:rate=-10
expect_usage "unknown target 'somewhere'" --events mprotect:somewhere
expect_usage "invalid --submit" --submit pigeon
expect_usage "^kvmstall: invalid --scenario '/nonexistent.json': No such file or directory$" \
	--scenario /nonexistent.json
expect_usage "^kvmstall: invalid --scenario '/': Is a directory$" --scenario /
expect_usage "descriptor 57 is not open for writing" --ready-fd 57
expect_usage "descriptor 0 is not open\|expected a file descriptor" --ready-fd 0
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	expect_usage "KVM_CAP_MAX_VCPUS" --vcpus 4096 --memory 8G
	expect_usage "bigger than the target" --memory 64M --events madvise-dontneed:inside:pages=16385
	expect_usage "bigger than the target" --memory 64M --events madvise-dontneed:outside:pages=513
	expect_usage "io_uring has no operation for mprotect" --memory 64M --events mprotect:inside:via=uring
	expect_usage "slot 3 does not exist" --memory 64M --events mprotect:inside:slots=3
	expect_usage "hold=met on mprotect waits for a guest write" --memory 64M --workload spin \
		--events mprotect:inside:hold=met
	# Not enough hugepages: ask for more than the pool can have free right now.
	free=$(hp_free 2048 2>/dev/null || echo 0)
	want=$(((free + 64) * 2))M
	expect_usage "not enough 2 MiB hugepages" --memory "$want" --backing hugetlb-2M --duration 1
	check "the hugepage message says how to get them" grep -q -- "--reserve-hugepages" "$TMP/err"
else
	skip "checks that need /dev/kvm (vCPU limit, hugepage pool)"
fi
done_testing
