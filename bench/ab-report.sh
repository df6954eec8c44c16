#!/bin/sh
# SPDX-License-Identifier: MIT
# make ab-report RESULTS=DIR [OUT=DIR]: the A/B report from raw JSON alone.
#
# Reads DIR/raw/KERNEL/repN/SCENARIO.json[.gz] (and .csv[.gz]) as written
# by bench/ab.sh, and DIR/meta.txt; writes OUT/report.md (OUT defaults to
# DIR), OUT/runs.tsv (one row per run), OUT/stats.tsv (medians and 95 %
# bootstrap intervals), OUT/compare.tsv (patched against stock) and the
# plots in OUT/plots/ as PNG and SVG.  Deterministic: the bootstrap uses a
# fixed seed, so the same JSON gives the same report.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
log() { printf 'ab-report: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: ab-report.sh RESULTS_DIR [OUT_DIR]"
res=$1
out=${2:-$1}
[ -d "$res/raw" ] || die "$res/raw does not exist: RESULTS must be a directory written by make ab"
for t in jq gnuplot gawk gzip; do
	command -v $t > /dev/null || die "ab-report needs $t: apt-get install jq gnuplot-nox gawk gzip"
done
BOOT=${AB_BOOTSTRAP:-2000}
case $BOOT in '' | *[!0-9]*) die "AB_BOOTSTRAP must be a whole number of resamples (got '$BOOT')" ;; esac
mkdir -p "$out/plots"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmstall-ab-report.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cat_file() { # cat_file PATH-WITHOUT-.gz: the file, compressed or not
	if [ -f "$1.gz" ]; then gzip -dc "$1.gz"; elif [ -f "$1" ]; then cat "$1"; else return 1; fi
}

