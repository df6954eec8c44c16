#!/bin/sh
# SPDX-License-Identifier: MIT
# Run-test the series on arm64: build an arm64 5.10 kernel with the series
# (or, with "stock", without it), boot it in qemu-system-aarch64 -M virt
# with virtualization=on (TCG, so KVM in the guest runs at an emulated EL2)
# and run rig/arm64-kvm-test.c there against the guest's /dev/kvm.
# Usage: arm64-run.sh [patched|stock|negative]
# "negative" is the negative control of the test's check (e): the series
# with negative/mn-cpte-invalid.patch (patch 20's check taken out), on
# which check (e) must fail; the run passes when it does.
#
# Everything lives under $KVMSTALL_CACHE/arm64/ (a copy of the base tree, an
# O= build directory, a private apt setup for arm64 busybox); the shared
# trees and builds of the x86 rig are never touched.  Reruns are incremental:
# only the patches that changed are reverted and reapplied, and make rebuilds
# what they touched.  The console goes to $KVMSTALL_CACHE/results/arm64-*/.
# KVMSTALL_ARM64_TIMEOUT (seconds, default 900) bounds the whole boot.
set -eu
. "$(dirname "$0")/common.sh"

mode=${1:-patched}
case $mode in
patched | stock | negative) ;;
*) die "usage: arm64-run.sh [patched|stock|negative] (got '$mode')" ;;
esac
[ $# -le 1 ] || die "usage: arm64-run.sh [patched|stock|negative] (one argument at most)"
limit=${KVMSTALL_ARM64_TIMEOUT:-900}
case $limit in
'' | *[!0-9]*) die "KVMSTALL_ARM64_TIMEOUT must be a number of seconds (got '$limit')" ;;
esac

cross=aarch64-linux-gnu-
for tool in make flex bison bc perl patch cpio gzip timeout flock file apt-get dpkg-deb \
	"${cross}gcc" "${cross}ld" qemu-system-aarch64; do
	command -v "$tool" > /dev/null ||
		die "needs $tool: apt-get install make flex bison bc patch cpio util-linux file gcc-aarch64-linux-gnu qemu-system-arm"
done
# A static test program needs the arm64 C library's static archives.
[ "$(dpkg-query -W -f '${Status}' libc6-dev-arm64-cross 2> /dev/null)" = "install ok installed" ] ||
	die "needs libc6-dev-arm64-cross for the static test program: apt-get install libc6-dev-arm64-cross"

A="$CACHE/arm64"
tree="$A/tree"
out="$A/build"
mkdir -p "$A" "$CACHE/results"
# Two runs at once would patch and build the same tree under each other.
exec 9> "$A/lock"
flock -n 9 || die "another arm64-run.sh is using $A; wait for it to finish"

"$KP_DIR/scripts/fetch-base.sh" > /dev/null

# The tree: a private copy of the base, so that patching it never disturbs
# the x86 rig's tree or the pristine source.
if [ ! -f "$tree/.kvmstall-arm64-tree" ]; then
	log "making the working tree $tree"
	rm -rf "$tree" "$out"
	cp -a "$SRC" "$tree"
	mkdir "$tree/.kvmstall-applied"
	touch "$tree/.kvmstall-arm64-tree"
fi

# The series.  Copies of what is applied are kept next to it, so that a
# patch edited since the last run is reverted with the content it was
# applied with, and the patches that did not change stay applied (their
# files keep their timestamps, so make does not rebuild for them).
applied="$tree/.kvmstall-applied"
wanted=""
if [ "$mode" != stock ]; then
	[ -f "$KP_DIR/series" ] || die "no series file at $KP_DIR/series"
	wanted=$(grep -v '^[[:space:]]*\(#\|$\)' "$KP_DIR/series" || true)
	[ -n "$wanted" ] || log "the series lists no patches: building the base"
	# Negative controls apply to the series alone, before the instrumentation.
	[ "$mode" != negative ] || wanted="$wanted negative/mn-cpte-invalid.patch"
	# The counters the test reads come from the instrumentation, which is
	# not part of the series (see instrument/).
	wanted="$wanted instrument/0001-instrument-common.patch instrument/0002-instrument-patched-hooks.patch"
