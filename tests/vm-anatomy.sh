#!/bin/sh
# SPDX-License-Identifier: MIT
# --anatomy: every stall split into where the vCPU thread was on the host
# (preempted, blocked, in KVM by exit reason, unexplained), from perf
# context switches and KVM tracepoints; a forced ring overflow is counted;
# without the privilege for tracepoints the run still completes and says
# what it could not see.
. "${top_srcdir:-.}/tests/lib.sh"
require_kvm
[ "$(id -u)" = 0 ] || skip_all "the KVM tracepoints need root (or CAP_PERFMON)"
paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2> /dev/null || echo 2)

# More vCPUs than CPUs, spinning: the stalls are the host scheduler taking
# the CPU away, so nearly all of their time is preempted.
# What the host did not see stays unexplained: in the nested rig, where
# the rig's own CPUs are taken away by the host under them, that part can
# reach a fifth of a run.  Up to three runs: one of them must reach 80 %.
ncpu=$(getconf _NPROCESSORS_ONLN)
for try in 1 2 3; do
	run_vm spin -c $((ncpu * 3)) -m 64M -w spin -d 3 --csv "$TMP/spin.csv"
	rc=$?
	[ $rc = 0 ] || break
	echo "# run $try: preempted share $("$JQ" '.total.stall_causes.preempted_ns / .total.stalls.total_ns' "$TMP/spin.json"); stall causes $("$JQ" -c '.total.stall_causes | del(.exit_reasons)' "$TMP/spin.json")"
	jq_true "$TMP/spin.json" '.total.stall_causes.preempted_ns >= 0.8 * .total.stalls.total_ns' && break
done
ok $rc "a spin run with $((ncpu * 3)) vCPUs on $ncpu CPUs"
check "JSON: the anatomy saw context switches" jq_true "$TMP/spin.json" \
	'.anatomy.enabled and .anatomy.context_switches and .anatomy.missing == null'
check "at least 80 % of the stall time is preempted (in one of $try runs)" jq_true "$TMP/spin.json" \
	'.total.stall_causes.preempted_ns >= 0.8 * .total.stalls.total_ns'
check "the parts add up to the stall time split, per vCPU and in total" jq_true "$TMP/spin.json" \
	'[.total.stall_causes, (.vcpus[].stall_causes)] | all(. as $c |
	  (($c.preempted_ns + $c.blocked_ns + $c.in_kvm_ns + $c.unexplained_ns - $c.stall_ns) | fabs) < 1e-3 * $c.stall_ns + 1)'
check "the total is the sum of the vCPUs" jq_true "$TMP/spin.json" \
	'.total.stall_causes.preempted_ns as $t | ([.vcpus[].stall_causes.preempted_ns] | add) - $t | fabs < 1e-6 * $t + 1000'
check "CSV: cumulative cause columns, preempted the largest at the end" sh -c "
	head -n 1 '$TMP/spin.csv' | grep -q ',preempted_ms_total,blocked_ms_total,in_kvm_ms_total,unexplained_ms_total\$' &&
	tail -n 1 '$TMP/spin.csv' | awk -F, '\$10 > \$13 && \$10 > 0 { ok = 1 } END { exit !ok }'"
"$KVMSTALL" -c 2 -m 64M -w spin -d 200ms > "$TMP/table.out" 2> /dev/null
check "the table has the split" grep -q "where the stall time went" "$TMP/table.out"

# One vCPU writing pages the host has just dropped: its stalls are page
# faults, and the time KVM spends on them is checked against a second,
# independent record of the same run: an ftrace instance of our own with
# the same tracepoints and the scheduler's switches, summed here per fault
# over the time the vCPU thread was on its CPU.  How large a share of a
# stall KVM's visible part is depends on the host (about 75 % on one
# software KVM here, under 20 % on another), so that share is not what is
# tested: kvmstall must count what the trace shows, within the stalls.
# Code that splits wrongly (a third of each piece, say) fails.
tr=/sys/kernel/tracing
inst=$tr/instances/kvmstall-test-$$
trace_on() { # trace_on: the instance, with the pairs both kinds of KVM fire
	[ -d "$tr/instances" ] && mkdir "$inst" 2> /dev/null || return 1
	T_INSTANCE=$inst
	echo mono > "$inst/trace_clock" && echo 16384 > "$inst/buffer_size_kb" || return 1
	for e in kvm/kvm_exit kvm/kvm_entry kvmmmu/kvm_mmu_pagetable_walk kvmmmu/kvm_mmu_set_spte \
		sched/sched_switch; do
		[ ! -e "$inst/events/$e/enable" ] || echo 1 > "$inst/events/$e/enable" || return 1
	done
}
# traced_kvm_ns TID exit|walk: nanoseconds thread TID spent on its CPU
# between each kvm_exit and the next kvm_entry (exit), or between each
# pagetable walk and the spte it set (walk); -1 when the trace overflowed.
traced_kvm_ns() {
	if grep -q '^overrun: [1-9]' "$inst"/per_cpu/cpu*/stats; then
		echo -1
		return
	fi
	case $2 in
	exit) open=kvm_exit: close=kvm_entry: ;;
	*) open=kvm_mmu_pagetable_walk: close=kvm_mmu_set_spte: ;;
	esac
	awk -v tid="$1" -v open="$open" -v shut="$close" '
	function t_of(i) { sub(/:$/, "", $(i - 1)); return $(i - 1) * 1e9 }
	{
		for (i = 2; i <= NF && $i !~ /^[a-z_]+:$/; i++)
			;
		if (i > NF)
			next
		if ($i == "sched_switch:") {
			t = t_of(i)
			if (index($0, " prev_pid=" tid " ")) {
				if (inside && on) sum += t - start
				on = 0
			}
			if ($0 ~ ("next_pid=" tid "( |$)")) {
				on = 1
				start = t
			}
			next
		}
		if ($0 !~ ("-" tid " +\\[")) next
		on = 1
		if ($i == open) { inside = 1; start = t_of(i) }
		else if ($i == shut && inside) { sum += t_of(i) - start; inside = 0 }
	}
	END { printf "%.0f\n", sum }' "$inst/trace"
}
# On a loaded machine (make check-load) the run gets a higher priority, so
# that preemptions stay few; they are handled either way.
renice -n -15 -p $$ > /dev/null 2>&1 || true
if trace_on; then
	traced=1
