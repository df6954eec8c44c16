#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Startup benchmark, run by `make bench` (which sets KVMSTALL).
#
# How long does kvmstall take to get 256 vCPUs on 4 GiB of 2 MiB HugeTLB
# memory running guest code, compared with what the same 4 GiB cost when a
# plain process memsets them on the same CPUs?  Also the prefault rate and
# the guest loop period, which is the resolution of a stall measurement.
# Every measurement is taken REPS times (default 3) and the median printed,
# since this machine is noisy, after one round that is not counted
# (WARMUP=0 skips it): the first touch of memory that the host has just
# handed out, the pages of a freshly grown HugeTLB pool for one, costs
# several times what later touches cost.  Lines that cannot be measured
# here are left out, the reason is printed, and the script still exits 0.

set -u

KVMSTALL=${KVMSTALL:-./kvmstall}
CC=${CC:-cc}
REPS=${REPS:-3}
WARMUP=${WARMUP:-1}
VCPUS=256
MEM_GIB=4
HP=/sys/kernel/mm/hugepages/hugepages-2048kB
# kvmstall needs the test memory plus one 2 MiB decoy before and after the slot.
HP_NEED=$((MEM_GIB * 512 + 2))

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmstall-bench.XXXXXX") || exit 1
hp_added=0

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	# Give back what this script added, not an old total (like kvmstall).
	if [ "$hp_added" -gt 0 ]; then
		nr=$(cat "$HP/nr_hugepages" 2>/dev/null || echo 0)
		if [ "$nr" -gt "$hp_added" ]; then
			echo $((nr - hp_added)) >"$HP/nr_hugepages" 2>/dev/null
		else
			echo 0 >"$HP/nr_hugepages" 2>/dev/null
		fi
		hp_added=0
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
skips=""

skip() {
	skips="$skips$1: $2
"
}

# The median of the numbers on standard input, one per line.
median() {
	sort -n | awk '{ v[NR] = $1 }
		END {
			if (NR == 0) exit 1
			if (NR % 2) print v[(NR + 1) / 2]
			else print (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}

# The last line of a file, for saying why something failed.
why() {
	tail -n 1 "$1" 2>/dev/null | sed 's/^kvmstall: //'
}

#####################################################################
# What can run here.

have_kvm=yes
if [ ! -x "$KVMSTALL" ]; then
	have_kvm=no
	skip "kvmstall" "no executable at $KVMSTALL (set KVMSTALL)"
elif ! command -v jq >/dev/null 2>&1; then
	have_kvm=no
	skip "kvmstall" "jq is not installed, so its JSON report cannot be read"
elif [ ! -c /dev/kvm ]; then
	have_kvm=no
	skip "kvmstall" "/dev/kvm does not exist"
fi

have_hp=yes
if [ ! -d "$HP" ]; then
	have_hp=no
	skip "hugetlb-2M" "$HP is missing: the kernel has no 2 MiB HugeTLB pages"
else
	free_p=$(cat "$HP/free_hugepages")
	resv_p=$(cat "$HP/resv_hugepages")
	nr=$(cat "$HP/nr_hugepages")
	avail=$((free_p - resv_p))
	if [ "$avail" -lt "$HP_NEED" ]; then
		want=$((nr + HP_NEED - avail))
		if echo "$want" >"$HP/nr_hugepages" 2>/dev/null; then
			now=$(cat "$HP/nr_hugepages")
			hp_added=$((now - nr))
			[ "$hp_added" -lt 0 ] && hp_added=0
			avail=$(($(cat "$HP/free_hugepages") - $(cat "$HP/resv_hugepages")))
			if [ "$avail" -lt "$HP_NEED" ]; then
				have_hp=no
				skip "hugetlb-2M" "asked for $HP_NEED free 2 MiB pages, the kernel found only $avail (memory too small or fragmented)"
			fi
		else
			have_hp=no
			skip "hugetlb-2M" "cannot write $HP/nr_hugepages (needs root); $avail of $HP_NEED pages free"
		fi
	fi
fi

#####################################################################
# The memset helper: map BYTES of anonymous memory (4 KiB pages, or 2 MiB
# HugeTLB pages) and memset it with one thread per online CPU; prints the
# nanoseconds from the first fault to the last byte written.

have_cc=yes
cat >"$tmp/memset.c" <<'EOF'
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << 26)
#endif
#define TWO_MIB (2UL << 20)

struct part {
	pthread_t th;
	char *p;
	size_t len;
};

static void *fill(void *arg)
{
	struct part *pt = arg;

	memset(pt->p, 0x5a, pt->len);
	return NULL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	size_t len, chunks, per, off = 0;
	struct part *parts;
	long n, i;
	uint64_t t0, t1;
	int huge, flags = MAP_PRIVATE | MAP_ANONYMOUS;
	char *p;

	if (argc != 3 || (strcmp(argv[1], "hugetlb") && strcmp(argv[1], "anon"))) {
		fprintf(stderr, "usage: %s hugetlb|anon BYTES\n", argv[0]);
		return 2;
	}
	huge = !strcmp(argv[1], "hugetlb");
	len = strtoull(argv[2], NULL, 10);
	if (huge)
		flags |= MAP_HUGETLB | MAP_HUGE_2MB;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	/* 4 KiB pages whatever the THP setting, like kvmstall's anon backing. */
	if (!huge && madvise(p, len, MADV_NOHUGEPAGE) < 0) {
		perror("madvise(MADV_NOHUGEPAGE)");
		return 1;
	}
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	parts = calloc((size_t)n, sizeof(*parts));
	if (!parts)
		return 1;
	/* Whole 2 MiB chunks per thread, the remainder spread over the first ones. */
	chunks = len / TWO_MIB;
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		per = (chunks / (size_t)n + ((size_t)i < chunks % (size_t)n)) * TWO_MIB;
		if (i == n - 1)
			per = len - off;
		parts[i].p = p + off;
		parts[i].len = per;
		off += per;
		if (pthread_create(&parts[i].th, NULL, fill, &parts[i])) {
			fprintf(stderr, "pthread_create failed\n");
			return 1;
		}
	}
	for (i = 0; i < n; i++)
		pthread_join(parts[i].th, NULL);
	t1 = now_ns();
	printf("%llu\n", (unsigned long long)(t1 - t0));
	munmap(p, len);
	return 0;
}
EOF
if ! command -v "$CC" >/dev/null 2>&1; then
	have_cc=no
	skip "memset" "no C compiler ($CC)"
