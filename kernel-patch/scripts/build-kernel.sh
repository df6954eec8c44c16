#!/bin/sh
# SPDX-License-Identifier: MIT
# Build the stock kernel for CONFIG (release or debug) out of tree, in the
# cache, and install its bzImage and modules under
# $KVMSTALL_CACHE/kernels/CONFIG/stock.  Then, with the series applied to
# the same tree, rebuild only what it touches: with KVM built as modules a
# series that stays inside KVM needs just the modules, which land in
# .../patched-SERIESHASH (sharing stock's bzImage).  A build whose inputs
# (base, config fragments, series) have not changed is not repeated.
# Prints the directory of the patched kernel.
#
# KVMSTALL_CCACHE=1 compiles through ccache: DESIGN.md measured cold builds
# 38 % slower with it, so it only pays when build directories are thrown
# away; these are kept, so it is off by default.
set -eu
. "$(dirname "$0")/common.sh"

config=${1:-}
case $config in
release | debug) ;;
*) die "usage: build-kernel.sh release|debug (got '$config')" ;;
esac
for tool in make gcc flex bison bc perl depmod rsync xz dpkg-deb patch; do
	command -v $tool > /dev/null ||
		die "building the kernel needs $tool: apt-get install flex bison bc kmod rsync xz-utils libelf-dev libssl-dev"
done
"$KP_DIR/scripts/fetch-base.sh" > /dev/null

tree="$CACHE/tree"
out="$CACHE/build/$config"
dest="$CACHE/kernels/$config"
jobs=$(nproc)
cc=gcc
if [ "${KVMSTALL_CCACHE:-0}" = 1 ]; then
	command -v ccache > /dev/null || die "KVMSTALL_CCACHE=1 needs ccache: apt-get install ccache"
	cc="ccache gcc"
	export CCACHE_DIR="$CACHE/ccache"
fi
mkdir -p "$out" "$dest"

hash_of() { cat "$@" | sha256sum | cut -c1-16; }
config_key=$(hash_of "$KP_DIR/base.conf" "$KP_DIR/configs/common.config" \
	"$KP_DIR/configs/$config.config")
series_files() {
	grep -v '^[[:space:]]*\(#\|$\)' "$KP_DIR/series" | while read -r p; do
		echo "$KP_DIR/$p"
	done
}
series_key=$(hash_of "$KP_DIR/series" $(series_files))

kmake() { # kmake LOGNAME TARGETS...: build with a progress line every minute
	name=$1
	shift
	logf="$out/$name.log"
	t0=$(date +%s)
	make -C "$tree" O="$out" CC="$cc" -j"$jobs" "$@" > "$logf" 2>&1 &
	pid=$!
	while kill -0 $pid 2> /dev/null; do
		sleep 60 &
		wait $! || true
		kill -0 $pid 2> /dev/null &&
			log "$config $name: $(($(date +%s) - t0)) s, $(grep -c '^  \(CC\|LD\|AR\)' "$logf") steps, last: $(tail -n1 "$logf" | cut -c1-60)"
	done
	wait $pid || { tail -n 30 "$logf" >&2; die "$config $name failed; full log: $logf"; }
	log "$config $name: done in $(($(date +%s) - t0)) s"
}

# The working tree carries the series only while the patched kernel builds.
revert_series() {
	[ -f "$tree/.kvmstall-applied" ] || return 0
	tac "$tree/.kvmstall-applied" | while read -r p; do
		patch -d "$tree" -p1 -R -s -f < "$p" > /dev/null ||
			die "cannot revert $p from $tree: remove $tree and rerun"
	done
	rm -f "$tree/.kvmstall-applied"
}

if [ ! -f "$tree/.kvmstall-tree" ]; then
	log "making the working tree $tree"
	rm -rf "$tree"
	cp -a "$SRC" "$tree"
	touch "$tree/.kvmstall-tree"
fi
revert_series

