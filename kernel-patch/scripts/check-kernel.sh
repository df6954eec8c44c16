#!/bin/sh
# SPDX-License-Identifier: MIT
# make check-kernel: build the patched debug kernel, boot it in the rig, run
# the kvmstall scenarios and the 5.10 tree's x86 KVM selftests inside, and
# fail on any unexpected failure or kernel splat.
# Needs KVMSTALL_STATIC (a static kvmstall; the Makefile passes it).
set -eu
. "$(dirname "$0")/common.sh"
config=${KVMSTALL_KERNEL_CONFIG:-debug}
vmm=${KVMSTALL_STATIC:?set KVMSTALL_STATIC to a static kvmstall}
t_start=$(date +%s)

kdir=$("$KP_DIR/scripts/build-kernel.sh" "$config")
t_built=$(date +%s)

# Selftests, from the same tree, built outside it (see DESIGN.md).
st="$CACHE/selftests/$config"
if [ ! -f "$st/.built" ]; then
	log "building the KVM selftests"
	hdr="$CACHE/headers/$config"
	make -C "$CACHE/tree" O="$CACHE/build/$config" INSTALL_HDR_PATH="$hdr" headers_install \
		> "$CACHE/build/$config/headers.log" 2>&1 || die "headers_install failed"
	rm -rf "$st"
	mkdir -p "$st"
	make -C "$CACHE/tree/tools/testing/selftests/kvm" KSFT_KHDR_INSTALL_DONE=1 \
		INSTALL_HDR_PATH="$hdr" OUTPUT="$st" > "$st/build.log" 2>&1 ||
		{ tail -n 20 "$st/build.log" >&2; die "the KVM selftests did not build; see $st/build.log"; }
	touch "$st/.built"
fi

res="$CACHE/results/check-kernel-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$res"
jobs="$res/jobs"
grep -v '^[[:space:]]*\(#\|$\)' "$KP_DIR/rig/jobs-check.txt" > "$jobs"
grep -v '^[[:space:]]*\(#\|$\)' "$KP_DIR/rig/selftests.txt" | while read -r name limit args; do
	echo "selftest-$name $limit /selftests/$name $args"
done >> "$jobs"
"$KP_DIR/scripts/make-initramfs.sh" "$kdir" "$vmm" "$st" "$jobs" "$res/initrd.cpio.gz"

log "booting $config kernel ($kdir) in the rig; console in $res/console.txt"
t_boot=$(date +%s)
rig_ok=0
# KVMSTALL_RACE_SECONDS shortens mn-race for development runs (default 600);
# the kernel hands VAR=VALUE arguments to init as its environment.
"$KP_DIR/scripts/run-rig.sh" "$kdir/bzImage" "$res/initrd.cpio.gz" "$res" \
	${KVMSTALL_RACE_SECONDS:+KVMSTALL_RACE_SECONDS=$KVMSTALL_RACE_SECONDS} || rig_ok=$?
# A second boot with shadow paging (kvm_amd.npt=0): the legacy MMU's rmap
# path under guest page tables, and tlbs_dirty, which only it sets.
shadow="$res/npt0"
mkdir -p "$shadow"
grep -v '^[[:space:]]*\(#\|$\)' "$KP_DIR/rig/jobs-npt0.txt" > "$shadow/jobs"
"$KP_DIR/scripts/make-initramfs.sh" "$kdir" "$vmm" /nonexistent "$shadow/jobs" "$shadow/initrd.cpio.gz"
log "booting it again with kvm_amd.npt=0; console in $shadow/console.txt"
shadow_ok=0
"$KP_DIR/scripts/run-rig.sh" "$kdir/bzImage" "$shadow/initrd.cpio.gz" "$shadow" kvm_amd.npt=0 ||
	shadow_ok=$?
t_end=$(date +%s)

