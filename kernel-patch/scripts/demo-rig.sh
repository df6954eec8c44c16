#!/bin/sh
# SPDX-License-Identifier: MIT
# The default demo inside the rig, for a host without a usable /dev/kvm
# (scripts/demo runs this then): the patched debug 5.10 kernel, the one
# make check-kernel uses, built into the cache the first time (about 20
# minutes on 2 cores), boots in QEMU and runs the demo's VMs on its own
# KVM.  Its lockdep and KASAN make KVM slower than a production kernel's.  Their tables are printed
# here as they come; their JSON and CSV reports land in OUT_DIR.
# Usage: demo-rig.sh OUT_DIR   (KVMSTALL_STATIC: a static kvmstall;
# KVMSTALL_DEMO_VCPUS: vCPUs, default 8)
set -eu
. "$(dirname "$0")/common.sh"
[ $# -eq 1 ] || die "usage: demo-rig.sh OUT_DIR"
out=$1
vmm=${KVMSTALL_STATIC:?set KVMSTALL_STATIC to a static kvmstall}
vcpus=${KVMSTALL_DEMO_VCPUS:-8}
mkdir -p "$out"

log "building (or reusing) the patched debug kernel in $CACHE"
kdir=$("$KP_DIR/scripts/build-kernel.sh" debug)
res="$CACHE/results/demo-rig-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$res"

# The same runs as on a host with KVM, one rig job each.
vm="kvmstall --vcpus $vcpus --memory 1G --backing hugetlb-2M --reserve-hugepages"
for w in spin touch fault; do
	echo "$w 600 echo; echo '== workload $w: $vcpus vCPUs, 1 GiB, hugetlb-2M, no events';" \
		"$vm --workload $w --duration 3 --json \$OUT/$w.json --csv \$OUT/$w.csv"
done > "$res/jobs"
echo "events 600 echo; echo '== default event mix under the fault workload: outside vs inside vs baseline';" \
	"$vm --workload fault --duration 10 --events madvise-dontneed:outside:rate=10000" \
	"--events mprotect:outside:rate=100 --events madvise-dontneed:inside:rate=20" \
	"--events mprotect:inside:rate=10 --json \$OUT/events.json --csv \$OUT/events.csv" >> "$res/jobs"
"$KP_DIR/scripts/make-initramfs.sh" "$kdir" "$vmm" /nonexistent "$res/jobs" "$res/initrd.cpio.gz"

log "booting it in QEMU (TCG, 2 CPUs, 2 NUMA nodes of 3 GiB); the demo's VMs run on its KVM"
# 3 GiB per NUMA node: the demo's 1 GiB of 2 MiB pages, with decoys, is
# bound to node 0.
KVMSTALL_RIG_MEM_MB=${KVMSTALL_RIG_MEM_MB:-6144} \
	"$KP_DIR/scripts/run-rig.sh" "$kdir/bzImage" "$res/initrd.cpio.gz" "$res" > "$res/run.out" 2>&1 &
rig=$!
# Print what the jobs print, as the console grows, without the rig's
# markers, the files it sends back, the guest kernel's messages and
# kvmstall's progress line (the serial console is a terminal to it).
tail -n +1 -F --pid=$rig "$res/console.log" 2> /dev/null | tr -d '\r' | awk '
	/^@@kvmstall START / { on = 1; next }
	/^@@kvmstall END / { on = 0; if ($4 != "rc=0") print "(" $3 " failed: " $4 ")"; next }
	/^@@kvmstall/ || /^\[ *[0-9]+\.[0-9]+\] / { next }
	{ sub(/.*\033\[K/, "") }
	on' &
shown=$!
rc=0
wait $rig || rc=$?
wait $shown || true
if [ $rc -ne 0 ]; then
	cat "$res/run.out" >&2
	die "the rig run failed; its console is in $res/console.txt"
fi
for f in "$res"/*__*; do
	[ -f "$f" ] && cp "$f" "$out/${f##*__}"
done
grep -q '^@@kvmstall END .* rc=[1-9]' "$res/console.txt" && die "a demo run failed in the rig (see above)"
echo
echo "These ran on the patched debug 5.10 kernel's KVM inside QEMU (TCG, 2 guest CPUs;"
echo "lockdep and KASAN make its KVM slower than a production kernel's):"
echo "with $vcpus vCPUs on 2 CPUs, most of the stall time is 'preempted'."
echo "Reports: $out/*.json (schema in 'man ./doc/kvmstall.1'), time series in $out/*.csv"
