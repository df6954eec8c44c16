# SPDX-License-Identifier: MIT
# Helpers for the integration tests: real VMs on /dev/kvm.
# Exit status: 0 pass, 1 fail, 77 skip (with the reason printed).

KVMSTALL=${KVMSTALL:-./kvmstall}
JQ=${JQ:-jq}
T_N=0
T_FAILED=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvmstall-test.XXXXXX") || exit 99
HP_RESTORE=""

T_MOUNTS=""
T_INSTANCE=""
cleanup() {
	# An ftrace instance a test made (vm-anatomy.sh).
	[ -z "$T_INSTANCE" ] || rmdir "$T_INSTANCE" 2>/dev/null
	for m in $T_MOUNTS; do
		umount "$m" 2>/dev/null
	done
	for r in $HP_RESTORE; do
		echo "${r#*=}" > "${r%=*}" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

skip_all() {
	echo "SKIP: $*"
	exit 77
}

ok() { # ok COND-EXIT-STATUS DESCRIPTION; returns 1 on failure, for "ok ... || diagnose"
	T_N=$((T_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $T_N - $2"
	else
		echo "not ok $T_N - $2"
		T_FAILED=$((T_FAILED + 1))
		return 1
	fi
}

check() { # check DESCRIPTION COMMAND...
	desc=$1
	shift
	"$@"
	ok $? "$desc"
}

skip() {
	T_N=$((T_N + 1))
	echo "ok $T_N - # SKIP $*"
}

done_testing() {
	echo "# $T_N checks, $T_FAILED failed"
	[ "$T_FAILED" -eq 0 ]
	exit $?
}

# fired NAME DESC N...: the event streams of run NAME (in order) had N
# events each due before the planned end, and fired them all.  A stream
# that this host could not keep up with gives the rest up 1 s after the end
# and says so (given_up in the report, a warning on stderr); then only that
# accounting is checked, and the count is skipped, with the numbers.
fired() {
	fname=$1 fdesc=$2
	shift 2
	i=0
	for want; do
		# shellcheck disable=SC2046 # three numbers
		fired_of "$fdesc: stream $i" "$want" $("$JQ" -r ".events.streams[$i] |
			\"\(.events) \(.scheduled) \(.given_up)\"" "$TMP/$fname.json" 2>/dev/null) "$TMP/$fname.err"
		i=$((i + 1))
	done
}

# fired_of DESC WANT EVENTS SCHEDULED GIVEN_UP STDERR_FILE: fired's checks of
# one stream, from its numbers (for a caller that read them already).
fired_of() {
	if [ $# -ne 6 ]; then
		ok 1 "$1: the report gives events, scheduled and given_up"
	elif [ "$5" -gt 0 ]; then
		check "$1: $2 scheduled; $3 fired and $5 given up add up to $4" \
			test "$4" -eq "$2" -a $(($3 + $5)) -eq "$4"
		check "$1: a warning says it fell behind its schedule" grep -q "fell behind its schedule" "$6"
		skip "$1: this host did not keep up with its rate ($3 of $4 fired in time)"
	else
		check "$1: fired all $2 events of its schedule ($3 of $4)" test "$4" -eq "$2" -a "$3" -eq "$2"
	fi
}

# jq_true FILE EXPR: the expression holds in the JSON report.
jq_true() {
	[ "$("$JQ" -e "$2" "$1" 2>/dev/null)" = true ]
}

require_kvm() {
	[ -e /dev/kvm ] || skip_all "this host has no /dev/kvm"
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip_all "/dev/kvm is not accessible to this user"
	command -v "$JQ" > /dev/null 2>&1 || skip_all "jq is needed to read the JSON reports"
}

# run_vm NAME ARGS...: run kvmstall with a time limit; stdout, stderr and
# the JSON report land in $TMP/NAME.{out,err,json}; returns its status.
run_vm() {
	name=$1
	shift
	timeout -k 10 300 "$KVMSTALL" --quiet --json "$TMP/$name.json" "$@" \
		> "$TMP/$name.out" 2> "$TMP/$name.err"
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "# kvmstall $* exited $rc:"
		sed 's/^/#   /' "$TMP/$name.err" | head -n 20
	fi
	return $rc
}

# start_vm NAME ARGS...: start kvmstall in the background, outputs as for
# run_vm; VM_PID is its process id.  Follow it with await_ready NAME: no
# test guesses how long kvmstall takes to get somewhere.
start_vm() {
	name=$1
	shift
	rm -f "$TMP/$name.ready"
	mkfifo "$TMP/$name.ready" || return 1
	"$KVMSTALL" --quiet --json "$TMP/$name.json" --ready-fd 3 "$@" \
		3> "$TMP/$name.ready" > "$TMP/$name.out" 2> "$TMP/$name.err" &
	VM_PID=$!
}

# await_ready NAME: wait until every vCPU of the VM that start_vm started
# runs its workload (kvmstall's --ready-fd); false, with its stderr shown,
# if it exited before that or took longer than 300 s.
await_ready() {
	line=$(timeout 300 head -n 1 "$TMP/$1.ready")
	[ "$line" = ready ] && return 0
	echo "# kvmstall did not get ready (read '$line'):"
	sed 's/^/#   /' "$TMP/$1.err" | head -n 20
	return 1
}

# stop_vm SIGNAL: send the VM that start_vm started a signal and wait for it;
# returns its exit status.
stop_vm() {
	kill -s "$1" "$VM_PID" 2>/dev/null
	wait "$VM_PID"
}

# hp_dir SIZE_KB: the HugeTLB pool a one-slot VM draws from.  On a host
# with several nodes with memory, kvmstall binds the first slot to the
# first of them, so that node's pool (a global pool grown there would be
# spread over the nodes); the global pool otherwise.
hp_dir() {
	mem=$(cat /sys/devices/system/node/has_memory 2>/dev/null || echo 0)
	case $mem in
	*[-,]*) echo "/sys/devices/system/node/node${mem%%[-,]*}/hugepages/hugepages-${1}kB" ;;
	*) echo "/sys/kernel/mm/hugepages/hugepages-${1}kB" ;;
	esac
}

hp_free() { # hp_free SIZE_KB: free pages of that pool, less those reserved
	d=$(hp_dir "$1")
	resv=0
	[ ! -r "$d/resv_hugepages" ] || resv=$(cat "$d/resv_hugepages")
	echo $(($(cat "$d/free_hugepages") - resv))
}

# Serialise the tests that use the HugeTLB pool, and those that set or count
# the kernel's system-wide memory work (ksmd, khugepaged).
hp_lock() {
	command -v flock > /dev/null 2>&1 || skip_all "flock (util-linux) is needed to share the hugepage pool"
	exec 9> "${TMPDIR:-/tmp}/kvmstall-hugepages.lock"
	flock -w 900 9 || skip_all "another test held the hugepage lock for 15 minutes"
}

# hp_reserve SIZE_KB PAGES: make PAGES pages of that size free; the pool is
# restored when the test exits.  Fails when the kernel cannot provide them.
hp_reserve() {
	d=$(hp_dir "$1")
	[ -d "$d" ] || return 1
	nr=$(cat "$d/nr_hugepages")
	case " $HP_RESTORE " in
	*" $d/nr_hugepages="*) ;;
	*) HP_RESTORE="$HP_RESTORE $d/nr_hugepages=$nr" ;;
	esac
	have=$(hp_free "$1")
	[ "$have" -ge "$2" ] && return 0
	echo $((nr + $2 - have)) > "$d/nr_hugepages" 2>/dev/null
	[ "$(hp_free "$1")" -ge "$2" ]
}

hp_release() { # hp_release SIZE_KB: back to what it was before this test
	d=$(hp_dir "$1")
	for r in $HP_RESTORE; do
		[ "${r%=*}" = "$d/nr_hugepages" ] && echo "${r#*=}" > "$d/nr_hugepages"
	done
}
