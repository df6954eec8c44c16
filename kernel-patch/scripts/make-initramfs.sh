#!/bin/sh
# SPDX-License-Identifier: MIT
# Pack the rig's initramfs: busybox-static, the kernel's modules, a static
# kvmstall, the KVM holder, the MMU-notifier tests, the KVM selftests (if
# built), the init script and a job list.
# Usage: make-initramfs.sh KERNEL_DIR KVMSTALL_STATIC SELFTESTS_DIR JOBS OUT.cpio.gz
set -eu
. "$(dirname "$0")/common.sh"
[ $# -eq 5 ] || die "usage: make-initramfs.sh KERNEL_DIR KVMSTALL_STATIC SELFTESTS_DIR JOBS OUT"
kdir=$1 vmm=$2 selftests=$3 jobs=$4 out=$5

bb=$(command -v busybox || true)
[ -n "$bb" ] && file -L "$bb" | grep -q 'statically linked' ||
	die "needs busybox-static (apt-get install busybox-static)"
[ -x "$vmm" ] || die "no static kvmstall at $vmm (make kvmstall.static)"
[ -d "$kdir/lib/modules" ] || die "no modules under $kdir/lib/modules"

root=$(mktemp -d "${TMPDIR:-/tmp}/kvmstall-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/proc" "$root/sys" \
	"$root/dev" "$root/tmp" "$root/lib" "$root/selftests"
cp "$bb" "$root/bin/busybox"
for a in $("$bb" --list); do
	[ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done
cp -a "$kdir/lib/modules" "$root/lib/"
cp "$vmm" "$root/bin/kvmstall"
gcc -O2 -static -o "$root/bin/kvm-holder" "$KP_DIR/rig/kvm-holder.c"
cp "$KP_DIR/rig/until-rises" "$root/bin/until-rises"
cp "$KP_DIR/rig/trace-formats" "$root/bin/trace-formats"
# The MMU-notifier tests of the patch (jobs-check.txt runs them).
gcc -O2 -Wall -static -o "$root/bin/mn-bounds" "$KP_DIR/rig/mn-bounds.c"
gcc -O2 -Wall -static -pthread -o "$root/bin/mn-race" "$KP_DIR/rig/mn-race.c"
gcc -O2 -Wall -static -pthread -o "$root/bin/mn-cpte-invalid" "$KP_DIR/rig/mn-cpte-invalid.c"
gcc -O2 -Wall -static -o "$root/bin/mn-tlbs-dirty" "$KP_DIR/rig/mn-tlbs-dirty.c"
gcc -O2 -Wall -static -o "$root/bin/mn-cost" "$KP_DIR/rig/mn-cost.c"
gcc -O2 -Wall -static -o "$root/bin/mn-two-vms" "$KP_DIR/rig/mn-two-vms.c"
gcc -O2 -Wall -static -o "$root/bin/mn-smm" "$KP_DIR/rig/mn-smm.c"
gcc -O2 -Wall -static -pthread -o "$root/bin/mn-test-young" "$KP_DIR/rig/mn-test-young.c"
gcc -O2 -Wall -static -pthread -o "$root/bin/mn-destroy" "$KP_DIR/rig/mn-destroy.c"
gcc -O2 -Wall -static -o "$root/bin/mn-hva" "$KP_DIR/rig/mn-hva.c"
gcc -O2 -Wall -static -pthread -o "$root/bin/mn-oom" "$KP_DIR/rig/mn-oom.c"
if [ -d "$selftests" ]; then
	find "$selftests" -maxdepth 2 -type f -perm -u+x -exec cp {} "$root/selftests/" \;
	# The selftests are dynamically linked: bring the C library along.
	copy_libs "$root" "$root"/selftests/*
fi
# Extra files for special runs (the rig's own tests), copied to the root.
for f in ${KVMSTALL_INITRAMFS_EXTRA:-}; do
	cp "$f" "$root/"
done
cp "$KP_DIR/rig/init" "$root/init"
chmod +x "$root/init"
cp "$jobs" "$root/jobs"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
log "$out: $(du -h "$out" | cut -f1)"
