#!/bin/sh
# SPDX-License-Identifier: MIT
# Every backing this host supports, with the HugeTLB pool reserved by the
# test and given back afterwards; the memory really comes from the pool.
. "${top_srcdir:-.}/tests/lib.sh"
require_kvm

run_backing() { # run_backing NAME MEMORY VCPUS
	b=$1
	run_vm "$b" --vcpus "$3" --memory "$2" --backing "$b" --workload touch --duration 1
	ok $? "$b: run succeeds"
	check "$b: every vCPU touched memory" jq_true "$TMP/$b.json" \
		"all(.vcpus[]; .touches > 0 and .valid) and .config.backing == \"$b\""
}

# THP pages could be collapsed by khugepaged, which vm-antagonists.sh counts.
hp_lock
run_backing anon 64M 2
check "anon: 4 KiB pages" jq_true "$TMP/anon.json" '.config.page_size == 4096'
# Guest memory is a VMA of its own, set apart from the decoys around it
# (VM_DONTDUMP, "dd" in smaps), so that splitting a decoy never announces
# an invalidation that covers guest memory.
start_vm vma --vcpus 1 --memory 64M --decoy-size 4M --backing anon --workload spin --duration 600
await_ready vma
ok $? "anon: a VM runs"
awk '/^[0-9a-f]+-[0-9a-f]+ / { range = $1 } /^Size:/ { size = $2 } /^VmFlags:/ && size == 65536 && / dd/ { print range }' \
	"/proc/$VM_PID/smaps" > "$TMP/vma.txt"
stop_vm TERM
ok $? "anon: the run ends on SIGTERM"
check "anon: guest memory is one VMA of exactly its size, not dumped ($(cat "$TMP/vma.txt"))" \
	test "$(wc -l < "$TMP/vma.txt")" -eq 1
if grep -q '\[never\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
	skip "thp: transparent huge pages are disabled on this host"
else
	run_backing thp 64M 2
fi

# 2 MiB pages: 32 MiB of slot and a 2 MiB decoy on each side = 18 pages.
for b in hugetlb-2M memfd-hugetlb-2M; do
	if ! hp_reserve 2048 18; then
		skip "$b: cannot reserve 18 2 MiB pages on this host"
		continue
	fi
	before=$(hp_free 2048)
	# Held until the pool has been read: the run ends on SIGTERM, not on a timer.
	start_vm "$b" --vcpus 2 --memory 32M --backing "$b" --workload touch --duration 600
	await_ready "$b"
	ok $? "$b: every vCPU reached the workload"
	during=$(hp_free 2048)
	stop_vm TERM
	ok $? "$b: run succeeds"
	check "$b: the VM held 18 pages of the pool ($before free before, $during during)" \
		test $((before - during)) -ge 18
	check "$b: both vCPUs touched memory" jq_true "$TMP/$b.json" \
		'all(.vcpus[]; .touches > 0 and .valid)'
	check "$b: the pool is whole again after the run" test "$(hp_free 2048)" -eq "$before"
	hp_release 2048
done

# --reserve-hugepages grows the pool itself and shrinks it at exit.
d=$(hp_dir 2048)
nr0=$(cat "$d/nr_hugepages")
if hp_reserve 2048 0 && [ "$(hp_free 2048)" -lt 18 ]; then
	run_vm reserve --vcpus 2 --memory 32M --backing hugetlb-2M --duration 1 --reserve-hugepages
	ok $? "--reserve-hugepages: run succeeds with a pool that was too small"
	check "--reserve-hugepages: nr_hugepages back to $nr0" test "$(cat "$d/nr_hugepages")" -eq "$nr0"
else
	skip "--reserve-hugepages: the pool already has 18 free 2 MiB pages"
fi

# 1 GiB pages: 1 GiB of slot and a 1 GiB decoy on each side = 3 pages.
g=$(hp_dir 1048576)
if [ ! -d "$g" ]; then
	skip "hugetlb-1G: this kernel has no 1 GiB pages"
elif ! hp_reserve 1048576 3; then
	skip "hugetlb-1G: the kernel could not provide three 1 GiB pages (memory fragmented)"
	hp_release 1048576
else
	run_backing hugetlb-1G 1G 1
	check "hugetlb-1G: 1 GiB pages" jq_true "$TMP/hugetlb-1G.json" '.config.page_size == 1073741824'
	hp_release 1048576
fi
done_testing
