#!/bin/sh
# SPDX-License-Identifier: MIT
# make check-vmm-rig: kvmstall's integration tests on real KVM (every
# tests/*.sh that calls require_kvm) run inside the rig, on the KVM of the
# patched debug 5.10 kernel, one rig job per test script.  For hosts without
# a usable /dev/kvm, where `make check` has to skip them: scripts/check runs
# this then.  The rig has what most such hosts lack (two NUMA nodes, the KVM
# tracepoints), and what it lacks (valgrind) the tests skip, saying so.
# The scripts are shared out over KVMSTALL_VMM_RIG_BOOTS boots that run at
# once (default: one per host CPU, at most 4), events-kinds.sh split by
# backing, its largest.  KVMSTALL_VMM_RIG_ONLY="NAME..." runs only the
# jobs of those names.  Uses the cached debug kernel (built if missing).
# Needs KVMSTALL_STATIC (a static kvmstall, with tests/leak-cycles built
# next to it) and jq on the host, which the rig borrows with its libraries.
set -eu
. "$(dirname "$0")/common.sh"
vmm=${KVMSTALL_STATIC:?set KVMSTALL_STATIC to a static kvmstall}
top=$(cd "$KP_DIR/.." && pwd)
jq=$(command -v jq) || die "needs jq on the host (apt-get install jq)"
cycles="$(dirname "$vmm")/tests/leak-cycles"
[ -x "$cycles" ] || die "no $cycles (make tests/leak-cycles)"
boots=${KVMSTALL_VMM_RIG_BOOTS:-$(nproc)}
case $boots in '' | *[!0-9]* | 0) die "KVMSTALL_VMM_RIG_BOOTS must be a whole number from 1 (got '$boots')" ;; esac
[ "$boots" -le 4 ] || [ -n "${KVMSTALL_VMM_RIG_BOOTS:-}" ] || boots=4
t_start=$(date +%s)

kdir=$("$KP_DIR/scripts/build-kernel.sh" debug)
res="$CACHE/results/check-vmm-rig-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$res"

# The jobs: one per test script, events-kinds.sh one per backing, first so
# that they go to different boots.  Each gets the environment make check
# gives it, and tracefs where a Debian host has it (vm-anatomy.sh makes an
# ftrace instance there).
tracefs="[ -d /sys/kernel/tracing/events ] || mount -t tracefs tracefs /sys/kernel/tracing"
job() { # job NAME SCRIPT [VAR=VALUE...]
	name=$1 script=$2
	shift 2
	echo "$name ${KVMSTALL_VMM_RIG_TIMEOUT:-1800} $tracefs; env PATH=/usr/local/bin:\$PATH" \
		"KVMSTALL=/bin/kvmstall JQ=jq top_srcdir=/vmmtests $* sh /vmmtests/tests/$script.sh"
}
{
	for b in anon thp hugetlb-2M memfd-hugetlb-2M; do
		job "events-kinds-$b" events-kinds "KVMSTALL_TEST_BACKINGS=$b"
	done
	for t in "$top"/tests/*.sh; do
		name=${t##*/}
		name=${name%.sh}
		case $name in lib | events-kinds) continue ;; esac
		! grep -q '^[[:space:]]*require_kvm' "$t" || job "$name" "$name"
	done
} > "$res/jobs.all"
# KVMSTALL_VMM_RIG_ONLY: the names of the jobs to run (all by default).
only=${KVMSTALL_VMM_RIG_ONLY:-}
if [ -n "$only" ]; then
	for o in $only; do
		grep -q "^$o " "$res/jobs.all" ||
			die "KVMSTALL_VMM_RIG_ONLY: no job '$o'; the jobs are: $(cut -d' ' -f1 "$res/jobs.all" | tr '\n' ' ')"
	done
	awk -v only=" $only " 'index(only, " " $1 " ")' "$res/jobs.all" > "$res/jobs"
else
	cp "$res/jobs.all" "$res/jobs"
fi
[ "$boots" -le "$(wc -l < "$res/jobs")" ] || boots=$(wc -l < "$res/jobs")
awk -v n="$boots" -v dir="$res" '{ print > (dir "/jobs." (NR - 1) % n) }' "$res/jobs"

