#!/bin/sh
# SPDX-License-Identifier: MIT
# Fetch Debian bullseye's linux-source-5.10 through a private apt
# configuration (nothing is installed or configured system-wide), check its
# sha256 against base.conf and unpack it into the cache.  Idempotent.
set -eu
. "$(dirname "$0")/common.sh"

if [ -f "$SRC/.kvmstall-unpacked" ]; then
	echo "$SRC"
	exit 0
fi
apt="$CACHE/apt"
mkdir -p "$CACHE/src"
private_apt "$apt" bullseye amd64
o=$apt_opts
deb="$CACHE/${BASE_PACKAGE}_${BASE_DEB_VERSION}_all.deb"
if [ ! -f "$deb" ] || ! echo "$BASE_DEB_SHA256  $deb" | sha256sum -c --status; then
	log "downloading $BASE_PACKAGE=$BASE_DEB_VERSION"
	t0=$(date +%s)
	# shellcheck disable=SC2086 # $o is a list of options
	apt-get $o -q update > "$CACHE/apt-update.log" 2>&1 ||
		die "apt-get update for bullseye failed; see $CACHE/apt-update.log"
	# shellcheck disable=SC2086
	(cd "$CACHE" && apt-get $o -q download "$BASE_PACKAGE=$BASE_DEB_VERSION") ||
		die "cannot download $BASE_PACKAGE=$BASE_DEB_VERSION from bullseye"
	log "downloaded in $(($(date +%s) - t0)) s"
fi
echo "$BASE_DEB_SHA256  $deb" | sha256sum -c --status ||
	die "$deb has sha256 $(sha256sum "$deb" | cut -d' ' -f1), base.conf says $BASE_DEB_SHA256: refusing it"

log "unpacking into $SRC"
t0=$(date +%s)
tmp="$CACHE/src/.unpack.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
dpkg-deb -x "$deb" "$tmp/deb"
tar -C "$tmp" -xJf "$tmp/deb/$BASE_TARBALL"
rm -rf "$SRC"
mv "$tmp/$BASE_TREE" "$SRC"
rm -rf "$tmp"
touch "$SRC/.kvmstall-unpacked"
log "unpacked in $(($(date +%s) - t0)) s"
echo "$SRC"
