#!/bin/sh
# SPDX-License-Identifier: MIT
# The A/B report generator (bench/ab-report.sh) on synthetic reports whose
# medians and intervals are known: medians, the "no difference measured"
# rule, the acceptance checks, the plots, determinism, and its errors.
. "${top_srcdir:-.}/tests/lib.sh"
for t in jq gnuplot gawk; do
	command -v $t > /dev/null || skip_all "needs $t (apt-get install jq gnuplot-nox gawk)"
done
bench="${top_srcdir:-.}/bench"
r="$TMP/res"

check_eq() { # check_eq A OP B DESCRIPTION
	[ "$1" "$2" "$3" ]
	ok $? "$4 (got $1)"
}

# mk KERNEL REP SCENARIO P99_US RETRIES LOCKED [IN_KVM_PERCENT]: a minimal
# kvmstall report; with IN_KVM_PERCENT, the stall anatomy's split too
# (10 % preempted, the rest unexplained).
mk() {
	mkdir -p "$r/raw/$1/rep$2"
	jq -n --argjson p99 "$4" --argjson ret "$5" --argjson locked "$6" --argjson kvm "${7:-null}" '{
		anatomy: (if $kvm == null then null else { in_kvm_from: "kvm_exit to kvm_entry" } end),
		schema: "kvmstall-report",
		timing: { run_ns: 2000000000, fault_recycles: 10 },
		total: { iterations: 20000, vcpu_seconds: 2,
			stalls: { count: 100, p50_ns: 30000, p99_ns: ($p99 * 1000), p999_ns: ($p99 * 2000),
				max_ns: ($p99 * 3000), total_ns: 20000000 },
			stall_causes: (if $kvm == null then null else { stall_ns: 20000000, preempted_ns: 2000000,
				blocked_ns: 0, in_kvm_ns: ($kvm * 200000), unexplained_ns: (18000000 - $kvm * 200000),
				repeated_faults: 3 } end),
			histogram: [ { lo_ns: 20000, hi_ns: 40000, count: 60 },
				{ lo_ns: 40000, hi_ns: ($p99 * 1000), count: 40 } ] },
		events: { streams: [ { spec: "madvise-dontneed:outside:rate=10000", skipped: false,
			events: 20000, achieved_rate: 10000, cpu_ns: 40000000 } ] },
		kvm_stats: { source: "debugfs", vm: { mn_invalidate_locked: ($locked + 10), mn_notifications: 20000,
			mn_lock_acquisitions: ($locked * 2), mn_lock_hold_ns: ($locked * 500),
			mn_tlb_flushes: 0, pf_notifier_retries: $ret, exits: 21000, pf_fixed: 20000 } },
		result: { status: "ok" } }' | gzip > "$r/raw/$1/rep$2/$3.json.gz"
	printf 'time_s,vcpu,iterations,iterations_per_s,stalls,stalls_per_s,stall_ms_total,max_stall_us_interval,valid\n0.100,0,1,1,1,1,1.5,10,1\n0.200,0,2,1,1,1,3.0,10,1\n' |
		gzip > "$r/raw/$1/rep$2/$3.csv.gz"
}
# Outside events: stock's p99 100..140 us, patched's 50..54 (apart);
# retries 500+ against 0..4; stock takes the lock, patched never.
# Inside events: the same values on both kernels (overlap).
for i in 1 2 3 4 5; do
	mk stock $i fault4k-dontneed-outside-10k $((90 + 10 * i)) $((500 + i)) 20000 $((60 + i))
	mk patched $i fault4k-dontneed-outside-10k $((49 + i)) $((i - 1)) 0 $((40 + i))
	mk stock $i fault4k-dontneed-inside-1k $((200 + i)) 10 2000
	mk patched $i fault4k-dontneed-inside-1k $((206 - i)) 10 2000
	mk stock $i fault4k-none 80 0 0
	mk patched $i fault4k-none 80 0 0
done
printf 'date: 2026-11-26T00:00:00Z\nreps: 5\nduration_s: 2\nhost: test\n' > "$r/meta.txt"

"$bench/ab-report.sh" "$r" > "$TMP/out" 2>&1
ok $? "ab-report.sh writes a report: $(tail -n1 "$TMP/out")"
check_eq "$(($(wc -l < "$r/runs.tsv") - 1))" = 30 "runs.tsv has one row per run (30)"
med() { awk -F'\t' -v s="$1" -v m="$2" -v k="$3" '$1 == s && $2 == m && $3 == k { print $5 }' "$r/stats.tsv"; }
verdict() { awk -F'\t' -v s="$1" -v m="$2" '$1 == s && $2 == m { print $8 }' "$r/compare.tsv"; }
check_eq "$(med fault4k-dontneed-outside-10k p99_us stock)" = 120 "stock's median p99 of 100..140 us is 120"
check_eq "$(med fault4k-dontneed-outside-10k pf_notifier_retries patched)" = 2 "patched's median retries of 0..4 is 2"
check_eq "$(verdict fault4k-dontneed-outside-10k p99_us)" = "patched lower" "intervals apart: patched lower"
check_eq "$(verdict fault4k-dontneed-inside-1k p99_us)" = "no difference measured" \
	"overlapping intervals (201..205 against 201..205): no difference measured"
