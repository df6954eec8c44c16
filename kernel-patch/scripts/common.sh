# SPDX-License-Identifier: MIT
# Shared by the kernel-rig scripts: where things live and how to say so.
KP_DIR=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${KVMSTALL_CACHE:-/var/cache/kvmstall}
. "$KP_DIR/base.conf"
SRC="$CACHE/src/$BASE_TREE-$BASE_DEB_VERSION"

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "$*"; exit 1; }
