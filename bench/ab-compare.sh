#!/bin/sh
# SPDX-License-Identifier: MIT
# Compare two A/B result sets (directories that bench/ab-report.sh has
# written stats.tsv and compare.tsv into):
#   bench/ab-compare.sh ratios A B   the patched/stock ratio of every
#       headline metric in both sets, and whether they agree within
#       AB_AGREE percent (default 20); exits 1 when some do not
#   bench/ab-compare.sh kernels A B  each kernel's medians in A against
#       B, with a verdict from the 95 % intervals (for instance A with the
#       instrumentation, B without: what the instrumentation costs)
set -eu
die() {
	printf 'ab-compare: %s\n' "$*" >&2
	exit 2
}
[ $# -eq 3 ] || die "usage: ab-compare.sh ratios|kernels RESULTS_A RESULTS_B"
mode=$1 a=$2 b=$3
for d in "$a" "$b"; do
	[ -f "$d/stats.tsv" ] && [ -f "$d/compare.tsv" ] ||
		die "$d has no stats.tsv and compare.tsv: run make ab-report RESULTS=$d first"
done
agree=${AB_AGREE:-20}
metrics="p50_us p99_us p999_us stall_ms_per_vcpu_s work_per_s mn_invalidate_locked mn_lock_acquisitions pf_notifier_retries exits_per_fault event_cpu_us"

case $mode in
ratios)
	gawk -F'\t' -v metrics="$metrics" -v agree="$agree" -v na="$(basename "$a")" -v nb="$(basename "$b")" '
	BEGIN { n = split(metrics, m, " "); for (i = 1; i <= n; i++) want[m[i]] = 1 }
	FNR == 1 { f++; next }
	!($2 in want) { next }
	{ r[f, $1, $2] = $5; s[$1 SUBSEP $2] = 1 }
	END {
		printf "%-34s %-22s %10s %10s %8s  %s\n", "scenario", "metric", na, nb, "diff %", "verdict"
		bad = 0; cnt = 0
		k = asorti(s, keys)
		for (j = 1; j <= k; j++) {
			split(keys[j], p, SUBSEP)
			x = r[1, p[1], p[2]]; y = r[2, p[1], p[2]]
			if (x == "" || y == "" || x == "NA" || y == "NA") continue
			cnt++
			d = (x == 0 && y == 0) ? 0 : (x == 0 ? 100 : 100 * (y - x) / x)
			v = (d <= agree && d >= -agree) ? "agree" : "DISAGREE"
			if (v != "agree") bad++
			printf "%-34s %-22s %10.4g %10.4g %8.1f  %s\n", p[1], p[2], x, y, d, v
		}
		printf "%d of %d patched/stock ratios agree within %s %%\n", cnt - bad, cnt, agree
		exit bad > 0
	}' "$a/compare.tsv" "$b/compare.tsv"
	;;
kernels)
	gawk -F'\t' -v metrics="$metrics" -v na="$(basename "$a")" -v nb="$(basename "$b")" '
	BEGIN { n = split(metrics, m, " "); for (i = 1; i <= n; i++) want[m[i]] = 1 }
	FNR == 1 { f++; next }
	!($2 in want) || $3 !~ /^(stock|patched)$/ { next }
	{ key = $1 SUBSEP $3 SUBSEP $2; med[f, key] = $5; lo[f, key] = $6; hi[f, key] = $7; s[key] = 1 }
	END {
		printf "%-34s %-8s %-22s %10s %10s %8s  %s\n", "scenario", "kernel", "metric", na, nb, na "/" nb, "verdict"
		k = asorti(s, keys)
		for (j = 1; j <= k; j++) {
			split(keys[j], p, SUBSEP)
			if (!((1, keys[j]) in med) || !((2, keys[j]) in med)) continue
			x = med[1, keys[j]]; y = med[2, keys[j]]
			v = hi[1, keys[j]] < lo[2, keys[j]] ? "lower" : (lo[1, keys[j]] > hi[2, keys[j]] ? "higher" : "no difference measured")
			printf "%-34s %-8s %-22s %10.4g %10.4g %8s  %s\n", p[1], p[2], p[3], x, y, y != 0 ? sprintf("%.3f", x / y) : "-", v
		}
	}' "$a/stats.tsv" "$b/stats.tsv"
	;;
*) die "unknown mode '$mode': expected ratios or kernels" ;;
esac
