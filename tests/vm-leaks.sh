#!/bin/sh
# SPDX-License-Identifier: MIT
# 1000 VMs created and destroyed in one process (tests/leak-cycles): file
# descriptors, heap, address space and hugepages back where they started.
. "${top_srcdir:-.}/tests/lib.sh"
require_kvm
prog=$(dirname "$KVMSTALL")/tests/leak-cycles
[ -x "$prog" ] || skip_all "tests/leak-cycles is not built"
hp_lock
# 2 vCPUs, 16 MiB of 2 MiB pages, 2 MiB decoys and fault headroom: 16 pages.
b=anon
if hp_reserve 2048 16; then
	b=hugetlb-2M
else
	echo "# cannot reserve 16 2 MiB pages: 4 KiB memory only"
fi
"$prog" "${KVMSTALL_LEAK_CYCLES:-1000}" "$b" > "$TMP/cycles.tap"
rc=$?
sed 's/^/# leak-cycles: /' "$TMP/cycles.tap"
check "leak-cycles: exit 0 and 5 of 5 checks passed (exit $rc)" sh -c \
	"[ $rc -eq 0 ] && [ \$(grep -c '^ok' '$TMP/cycles.tap') -eq 5 ]"
hp_release 2048

# One small VM with an event stream under valgrind: no leak, no invalid access.
if [ -n "${KVMSTALL_SANITIZERS:-}" ]; then
	skip "valgrind cannot run a build with sanitizers ($KVMSTALL_SANITIZERS)"
elif command -v valgrind > /dev/null 2>&1; then
	timeout 300 valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
		--error-exitcode=42 "$KVMSTALL" --vcpus 2 --memory 16M --duration 1 --quiet \
		--json "$TMP/vg.json" --csv "$TMP/vg.csv" --events madvise-dontneed:outside:rate=100 \
		2> "$TMP/vg.err"
	rc=$?
	check "valgrind: a small VM runs clean, no leak and no invalid access (exit $rc)" test $rc -eq 0
	[ $rc -eq 0 ] || grep -v 'noted but unhandled ioctl\|could cause spurious\|README_MISSING' "$TMP/vg.err" | head -n 20 | sed 's/^/#   /'
else
	skip "valgrind is not installed"
fi
done_testing
