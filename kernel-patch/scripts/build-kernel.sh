#!/bin/sh
# SPDX-License-Identifier: MIT
# Build the stock kernel for CONFIG (release or debug) out of tree, in the
# cache, and install its bzImage and modules under
# $KVMSTALL_CACHE/kernels/CONFIG/stock.  Then, with the series applied to
# the same tree, rebuild only what it touches: with KVM built as modules a
# series that stays inside KVM needs just the modules, which land in
# .../patched-SERIESHASH (sharing stock's bzImage).  A build whose inputs
# (base, config fragments, patches) have not changed is not repeated.
# Prints the directory of the patched kernel.
#
# Both kernels carry the instrumentation of kernel-patch/instrument/ (the
# common patch, then the hooks for stock or for the series), so that they
# count MMU notifications, mmu_lock and fault retries under the same
# names.  KVMSTALL_INSTRUMENT=0 builds them without it, into stock-bare
# and patched-bare-SERIESHASH, to measure what it costs.  Between builds
# the working tree holds the stock set of patches.
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
instrument=${KVMSTALL_INSTRUMENT:-1}
case $instrument in
0) bare=-bare ;;
1) bare="" ;;
*) die "KVMSTALL_INSTRUMENT must be 0 or 1 (got '$instrument')" ;;
esac
stock_files() {
	[ "$instrument" = 0 ] && return 0
	echo "$KP_DIR/instrument/0001-instrument-common.patch"
	echo "$KP_DIR/instrument/0002-instrument-stock-hooks.patch"
}
patched_files() {
	series_files
	[ "$instrument" = 0 ] && return 0
	echo "$KP_DIR/instrument/0001-instrument-common.patch"
	echo "$KP_DIR/instrument/0002-instrument-patched-hooks.patch"
}
series_key=$(hash_of "$KP_DIR/series" $(series_files))
stock_key=$config_key-$(stock_files | xargs -r cat | sha256sum | cut -c1-16)
patched_key=$config_key-$(patched_files | xargs -r cat | sha256sum | cut -c1-16)

kmake() { # kmake LOGNAME TARGETS...: build with a progress line every minute
	name=$1
	shift
	logf="$out/$name.log"
	t0=$(date +%s)
	make -C "$tree" O="$out" CC="$cc" -j"$jobs" "$@" > "$logf" 2>&1 &
	pid=$!
	said=$t0
	# A check every 2 s, so that a short incremental build is not padded to
	# a minute; a progress line every minute.
	while kill -0 $pid 2> /dev/null; do
		sleep 2
		if [ $(($(date +%s) - said)) -ge 60 ] && kill -0 $pid 2> /dev/null; then
			said=$(date +%s)
			log "$config $name: $((said - t0)) s, $(grep -c '^  \(CC\|LD\|AR\)' "$logf") steps, last: $(tail -n1 "$logf" | cut -c1-60)"
		fi
	done
	wait $pid || { tail -n 30 "$logf" >&2; die "$config $name failed; full log: $logf"; }
	log "$config $name: done in $(($(date +%s) - t0)) s"
}

