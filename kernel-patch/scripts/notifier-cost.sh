#!/bin/sh
# SPDX-License-Identifier: MIT
# make notifier-cost: what one MMU notification costs on the stock and the
# patched kernel, with and without the instrumentation of instrument/, and
# on the series without its lookup by hva (the patch that indexes memslots
# by hva left out, no instrumentation), as a function of the number of
# memslots (1, 8, 64, 509), and what a memslot update costs
# (rig/mn-cost.c).  A benchmark: each of the five kernels of CONFIG
# (default debug, whose builds check-kernel keeps; KVMSTALL_KERNEL_CONFIG
# =release for the release ones) boots ROUNDS times (default 2), the kernels
# interleaved, and each boot measures REPS x OPS operations of each kind.
# KVMSTALL_KERNELS picks some of them (stock stock_bare patched patched_bare
# noindex_bare, the default all five).
# Writes the raw lines and a table of the medians to
# $KVMSTALL_CACHE/results/notifier-cost-CONFIG-DATE/ and prints the table.
# The figures are of the TCG rig: compare them with each other, not with
# hardware.
set -eu
. "$(dirname "$0")/common.sh"
config=${KVMSTALL_KERNEL_CONFIG:-debug}
rounds=${KVMSTALL_ROUNDS:-2}
reps=${KVMSTALL_REPS:-9}
ops=${KVMSTALL_OPS:-2000}
slots=${KVMSTALL_SLOTS:-1 8 64 509}
vmm=${KVMSTALL_STATIC:?set KVMSTALL_STATIC to a static kvmstall}
kernels=${KVMSTALL_KERNELS:-stock stock_bare patched patched_bare noindex_bare}
for v in "$rounds" "$reps" "$ops"; do
	case $v in '' | *[!0-9]*) die "KVMSTALL_ROUNDS, _REPS and _OPS must be numbers (got '$v')" ;; esac
done
for k in $kernels; do
	case $k in
	stock | stock_bare | patched | patched_bare | noindex_bare) ;;
	*) die "KVMSTALL_KERNELS: unknown kernel '$k' (accepted: stock stock_bare patched patched_bare noindex_bare)" ;;
	esac
done
# The patch that looks memslots up by hva, by its file name.
index_patch='-KVM-Find-the-memslots-an-MMU-notification-overlaps-b.patch'

# Only the kernels asked for; building either patched kernel builds stock
# (or stock-bare) as well.
patched="" patched_bare=""
case " $kernels " in *" patched "* | *" stock "*)
	patched=$("$KP_DIR/scripts/build-kernel.sh" "$config") ;;
esac
case " $kernels " in *" patched_bare "* | *" stock_bare "*)
	patched_bare=$(KVMSTALL_INSTRUMENT=0 "$KP_DIR/scripts/build-kernel.sh" "$config") ;;
esac
stock="$CACHE/kernels/$config/stock"
stock_bare="$CACHE/kernels/$config/stock-bare"
res="$CACHE/results/notifier-cost-$config-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$res"
# The series without the lookup by hva: a copy of kernel-patch/ whose series
# leaves that patch out, built bare under its own series hash.
noindex_bare=""
case " $kernels " in
*" noindex_bare "*)
	grep -q -- "$index_patch" "$KP_DIR/series" ||
		die "KVMSTALL_KERNELS has noindex_bare, but no patch in kernel-patch/series matches *$index_patch"
	rm -rf "$res/kp-noindex"
	cp -a "$KP_DIR" "$res/kp-noindex"
	grep -v -- "$index_patch" "$KP_DIR/series" > "$res/kp-noindex/series"
	noindex_bare=$(KVMSTALL_INSTRUMENT=0 "$res/kp-noindex/scripts/build-kernel.sh" "$config")
	rm -rf "$res/kp-noindex"
	;;
esac
# shellcheck disable=SC2086 # a list of numbers
printf 'mn-cost 1800 mn-cost --reps %s --ops %s %s\n' "$reps" "$ops" "$(echo $slots)" > "$res/jobs"