fi
keep=0
n=0
for p in $wanted; do
	n=$((n + 1))
	[ -f "$KP_DIR/$p" ] || die "series lists $p, which does not exist in $KP_DIR"
	if [ "$keep" = $((n - 1)) ] && cmp -s "$KP_DIR/$p" "$applied/$n.patch" 2> /dev/null; then
		keep=$n
	fi
done
# Revert, newest first, everything after the unchanged prefix (applied
# patches are numbered 1..m without gaps).
m=0
for f in "$applied"/*.patch; do
	if [ -e "$f" ]; then m=$((m + 1)); fi
done
while [ "$m" -gt "$keep" ]; do
	patch -d "$tree" -p1 -R -s -f --no-backup-if-mismatch < "$applied/$m.patch" > "$A/patch.log" 2>&1 ||
		die "cannot revert $(cat "$applied/$m.name") from $tree: remove $tree and rerun (see $A/patch.log)"
	log "reverted $(cat "$applied/$m.name")"
	rm -f "$applied/$m.patch" "$applied/$m.name"
	m=$((m - 1))
done
n=0
for p in $wanted; do
	n=$((n + 1))
	[ "$n" -gt "$keep" ] || continue
	patch -d "$tree" -p1 -s -f --dry-run < "$KP_DIR/$p" > "$A/patch.log" 2>&1 ||
		die "patch $p does not apply to $BASE_DEB_VERSION after the ones before it: $(head -n3 "$A/patch.log" | tr '\n' ' ')"
	patch -d "$tree" -p1 -s -f --no-backup-if-mismatch < "$KP_DIR/$p" > /dev/null
	cp "$KP_DIR/$p" "$applied/$n.patch"
	echo "$p" > "$applied/$n.name"
	log "applied $p"
done
log "$mode kernel: $n patch(es) applied, $keep of them unchanged since the last build"

# Configuration: arm64 defconfig plus configs/arm64.config, redone only when
# either changes; every fragment line must survive olddefconfig.
kmake() {
	nice -n 10 make -C "$tree" O="$out" ARCH=arm64 CROSS_COMPILE="$cross" "$@"
}
frag="$KP_DIR/configs/arm64.config"
config_key=$(cat "$KP_DIR/base.conf" "$frag" "$tree/arch/arm64/configs/defconfig" | sha256sum | cut -c1-16)
mkdir -p "$out"
if [ "$(cat "$out/.kvmstall-config-key" 2> /dev/null)" != "$config_key" ] || [ ! -f "$out/.config" ]; then
	log "configuring $out"
	kmake defconfig > "$out/config.log" 2>&1 || die "make defconfig failed; see $out/config.log"
	"$tree/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "$frag" >> "$out/config.log" 2>&1 ||
		die "merging $frag failed; see $out/config.log"
	kmake olddefconfig >> "$out/config.log" 2>&1 || die "make olddefconfig failed; see $out/config.log"
	grep -E '^(CONFIG_|# CONFIG_.* is not set)' "$frag" | while read -r line; do
		case $line in
		"# CONFIG_"*)
			opt=${line#\# }
			opt=${opt%% *}
			! grep -q "^$opt=" "$out/.config" ||
				die "arm64.config: '$line' did not hold: $(grep "^$opt=" "$out/.config")"
			;;
		*)
			grep -qx "$line" "$out/.config" ||
				die "arm64.config: '$line' was dropped by olddefconfig (now: $(grep "${line%%=*}[= ]" "$out/.config" || echo unset))"
			;;
		esac
	done
	echo "$config_key" > "$out/.kvmstall-config-key"
fi

# The kernel, with a progress line a minute so that a long cold build is
# visibly alive.
log "building the arm64 Image ($(nproc) jobs, nice 10; cold, this takes 10-20 min)"
t0=$(date +%s)
kmake -j"$(nproc)" Image > "$out/build.log" 2>&1 &
pid=$!
said=$t0
while kill -0 $pid 2> /dev/null; do
	sleep 2
	if [ $(($(date +%s) - said)) -ge 60 ] && kill -0 $pid 2> /dev/null; then
		said=$(date +%s)
		log "build: $((said - t0)) s, $(grep -c '^  \(CC\|AS\|LD\|AR\)' "$out/build.log") steps, last: $(tail -n1 "$out/build.log" | cut -c1-60)"
	fi
done
wait $pid || { tail -n 30 "$out/build.log" >&2; die "the arm64 kernel build failed; full log: $out/build.log"; }
build_s=$(($(date +%s) - t0))
steps=$(grep -c '^  \(CC\|AS\|LD\|AR\)' "$out/build.log" || true)
log "kernel: built in $build_s s ($steps compile/link steps)"
image="$out/arch/arm64/boot/Image"
[ -f "$image" ] || die "the build wrote no $image; see $out/build.log"

# The test program: static, so the initramfs needs no C library.
test_bin="$A/arm64-kvm-test"
"${cross}gcc" -static -O2 -Wall -Wextra -pthread -o "$test_bin" "$KP_DIR/rig/arm64-kvm-test.c" ||
	die "cannot build rig/arm64-kvm-test.c for arm64"

# busybox for arm64, from Debian bookworm through a private apt setup: the
# system's apt configuration and dpkg's architectures stay as they are.
bbroot="$A/busybox"
if [ ! -x "$bbroot/bin/busybox" ]; then
	apt="$A/apt"
	mkdir -p "$A/debs"
	private_apt "$apt" bookworm arm64
	o=$apt_opts
	log "downloading busybox-static:arm64 from bookworm"
	# shellcheck disable=SC2086 # $o is a list of options
	apt-get $o -q update > "$A/apt-update.log" 2>&1 ||
		die "apt-get update for bookworm/arm64 failed; see $A/apt-update.log"
	rm -f "$A"/debs/busybox-static_*.deb
	# shellcheck disable=SC2086
	(cd "$A/debs" && apt-get $o -q download busybox-static:arm64 > "$A/apt-download.log" 2>&1) ||
		die "cannot download busybox-static:arm64 from bookworm; see $A/apt-download.log"
	rm -rf "$bbroot.tmp"
	dpkg-deb -x "$A"/debs/busybox-static_*_arm64.deb "$bbroot.tmp"
	file -L "$bbroot.tmp/bin/busybox" | grep -q 'ARM aarch64.*statically linked' ||
		die "the downloaded busybox is not a static arm64 binary: $(file -L "$bbroot.tmp/bin/busybox")"
	rm -rf "$bbroot"
	mv "$bbroot.tmp" "$bbroot"
fi

# The initramfs.  busybox cannot run here to list its applets, so init
# installs its own links first; /bin/sh must exist before that.
root="$A/initramfs"
rm -rf "$root"
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp"
cp "$bbroot/bin/busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$test_bin" "$root/bin/arm64-kvm-test"
cat > "$root/init" << 'INIT'
#!/bin/sh
# init of the arm64 run test: mount what the test reads, show how KVM came
# up, run the test, report between "@@arm64" markers, power off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t debugfs debugfs /sys/kernel/debug
echo "@@arm64 BOOTED $(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)"
dmesg | grep -i -e 'kvm' -e 'hyp' -e 'started at EL' | sed 's/^/@@arm64 DMESG /'
if [ -e /dev/kvm ]; then
	t0=$(cut -d' ' -f1 /proc/uptime)
	timeout 600 /bin/arm64-kvm-test
	rc=$?
	t1=$(cut -d' ' -f1 /proc/uptime)
	[ $rc = 0 ] && verdict=PASS || verdict=FAIL
	echo "@@arm64 RESULT $verdict rc=$rc seconds=$(echo "$t1 $t0" | awk '{ printf "%.1f", $1 - $2 }')"
else
	echo "@@arm64 RESULT FAIL rc=none seconds=0 (no /dev/kvm: KVM did not initialise)"
fi
sync
poweroff -f
INIT
chmod +x "$root/init"
initrd="$A/initramfs.cpio.gz"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd"

# Boot.  virtualization=on starts the CPUs at EL2, which KVM needs; GICv3
# gives KVM a virtual CPU interface it can use; pauth-impdef=on because
# QEMU's architected pointer-authentication algorithm is very slow under
# TCG and the kernel signs every return address.
res="$CACHE/results/arm64-$mode-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$res"
console="$res/console.log"
log "booting; console: $console (limit $limit s)"
t0=$(date +%s)
timeout -k 10 "$limit" qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 \
	-cpu max,pauth-impdef=on -smp 2 -m 1G -nographic -no-reboot \
	-kernel "$image" -initrd "$initrd" \
	-append "console=ttyAMA0 panic=-1 oops=panic" \
	> "$console" 2>&1 < /dev/null &
qpid=$!
booted_s=""
while kill -0 $qpid 2> /dev/null; do
	sleep 1
	[ -n "$booted_s" ] || ! grep -q '^@@arm64 BOOTED' "$console" || booted_s=$(($(date +%s) - t0))
done
qrc=0
wait $qpid || qrc=$?
run_s=$(($(date +%s) - t0))
tr -d '\r' < "$console" > "$res/console.txt"
c="$res/console.txt"

# Report.
echo "arm64-run: $mode kernel ($n patch(es)), console in $c"
echo "kernel build: $build_s s${steps:+ ($steps steps)}"
if [ -n "$booted_s" ]; then
	echo "boot to init: $booted_s s on the host, $(sed -n 's/^@@arm64 BOOTED .* uptime=//p' "$c" | head -n1) s of guest uptime"
fi
status=0
if grep -q 'kvm \[[0-9]*\]: \(Hyp\|VHE\) mode initialized successfully' "$c"; then
	echo "KVM: $(grep -o '\(Hyp\|VHE\) mode initialized successfully' "$c" | head -n1)"
else
	echo "KVM did not initialise; the kernel said:"
	grep -i -e 'kvm' -e 'hyp' -e 'started at EL' "$c" | grep -v '^@@arm64 DMESG' | sed 's/^/    /' | head -n 20
	status=1
fi
grep '^arm64-kvm-test: ' "$c" | sed 's/^arm64-kvm-test: /    /' || true
result=$(grep '^@@arm64 RESULT ' "$c" | head -n1)
if [ -n "$result" ]; then
	echo "test: ${result#@@arm64 RESULT }"
	case $result in *" PASS "*) ;; *) status=1 ;; esac
else
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		echo "no result: the guest ran past the $limit s limit; last output:"
	else
		echo "no result: QEMU exited with $qrc before the test finished; last output:"
	fi
	tail -n 25 "$c" | sed 's/^/    /'
	status=1
fi
# A kernel report during the run fails it even when the test passed.
splat='cut here \]|WARNING: CPU: |BUG: |Oops: |Call Trace:|Internal error|Unable to handle|soft lockup|blocked for more than|Kernel panic'
if grep -qE "$splat" "$c"; then
	echo "the guest kernel printed a splat:"
	grep -E "$splat" "$c" | head -n 10 | sed 's/^/    /'
	status=1
fi
if [ "$mode" = negative ]; then
	# The control passes when checks (e) and (f), and only test failures, say so.
	if grep -q '^arm64-kvm-test: (e) FAIL' "$c" && grep -q '^arm64-kvm-test: (f) FAIL' "$c" &&
		! grep -qE "$splat" "$c"; then
		echo "negative control: checks (e) and (f) failed without patch 20's check, as they must"
		status=0
	else
		echo "negative control: checks (e) and (f) did NOT both fail without patch 20's check"
		status=1
	fi
fi
[ $status = 0 ] && verdict=PASS || verdict=FAIL
echo "arm64-run: $verdict (guest ran $run_s s)"
echo "$verdict build=${build_s}s boot_to_init=${booted_s:-?}s run=${run_s}s $result" > "$res/summary.txt"
exit $status
