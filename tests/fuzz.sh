#!/bin/sh
# SPDX-License-Identifier: MIT
# The libFuzzer harnesses, each for FUZZ_SECONDS (default 5) on its seed
# corpus; in TESTS only when configured with --enable-fuzzing.  Inputs that
# fail are kept in fuzz-out/ of the build directory.
set -u
if [ -z "${KVMSTALL_FUZZERS:-}" ]; then
	echo "SKIP: no fuzz harnesses (configure with --enable-fuzzing CC=clang)"
	exit 77
fi
exec sh "${top_srcdir:-.}/scripts/fuzz" "${FUZZ_SECONDS:-5}" fuzz-out $KVMSTALL_FUZZERS