# The test scripts, tests/leak-cycles (vm-leaks.sh looks for it next to
# kvmstall), jq, and the host's date, flock, getconf, setpriv and timeout,
# where the tests need what busybox lacks (date +%N, setpriv
# --bounding-set, flock), in a second archive appended to each boot's (the
# kernel unpacks concatenated archives in order).  The tools go to
# /usr/local/bin, ahead of busybox in the tests' PATH.
extra=$(mktemp -d "${TMPDIR:-/tmp}/kvmstall-vmm-rig.XXXXXX")
trap 'rm -rf "$extra"' EXIT
mkdir -p "$extra/vmmtests/tests" "$extra/usr/local/bin" "$extra/bin/tests"
cp "$top"/tests/*.sh "$extra/vmmtests/tests/"
cp "$cycles" "$extra/bin/tests/"
copy_libs "$extra" "$cycles"
for tool in "$jq" date flock getconf setpriv timeout; do
	path=$(command -v "$tool") || die "needs $tool on the host"
	cp "$path" "$extra/usr/local/bin/"
	copy_libs "$extra" "$path"
done
(cd "$extra" && find . | cpio -o -H newc --quiet | gzip -1) > "$res/tests.cpio.gz"

log "booting the debug kernel ($kdir) $boots times at once for $(wc -l < "$res/jobs") jobs; consoles in $res/boot-*/console.txt"
t_boot=$(date +%s)
pids=""
b=0
while [ $b -lt "$boots" ]; do
	d="$res/boot-$b"
	mkdir -p "$d"
	if [ -s "$res/jobs.$b" ]; then
		"$KP_DIR/scripts/make-initramfs.sh" "$kdir" "$vmm" /nonexistent "$res/jobs.$b" "$d/base.cpio.gz"
		cat "$d/base.cpio.gz" "$res/tests.cpio.gz" > "$d/initrd.cpio.gz"
		# 3 GiB per node: events-attrib.sh's 1 GiB VM is bound to node 0.
		KVMSTALL_RIG_TIMEOUT=${KVMSTALL_RIG_TIMEOUT:-4000} KVMSTALL_RIG_MEM_MB=${KVMSTALL_RIG_MEM_MB:-6144} \
			"$KP_DIR/scripts/run-rig.sh" "$kdir/bzImage" "$d/initrd.cpio.gz" "$d" > "$d/run.out" 2>&1 &
		pids="$pids $!:$b"
	fi
	b=$((b + 1))
done
rig_fail=0
for p in $pids; do
	wait "${p%:*}" || { echo "FAIL: boot ${p#*:}: the rig run failed:"; sed 's/^/    /' "$res/boot-${p#*:}/run.out"; rig_fail=$((rig_fail + 1)); }
done
t_end=$(date +%s)

# A job's output is on its boot's console between its START and END markers.
output() { # output BOOT_DIR NAME: what job NAME printed in the rig
	awk -v n="$2" '$1 == "@@kvmstall" && $2 == "START" { on = ($3 == n); next }
		$1 == "@@kvmstall" && $2 == "END" { on = 0; next }
		on && !/^@@kvmstall/' "$1/console.txt"
}
pass=0 fail=$rig_fail skip=0 got=0
for d in "$res"/boot-*; do
	[ -f "$d/results.txt" ] || continue
	got=$((got + $(wc -l < "$d/results.txt")))
	while read -r _ _ name rcs secs; do
		rc=${rcs#rc=}
		checks=$(output "$d" "$name" | grep -c '^ok ' || true)
		skipped=$(output "$d" "$name" | grep -c '^ok .* # SKIP' || true)
		if [ "$rc" = 0 ]; then
			pass=$((pass + 1))
			echo "PASS: $name ($checks checks, $skipped of them skipped; ${secs#seconds=} s)"
			output "$d" "$name" | sed -n 's/^ok [0-9]* - # SKIP /    skipped: /p'
		elif [ "$rc" = 77 ]; then
			skip=$((skip + 1))
			echo "SKIP: $name: $(output "$d" "$name" | sed -n 's/^SKIP: //p' | head -n 1)"
		else
			fail=$((fail + 1))
			echo "FAIL: $name rc=$rc (${secs#seconds=} s)"
			output "$d" "$name" | grep -v '^ok ' | tail -n 30 | sed 's/^/    /'
		fi
	done < "$d/results.txt"
done
expected=$(wc -l < "$res/jobs")
if [ "$got" -ne "$expected" ]; then
	echo "FAIL: only $got of $expected jobs reported"
	fail=$((fail + 1))
fi
echo "check-vmm-rig: $boots boots at once, $((t_end - t_boot)) s, total $((t_end - t_start)) s"
echo "check-vmm-rig: $pass passed, $fail failed, $skip skipped"
echo "results: $res"
[ "$fail" -eq 0 ]
