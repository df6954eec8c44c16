#!/bin/sh
# SPDX-License-Identifier: MIT
# Fetch Debian trixie's QEMU (10.x) for the parallel rig (multi-threaded
# TCG): bookworm's QEMU 7.2 hangs there on the guest kernel's static-key
# patching, trixie's does not (DESIGN.md).  Through a private apt
# configuration with an empty package status, so the whole dependency
# closure is downloaded; the packages are unpacked into the cache, nothing
# is installed system-wide.  Prints the path of a wrapper that runs that
# QEMU with trixie's own loader and libraries.  Idempotent.
set -eu
. "$(dirname "$0")/common.sh"

root="$CACHE/trixie-qemu"
wrapper="$root/qemu-system-x86_64"
if [ -x "$wrapper" ] && "$wrapper" --version > /dev/null 2>&1; then
	echo "$wrapper"
	exit 0
fi
apt="$CACHE/apt-trixie"
private_apt "$apt" trixie amd64
# An empty package status: apt then downloads the whole dependency closure.
: > "$apt/status"
o="$apt_opts -o Dir::State::status=$apt/status -o Debug::NoLocking=1"
log "downloading trixie's qemu-system-x86 and what it needs"
t0=$(date +%s)
# shellcheck disable=SC2086 # $o is a list of options
apt-get $o -q update > "$apt/update.log" 2>&1 ||
	die "apt-get update for trixie failed; see $apt/update.log"
# shellcheck disable=SC2086
apt-get $o -q -y --download-only --no-install-recommends install \
	qemu-system-x86 seabios ipxe-qemu > "$apt/download.log" 2>&1 ||
	die "cannot download trixie's qemu-system-x86; see $apt/download.log"
tmp="$root.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
for deb in "$apt"/cache/archives/*.deb; do
	dpkg-deb -x "$deb" "$tmp"
done
cat > "$tmp/qemu-system-x86_64" <<WRAPPER
#!/bin/sh
# trixie's QEMU with trixie's loader and libraries (fetch-qemu.sh).
r=$root
exec "\$r/usr/lib64/ld-linux-x86-64.so.2" --library-path "\$r/usr/lib/x86_64-linux-gnu" \\
	"\$r/usr/bin/qemu-system-x86_64" -L "\$r/usr/share/qemu" -L "\$r/usr/share/seabios" \\
	-L "\$r/usr/lib/ipxe/qemu" "\$@"
WRAPPER
chmod +x "$tmp/qemu-system-x86_64"
rm -rf "$root"
mv "$tmp" "$root"
"$wrapper" --version > /dev/null 2>&1 || die "trixie's QEMU does not run here: $("$wrapper" --version 2>&1 | head -n1)"
log "$("$wrapper" --version | head -n1), in $(($(date +%s) - t0)) s"
echo "$wrapper"
