#!/bin/sh
# SPDX-License-Identifier: MIT
# make notifier-cost: what one MMU notification costs on the stock and the
# patched kernel, with and without the instrumentation of instrument/, as
# a function of the number of memslots (1, 8, 64, 509), and what a memslot
# update costs (rig/mn-cost.c).  A benchmark: each of the four kernels of
# CONFIG (default debug, whose builds check-kernel keeps; KVMSTALL_KERNEL_CONFIG
# =release for the release ones) boots ROUNDS times (default 2), the kernels
# interleaved, and each boot measures REPS x OPS operations of each kind.
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
for v in "$rounds" "$reps" "$ops"; do
	case $v in '' | *[!0-9]*) die "KVMSTALL_ROUNDS, _REPS and _OPS must be numbers (got '$v')" ;; esac
done

patched=$("$KP_DIR/scripts/build-kernel.sh" "$config")
patched_bare=$(KVMSTALL_INSTRUMENT=0 "$KP_DIR/scripts/build-kernel.sh" "$config")
stock="$CACHE/kernels/$config/stock"
stock_bare="$CACHE/kernels/$config/stock-bare"
res="$CACHE/results/notifier-cost-$config-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$res"
# shellcheck disable=SC2086 # a list of numbers
printf 'mn-cost 1800 mn-cost --reps %s --ops %s %s\n' "$reps" "$ops" "$(echo $slots)" > "$res/jobs"

r=1
while [ $r -le "$rounds" ]; do
	for k in stock stock_bare patched patched_bare; do
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
# kernel, and the ratios that answer the questions.
table() { # table FIELD: 6 for the medians, 7 for the minimums
	awk -v f="$1" '
		{
			k = $1; split($4, s, "="); split($5, t, "="); split($f, m, "=")
			key = s[2] " " t[2]
			v[key, k, ++n[key, k]] = m[2]
			keys[key] = 1
		}
		function med(key, k,   i, j, c, a, tmp) {
			c = n[key, k]
			for (i = 1; i <= c; i++) a[i] = v[key, k, i]
			for (i = 1; i <= c; i++)
				for (j = i + 1; j <= c; j++)
					if (a[j] < a[i]) { tmp = a[i]; a[i] = a[j]; a[j] = tmp }
			return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
		}
		END {
			for (key in keys) {
				split(key, p, " ")
				st = med(key, "stock"); sb = med(key, "stock_bare")
				pa = med(key, "patched"); pb = med(key, "patched_bare")
				printf "%-6s %-11s %10d %10d %10d %10d %+8.1f%% %9.2f\n", p[1], p[2], st, sb, pa, pb, \
					(pa + st - pb - sb) / (pb + sb) * 100, pb / sb
			}
		}' "$res/raw.txt" | sort -k1,1n -k2,2
}
{
	echo "notifier cost, $config kernels in the rig, $rounds rounds x $reps reps x $ops ops, $(date -u +%Y-%m-%d)"
	echo "thread CPU time per operation, ns; instr: (instrumented - bare) / bare, both kernels"
	echo "together; patched/stock: the bare kernels"
	for f in 6 7; do
		[ $f = 6 ] && echo "medians of each boot's median:" || echo "medians of each boot's minimum:"
		printf '%-6s %-11s %10s %10s %10s %10s %9s %9s\n' slots kind stock stock-bare patched patch-bare instr patched/stock
		table $f
	done
} | tee "$res/summary.txt"
log "results in $res"
