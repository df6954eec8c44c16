#!/bin/sh
# SPDX-License-Identifier: MIT
# The A/B plots (bench/ab-report.sh runs this): RESULTS_DIR OUT_DIR, with
# OUT_DIR/runs.tsv and OUT_DIR/stats.tsv already written.  Each plot is
# written as OUT_DIR/plots/NAME.png and NAME.svg:
#   cdf-SCENARIO       stall-length CDF, stock against patched (and the
#                      host kernel), all repetitions pooled
#   time-SCENARIO      stall time per 100 ms over the run, repetition 1,
#                      the event stream's window marked
#   retries            fault retries per second per scenario, medians and
#                      95 % intervals
#   slots              event-thread CPU per notification against memslots
#   scaling            fault retries per second against vCPUs
set -eu
res=$1 out=$2
pl="$out/plots"
mkdir -p "$pl"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmstall-ab-plots.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cat_file() { if [ -f "$1.gz" ]; then gzip -dc "$1.gz"; elif [ -f "$1" ]; then cat "$1"; else return 1; fi; }

plot() { # plot NAME: gnuplot commands on stdin, written as PNG and SVG
	cat > "$tmp/$1.gp"
	for t in png svg; do
		if [ $t = png ]; then
			term="set terminal pngcairo size 900,540 font 'sans,10'"
		else
			term="set terminal svg size 900,540 dynamic font 'sans,10'"
		fi
		{
			echo "$term"
			echo "set termoption noenhanced"
			echo "set output '$pl/$1.$t'"
			cat "$tmp/$1.gp"
		} | gnuplot 2> "$tmp/gp.err" || {
			cat "$tmp/gp.err" >&2
			return 1
		}
	done
}

kernels="stock patched $(awk -F'\t' 'NR > 1 && $1 ~ /^host-/ { print $1 }' "$out/runs.tsv" | sort -u | head -n1)"
scens=$(awk -F'\t' 'NR > 1 { print $2 }' "$out/runs.tsv" | sort -u)
color() { case $1 in stock) echo '#c0392b' ;; patched) echo '#2471a3' ;; *) echo '#7f8c8d' ;; esac; }

# Stall CDFs: the pooled histograms of every repetition.
for s in $scens; do
	cmd=""
	for k in $kernels; do
		: > "$tmp/cdf-$k"
		for f in "$res/raw/$k"/rep*/"$s".json*; do
			[ -e "$f" ] || continue
			cat_file "${f%.gz}" | jq -r '.total.histogram[]? | "\(.hi_ns / 1000) \(.count)"'
		done | awk '{ c[$1] += $2; t += $2 } END { for (x in c) print x, c[x] > "/dev/stderr"; print t }' \
			2> "$tmp/cdf-$k.raw" > "$tmp/cdf-$k.tot"
		sort -g "$tmp/cdf-$k.raw" | awk -v t="$(cat "$tmp/cdf-$k.tot")" 't > 0 { c += $2; print $1, c / t }' > "$tmp/cdf-$k"
		[ -s "$tmp/cdf-$k" ] || continue
		cmd="$cmd${cmd:+, }'$tmp/cdf-$k' using 1:2 with steps lw 2 lc rgb '$(color "$k")' title '$k'"
	done
	[ -n "$cmd" ] || continue
	plot "cdf-$s" <<EOF
set title "Stall lengths, $s (all repetitions)"
set xlabel "stall length (us, log scale)"
set ylabel "fraction of stalls no longer"
set logscale x
set key bottom right
set grid
set yrange [0:1]
plot $cmd
EOF
done

