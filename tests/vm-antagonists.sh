#!/bin/sh
# SPDX-License-Identifier: MIT
# --antagonist: the kernel's own memory work switched on for a run (KSM,
# khugepaged, NUMA balancing, reclaim), observed doing its work on VMM memory, and
# its settings put back afterwards, also after an interrupted run.
. "${top_srcdir:-.}/tests/lib.sh"
require_kvm
[ "$(id -u)" = 0 ] || skip_all "the antagonists write kernel settings: run as root"

# wait_for DESCRIPTION COMMAND...: until the command succeeds, at most 120 s.
# ksmd and khugepaged signal nothing when they merge or collapse, so their
# counters are polled; a loaded machine only makes this take longer.
wait_for() {
	desc=$1
	shift
	i=0
	until "$@"; do
		i=$((i + 1))
		[ $i -lt 1200 ] || {
			echo "# gave up after 120 s waiting for $desc"
			return 1
		}
		sleep 0.1
	done
}
vmstat() { awk -v n="$1" '$1 == n { print $2 }' /proc/vmstat; }
# ksmd's and khugepaged's settings and counters are the whole system's:
# the tests that set or use them (events-kinds.sh runs ksmd, vm-backings.sh
# maps THP) take turns.
hp_lock

ksm=/sys/kernel/mm/ksm
if [ -w "$ksm/run" ]; then
	run0=$(cat "$ksm/run") sleep0=$(cat "$ksm/sleep_millisecs") share0=$(cat "$ksm/pages_sharing")
	scans0=$(cat "$ksm/full_scans")
	start_vm ksm -c 1 -m 64M -w spin -d 600 --antagonist ksm:period=7ms,buffer=16M
	await_ready ksm
	ok $? "a VM runs with --antagonist ksm"
	check "ksmd runs with the period asked for" test "$(cat "$ksm/run") $(cat "$ksm/sleep_millisecs")" = "1 7"
	# ksmd's counters are the whole system's, and other tests merge and
	# unmerge their own pages meanwhile: watch kvmstall's own merged pages
	# where the kernel has them (5.19+), else a rise of the system's count
	# over three full scans, enough for the buffer's still half to merge.
	# The churning half holds 2048 of the 4096 pages; with more than that
	# merged, some of the still half is, and it stays merged to the end.
	own=/proc/$VM_PID/ksm_merging_pages
	merged() {
		if [ -r "$own" ]; then
			[ "$(cat "$own")" -gt 2048 ]
		else
			[ "$(cat "$ksm/full_scans")" -ge $((scans0 + 3)) ] &&
				[ "$(cat "$ksm/pages_sharing")" -gt "$share0" ]
		fi
	}
	wait_for "ksmd to merge pages of the VMM buffer" merged
	ok $? "ksmd merges pages of the VMM buffer"
	stop_vm INT
	ok $? "the interrupted run exits 0"
	check "JSON: ksm ran, with its counters" jq_true "$TMP/ksm.json" \
		'.antagonists[0] | .kind == "ksm" and (.skipped | not) and .passes > 0 and (.counters.full_scans.end > .counters.full_scans.start) and (.counters.ksm_merging_pages == null or .counters.ksm_merging_pages.end > 0)'
	check "JSON: the settings, during the run and before it" jq_true "$TMP/ksm.json" \
		".antagonists[0].settings[\"$ksm/sleep_millisecs\"] == {\"run\": \"7\", \"before\": \"$sleep0\"}"
	check "ksmd's settings are back" test "$(cat "$ksm/run") $(cat "$ksm/sleep_millisecs")" = "$run0 $sleep0"
	# Interrupted before the run starts, from the prefault: settings back too.
	KVMSTALL_TEST_SIGNAL=prefault "$KVMSTALL" -q -c 1 -m 64M -w spin -d 600 \
		--antagonist ksm:period=9ms > /dev/null 2>&1
	check "ksmd's settings are back after a run interrupted during its setup" \
		test "$(cat "$ksm/run") $(cat "$ksm/sleep_millisecs")" = "$run0 $sleep0"
else
	skip "no KSM on this kernel ($ksm/run)"
fi

thp=/sys/kernel/mm/transparent_hugepage
if [ -w "$thp/khugepaged/scan_sleep_millisecs" ] && ! grep -q '\[never\]' "$thp/enabled"; then
	scan0=$(cat "$thp/khugepaged/scan_sleep_millisecs")
	start_vm thp -c 1 -m 64M -w spin -d 600 --antagonist khugepaged:period=10ms,buffer=8M
	await_ready thp
	ok $? "a VM runs with --antagonist khugepaged"
	# Read once the run has read its own start: a rise past it is in the JSON.
	coll0=$(vmstat thp_collapse_alloc)
	check "khugepaged scans with the period asked for" test "$(cat "$thp/khugepaged/scan_sleep_millisecs")" = 10
	collapsed() { [ "$(vmstat thp_collapse_alloc)" -gt "$coll0" ]; }
	wait_for "khugepaged to collapse a huge page" collapsed
	ok $? "khugepaged collapses pieces of the VMM buffer"
	stop_vm INT
	ok $? "the interrupted run exits 0"
	check "JSON: khugepaged ran, its collapses counted" jq_true "$TMP/thp.json" \
		'.antagonists[0] | .kind == "khugepaged" and (.skipped | not) and .counters.thp_collapse_alloc.end > .counters.thp_collapse_alloc.start'
	check "khugepaged's settings are back" test "$(cat "$thp/khugepaged/scan_sleep_millisecs")" = "$scan0"