elif ! "$CC" -O2 -pthread -o "$tmp/memset" "$tmp/memset.c" 2>"$tmp/cc.err"; then
	have_cc=no
	skip "memset" "the helper does not compile: $(why "$tmp/cc.err")"
fi

#####################################################################
# Measurements, interleaved so that a noisy moment does not hit one kind
# only; round 0 is the warm-up.

bytes=$((MEM_GIB * 1024 * 1024 * 1024))

run_big=$have_kvm
[ "$have_hp" = yes ] || run_big=no
run_loop=$have_kvm

results="start prefault ready rate ms_huge ms_anon period"
if [ "$WARMUP" = 0 ]; then rep=1; else rep=0; fi
while [ "$rep" -le "$REPS" ]; do
	if [ "$run_big" = yes ]; then
		j=$tmp/big.json
		rm -f "$j"
		if "$KVMSTALL" --vcpus "$VCPUS" --memory "${MEM_GIB}G" --backing hugetlb-2M \
			--reserve-hugepages --duration 1 --quiet --json "$j" \
			>"$tmp/big.out" 2>"$tmp/big.err" && [ -s "$j" ] &&
			jq -e '.timing.startup_ns != null' "$j" >/dev/null; then
			jq -r '.timing | "\(.startup_ns) \(.prefault_ns) \(.prefault_bytes)"' "$j" |
				while read -r su pf pb; do
					echo "$su" >>"$tmp/ready"
					echo "$pf" >>"$tmp/prefault"
					echo $((su + pf)) >>"$tmp/start"
					awk -v b="$pb" -v ns="$pf" \
						'BEGIN { if (ns > 0) printf "%.6f\n", b / 1073741824 / (ns / 1e9) }' \
						>>"$tmp/rate"
				done
		else
			run_big=no
			skip "kvmstall $VCPUS vCPUs" "the run failed: $(why "$tmp/big.err")"
		fi
	fi
	if [ "$have_cc" = yes ] && [ "$have_hp" = yes ]; then
		if ! "$tmp/memset" hugetlb "$bytes" >>"$tmp/ms_huge" 2>"$tmp/ms.err"; then
			have_hp=no
			skip "memset hugetlb-2M" "the helper failed: $(why "$tmp/ms.err")"
		fi
	fi
	if [ "$have_cc" = yes ]; then
		if ! "$tmp/memset" anon "$bytes" >>"$tmp/ms_anon" 2>"$tmp/ms.err"; then
			have_cc=no
			skip "memset anon" "the helper failed: $(why "$tmp/ms.err")"
		fi
	fi
	if [ "$run_loop" = yes ]; then
		j=$tmp/loop.json
		rm -f "$j"
		if "$KVMSTALL" --vcpus 1 --memory 64M --workload spin --duration 3 --quiet \
			--json "$j" >"$tmp/loop.out" 2>"$tmp/loop.err" && [ -s "$j" ] &&
			jq -e '.total.iterations > 0' "$j" >/dev/null; then
			jq -r '"\(.timing.run_ns) \(.total.iterations)"' "$j" |
				awk '{ printf "%.6f\n", $1 / $2 }' >>"$tmp/period"
		else
			run_loop=no
			skip "guest loop period" "the run failed: $(why "$tmp/loop.err")"
		fi
	fi
	if [ "$rep" -eq 0 ]; then
		for f in $results; do
			: >"$tmp/$f"
		done
	fi
	rep=$((rep + 1))