else
	traced=0
	echo "# no ftrace instance here ($inst): the in-KVM time is not cross-checked"
fi
start_vm fault -c 1 -m 64M -b anon -w fault -d 1 -t 2us
await_ready fault
tid=$(grep -lx 'ks-vcpu-0' /proc/"$VM_PID"/task/*/comm 2> /dev/null | head -n 1 | cut -d/ -f5)
wait "$VM_PID"
ok $? "a fault run" || sed 's/^/# /' "$TMP/fault.err"
renice -n 0 -p $$ > /dev/null 2>&1 || true
[ $traced = 0 ] || echo 0 > "$inst/tracing_on"
if jq_true "$TMP/fault.json" '.anatomy.in_kvm_from != null'; then
	check "exit reasons are named" jq_true "$TMP/fault.json" \
		'.total.stall_causes.exit_reasons | length > 0'
	check "the reason with the most time is a page fault" jq_true "$TMP/fault.json" \
		'.total.stall_causes.exit_reasons | to_entries | max_by(.value).key |
		 test("page_fault|EPT_VIOLATION|npf|PF excp")'
	check "page faults are counted in the stalls" jq_true "$TMP/fault.json" \
		'.total.stall_causes.page_faults > 0 and .total.stall_causes.repeated_faults >= 0'
	if [ $traced = 1 ] && [ -n "$tid" ]; then
		jq_true "$TMP/fault.json" '.anatomy.in_kvm_from | test("^kvm_exit")' && how=exit || how=walk
		want=$(traced_kvm_ns "$tid" $how)
		got=$("$JQ" '.total.stall_causes.in_kvm_ns | floor' "$TMP/fault.json")
		echo "# in KVM ($how pairs): kvmstall counted $got ns in stalls, the trace shows $want ns on the CPU"
		if [ -z "$want" ]; then
			ok 1 "the trace could be read"
		elif [ "$want" -lt 0 ]; then
			skip "the ftrace instance's buffer overflowed: the trace is incomplete"
		else
			# A trace with no fault of the thread while kvmstall counted
			# some fails here too: the two disagree.
			check "in KVM: at least half of what the trace shows, and no more than it" \
				test "$want" -gt 0 -a $((got * 2)) -ge "$want" -a "$got" -le $((want + want / 20 + 1000000))
		fi
	else
		skip "no ftrace instance to cross-check the in-KVM time against"
	fi
else
	skip "fault: this KVM shows neither kvm_exit nor the kvmmmu tracepoints ($(jq -r .anatomy.missing "$TMP/fault.json"))"
fi
[ -z "$T_INSTANCE" ] || rmdir "$T_INSTANCE"
T_INSTANCE=""

# A vCPU thread stopped (SIGSTOP) while its guest runs is switched out
# asleep: its stall is blocked time.
start_vm stop -c 1 -m 64M -w spin -d 600
await_ready stop
ok $? "a VM runs"
kill -STOP "$VM_PID"
# Every thread, the vCPU's too, has stopped (the group stop is not atomic).
# Nothing signals that another process stopped (the shell's wait cannot
# ask for WUNTRACED): its state is polled, with a 60 s deadline.
stopped() { ! awk '{ print $3 }' /proc/"$VM_PID"/task/*/stat | grep -qv '^T$'; }
i=0
until stopped; do
	i=$((i + 1))
	[ $i -lt 600 ] || break
	sleep 0.1
