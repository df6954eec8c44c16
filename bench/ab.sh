#!/bin/sh
# SPDX-License-Identifier: MIT
# make ab: the stock vs patched 5.10 A/B.
#
# Builds (or reuses) the stock and the patched release kernels, both with
# the instrumentation of kernel-patch/instrument/, and runs the scenarios
# of bench/matrix-full.txt (bench/matrix-quick.txt with QUICK=1) in the
# nested rig, AB_REPS times per kernel, the kernels interleaved (S P, then
# P S, ...).  Each repetition of the matrix is one boot.  After each pair
# of boots the same matrix runs directly on the host kernel too.  Every
# run's JSON (gzipped) and CSV land under RESULTS/raw/KERNEL/repN/, then
# bench/ab-report.sh writes RESULTS/report.md and its plots.
#
# Environment: KVMSTALL (host binary), KVMSTALL_STATIC (for the rig),
# QUICK (0|1), AB_RIG (single: TCG with one host thread for both guest
# CPUs, the default; parallel: multi-threaded TCG, one host thread per
# guest CPU, with trixie's QEMU from kernel-patch/scripts/fetch-qemu.sh),
# AB_REPS (default 5), AB_DURATION (seconds per run, default
# 3), AB_HOST (1: also run on the host kernel, the default where
# /dev/kvm is usable; 0: the rig only),
# AB_MATRIX (a file of scenario names instead of the matrix files),
# KVMSTALL_INSTRUMENT=0 (kernels without kernel-patch/instrument/, to
# measure what it costs with bench/ab-compare.sh),
# RESULTS (default bench/results/DATE-HOST[-quick]).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
KP_DIR="$top/kernel-patch"
. "$KP_DIR/base.conf"
CACHE=${KVMSTALL_CACHE:-/var/cache/kvmstall}
log() { printf 'ab: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

quick=${QUICK:-0}
case $quick in 0 | 1) ;; *) die "QUICK must be 0 or 1 (got '$quick')" ;; esac
reps=${AB_REPS:-5}
case $reps in '' | *[!0-9]*) die "AB_REPS must be a whole number from 1 (got '$reps')" ;; esac
[ "$reps" -ge 1 ] || die "AB_REPS must be a whole number from 1 (got '$reps')"
dflt=3
dur=${AB_DURATION:-$dflt}
case $dur in '' | *[!0-9]*) die "AB_DURATION must be whole seconds from 1 (got '$dur')" ;; esac
[ "$dur" -ge 1 ] || die "AB_DURATION must be whole seconds from 1 (got '$dur')"
# The host leg needs the host's own KVM: without a usable /dev/kvm it is
# left out (with a line saying so), unless AB_HOST=1 asks for it.
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then host_kvm=1; else host_kvm=0; fi
on_host=${AB_HOST:-$host_kvm}
case $on_host in 0 | 1) ;; *) die "AB_HOST must be 0 or 1 (got '$on_host')" ;; esac
[ "$on_host" = 0 ] || [ "$host_kvm" = 1 ] ||
	die "AB_HOST=1, but this host has no usable /dev/kvm for the host runs: use AB_HOST=0 (the rig runs need no host KVM)"
[ -n "${AB_HOST:-}" ] || [ "$host_kvm" = 1 ] ||
	log "this host has no usable /dev/kvm: the matrix runs in the rig only (no host-kernel runs)"
rig=${AB_RIG:-single}
case $rig in
single) tcg=single ;;
parallel) tcg=multi ;;
*) die "AB_RIG must be single or parallel (got '$rig')" ;;
esac
export KVMSTALL_RIG_TCG=$tcg
vmm=${KVMSTALL_STATIC:?set KVMSTALL_STATIC to a static kvmstall (make ab does)}
hostvmm=${KVMSTALL:?set KVMSTALL to kvmstall (make ab does)}
for t in jq gnuplot qemu-system-x86_64 gzip; do
	command -v $t > /dev/null || die "make ab needs $t: apt-get install jq gnuplot-nox qemu-system-x86"
done
[ "$(id -u)" = 0 ] || die "make ab needs root (debugfs, HugeTLB pool, the host runs): run it as root"

if [ "$quick" = 1 ]; then matrix="$here/matrix-quick.txt"; else matrix="$here/matrix-full.txt"; fi
matrix=${AB_MATRIX:-$matrix}
[ -r "$matrix" ] || die "AB_MATRIX: cannot read $matrix (a file of scenario names, one per line)"
scen=$(grep -v '^[[:space:]]*\(#\|$\)' "$matrix")
for s in $scen; do
	[ -f "$here/scenarios/$s.json" ] || die "$(basename "$matrix") lists $s, but bench/scenarios/$s.json does not exist"
