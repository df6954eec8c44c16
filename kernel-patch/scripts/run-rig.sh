#!/bin/sh
# SPDX-License-Identifier: MIT
# Boot a kernel with an initramfs in QEMU and collect what its jobs report.
# Usage: run-rig.sh BZIMAGE INITRD RESULTS_DIR [EXTRA_KERNEL_ARGS]
#
# TCG with thread=single and -cpu EPYC,+svm,+npt, as DESIGN.md recommends
# after diagnosing the rig's hangs; -enable-kvm -cpu host where the host has
# hardware virtualization.  Two NUMA nodes.  A hard time limit and a
# heartbeat watchdog turn a hang into a reported hang with the guest's last
# output.  The run fails when the guest kernel prints a WARNING, BUG, Oops,
# Call Trace, lockdep report, soft lockup or hung task.
set -u
. "$(dirname "$0")/common.sh"
[ $# -ge 3 ] || die "usage: run-rig.sh BZIMAGE INITRD RESULTS_DIR [KERNEL_ARGS]"
kernel=$1 initrd=$2 res=$3 extra=${4:-}
LIMIT=${KVMSTALL_RIG_TIMEOUT:-3000}	# seconds for the whole boot
SILENCE=${KVMSTALL_RIG_SILENCE:-180}	# seconds without a line before it is a hang
mkdir -p "$res"
console="$res/console.log"
: > "$console"

# KVMSTALL_RIG_TCG=multi: the parallel rig, one host thread per guest CPU
# (multi-threaded TCG), with trixie's QEMU 10 (fetch-qemu.sh): bookworm's
# QEMU hangs there on the guest kernel's static-key patching (DESIGN.md).
qemu=qemu-system-x86_64
tcg=${KVMSTALL_RIG_TCG:-single}
case $tcg in
single | multi) ;;
*) die "KVMSTALL_RIG_TCG must be single or multi (got '$tcg')" ;;
esac
if [ -r /dev/kvm ] && grep -qwE 'svm|vmx' /proc/cpuinfo; then
	accel="-enable-kvm -cpu host"
elif [ "$tcg" = multi ]; then
	qemu=$("$(dirname "$0")/fetch-qemu.sh") || die "no QEMU for the parallel rig"
	accel="-accel tcg,thread=multi -cpu EPYC,+svm,+npt"
else
	accel="-accel tcg,thread=single -cpu EPYC,+svm,+npt"
fi
echo "$qemu $accel" > "$res/accel.txt"
mem=${KVMSTALL_RIG_MEM_MB:-3072}
half=$((mem / 2))
# shellcheck disable=SC2086 # $accel is several options
# One socket per CPU: two CPUs sharing a last-level cache on different
# NUMA nodes make 5.10 WARN in topology_sane().  no_timer_check: under TCG
# on a loaded host the guest's check that the timer reaches the IO-APIC can
# time out, and 5.10 then panics at boot ("IO-APIC + timer doesn't work!",
# seen here with QEMU at nice 19 beside a CI run).
"$qemu" $accel -smp 2,sockets=2,cores=1,threads=1 -m "${mem}M" \
	-object "memory-backend-ram,id=m0,size=${half}M" -numa node,nodeid=0,cpus=0,memdev=m0 \
	-object "memory-backend-ram,id=m1,size=$((mem - half))M" -numa node,nodeid=1,cpus=1,memdev=m1 \
	-kernel "$kernel" -initrd "$initrd" -nographic -no-reboot \
	-append "console=ttyS0 no_timer_check panic=-1 oops=panic rcupdate.rcu_cpu_stall_timeout=300 hung_task_timeout_secs=300 $extra" \
	> "$console" 2>&1 < /dev/null &
qpid=$!
t0=$(date +%s)
verdict=""
last=0
while kill -0 $qpid 2> /dev/null; do
	sleep 5
	now=$(date +%s)
	size=$(wc -c < "$console")
	if [ "$size" != "$last" ]; then
		last=$size
		quiet_since=$now
	fi
	if [ $((now - t0)) -gt "$LIMIT" ]; then
		verdict="HANG: the guest ran past the ${LIMIT} s limit"
	elif [ $((now - ${quiet_since:-$t0})) -gt "$SILENCE" ]; then
		verdict="HANG: no output from the guest for ${SILENCE} s (no heartbeat)"
	fi
	if [ -n "$verdict" ]; then
		kill $qpid 2> /dev/null
		sleep 2
		kill -9 $qpid 2> /dev/null
		break
	fi
