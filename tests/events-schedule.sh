#!/bin/sh
# SPDX-License-Identifier: MIT
# Schedules are kept: counts are exact, whatever the machine's load (a host
# too slow for a rate gets what it could not fire within 1 s of the end
# reported as given up, and only that accounting is checked).
. "${top_srcdir:-.}/tests/lib.sh"
require_kvm

for via in uring syscall; do
	run_vm "rate-$via" --vcpus 1 --memory 16M --workload spin --duration 2 \
		--events "madvise-dontneed:outside:rate=1000,via=$via"
	ok $? "1000/s via $via: run succeeds"
	fired "rate-$via" "1000/s for 2 s via $via" 2000
	check "1000/s via $via: submitted the way asked" jq_true "$TMP/rate-$via.json" \
		"(.events.streams[0].via == \"$( [ $via = uring ] && echo io_uring || echo syscall)\") and all(.events.streams[0].log[]; .[6] == $( [ $via = uring ] && echo true || echo false))"
	check "1000/s via $via: lateness and latency reported" jq_true "$TMP/rate-$via.json" \
		'.events.streams[0] | .lateness_ns.p50 >= 0 and .latency_ns.max > 0'
done

run_vm burst --vcpus 1 --memory 16M --workload spin --duration 2 \
	--events madvise-dontneed:outside:burst=50,every=500ms
fired burst "bursts of 50 every 500 ms for 2 s" 200
check "a burst shares one due time" jq_true "$TMP/burst.json" \
	'[.events.streams[0].log[] | .[0]] | unique | length == 4'

run_vm delay --vcpus 1 --memory 16M --workload spin --duration 2 \
	--events madvise-dontneed:outside:rate=100,delay=1s
fired delay "100/s starting after 1 s of 2" 100
check "no event before the delay" jq_true "$TMP/delay.json" \
	'(.timing.run_start_monotonic_ns + 1000000000) as $t | all(.events.streams[0].log[]; .[0] >= $t)'

run_vm count --vcpus 1 --memory 16M --workload spin --duration 1 \
	--events madvise-dontneed:outside:rate=1000,count=7
fired count "count=7 at 1000/s for 1 s" 7

# Two streams at once, one fast and irrelevant, one slow and relevant.
run_vm two --vcpus 2 --memory 16M --workload touch --duration 2 \
	--events madvise-dontneed:outside:rate=2000 --events mprotect:inside:rate=10
fired two "two streams, 2000/s and 10/s for 2 s" 4000 20
# --submit uring sends what io_uring can do through it, the rest as syscalls.
run_vm submit --vcpus 1 --memory 16M --workload spin --duration 1 --submit uring \
	--events madvise-dontneed:outside:rate=50 --events mprotect:outside:rate=50 \
	--events madvise-dontneed:outside:rate=50,via=syscall
ok $? "--submit uring with an mprotect stream runs"
check "--submit uring: madvise through io_uring, mprotect and via=syscall as syscalls" \
	jq_true "$TMP/submit.json" '[.events.streams[].via] == ["io_uring", "syscall", "syscall"]'

# Sequential placement over two slots: each slot gets both its decoys in turn.
run_vm seq --vcpus 1 --memory 16M --slots 2 --workload spin --duration 1 \
	--events madvise-dontneed:outside:rate=40,placement=seq
check "sequential outside events take both decoys of both slots in turn" jq_true "$TMP/seq.json" \
	'([.events.streams[0].log[0:4][] | .[3]] | sort) == ([.layout.slots[] | .decoy_before_hva, .decoy_after_hva] | sort)'
done_testing