done

#####################################################################
# Report: medians, aligned.

# group TITLE: start a group of rows, closing the previous one
in_group=no
printed=0
group() {
	if [ "$in_group" = yes ] && [ "$printed" -eq 0 ]; then
		echo "  (not measured, see below)"
	fi
	in_group=yes
	printed=0
	[ -n "${1:-}" ] && echo "$1"
}

# row LABEL VALUE UNIT (VALUE empty: not measured, the reason is listed below)
row() {
	if [ -n "$2" ]; then
		printf '  %-42s %10s  %s\n' "$1" "$2" "$3"
		printed=$((printed + 1))
	fi
}

# ms FILE: median of the nanosecond values in FILE, in milliseconds
ms() {
	[ -s "$1" ] || return 0
	median <"$1" | awk '{ printf "%.1f", $1 / 1e6 }'
}

# num FILE: median of FILE with two decimals
num() {
	[ -s "$1" ] || return 0
	median <"$1" | awk '{ printf "%.2f", $1 }'
}

# gibs FILE: GiB/s of writing the test memory in the median time of FILE
gibs() {
	[ -s "$1" ] || return 0
	median <"$1" | awk -v b="$bytes" '{ printf "%.2f", b / 1073741824 / ($1 / 1e9) }'
}

# ratio FILE1 FILE2: median of FILE1 / median of FILE2
ratio() {
	[ -s "$1" ] && [ -s "$2" ] || return 0
	a=$(median <"$1")
	b=$(median <"$2")
	awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b }'
}

echo "kvmstall startup benchmark: $ncpu online CPUs, Linux $(uname -r)"
if [ "$WARMUP" = 0 ]; then w="no warm-up"; else w="after one warm-up round"; fi
echo "each line is the median of $REPS runs, taken on its own, $w"
echo
printf '  %-42s %10s  %s\n' "measurement" "median" "unit"
group "kvmstall, $VCPUS vCPUs, $MEM_GIB GiB hugetlb-2M:"
row "prefault (test memory and decoys)" "$(ms "$tmp/prefault")" ms
row "vCPU threads started -> all in guest code" "$(ms "$tmp/ready")" ms
row "startup (prefault + vCPU start)" "$(ms "$tmp/start")" ms
row "prefault rate" "$(num "$tmp/rate")" GiB/s
group "memset of $MEM_GIB GiB, $ncpu threads (one per online CPU):"
row "hugetlb-2M" "$(ms "$tmp/ms_huge")" ms
row "anon 4 KiB" "$(ms "$tmp/ms_anon")" ms
row "hugetlb-2M rate" "$(gibs "$tmp/ms_huge")" GiB/s
row "anon 4 KiB rate" "$(gibs "$tmp/ms_anon")" GiB/s
group "kvmstall startup / memset:"
row "vs memset hugetlb-2M" "$(ratio "$tmp/start" "$tmp/ms_huge")" x
row "vs memset anon 4 KiB" "$(ratio "$tmp/start" "$tmp/ms_anon")" x
group "guest loop, 1 vCPU, spin, 3 s:"
row "loop period (stall resolution)" "$(num "$tmp/period")" ns
group ""
if [ -n "$skips" ]; then
	echo
	echo "skipped:"
	printf '%s' "$skips" | sed 's/^/  /'
fi
exit 0