done
wait $qpid 2> /dev/null
tr -d '\r' < "$console" > "$res/console.txt"
log "guest ran $(($(date +%s) - t0)) s"

# Files the guest sent back, gzipped and base64 between FILE and EOF markers,
# with the md5sum of the file on the EOF line.  Lines that cannot be base64
# are kernel messages that came in between; they are dropped.
awk -v dir="$res" '
	/^@@kvmstall FILE / { name = $3; gsub("/", "__", name); out = dir "/" name ".b64"; next }
	/^@@kvmstall EOF / { close(out); print $4 > (out ".md5"); close(out ".md5"); out = ""; next }
	out != "" && /^[A-Za-z0-9+\/=]+$/ { print > out }
' "$res/console.txt"
for f in "$res"/*.b64; do
	[ -e "$f" ] || continue
	dst=${f%.b64}
	if base64 -d "$f" 2> /dev/null | gunzip -c > "$dst" 2> /dev/null &&
		[ "$(md5sum < "$dst" | cut -d' ' -f1)" = "$(cat "$f.md5" 2> /dev/null)" ]; then
		rm -f "$f" "$f.md5"
	else
		log "${dst##*/}: damaged on the serial console (kept as $f)"
		rm -f "$dst"
	fi
done

grep '^@@kvmstall END ' "$res/console.txt" > "$res/results.txt" || true
status=0
if [ -n "$verdict" ]; then
	echo "$verdict; last guest output:"
	grep -v '^@@kvmstall HEARTBEAT' "$res/console.txt" | tail -n 25 | sed 's/^/    /'
	status=1
elif ! grep -q '^@@kvmstall DONE' "$res/console.txt"; then
	echo "the guest stopped before finishing its jobs; last output:"
	tail -n 25 "$res/console.txt" | sed 's/^/    /'
	status=1
fi
# Kernel reports, found on the console so that each can be laid at a job's
# door.  Kernel warnings print "WARNING: CPU: N PID: ..." (other lines that
# say WARNING, such as mitigation notes, are not reports).  A report listed
# in known-splats.txt is excused inside its job only.
splat='cut here ]|WARNING: CPU: |BUG: |Oops: |general protection fault|Call Trace:|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|soft lockup|blocked for more than|KASAN'
awk -v known="$KP_DIR/known-splats.txt" -v pat="$splat" '
	BEGIN {
		while ((getline line < known) > 0) {
			if (line ~ /^[ \t]*(#|$)/)
				continue
			split(line, f, /   +/)
			sig[f[1]] = f[2]
			why[f[1]] = f[3]
		}
	}
	/^@@kvmstall START / { job = $3; n = 0; has_sig = 0; next }
	/^@@kvmstall END / {
		for (i = 1; i <= n; i++)
			if (has_sig && (lines[i] ~ /suspicious RCU usage|Call Trace:/))
				excused++
			else
				print "SPLAT " lines[i]
		if (has_sig && excused)
			print "KNOWN " job ": " sig[job] " (" why[job] ")"
		job = ""; n = 0; has_sig = 0; excused = 0
		next
	}
	{
		if (job != "" && (job in sig) && index($0, sig[job]))
			has_sig = 1
		if ($0 ~ pat) {
			if (job == "")
				print "SPLAT " $0
			else
				lines[++n] = $0
		}
	}
	END { for (i = 1; i <= n; i++) print "SPLAT " lines[i] }
' "$res/console.txt" > "$res/splats.txt"
if grep -q '^KNOWN ' "$res/splats.txt"; then
	echo "known kernel reports, excused (see known-splats.txt):"
	sed -n 's/^KNOWN /    /p' "$res/splats.txt"
fi
if grep -q '^SPLAT ' "$res/splats.txt"; then
	echo "the guest kernel printed a splat:"
	sed -n 's/^SPLAT /    /p' "$res/splats.txt" | head -n 10
	status=1
fi
exit $status