# Stalls over time, repetition 1: the CSV's cumulative stall time, as ms
# per interval summed over vCPUs.
for s in $scens; do
	cmd=""
	for k in $kernels; do
		f="$res/raw/$k/rep1/$s.csv"
		cat_file "$f" > "$tmp/t.csv" 2> /dev/null || continue
		awk -F, 'NR > 1 { d = $7 - prev[$2]; prev[$2] = $7; ms[$1] += d } END { for (t in ms) print t, ms[t] }' \
			"$tmp/t.csv" | sort -g > "$tmp/time-$k"
		[ -s "$tmp/time-$k" ] || continue
		cmd="$cmd${cmd:+, }'$tmp/time-$k' using 1:2 with linespoints pt 7 ps 0.4 lw 1.5 lc rgb '$(color "$k")' title '$k'"
	done
	[ -n "$cmd" ] || continue
	# The event window: from the first event due to the last, rep 1, stock.
	win=$(cat_file "$res/raw/stock/rep1/$s.json" 2> /dev/null | jq -r '
		([.events.streams[]? | select(.skipped | not) | select(.events > 0) |
			"\(.spec) at \(.achieved_rate | floor)/s"] +
		 [.antagonists[]? | select(.skipped | not) | "antagonist \(.spec)"]) | join(", ")' 2> /dev/null || true)
	dur=$(cat_file "$res/raw/stock/rep1/$s.json" 2> /dev/null | jq -r '.timing.run_ns / 1e9' 2> /dev/null || echo 0)
	mark=""
	[ -z "$win" ] || mark="set object 1 rect from 0, graph 0 to $dur, graph 1 fc rgb '#f9e79f' fs solid 0.35 noborder behind
set label 1 \"events: $win\" at graph 0.02, graph 0.95"
	plot "time-$s" <<EOF
set title "Stall time over the run, $s (repetition 1)"
set xlabel "time since the run started (s)"
set ylabel "stall time per 100 ms, all vCPUs (ms)"
set grid
set key top right
set yrange [0:*]
$mark
plot $cmd
EOF
done

# Medians with intervals from stats.tsv: bars for stock and patched.
bars() { # bars METRIC NAME TITLE YLABEL SCENARIO-REGEX
	awk -F'\t' -v m="$1" -v re="$5" 'NR > 1 && $2 == m && $1 ~ re && ($3 == "stock" || $3 == "patched") {
		v[$1, $3] = $5 " " $6 " " $7; s[$1] = 1 }
		END { for (x in s) { split(v[x, "stock"] ? v[x, "stock"] : "NaN NaN NaN", a, " ");
			split(v[x, "patched"] ? v[x, "patched"] : "NaN NaN NaN", b, " ");
			print x, a[1], a[2], a[3], b[1], b[2], b[3] } }' "$out/stats.tsv" | sort > "$tmp/$2.dat"
	[ -s "$tmp/$2.dat" ] || return 0
	plot "$2" <<EOF
set title "$3"
set ylabel "$4"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set xtics rotate by -40 left noenhanced font 'sans,8'
set bmargin 12
set grid ytics
set yrange [0:*]
set key top left
plot '$tmp/$2.dat' using 2:3:4:xtic(1) lc rgb '$(color stock)' title 'stock', \
     '' using 5:6:7 lc rgb '$(color patched)' title 'patched'
EOF
}
bars retries_per_s retries "vCPU fault retries per second (pf_notifier_retries), median and 95 % interval" \
	"retries per second" '^(fault4k|fault2m|touch|spin)-'
bars mn_invalidate_locked locked "Invalidations that took mmu_lock, median and 95 % interval" \
	"invalidations per run" '^(fault4k|fault2m|touch|spin)-'

# Lines against a parameter: X from the scenario name.
series() { # series METRIC NAME TITLE XLABEL YLABEL SED-EXPR-FOR-X SCENARIO-REGEX [logx]
	for k in stock patched; do
		awk -F'\t' -v m="$1" -v k="$k" -v re="$7" 'NR > 1 && $2 == m && $3 == k && $1 ~ re { print $1, $5, $6, $7 }' \
			"$out/stats.tsv" | sed -E "$6" | sort -g > "$tmp/$2-$k"
	done
	[ -s "$tmp/$2-stock" ] || [ -s "$tmp/$2-patched" ] || return 0
	plot "$2" <<EOF
set title "$3"
set xlabel "$4"
set ylabel "$5"
set grid
set key top left
${8:-}
plot '$tmp/$2-stock' using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb '$(color stock)' title 'stock', \
     '$tmp/$2-patched' using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb '$(color patched)' title 'patched'
EOF
}
series event_cpu_us slots "CPU time of the event thread per MADV_DONTNEED next to the slots, against memslots" \
	"memslots (log scale)" "us per event (median, 95 % interval)" 's/^slots([0-9]+)-[^ ]*/\1/' \
	'^slots[0-9]+-dontneed-outside-10k$' 'set logscale x'
series retries_per_s scaling "Fault retries per second against vCPUs, MADV_DONTNEED next to the slots at 10000/s" \
	"vCPUs (log scale)" "retries per second (median, 95 % interval)" \
	's/^(scale-c([0-9]+)|fault4k)-dontneed-outside-10k/\2/; s/^ /1 /' \
	'^(scale-c[0-9]+|fault4k)-dontneed-outside-10k$' 'set logscale x 2'
