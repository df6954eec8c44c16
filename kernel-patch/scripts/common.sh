# SPDX-License-Identifier: MIT
# Shared by the kernel-rig scripts: where things live and how to say so.
KP_DIR=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${KVMSTALL_CACHE:-/var/cache/kvmstall}
. "$KP_DIR/base.conf"
SRC="$CACHE/src/$BASE_TREE-$BASE_DEB_VERSION"

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "$*"; exit 1; }

# private_apt DIR SUITE ARCH: an apt setup of its own in DIR for SUITE of
# Debian's archive and architecture ARCH; the system's apt configuration
# and dpkg's architectures stay as they are.  Sets apt_opts, the options
# that make apt-get use it (the .debs go to DIR/cache/archives).
private_apt() {
	mkdir -p "$1/sources" "$1/lists/partial" "$1/cache/archives/partial"
	cat > "$1/sources/$2.sources" <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: $2
Components: main
Architectures: $3
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
	apt_opts="-o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts=$1/sources"
	apt_opts="$apt_opts -o Dir::State::Lists=$1/lists -o Dir::Cache=$1/cache"
	apt_opts="$apt_opts -o APT::Sandbox::User=root -o APT::Architecture=$3 -o APT::Architectures=$3"
}

# copy_libs ROOT FILE...: the shared libraries FILE needs, the dynamic
# loader included, copied to the same paths under ROOT (for binaries that
# the rig borrows from the host).
copy_libs() {
	_root=$1
	shift
	for _f; do
		ldd "$_f" 2> /dev/null | grep -o '/[^ ]*' | while read -r _lib; do
			[ -e "$_root$_lib" ] && continue
			mkdir -p "$_root$(dirname "$_lib")"
			cp -L "$_lib" "$_root$_lib"
		done
	done
}