# Stock
if [ "$(cat "$dest/stock/.key" 2> /dev/null)" != "$config_key" ]; then
	make -C "$tree" O="$out" CC="$cc" x86_64_defconfig > "$out/config.log" 2>&1
	"$tree/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" \
		"$KP_DIR/configs/common.config" "$KP_DIR/configs/$config.config" >> "$out/config.log" 2>&1
	make -C "$tree" O="$out" CC="$cc" olddefconfig >> "$out/config.log" 2>&1
	# Every fragment line must survive olddefconfig: a dropped option is an error.
	for f in "$KP_DIR/configs/common.config" "$KP_DIR/configs/$config.config"; do
		grep -E '^(CONFIG_|# CONFIG_.* is not set)' "$f" | while read -r line; do
			case $line in
			"# CONFIG_"*)
				opt=${line#\# }
				opt=${opt%% *}
				! grep -q "^$opt=" "$out/.config" ||
					die "$(basename "$f"): '$line' did not hold: $(grep "^$opt=" "$out/.config")"
				;;
			*)
				grep -qx "$line" "$out/.config" ||
					die "$(basename "$f"): '$line' was dropped by olddefconfig (now: $(grep "${line%%=*}[= ]" "$out/.config" || echo unset))"
				;;
			esac
		done
	done
	kmake build bzImage modules
	rm -rf "$dest/stock"
	mkdir -p "$dest/stock"
	cp "$out/arch/x86/boot/bzImage" "$dest/stock/bzImage"
	make -C "$tree" O="$out" INSTALL_MOD_PATH="$dest/stock" INSTALL_MOD_STRIP=1 \
		modules_install > "$out/modules_install.log" 2>&1
	ls "$dest"/stock/lib/modules/*/modules.dep > /dev/null 2>&1 ||
		die "modules_install wrote no modules.dep; see $out/modules_install.log"
	echo "$config_key" > "$dest/stock/.key"
fi

# Patched
pdest="$dest/patched-$series_key"
if [ "$(cat "$pdest/.key" 2> /dev/null)" != "$config_key" ]; then
	: > "$tree/.kvmstall-applied"
	outside=""
	for p in $(series_files); do
		[ -f "$p" ] || die "series lists $(basename "$p"), which does not exist"
		if ! patch -d "$tree" -p1 -s -f --dry-run < "$p" > "$out/patch.log" 2>&1; then
			revert_series
			die "patch $(basename "$p") does not apply cleanly to $BASE_DEB_VERSION: $(head -n3 "$out/patch.log" | tr '\n' ' ')"
		fi
		patch -d "$tree" -p1 -s -f < "$p" > /dev/null
		echo "$p" >> "$tree/.kvmstall-applied"
		for f in $(lsdiff --strip=1 "$p" 2> /dev/null || sed -n 's#^+++ b/##p' "$p"); do
			case $f in
			virt/kvm/* | arch/*/kvm/* | include/linux/kvm* | include/trace/events/kvm.h | \
				arch/*/include/asm/kvm* | tools/testing/selftests/kvm/* | Documentation/*) ;;
			*) outside="$outside $f" ;;
			esac
		done
	done
	rm -rf "$pdest"
	mkdir -p "$pdest"
	if [ -n "$outside" ]; then
		log "the series touches files outside KVM ($outside): rebuilding the image too"
		kmake patched bzImage modules
		cp "$out/arch/x86/boot/bzImage" "$pdest/bzImage"
	else
		kmake patched modules
		ln -sf ../stock/bzImage "$pdest/bzImage"
	fi
	make -C "$tree" O="$out" INSTALL_MOD_PATH="$pdest" INSTALL_MOD_STRIP=1 \
		modules_install > "$out/modules_install.log" 2>&1
	ls "$pdest"/lib/modules/*/modules.dep > /dev/null 2>&1 ||
		die "modules_install wrote no modules.dep; see $out/modules_install.log"
	revert_series
	# Back to stock objects, so that the next stock build is a no-op.
	[ -z "$(cat "$KP_DIR/series" | grep -v '^[[:space:]]*\(#\|$\)')" ] || kmake restore modules
	echo "$config_key" > "$pdest/.key"
fi
echo "$pdest"