r=1
while [ $r -le "$rounds" ]; do
	for k in $kernels; do
		eval "kdir=\$$k"
		out="$res/$k-$r"
		mkdir -p "$out"
		"$KP_DIR/scripts/make-initramfs.sh" "$kdir" "$vmm" /nonexistent "$res/jobs" "$out/initrd.cpio.gz"
		log "round $r of $rounds: $k ($kdir)"
		"$KP_DIR/scripts/run-rig.sh" "$kdir/bzImage" "$out/initrd.cpio.gz" "$out" ||
			die "the $k kernel's rig run failed; see $out/console.txt"
		grep -a '^mn-cost: slots=' "$out/console.txt" | sed "s/^/$k round=$r /" >> "$res/raw.txt" ||
			die "no figures from the $k kernel; see $out/console.txt"
	done
	r=$((r + 1))
done

# One row per memslot count and kind, per figure: the median over the
# rounds of each boot's median, and of each boot's minimum (the fastest of
# its REPS batches, the least disturbed by the rest of the host), per
# kernel, and the ratios that answer the questions: what the
# instrumentation costs, the series against stock, and the lookup by hva
# against the series without it (all bare).  Then, per kernel, what an
# irrelevant notification and an update cost with the most memslots
# against one memslot.  A kernel not run prints -.
table() { # table FIELD: 6 for the medians, 7 for the minimums
	awk -v f="$1" '
		{
			k = $1; split($4, s, "="); split($5, t, "="); split($f, m, "=")
			key = s[2] " " t[2]
			v[key, k, ++n[key, k]] = m[2]
			keys[key] = 1
			if (s[2] + 0 > maxs) maxs = s[2] + 0
		}
		function med(key, k,   i, j, c, a, tmp) {
			c = n[key, k]
			if (!c) return ""
			for (i = 1; i <= c; i++) a[i] = v[key, k, i]
			for (i = 1; i <= c; i++)
				for (j = i + 1; j <= c; j++)
					if (a[j] < a[i]) { tmp = a[i]; a[i] = a[j]; a[j] = tmp }
			return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
		}
		function num(x) { return x == "" ? "-" : sprintf("%d", x) }
		function pct(a, b) { return a == "" || b == "" || b == 0 ? "-" : sprintf("%+.1f%%", (a - b) / b * 100) }
		function ratio(a, b) { return a == "" || b == "" || b == 0 ? "-" : sprintf("%.2f", a / b) }
		END {
			for (key in keys) {
				split(key, p, " ")
				st = med(key, "stock"); sb = med(key, "stock_bare")
				pa = med(key, "patched"); pb = med(key, "patched_bare")
				nb = med(key, "noindex_bare")
				ins = st == "" || sb == "" || pa == "" || pb == "" ? "-" : \
					pct(pa + st, pb + sb)
				printf "%-6s %-11s %9s %9s %9s %9s %9s %8s %8s %8s\n", p[1], p[2], num(st), num(sb), \
					num(pa), num(pb), num(nb), ins, ratio(pb, sb), ratio(pb, nb) | "sort -k1,1n -k2,2"
			}
			close("sort -k1,1n -k2,2")
			printf "%s memslots against 1, each kernel:\n", maxs
			split("stock stock_bare patched patched_bare noindex_bare", ks, " ")
			for (q = 1; q <= 2; q++) {
				kind = q == 1 ? "irrelevant" : "update"
				printf "  %-11s", kind
				for (i = 1; i <= 5; i++)
					printf " %s %s", ks[i], ratio(med(maxs " " kind, ks[i]), med("1 " kind, ks[i]))
				printf "\n"
			}
		}' "$res/raw.txt"
}
{
	echo "notifier cost, $config kernels in the rig, $rounds rounds x $reps reps x $ops ops, $(date -u +%Y-%m-%d)"
	echo "thread CPU time per operation, ns; instr: (instrumented - bare) / bare, both kernels"
	echo "together; patched/stock and index/no-index: the bare kernels (no-index: the series"
	echo "without the lookup by hva)"
	for f in 6 7; do
		[ $f = 6 ] && echo "medians of each boot's median:" || echo "medians of each boot's minimum:"
		printf '%-6s %-11s %9s %9s %9s %9s %9s %8s %8s %8s\n' slots kind stock stock-bare patched \
			patch-bare no-index instr pat/stock idx/noidx
		table $f
	done
} | tee "$res/summary.txt"
log "results in $res"