else
	skip "no transparent huge pages, or they are off"
fi

# NUMA balancing needs two nodes with memory; with one, the run goes on and
# says why it skipped the antagonist.
nodes=$(ls -d /sys/devices/system/node/node[0-9]* 2> /dev/null | wc -l)
run_vm numa -c 1 -m 64M -w spin -d 200ms --antagonist numa-balancing:period=50ms
ok $? "a run with --antagonist numa-balancing exits 0"
if [ ! -e /proc/sys/kernel/numa_balancing ]; then
	check "JSON: skipped, because the kernel lacks it" jq_true "$TMP/numa.json" \
		'.antagonists[0].skipped and (.antagonists[0].skip_reason | test("CONFIG_NUMA_BALANCING"))'
elif [ "$nodes" -lt 2 ]; then
	check "JSON: skipped on one NUMA node, with the reason" jq_true "$TMP/numa.json" \
		'.antagonists[0].skipped and (.antagonists[0].skip_reason | test("one NUMA node"))'
	check "the skip is one warning on stderr" grep -q "antagonist 'numa-balancing:period=50ms' skipped" "$TMP/numa.err"
else
	check "JSON: NUMA balancing ran, its settings recorded" jq_true "$TMP/numa.json" \
		'.antagonists[0] | (.skipped | not) and .settings["/proc/sys/kernel/numa_balancing"].run == "1"'
fi

# Reclaim from memory.high needs cgroup v2's memory controller and swap;
# where the host lacks either, the run goes on and says which.
cg=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo 2> /dev/null)
cg0=$(sed -n 's/^0:://p' /proc/self/cgroup)
reclaims=0
[ -z "$cg" ] || ! grep -qw memory "$cg/cgroup.controllers" 2> /dev/null ||
	[ "$(wc -l < /proc/swaps)" -le 1 ] || reclaims=1
if [ $reclaims = 1 ]; then
	# Reclaim takes its time on a slow host: the run lasts until the cgroup
	# kvmstall made has gone over memory.high and had pages reclaimed (read
	# every 0.1 s, for at most 5 minutes), then it is stopped.  Writing
	# memory.high reclaims at once, in the writer: on a slow host the
	# antagonist can still be in that write, before its first pass, when
	# the counters have risen, so its passes are not what is checked.
	start_vm reclaim -c 1 -m 64M -b anon -w touch -d 600 --antagonist reclaim:buffer=32M
	if await_ready reclaim; then
		rdir="$cg/kvmstall-$VM_PID" i=0
		until [ "$(awk '$1 == "high" { print $2 }' "$rdir/memory.events" 2> /dev/null)" -gt 0 ] 2> /dev/null &&
			[ "$(awk '$1 == "pgsteal" { print $2 }' "$rdir/memory.stat" 2> /dev/null)" -gt 0 ] 2> /dev/null; do
			i=$((i + 1))
			[ $i -lt 3000 ] || break
			sleep 0.1
		done
		echo "# reclaim seen after $i polls of $rdir"
	fi
	stop_vm INT
	ok $? "a run with --antagonist reclaim exits 0 when stopped"
else
	run_vm reclaim -c 1 -m 64M -b anon -w touch -d 2 --antagonist reclaim:buffer=32M
	ok $? "a run with --antagonist reclaim exits 0"
fi
if [ $reclaims = 1 ]; then
	echo "# reclaim: $("$JQ" -c '.antagonists[0] | {passes, counters}' "$TMP/reclaim.json" 2> /dev/null)"
	check "JSON: reclaim ran: over memory.high, pages scanned and reclaimed" jq_true "$TMP/reclaim.json" \
		'.antagonists[0] | (.skipped | not) and .counters.high.end > .counters.high.start and
		 .counters.pgsteal.end > .counters.pgsteal.start'
	dir=$(jq -r '.antagonists[0].settings | keys[] | select(endswith("/memory.high"))' "$TMP/reclaim.json")
	check "the cgroup kvmstall made is gone (${dir%/memory.high})" test -n "$dir" -a ! -e "${dir%/memory.high}"
	check "and this shell's cgroup is where it was" test "$(sed -n 's/^0:://p' /proc/self/cgroup)" = "$cg0"
elif [ -z "$cg" ]; then
	check "JSON: skipped without cgroup v2, with the reason" jq_true "$TMP/reclaim.json" \
		'.antagonists[0].skipped and (.antagonists[0].skip_reason | test("no cgroup v2"))'
elif ! grep -qw memory "$cg/cgroup.controllers" 2> /dev/null; then
	check "JSON: skipped without the v2 memory controller, with the reason" jq_true "$TMP/reclaim.json" \
		'.antagonists[0].skipped and (.antagonists[0].skip_reason | test("memory controller is not on cgroup v2"))'
else
	check "JSON: skipped without swap, with the reason" jq_true "$TMP/reclaim.json" \
		'.antagonists[0].skipped and (.antagonists[0].skip_reason | test("no swap"))'
fi
done_testing