pass=0 fail=0 skip=0 xfail=0
failed=""
tally() { # tally RESULTS_DIR JOBS LABEL: one line per job of a boot
	while read -r _ _ name rcs secs; do
		rc=${rcs#rc=}
		base=${name#selftest-}
		if [ "$rc" = 0 ]; then
			pass=$((pass + 1))
			echo "PASS: $3$name (${secs#seconds=} s)"
		elif [ "$rc" = 4 ] && [ "$base" != "$name" ]; then
			skip=$((skip + 1))
			echo "SKIP: $3$name"
		elif [ "$base" != "$name" ] && grep -q "^$base[[:space:]]" "$KP_DIR/selftests-expected.txt"; then
			xfail=$((xfail + 1))
			echo "XFAIL: $3$name rc=$rc ($(grep "^$base[[:space:]]" "$KP_DIR/selftests-expected.txt" | sed 's/^[^ ]* *//'))"
		else
			fail=$((fail + 1))
			failed="$failed $3$name"
			echo "FAIL: $3$name rc=$rc"
		fi
	done < "$1/results.txt"
	expected=$(wc -l < "$2")
	got=$(wc -l < "$1/results.txt" 2> /dev/null || echo 0)
	if [ "$got" -ne "$expected" ]; then
		echo "FAIL: ${3}only $got of $expected jobs reported"
		fail=$((fail + 1))
	fi
}
[ -f "$res/results.txt" ] || : > "$res/results.txt"
[ -f "$shadow/results.txt" ] || : > "$shadow/results.txt"
tally "$res" "$jobs" ""
tally "$shadow" "$shadow/jobs" "npt=0: "
# What the reports that came back must say.
report() { # report FILE JQ-EXPR DESCRIPTION
	if jq -e "$2" "$res/$1" > /dev/null 2>&1; then
		echo "PASS: $1: $3"
		pass=$((pass + 1))
	else
		echo "FAIL: $1: missing, or not $3"
		fail=$((fail + 1))
	fi
}
report kvmstall-spin__spin.json '(.vcpus | length) == 2 and all(.vcpus[]; .iterations > 0) and .result.status == "ok"' \
	"both vCPUs worked"
report kvmstall-hugetlb__hugetlb.json '(.vcpus | length) == 2 and all(.vcpus[]; .iterations > 0) and .config.backing == "hugetlb-2M" and .result.status == "ok"' \
	"both vCPUs worked on HugeTLB memory"
# The stall anatomy on 5.10, where kvm_exit and kvm_entry bound each exit.
spin_share() { # the preempted share of each anatomy-spin run's stall time
	jq -r '.total.stall_causes.preempted_ns / .total.stalls.total_ns' "$res"/anatomy-spin__spin-*.json 2> /dev/null | tr '\n' ' '
}
if jq -s -e 'length == 3 and all(.[]; .anatomy.context_switches and .total.stall_causes.lost_records == 0 and .total.stalls.total_ns > 0) and
	any(.[]; .total.stall_causes.preempted_ns >= 0.8 * .total.stalls.total_ns)' "$res"/anatomy-spin__spin-*.json > /dev/null 2>&1; then
	echo "PASS: anatomy-spin: six vCPUs on two CPUs: at least 80 % of the stall time preempted (shares: $(spin_share))"
	pass=$((pass + 1))
else
	echo "FAIL: anatomy-spin: missing, or not six vCPUs on two CPUs with at least 80 % of the stall time preempted in one of three runs (shares: $(spin_share))"
	fail=$((fail + 1))
fi
report anatomy-fault__fault.json '.anatomy.in_kvm_from == "kvm_exit to kvm_entry" and .total.stall_causes.in_kvm_ns > 0.2 * .total.stalls.total_ns and (.total.stall_causes.exit_reasons | to_entries | max_by(.value).key | test("npf"))' \
	"a faulting vCPU: over 20 % of the stall time in KVM, most of it on npf exits"
# The patched kernel's MMU-notifier counters, as kvmstall reports them: the
# outside events were elided, the inside ones took mmu_lock, and no
# invalidation was left in flight.
report kvmstall-events__events.json '.kvm_stats.vm.mn_invalidate_elided > 0 and .kvm_stats.vm.mn_invalidate_locked > 0 and .kvm_stats.vm.mn_invalidate_active == 0 and .kvm_stats.vm.mmu_notifier_count == 0' \
	"MMU-notifier counters with elided and locked invalidations, none in flight"
# Aging reaches KVM for guest memory and is elided next to it: clear_young
# through the idle page bitmap (age-idle events, whose pages must then read
# idle), and clear_flush_young through reclaim on anon guest memory.
report kvmstall-age__age.json '.kvm_stats.vm.mn_clear_young_locked > 0 and .kvm_stats.vm.mn_clear_young_elided > 0 and ([.events.streams[] | .events > 0 and .verify.failed == 0] | all)' \
	"clear_young took mmu_lock for guest memory and was elided next to it, and the pages read idle"
report kvmstall-reclaim-young__young.json '.kvm_stats.vm.mn_clear_flush_young_locked > 0 and .kvm_stats.vm.mn_clear_flush_young_elided > 0 and (.antagonists[0].counters.pswpout | .end > .start) and (.result.status == "ok" or .result.signal == "SIGTERM")' \
	"reclaim asked KVM whether guest pages were young (clear_flush_young took mmu_lock) and not for the VMM's own pages (elided)"
report npt0/kvmstall-events__events.json '.kvm_stats.vm.mn_invalidate_elided > 0 and .kvm_stats.vm.mn_invalidate_locked > 0 and .kvm_stats.vm.mn_invalidate_active == 0 and .kvm_stats.vm.mmu_notifier_count == 0 and .kvm_stats.vm.tlbs_dirty != null' \
	"with shadow paging too"
# Migration needs two NUMA nodes, which the rig has and most hosts lack.
report kvmstall-migrate__migrate.json '.host.numa_nodes == [0, 1] and ([.events.streams[] | .events > 0 and .verify.failed == 0 and .verify.verified == .events] | all)' \
	"migrate events that all moved pages between the two nodes"
# The kernel's own antagonists on VMM memory: the NUMA balancer scanned
# (it needs CONFIG_NUMA_BALANCING and the two nodes), ksmd scanned, reclaim
# swapped VMM pages out to zram (cgroup v2, memory.high), and their
# notifications, none of them for the HugeTLB guest memory, were elided.
# The job runs until ksmd, the balancer and reclaim have each shown work
# (rig/until-rises), then stops kvmstall with SIGTERM: on the debug kernel a
# fixed 5 s was sometimes not enough for one full KSM scan.
report kvmstall-antagonists__antagonists.json '([.antagonists[] | .skipped | not] | all) and (.antagonists | length) == 4 and (.antagonists[0].counters.numa_pte_updates | .end > .start) and (.antagonists[1].counters.full_scans | .end > .start) and (.antagonists[3].counters | (.pgsteal.end > .pgsteal.start) and (.pswpout.end > .pswpout.start)) and .kvm_stats.vm.mn_invalidate_elided > 0 and (.result.status == "ok" or .result.signal == "SIGTERM")' \
	"NUMA balancing, KSM, khugepaged and reclaim ran on VMM memory and their invalidations were elided"
[ "$rig_ok" -eq 0 ] || fail=$((fail + 1))
[ "$shadow_ok" -eq 0 ] || fail=$((fail + 1))
echo "check-kernel ($config): build $((t_built - t_start)) s, boot and jobs $((t_end - t_boot)) s, total $((t_end - t_start)) s"
echo "$pass passed, $fail failed, $skip skipped, $xfail expected failures"
echo "results: $res"
[ "$fail" -eq 0 ]
