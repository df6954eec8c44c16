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
"$prog" "${KVMSTALL_LEAK_CYCLES:-1000}" "$b"
rc=$?
hp_release 2048
exit $rc