check_eq "$(verdict fault4k-none pf_notifier_retries)" = "same (0 on both)" "zero on both: same"
ratio=$(awk -F'\t' '$1 == "fault4k-dontneed-outside-10k" && $2 == "p99_us" { printf "%.4f", $5 }' "$r/compare.tsv")
check_eq "$ratio" = 0.4333 "the ratio of medians is patched/stock (52/120)"
grep -q 'stock took mmu_lock for other invalidations in 5 of 5 runs (PASS)' "$r/report.md" &&
	grep -q 'no other invalidation took mmu_lock in 5 of 5 runs (PASS)' "$r/report.md" &&
	grep -q 'above patched.s in 1 of 1 outside scenarios (PASS)' "$r/report.md"
ok $? "the report's checks pass on data that meets them"
check_eq "$(med fault4k-dontneed-outside-10k in_kvm_pct stock)" = 63 "the stall anatomy: stock's median in-KVM share of 61..65 % is 63"
grep -q '^| fault4k-dontneed-outside-10k | patched | 10.0 | 0 | 43.0 \[.*\] | 47.0 \[.*\] | 3.00 |$' "$r/report.md" &&
	grep -q 'Inside KVM is measured on stock and patched from kvm_exit to kvm_entry' "$r/report.md" &&
	! grep -q "^| fault4k-none |.*| 3.00 |$" "$r/report.md"
ok $? "the report splits the stall time where the runs recorded it, and only there"
# No host leg: the projection is made for two assumed fault service times,
# and says so; patched, which never retried for the events, projects 0.
check_eq "$(grep -c '^| [0-9.]* (assumed) | \(64\|256\) | [0-9]* | \(stock\|patched\) |' "$r/report.md")" = 24 \
	"the projection without a host leg: 2 assumed service times x 2 VM sizes x 3 rates x 2 kernels"
grep -q 'the fault service time of a real host is not measured' "$r/report.md" &&
	grep -q '^| 20.0 (assumed) | 256 | 100000 | stock | [0-9]* | [0-9.]* % |' "$r/report.md"
ok $? "the projection says its service times are assumed, and projects stock's retries"
n=0
for p in cdf-fault4k-none time-fault4k-none retries locked; do
	[ -s "$r/plots/$p.png" ] && [ -s "$r/plots/$p.svg" ] && n=$((n + 1))
done
check_eq $n = 4 "plots as PNG and SVG: stall CDF, stalls over time, retries, locked ($n of 4)"
cp "$r/stats.tsv" "$TMP/stats.1"
"$bench/ab-report.sh" "$r" "$TMP/again" > /dev/null 2>&1
cmp -s "$TMP/stats.1" "$TMP/again/stats.tsv"
ok $? "the same JSON gives the same intervals (fixed bootstrap seed), into OUT"

# Two sets: the same data agrees with itself; the set with an extra
# patched run whose retries are 0 moves that ratio by more than 20 %.
"$bench/ab-compare.sh" ratios "$r" "$TMP/again" > "$TMP/cmp" 2>&1
ok $? "ab-compare: a set agrees with itself ($(tail -n1 "$TMP/cmp"))"
mk patched 6 fault4k-dontneed-outside-10k 52 30 0
mk patched 7 fault4k-dontneed-outside-10k 52 30 0
"$bench/ab-report.sh" "$r" "$TMP/moved" > /dev/null 2>&1
"$bench/ab-compare.sh" ratios "$r" "$TMP/moved" > "$TMP/cmp" 2>&1
rc=$?
grep -q 'fault4k-dontneed-outside-10k *pf_notifier_retries .*DISAGREE' "$TMP/cmp"
ok $((rc == 0 || $? != 0)) "ab-compare: a ratio that moved by more than 20 % disagrees, and the exit status says so"
rm -rf "$r/raw/patched/rep6" "$r/raw/patched/rep7"

# A run where patched took the lock for an outside event fails its check.
mk patched 6 fault4k-dontneed-outside-10k 50 0 3
"$bench/ab-report.sh" "$r" "$TMP/bad" > /dev/null 2>&1
grep -q 'no other invalidation took mmu_lock in 5 of 6 runs (FAIL)' "$TMP/bad/report.md" &&
	grep -q '^  - fault4k-dontneed-outside-10k rep 6: 3 more than its recycling (20000 events; the host kernel meanwhile migrated an unrecorded number of pages' "$TMP/bad/report.md"
ok $? "a patched run that took mmu_lock for outside events fails the check, and is named"
# What the host kernel moved meanwhile, where the run recorded it.
gzip -dc "$r/raw/patched/rep6/fault4k-dontneed-outside-10k.json.gz" |
	jq '.kvm_stats.vm.mn_invalidate_elided = 19990 | .kvm_stats.host_vmstat = { pgmigrate_success: 41, thp_collapse_alloc: 0 }' |
	gzip > "$TMP/rep6.json.gz" && mv "$TMP/rep6.json.gz" "$r/raw/patched/rep6/fault4k-dontneed-outside-10k.json.gz"
"$bench/ab-report.sh" "$r" "$TMP/bad" > /dev/null 2>&1
grep -q '^  - fault4k-dontneed-outside-10k rep 6: 3 more than its recycling (20000 events; 19990 of 20000 notifications elided; the host kernel meanwhile migrated 41 pages and collapsed 0 huge pages)' "$TMP/bad/report.md"
ok $? "and says what the host kernel moved during that run, from kvm_stats.host_vmstat"
rm -rf "$r/raw/patched/rep6"

"$bench/ab-report.sh" "$TMP/nothing" > "$TMP/err" 2>&1
rc=$?
check_eq "$rc" != 0 "a directory without raw/ is refused (rc=$rc)"
check_eq "$(wc -l < "$TMP/err")" = 1 "in one line: $(cat "$TMP/err")"
done_testing