done
check "kvmstall is stopped, every thread" stopped
# Both clock readings are taken while every thread is known to be stopped
# (it stopped before u0 and is continued after u1), so the vCPU thread was
# asleep at least from u0 until u1.  The stop is held for half a second
# between them: a stall that dwarfs whatever else the run spent in KVM.
# /proc/uptime, not date +%N (busybox's date has no %N): hundredths of a
# second, so the stop was seen to last at least the difference less 0.01 s.
u0=$(cut -d' ' -f1 /proc/uptime)
sleep 0.5
u1=$(cut -d' ' -f1 /proc/uptime)
kill -CONT "$VM_PID"
stop_vm INT
ok $? "the interrupted run exits 0"
seen=$(awk -v a="$u0" -v b="$u1" 'BEGIN { printf "%.0f", (b - a - 0.01) * 1e9 }')
echo "# stopped for at least $seen ns; stall causes: $(jq -c '.total.stall_causes | del(.exit_reasons)' "$TMP/stop.json")"
if jq_true "$TMP/stop.json" '.total.stall_causes.lost_records > 0'; then
	skip "perf records were lost (a loaded host): the stop cannot be accounted for"
elif jq_true "$TMP/stop.json" '.host.tsc_stable | not'; then
	skip "the host's TSC is unstable: KVM may hold the guest's TSC still while it is stopped, hiding the stall"
else
	check "the stop is blocked time, at least as long as it was seen to be" jq_true "$TMP/stop.json" \
		".total.stall_causes.blocked_ns >= $seen and .total.stall_causes.blocked_ns > .total.stall_causes.in_kvm_ns"
fi

# Rings that are not drained during the run overflow: lost records are counted.
KVMSTALL_TEST_ANATOMY=no-drain "$KVMSTALL" -c 1 -m 64M -b anon -w fault -d 1 \
	--json "$TMP/lost.json" > "$TMP/lost.out" 2> "$TMP/lost.err"
ok $? "a run whose rings overflow completes"
check "JSON: lost records counted" jq_true "$TMP/lost.json" \
	'.anatomy.lost_records > 0 and .total.stall_causes.lost_records == .anatomy.lost_records and .vcpus[0].stall_causes.lost_records > 0'
check "the table says so" grep -q "^perf records lost: [1-9]" "$TMP/lost.out"

# Too few file descriptors for every vCPU thread's ring: the threads that
# would leave the run too few go without, and the reports are still written.
(ulimit -n 160 && exec "$KVMSTALL" -q -c 32 -m 64M -w spin -d 200ms \
	--json "$TMP/nofile.json" --csv "$TMP/nofile.csv") > /dev/null 2> "$TMP/nofile.err"
ok $? "32 vCPUs with 160 file descriptors: the run exits 0" || sed 's/^/# /' "$TMP/nofile.err"
check "CSV written" test -s "$TMP/nofile.csv"
check "JSON written; the missing rings are named with the limit" jq_true "$TMP/nofile.json" \
	'(.anatomy.missing | test("of 32 vCPU threads had no perf ring .the open file limit, 160")) and (.vcpus | length) == 32'
check "one line on stderr says so" test "$(grep -c 'open file limit' "$TMP/nofile.err")" = 1

# Off: no anatomy at all.
run_vm off -c 1 -m 64M -w spin -d 200ms --anatomy off
ok $? "--anatomy off"
check "JSON: no stall causes" jq_true "$TMP/off.json" \
	'.total.stall_causes == null and .vcpus[0].stall_causes == null and (.anatomy.enabled | not) and (.anatomy.requested | not)'

# Root without capabilities: perf_event_paranoid applies.  The run completes,
# says in one line what it could not see and reports the rest.
# util-linux's setpriv: busybox's has no --bounding-set, and a busybox sh
# may run its own applet whatever PATH says, so the others go by full path.
sp=""
for c in setpriv /usr/bin/setpriv /usr/local/bin/setpriv; do
	if "$c" --bounding-set=-all true > /dev/null 2>&1; then
		sp=$c
		break
	fi
done
if [ -n "$sp" ] && [ "$paranoid" -ge 0 ]; then
	"$sp" --bounding-set=-all --inh-caps=-all "$KVMSTALL" -q -c 1 -m 64M -w spin -d 300ms \
		--json "$TMP/nocap.json" > /dev/null 2> "$TMP/nocap.err"
	ok $? "without capabilities the run exits 0" || sed 's/^/# /' "$TMP/nocap.err"
	check "one line on stderr says what is missing" test "$(grep -c 'stall anatomy' "$TMP/nocap.err")" = 1
	check "JSON: the missing part is named and null, the rest is reported" jq_true "$TMP/nocap.json" \
		'(.anatomy.missing | test("paranoid|tracefs")) and .total.stall_causes.in_kvm_ns == null and
		 .total.stall_causes.exit_reasons == null and
		 (if .anatomy.context_switches then .total.stall_causes.preempted_ns != null else .total.stall_causes == null end)'
else
	skip "no setpriv with --bounding-set (util-linux), or perf_event_paranoid ($paranoid) lets anyone trace"
fi
done_testing