done
nscen=$(echo "$scen" | wc -w)
suffix=""
[ "$rig" = parallel ] && suffix=-parallel
[ "$quick" = 1 ] && suffix=$suffix-quick
res=${RESULTS:-$top/bench/results/$(date +%Y%m%d)-$(hostname -s)$suffix}
# An existing set is resumed: repetitions that have every report are kept.
[ ! -e "$res/raw" ] || log "$res already holds results: resuming, keeping the complete repetitions"
mkdir -p "$res/raw"
t_start=$(date +%s)

case ${KVMSTALL_INSTRUMENT:-1} in
0) stock="$CACHE/kernels/release/stock-bare" instr="without the instrumentation" ;;
*) stock="$CACHE/kernels/release/stock" instr="both instrumented" ;;
esac
log "kernels: building or reusing the release kernels (stock and patched, $instr)"
patched=$("$KP_DIR/scripts/build-kernel.sh" release)
qemu=qemu-system-x86_64
[ "$tcg" = single ] || qemu=$("$KP_DIR/scripts/fetch-qemu.sh") || die "no QEMU for the parallel rig"
[ -f "$stock/bzImage" ] || die "no stock kernel at $stock after build-kernel.sh"
t_built=$(date +%s)

# One job per scenario, the same on every kernel; the scenario files go to
# the initramfs's root.
limit=$((dur * 20 + 120))
jobs_for() { # jobs_for SCENARIO...: the rig's jobs file
	for s; do
		echo "$s $limit kvmstall --scenario /$s.json -d $dur -q --event-log 0 --json \$OUT/run.json --csv \$OUT/series.csv -i 100ms"
	done
}
jobs_for $scen > "$res/jobs.txt"
extra=""
for s in $scen; do extra="$extra $here/scenarios/$s.json"; done
work=$(mktemp -d "${TMPDIR:-/tmp}/kvmstall-ab.XXXXXX")
trap 'rm -rf "$work"' EXIT
initramfs() { # initramfs KERNEL JOBS OUT
	eval "kdir=\$$1"
	KVMSTALL_INITRAMFS_EXTRA="$extra" "$KP_DIR/scripts/make-initramfs.sh" "$kdir" "$vmm" /nonexistent \
		"$2" "$3" 2> /dev/null
}
for k in stock patched; do initramfs $k "$res/jobs.txt" "$work/$k.cpio.gz"; done

hostk=host-$(uname -r)
if [ "$on_host" = 1 ]; then kernels=3; else kernels=2; fi
total=$((reps * kernels * nscen))
done_runs=0
run_s=0 # seconds spent in runs so far, for the estimate

progress() { # progress KERNEL REP SCENARIO RC SECONDS
	done_runs=$((done_runs + 1))
	left=$(awk -v d="$done_runs" -v t="$total" -v s="$run_s" 'BEGIN { printf "%d", d ? (t - d) * s / d : 0 }')
	printf 'ab: [%d/%d] %-8s rep %d/%d %-34s rc=%s %5.1f s, about %d min left\n' \
		"$done_runs" "$total" "$1" "$2" "$reps" "$3" "$4" "$5" $(((left + 59) / 60)) >&2
}