# 1. One row per run.  Counters a kernel does not have are NA, and so is
# the stall anatomy's split (shares of the stall time, in %) in runs
# recorded without it, and the host's memory activity in older runs.
metrics="p50_us p99_us p999_us max_us stall_ms_per_vcpu_s work_per_s events event_rate event_cpu_us mn_invalidate_locked mn_locked_not_own mn_notifications mn_lock_acquisitions mn_lock_hold_ms mn_tlb_flushes pf_notifier_retries retries_per_s exits_per_fault antagonist_work preempted_pct blocked_pct in_kvm_pct unexplained_pct repeated_faults stalls mn_invalidate_elided host_pgmigrate host_thp_collapse status"
jqprog='
def na: if . == null then "NA" else . end;
def vm($n): .kvm_stats.vm[$n];
def ctr($n): (.kvm_stats.vm[$n] // .kvm_stats.vcpu_total[$n]);
# The invalidations of one recycle of guest memory by the fault workload:
# HugeTLB (not memfd) is unmapped and mapped again on 5.10, which rejects
# MADV_DONTNEED there, and the kernel announces that twice (the unmapped
# range, and again inside the HugeTLB unmap); everything else once.
def own: if ((.config.backing // "") | test("^hugetlb-")) then 2 else 1 end;
def share($c; $n): if $c == null or $c[$n] == null or ($c.stall_ns // 0) <= 0 then null else 100 * $c[$n] / $c.stall_ns end;
(.timing.run_ns / 1e9) as $run |
([.events.streams[]? | select(.skipped | not) | .events] | add // 0) as $ev |
([.events.streams[]? | select(.skipped | not) | .cpu_ns // 0] | add // 0) as $cpu |
[ .total.stalls.p50_ns / 1000, .total.stalls.p99_ns / 1000, .total.stalls.p999_ns / 1000,
  .total.stalls.max_ns / 1000,
  (if .total.vcpu_seconds > 0 then .total.stalls.total_ns / 1e6 / .total.vcpu_seconds else null end),
  (if $run > 0 then .total.iterations / $run else null end),
  $ev,
  ([.events.streams[]? | select(.skipped | not) | .achieved_rate] | add // 0),
  (if $ev > 0 and $cpu > 0 then $cpu / $ev / 1000 else null end),
  vm("mn_invalidate_locked"),
  (if vm("mn_invalidate_locked") == null then null else vm("mn_invalidate_locked") - (.timing.fault_recycles // 0) * own end),
  vm("mn_notifications"), vm("mn_lock_acquisitions"),
  (if vm("mn_lock_hold_ns") == null then null else vm("mn_lock_hold_ns") / 1e6 end),
  vm("mn_tlb_flushes"), vm("pf_notifier_retries"),
  (if vm("pf_notifier_retries") == null or $run <= 0 then null else vm("pf_notifier_retries") / $run end),
  (if (ctr("pf_fixed") // 0) > 0 then ctr("exits") / ctr("pf_fixed") else null end),
  ([.antagonists[]? | select(.skipped | not) | .counters as $c |
    ({ "numa-balancing": "numa_pages_migrated", ksm: "full_scans", khugepaged: "thp_collapse_alloc", reclaim: "pgsteal" }[.kind]) as $n |
    ($c[$n] // null) | select(. != null) | .end - .start] | if length == 0 then null else add end),
  (.total.stall_causes // null) as $sc |
  share($sc; "preempted_ns"), share($sc; "blocked_ns"), share($sc; "in_kvm_ns"), share($sc; "unexplained_ns"),
  (if $sc == null then null else $sc.repeated_faults end),
  .total.stalls.count, vm("mn_invalidate_elided"),
  # The host kernel moving memory on its own during the run (since kvmstall
  # recorded it): what can invalidate guest memory besides the events.
  .kvm_stats.host_vmstat.pgmigrate_success, .kvm_stats.host_vmstat.thp_collapse_alloc,
  .result.status
] | map(na) | @tsv'
{
	printf 'kernel\tscenario\trep'
	for m in $metrics; do printf '\t%s' "$m"; done
	printf '\n'
	for kd in "$res"/raw/*/; do
		k=$(basename "$kd")
		for rd in "$kd"rep*/; do
			[ -d "$rd" ] || continue
			n=$(basename "$rd")
			n=${n#rep}
			for f in "$rd"*.json "$rd"*.json.gz; do
				[ -e "$f" ] || continue
				s=$(basename "$f")
				s=${s%.gz}
				s=${s%.json}
				row=$(cat_file "${f%.gz}" | jq -r "$jqprog" 2> "$tmp/jq.err") ||
					die "$f: not a kvmstall report ($(head -n1 "$tmp/jq.err"))"
				printf '%s\t%s\t%s\t%s\n' "$k" "$s" "$n" "$row"
			done
		done
	done
} > "$out/runs.tsv"
nruns=$(($(wc -l < "$out/runs.tsv") - 1))
[ "$nruns" -gt 0 ] || die "$res/raw holds no run reports"
kernels=$(awk -F'\t' 'NR > 1 { print $1 }' "$out/runs.tsv" | sort -u)
echo "$kernels" | grep -qx stock || die "$res/raw has no stock runs"
echo "$kernels" | grep -qx patched || die "$res/raw has no patched runs"

# 2. Medians with 95 % bootstrap intervals, per scenario, kernel and metric;
# and patched against stock: the ratio of medians with its interval, and a
# verdict that calls overlapping intervals "no difference measured".
awk -F'\t' -v OFS='\t' -v B="$BOOT" -v statsf="$tmp/stats.tsv" -v cmpf="$tmp/compare.tsv" '
function sift(a, s, n,    c, t) { # heapsort helper: a[s] down a max-heap of n
	while ((c = 2 * s) <= n) {
		if (c < n && a[c + 1] > a[c]) c++
		if (a[s] >= a[c]) return
		t = a[s]; a[s] = a[c]; a[c] = t; s = c
	}
}
function sortn(a, n,    i, j, t) { # ascending, in place
	if (n <= 16) {
		for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
		return
	}
	for (i = int(n / 2); i >= 1; i--) sift(a, i, n)
	for (i = n; i > 1; i--) { t = a[1]; a[1] = a[i]; a[i] = t; sift(a, 1, i - 1) }
}
function median(a, n,    i, b) {
	for (i = 1; i <= n; i++) b[i] = a[i]
	sortn(b, n)
	return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
}
function boot(a, n, meds,    r, i, s) { # meds[1..B]: medians of resamples
	for (r = 1; r <= B; r++) {
		for (i = 1; i <= n; i++) s[i] = a[int(rand() * n) + 1]
		meds[r] = median(s, n)
	}
}
function q95(a, n,    i, b) { # the 2.5 % and 97.5 % quantiles of a[1..n] into qlo, qhi
	for (i = 1; i <= n; i++) b[i] = a[i]
	sortn(b, n)
	qlo = b[int(0.025 * (n - 1) + 0.5) + 1]; qhi = b[int(0.975 * (n - 1) + 0.5) + 1]
}
# The per-run diagnostics after "stalls" (elided notifications, what the
# host kernel moved) are for runs.tsv only: no statistics, so the bootstrap
# draws the same random numbers for the other metrics as before they existed.
NR == 1 { for (i = 4; i <= NF; i++) { name[i] = $i; if ($i == "stalls") nf = i + 1 }
	if (!nf) { print "ab-report: runs.tsv has no stalls column" > "/dev/stderr"; exit 1 }
	next }
{
	scen[$2] = 1; kern[$1] = 1
	for (i = 4; i < nf; i++) {
		if ($i == "NA" || $i == "") continue
		c = ++cnt[$2, $1, i]; val[$2, $1, i, c] = $i + 0
	}
}
END {
	srand(20261126)
	for (s in scen) for (i = 4; i < nf; i++) {
		for (k in kern) {
			n = cnt[s, k, i]
			if (!n) continue
			delete a
			for (j = 1; j <= n; j++) a[j] = val[s, k, i, j]
			med[k] = median(a, n)
			delete m
			boot(a, n, m)
			q95(m, B); lo[k] = qlo; hi[k] = qhi
			if (k == "stock") { delete ms; for (r = 1; r <= B; r++) ms[r] = m[r] }
			if (k == "patched") { delete mp; for (r = 1; r <= B; r++) mp[r] = m[r] }
			print s, name[i], k, n, med[k], lo[k], hi[k] > statsf
		}
		if (!cnt[s, "stock", i] || !cnt[s, "patched", i]) continue
		verdict = ""
		rat = "NA"; rlo = "NA"; rhi = "NA"
		if (med["stock"] == 0 && med["patched"] == 0) verdict = "same (0 on both)"
		else if (med["stock"] != 0) {
			rat = med["patched"] / med["stock"]
			delete q; nq = 0
			for (r = 1; r <= B; r++) if (ms[r] != 0) q[++nq] = mp[r] / ms[r]
			if (nq) { q95(q, nq); rlo = qlo; rhi = qhi }
		}
		if (verdict == "") {
			if (hi["patched"] < lo["stock"]) verdict = "patched lower"
			else if (lo["patched"] > hi["stock"]) verdict = "patched higher"
			else verdict = "no difference measured"
		}
		print s, name[i], med["stock"], med["patched"], rat, rlo, rhi, verdict > cmpf
	}
}' "$out/runs.tsv"
{
	printf 'scenario\tmetric\tkernel\tn\tmedian\tlo95\thi95\n'
	sort "$tmp/stats.tsv"
} > "$out/stats.tsv"
{
	printf 'scenario\tmetric\tstock\tpatched\tratio\tratio_lo95\tratio_hi95\tverdict\n'
	sort "$tmp/compare.tsv"
} > "$out/compare.tsv"

# 3. Plots.
"$here/ab-plots.sh" "$res" "$out" || die "the plots failed"

# 4. The report.
"$here/ab-markdown.sh" "$res" "$out" > "$tmp/report.md" || die "writing the report failed"
mv "$tmp/report.md" "$out/report.md"
log "$nruns runs; wrote $out/report.md and $(find "$out/plots" -name '*.png' | wc -l) plots (PNG and SVG) in $out/plots"
