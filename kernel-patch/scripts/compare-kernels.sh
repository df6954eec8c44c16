#!/bin/sh
# SPDX-License-Identifier: MIT
# Run the same kvmstall jobs (rig/jobs-compare.txt) on the stock and the
# patched kernel of CONFIG (default release) in the rig, side by side:
# MMU-notifier counters (patched only; stock has none) and the stall
# percentiles of every job.  Fails unless, on the patched kernel, the
# outside events took mmu_lock zero times while the inside events took it
# for each notification.
# Needs KVMSTALL_STATIC (a static kvmstall; `make compare-kernels` passes it).
set -eu
. "$(dirname "$0")/common.sh"
config=${KVMSTALL_KERNEL_CONFIG:-release}
vmm=${KVMSTALL_STATIC:?set KVMSTALL_STATIC to a static kvmstall}
command -v jq > /dev/null || die "needs jq (apt-get install jq)"

patched=$("$KP_DIR/scripts/build-kernel.sh" "$config")
stock="$CACHE/kernels/$config/stock"
res="$CACHE/results/compare-$config-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$res"
jobs="$res/jobs"
grep -v '^[[:space:]]*\(#\|$\)' "$KP_DIR/rig/jobs-compare.txt" > "$jobs"

for k in stock patched; do
	eval "kdir=\$$k"
	mkdir -p "$res/$k"
	"$KP_DIR/scripts/make-initramfs.sh" "$kdir" "$vmm" /nonexistent "$jobs" "$res/$k/initrd.cpio.gz"
	log "$k: booting $kdir in the rig; console in $res/$k/console.txt"
	"$KP_DIR/scripts/run-rig.sh" "$kdir/bzImage" "$res/$k/initrd.cpio.gz" "$res/$k" ||
		die "the $k kernel's rig run failed; see $res/$k/console.txt"
done

fail=0
num() { # num KERNEL JOB JQ-EXPR: a number from a job's report, or "-"
	jq -r "$3 // \"-\"" "$res/$1/$2__run.json" 2> /dev/null || echo -
}
us() { # us NS: nanoseconds as microseconds, one decimal
	case $1 in -) echo - ;; *) awk -v n="$1" 'BEGIN { printf "%.1f", n / 1000 }' ;; esac
}
printf '%-20s %-8s %8s %9s %8s %8s %8s %8s %10s %10s %10s\n' job kernel events stalls/s \
	p50-us p90-us p99-us p99.9-us mn-seen mn-locked mn-elided
while read -r job _; do
	for k in stock patched; do
		v='.kvm_stats.vm'
		printf '%-20s %-8s %8s %9s %8s %8s %8s %8s %10s %10s %10s\n' "$job" "$k" \
			"$(num $k "$job" '[.events.streams[]?.events] | add')" \
			"$(num $k "$job" '.total.stalls.per_second | floor')" \
			"$(us "$(num $k "$job" .total.stalls.p50_ns)")" \
			"$(us "$(num $k "$job" .total.stalls.p90_ns)")" \
			"$(us "$(num $k "$job" .total.stalls.p99_ns)")" \
			"$(us "$(num $k "$job" .total.stalls.p999_ns)")" \
			"$(num $k "$job" "$v.mn_invalidate_seen")" \
			"$(num $k "$job" "$v.mn_invalidate_locked")" \
			"$(num $k "$job" "$v.mn_invalidate_elided")"
	done
done < "$jobs"

check() { # check DESCRIPTION JQ-EXPR JOB: on the patched kernel's report
	if jq -e "$2" "$res/patched/$3__run.json" > /dev/null 2>&1; then
		echo "PASS: $3: $1"
	else
		echo "FAIL: $3: $1"
		fail=$((fail + 1))
	fi
}
for job in outside-spin outside-spin-hugetlb; do
	check "outside events (10k/s asked; TCG may not keep up), all done, took mmu_lock zero times" \
		'.events.streams[0].events >= 1000 and .events.streams[0].errors == 0 and .kvm_stats.vm.mn_invalidate_locked == 0 and .kvm_stats.vm.mn_invalidate_elided >= .events.streams[0].events' \
		$job
done
check "every inside event took mmu_lock" \
	'.events.streams[0].events > 0 and .events.streams[0].errors == 0 and .kvm_stats.vm.mn_invalidate_locked >= .events.streams[0].events' \
	inside-spin
while read -r job _; do
	check "no invalidation left in flight" \
		'.kvm_stats.vm.mn_invalidate_active == 0 and .kvm_stats.vm.mmu_notifier_count == 0' "$job"
done < "$jobs"
echo "results: $res"
[ "$fail" -eq 0 ]