rig_boot() { # rig_boot KERNEL REP INITRD TAG: one boot, progress from its console
	k=$1 n=$2 bi=$3 bt=$4
	eval "kdir=\$$k"
	"$KP_DIR/scripts/run-rig.sh" "$kdir/bzImage" "$bi" "$work/rig-$bt" > "$work/rig-$bt.log" 2>&1 &
	rpid=$!
	seen=0
	while :; do
		alive=0
		kill -0 $rpid 2> /dev/null && alive=1
		if [ -f "$work/rig-$bt/console.log" ]; then
			tr -d '\r' < "$work/rig-$bt/console.log" | grep '^@@kvmstall END ' > "$work/ends" || true
			now=$(wc -l < "$work/ends")
			while [ "$seen" -lt "$now" ]; do
				seen=$((seen + 1))
				set -- $(sed -n "${seen}p" "$work/ends")
				secs=${5#seconds=}
				run_s=$(awk -v a="$run_s" -v b="$secs" 'BEGIN { print a + b }')
				progress "$k" "$n" "$3" "${4#rc=}" "$secs"
			done
		fi
		[ $alive = 1 ] || break
		sleep 2
	done
	wait $rpid
}

rig_rep() { # rig_rep KERNEL REP: every scenario in one boot; lost reports run again
	k=$1 n=$2
	out="$res/raw/$k/rep$n"
	missing=""
	for s in $scen; do [ -f "$out/$s.json.gz" ] || missing="$missing $s"; done
	if [ -z "$missing" ]; then
		log "$k rep $n: complete, kept"
		done_runs=$((done_runs + nscen))
		return 0
	fi
	mkdir -p "$out"
	try=0
	while [ -n "$missing" ] && [ $try -le 2 ]; do
		tag="$k-$n-$try"
		if [ $try = 0 ] && [ "$(echo $missing | wc -w)" = "$nscen" ]; then
			initrd="$work/$k.cpio.gz"
		else
			log "$k rep $n: running again in a boot of its own:$missing"
			total=$((total + $(echo $missing | wc -w)))
			jobs_for $missing > "$work/jobs-$tag"
			initramfs $k "$work/jobs-$tag" "$work/$tag.cpio.gz"
			initrd="$work/$tag.cpio.gz"
		fi
		rig_boot $k $n "$initrd" "$tag" || {
			tail -n 5 "$work/rig-$tag.log" >&2
			gzip -9 -c "$work/rig-$tag/console.txt" > "$out/console-$try.txt.gz" 2> /dev/null || true
			die "the $k kernel's rig run $n failed; console: $out/console-$try.txt.gz"
		}
		still=""
		for s in $missing; do
			if [ -f "$work/rig-$tag/${s}__run.json" ]; then
				gzip -9 -c "$work/rig-$tag/${s}__run.json" > "$out/$s.json.gz"
				[ ! -f "$work/rig-$tag/${s}__series.csv" ] ||
					gzip -9 -c "$work/rig-$tag/${s}__series.csv" > "$out/$s.csv.gz"
			else
				still="$still $s"
			fi
		done
		gzip -9 -c "$work/rig-$tag/console.txt" > "$out/console-$try.txt.gz"
		rm -rf "$work/rig-$tag"
		[ -z "$still" ] || log "$k rep $n: no report came back for$still (see $out/console-$try.txt.gz)"
		missing=$still
		try=$((try + 1))
	done
	for s in $missing; do echo "$k rep $n $s" >> "$res/missing.txt"; done
}

host_rep() { # host_rep REP: the same matrix on the host kernel
	n=$1
	out="$res/raw/$hostk/rep$n"
	mkdir -p "$out"
	for s in $scen; do
		if [ -f "$out/$s.json.gz" ]; then
			done_runs=$((done_runs + 1))
			continue
		fi
		t0=$(date +%s.%N)
		rc=0
		"$hostvmm" --scenario "$here/scenarios/$s.json" -d "$dur" -q --event-log 0 \
			--json "$work/h.json" --csv "$work/h.csv" -i 100ms > "$work/h.log" 2>&1 || rc=$?
		secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
		run_s=$(awk -v a="$run_s" -v b="$secs" 'BEGIN { print a + b }')
		progress "$hostk" "$n" "$s" "$rc" "$secs"
		if [ "$rc" != 0 ]; then
			cat "$work/h.log" >&2
			log "$hostk rep $n: $s failed (rc=$rc); recorded in missing.txt"
			echo "$hostk rep $n $s" >> "$res/missing.txt"
			continue
		fi
		gzip -9 -c "$work/h.json" > "$out/$s.json.gz"
		gzip -9 -c "$work/h.csv" > "$out/$s.csv.gz"
	done
}

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "host: $(hostname -s), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
	echo "host_kernel: $(uname -r)"
	echo "host_kvm: $(if [ "$host_kvm" = 0 ]; then echo "none (no usable /dev/kvm)"; elif grep -qwE 'vmx|svm' /proc/cpuinfo; then echo hardware; else echo software, no VMX or SVM; fi)"
	echo "rig: $("$qemu" --version | head -n1), $(if [ -r /dev/kvm ] && grep -qwE 'svm|vmx' /proc/cpuinfo; then echo -enable-kvm; else echo "TCG thread=$tcg"; fi), 2 CPUs, 2 NUMA nodes"
	echo "guest_kernel: $BASE_TREE $BASE_DEB_VERSION release, stock and patched, $instr"
	echo "series: $(basename "$patched")"
	echo "kvmstall: $(cd "$top" && git describe --always --dirty 2> /dev/null || echo unknown)"
	echo "matrix: $(basename "$matrix"), $nscen scenarios"
	echo "reps: $reps"
	echo "duration_s: $dur"
	echo "kernels: stock patched$([ "$on_host" = 1 ] && echo " $hostk")"
} > "$res/meta.txt"

i=1
while [ $i -le "$reps" ]; do
	if [ $((i % 2)) = 1 ]; then order="stock patched"; else order="patched stock"; fi
	for k in $order; do rig_rep $k $i; done
	[ "$on_host" != 1 ] || host_rep $i
	i=$((i + 1))
done
t_end=$(date +%s)
{
	echo "wall_s: $((t_end - t_start))"
	echo "build_s: $((t_built - t_start))"
} >> "$res/meta.txt"
log "all runs done in $((t_end - t_start)) s (kernels $((t_built - t_start)) s); writing the report"
"$here/ab-report.sh" "$res"
