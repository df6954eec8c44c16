#!/bin/sh
# SPDX-License-Identifier: MIT
#
# What the stall anatomy costs, run by `make bench` (which sets KVMSTALL).
#
# Guest iterations per second with --anatomy on and off, on `spin` (the
# default-on rule: at most 2 % there) and on `fault` (every fault is two or
# three perf records).  On and off are interleaved, REPS pairs each (default
# 7), DURATION seconds a run (default 3), so that the machine's drift hits
# both alike.  Printed per workload: the median of each, the median of the
# paired ratios on/off and the range of those ratios (with 7 pairs, min to
# max is a 98 % interval for the median ratio); where it includes 1 the line
# says "no difference measured".
#
# The vCPU count is the host's CPU count: more vCPUs than CPUs would measure
# the scheduler, not the anatomy.

set -u

KVMSTALL=${KVMSTALL:-./kvmstall}
REPS=${REPS:-7}
DURATION=${DURATION:-3}
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmstall-bench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "anatomy cost: skipped: /dev/kvm is not usable here"
	exit 0
fi

# One run's guest iterations per second, or nothing if it failed.
rate() { # rate WORKLOAD on|off
	"$KVMSTALL" -q -c "$ncpu" -m 64M -b anon -w "$1" -d "$DURATION" --anatomy "$2" \
		--json "$tmp/r.json" > /dev/null 2> "$tmp/err" || {
		sed 's/^/  /' "$tmp/err" >&2
		return 1
	}
	jq -r '.total.iterations / (.timing.run_ns / 1e9)' "$tmp/r.json"
}

echo "stall anatomy cost: $ncpu vCPUs on $ncpu CPUs, $REPS interleaved pairs of $DURATION s runs"
for wl in spin fault; do
	: > "$tmp/pairs"
	i=1
	while [ "$i" -le "$REPS" ]; do
		# Alternate which goes first.
		if [ $((i % 2)) = 1 ]; then
			on=$(rate "$wl" on) && off=$(rate "$wl" off) || exit 1
		else
			off=$(rate "$wl" off) && on=$(rate "$wl" on) || exit 1
		fi
		echo "$on $off" >> "$tmp/pairs"
		i=$((i + 1))
	done
	sort -n -k1,1 "$tmp/pairs" | awk '{ print $1 }' > "$tmp/on"
	sort -n -k2,2 "$tmp/pairs" | awk '{ print $2 }' > "$tmp/off"
	awk '{ print $1 / $2 }' "$tmp/pairs" | sort -n > "$tmp/ratio"
	paste "$tmp/on" "$tmp/off" "$tmp/ratio" | awk -v wl="$wl" '
		{ on[NR] = $1; off[NR] = $2; r[NR] = $3 }
		END {
			m = int((NR + 1) / 2)
			verdict = (r[1] <= 1 && r[NR] >= 1) ? "no difference measured" :
				sprintf("anatomy costs %.1f %%", (1 - r[m]) * 100)
			printf "  %-5s iterations/s: on %.4g, off %.4g (medians); on/off %.3f (range %.3f to %.3f): %s\n",
				wl, on[m], off[m], r[m], r[1], r[NR], verdict
		}'
done