# What the working tree carries is listed in .kvmstall-applied, with a
# copy of each patch as it was applied (.kvmstall-applied.d/N), so that a
# patch edited since is reverted with the text it was applied with.
revert_series() {
	[ -f "$tree/.kvmstall-applied" ] || return 0
	rn=$(wc -l < "$tree/.kvmstall-applied")
	while [ "$rn" -gt 0 ]; do
		rp=$(sed -n "${rn}p" "$tree/.kvmstall-applied")
		patch -d "$tree" -p1 -R -s -f --no-backup-if-mismatch < "$tree/.kvmstall-applied.d/$rn" > /dev/null ||
			die "cannot revert $rp from $tree: remove $tree and rerun"
		rn=$((rn - 1))
	done
	rm -rf "$tree/.kvmstall-applied" "$tree/.kvmstall-applied.d"
}
applied_now() { # the applied patches' names and contents, as one hash
	[ -f "$tree/.kvmstall-applied" ] || { echo none; return 0; }
	cat "$tree/.kvmstall-applied" "$tree"/.kvmstall-applied.d/* 2> /dev/null | sha256sum | cut -c1-16
}
wanted_hash() { # the same hash for the patch files given
	[ $# -gt 0 ] || { echo none; return 0; }
	{ printf '%s\n' "$@"; cat "$@"; } | sha256sum | cut -c1-16
}
apply_set() { # apply_set PATCH...: make the tree carry exactly these
	[ "$(applied_now)" = "$(wanted_hash "$@")" ] && return 0
	revert_series
	[ $# -gt 0 ] || return 0
	: > "$tree/.kvmstall-applied"
	mkdir -p "$tree/.kvmstall-applied.d"
	for p; do
		[ -f "$p" ] || { revert_series; die "$(basename "$p") does not exist"; }
		if ! patch -d "$tree" -p1 -s -f --dry-run < "$p" > "$out/patch.log" 2>&1; then
			bad=$(basename "$p")
			revert_series
			die "patch $bad does not apply cleanly to $BASE_DEB_VERSION: $(head -n3 "$out/patch.log" | tr '\n' ' ')"
		fi
		patch -d "$tree" -p1 -s -f --no-backup-if-mismatch < "$p" > /dev/null
		echo "$p" >> "$tree/.kvmstall-applied"
		cp "$p" "$tree/.kvmstall-applied.d/$(wc -l < "$tree/.kvmstall-applied")"
	done
}

if [ ! -f "$tree/.kvmstall-tree" ]; then
	log "making the working tree $tree"
	rm -rf "$tree"
	cp -a "$SRC" "$tree"
	touch "$tree/.kvmstall-tree"
fi
# An older build-kernel.sh left only series patches applied, by path.
[ ! -f "$tree/.kvmstall-applied" ] || [ -d "$tree/.kvmstall-applied.d" ] || {
	mkdir -p "$tree/.kvmstall-applied.d"
	n=0
	while read -r p; do
		n=$((n + 1))
		cp "$p" "$tree/.kvmstall-applied.d/$n" || die "cannot read $p, once applied to $tree: remove $tree and rerun"
	done < "$tree/.kvmstall-applied"
}
apply_set $(stock_files)

# Stock
sdest="$dest/stock$bare"
if [ "$(cat "$sdest/.key" 2> /dev/null)" != "$stock_key" ]; then
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
	# kvmstall's stall anatomy needs perf events and the KVM tracepoints;
	# x86_64_defconfig with CONFIG_FTRACE has them, this says so if it stops.
	for opt in CONFIG_PERF_EVENTS CONFIG_TRACEPOINTS CONFIG_EVENT_TRACING; do
		grep -qx "$opt=y" "$out/.config" ||
			die "$opt is not set: kvmstall --anatomy needs it in the rig"
	done
	kmake build bzImage modules
	rm -rf "$sdest"
	mkdir -p "$sdest"
	cp "$out/arch/x86/boot/bzImage" "$sdest/bzImage"
	make -C "$tree" O="$out" INSTALL_MOD_PATH="$sdest" INSTALL_MOD_STRIP=1 \
		modules_install > "$out/modules_install.log" 2>&1
	ls "$sdest"/lib/modules/*/modules.dep > /dev/null 2>&1 ||
		die "modules_install wrote no modules.dep; see $out/modules_install.log"
	echo "$stock_key" > "$sdest/.key"
fi

# Patched
pdest="$dest/patched$bare-$series_key"
if [ "$(cat "$pdest/.key" 2> /dev/null)" != "$patched_key" ]; then
	outside=""
	for p in $(patched_files); do
		[ -f "$p" ] || die "$(basename "$p") is listed but does not exist"
		for f in $(lsdiff --strip=1 "$p" 2> /dev/null || sed -n 's#^+++ b/##p' "$p"); do
			case $f in
			virt/kvm/* | arch/*/kvm/* | include/linux/kvm* | include/trace/events/kvm.h | \
				arch/*/include/asm/kvm* | tools/testing/selftests/kvm/* | Documentation/*) ;;
			*) outside="$outside $f" ;;
			esac
		done
	done
	apply_set $(patched_files)
	rm -rf "$pdest"
	mkdir -p "$pdest"
	if [ -n "$outside" ]; then
		log "the series touches files outside KVM ($outside): rebuilding the image too"
		kmake patched bzImage modules
		cp "$out/arch/x86/boot/bzImage" "$pdest/bzImage"
	else
		kmake patched modules
		ln -sf "../stock$bare/bzImage" "$pdest/bzImage"
	fi
	make -C "$tree" O="$out" INSTALL_MOD_PATH="$pdest" INSTALL_MOD_STRIP=1 \
		modules_install > "$out/modules_install.log" 2>&1
	ls "$pdest"/lib/modules/*/modules.dep > /dev/null 2>&1 ||
		die "modules_install wrote no modules.dep; see $out/modules_install.log"
	# Back to stock objects, so that the next stock build is a no-op.
	apply_set $(stock_files)
	kmake restore modules
	echo "$patched_key" > "$pdest/.key"
fi
echo "$pdest"
