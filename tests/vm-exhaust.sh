#!/bin/sh
# SPDX-License-Identifier: MIT
# Running out of something: hugepages, memory, file descriptors, memslots,
# disk space.  Each time one clear line, a non-zero exit, the HugeTLB pool
# back as it was, and no half-written or temporary report left behind.
. "${top_srcdir:-.}/tests/lib.sh"
require_kvm

# expect_fail NAME STATUS PATTERN CMD...: CMD exits STATUS with one line on
# stderr that matches PATTERN.
expect_fail() {
	name=$1 want=$2 pat=$3
	shift 3
	"$@" > "$TMP/$name.out" 2> "$TMP/$name.err"
	rc=$?
	check "$name: exit $want (got $rc)" test "$rc" -eq "$want"
	check "$name: one line on stderr" test "$(wc -l < "$TMP/$name.err")" -eq 1
	check "$name: it says '$pat'" grep -q -- "$pat" "$TMP/$name.err"
	sed 's/^/#   /' "$TMP/$name.err" | head -n 5
}

no_temp_files() { # no_temp_files DIR: no .NAME.XXXXXX left by an aborted write
	[ -z "$(find "$1" -maxdepth 1 -name '.*.??????' 2> /dev/null)" ]
}

# ASan reserves terabytes of shadow address space and LeakSanitizer needs
# descriptors of its own: limits on either break the sanitizer first.
if [ -n "${KVMSTALL_SANITIZERS:-}" ]; then
	limits_skip="ulimit -v and ulimit -n stop a build with sanitizers ($KVMSTALL_SANITIZERS) before kvmstall"
else
	limits_skip=""
fi

# Memory: an address-space limit makes the slot reservation fail.
if [ -n "$limits_skip" ]; then
	skip "vmem, nofile: $limits_skip"
else
	expect_fail vmem 1 "cannot reserve .* bytes of address space for slot 0: Cannot allocate memory" \
		sh -c "ulimit -v 400000 && exec '$KVMSTALL' --vcpus 2 --memory 1G --duration 1 --quiet --json '$TMP/vmem.json'"
	check "vmem: no report for a run that never started" test ! -e "$TMP/vmem.json"

	# File descriptors: KVM_CREATE_VCPU fails part-way and says which vCPU.
	expect_fail nofile 1 "KVM_CREATE_VCPU [0-9]*: out of file descriptors; raise the limit (ulimit -n)" \
		sh -c "ulimit -n 24 && exec '$KVMSTALL' --vcpus 64 --memory 64M --duration 1 --quiet"
fi

# Memslots: one more than KVM has (kvmstall keeps one for itself).
run_vm caps --vcpus 1 --memory 16M --duration 10ms
n=$("$JQ" '.host.kvm.nr_memslots' "$TMP/caps.json")
if [ "$n" -gt 0 ] 2> /dev/null && [ "$n" -le 65535 ]; then
	expect_fail slots 2 "--slots $n is more than this host's KVM allows (KVM_CAP_NR_MEMSLOTS = $n" \
		"$KVMSTALL" --vcpus 1 --memory "$((n * 2))M" --slots "$n" --duration 1 --quiet
else
	skip "memslots: KVM_CAP_NR_MEMSLOTS is $n, above what --slots takes"
fi

# HugeTLB: too few pages is refused before anything is mapped, and
# --reserve-hugepages gives back what it added when setup then fails.
hp_lock
d=$(hp_dir 2048)
if [ -d "$d" ] && hp_reserve 2048 0; then
	nr0=$(cat "$d/nr_hugepages")
	free=$(hp_free 2048)
	expect_fail hugepages 2 "not enough 2 MiB hugepages" \
		"$KVMSTALL" --vcpus 1 --memory "$(((free + 64) * 2))M" --backing hugetlb-2M --duration 1 --quiet
	check "hugepages: the pool is untouched ($nr0 pages)" test "$(cat "$d/nr_hugepages")" -eq "$nr0"
	if [ -n "$limits_skip" ]; then
		skip "reserve-vmem: $limits_skip"
	else
		expect_fail reserve-vmem 1 "Cannot allocate memory" \
			sh -c "ulimit -v 300000 && exec '$KVMSTALL' --vcpus 1 --memory 512M --backing hugetlb-2M --reserve-hugepages --duration 1 --quiet"
		check "reserve-vmem: the pages --reserve-hugepages added went back ($nr0)" \
			test "$(cat "$d/nr_hugepages")" -eq "$nr0"
	fi
	hp_release 2048
else
	skip "hugepages: this host has no 2 MiB HugeTLB pool to exhaust"
fi

# Disk: a report that does not fit is not written at all, never truncated.
mkdir "$TMP/full"
if mount -t tmpfs -o size=12k kvmstall-test "$TMP/full" 2> /dev/null; then
	T_MOUNTS="$TMP/full"
	# About 8 KiB of CSV (50 samples of 2 vCPUs), 16 KiB of JSON.
	"$KVMSTALL" --vcpus 2 --memory 64M --duration 1 --interval 20ms --quiet \
		--json "$TMP/full/r.json" --csv "$TMP/full/r.csv" > /dev/null 2> "$TMP/full.err"
	rc=$?
	check "full disk: exit 1 (got $rc)" test "$rc" -eq 1
	check "full disk: one line names the JSON report and the error" sh -c \
		"[ \$(wc -l < '$TMP/full.err') -eq 1 ] && grep -q 'cannot write the JSON report $TMP/full/r.json: No space left on device; no report was written' '$TMP/full.err'"
	check "full disk: no JSON, not even a truncated one" test ! -e "$TMP/full/r.json"
	check "full disk: the CSV, which fit, is complete" sh -c \
		"head -n1 '$TMP/full/r.csv' | grep -q '^time_s,' && tail -n1 '$TMP/full/r.csv' | awk -F, '\$9 == 1 && NF == 13 { ok = 1 } END { exit !ok }'"
	check "full disk: no temporary file left behind" no_temp_files "$TMP/full"
	# The CSV does not fit either when it grows past the space.
	"$KVMSTALL" --vcpus 8 --memory 64M --duration 1 --interval 10ms --quiet \
		--json "$TMP/csvfull.json" --csv "$TMP/full/big.csv" > /dev/null 2> "$TMP/csvfull.err"
	rc=$?
	check "full disk, CSV: exit 1 (got $rc) with one line" sh -c \
		"[ $rc -eq 1 ] && [ \$(wc -l < '$TMP/csvfull.err') -eq 1 ] && grep -q 'cannot write the CSV time series $TMP/full/big.csv: No space left on device' '$TMP/csvfull.err'" ||
		sed 's/^/#   /' "$TMP/csvfull.err"
	check "full disk, CSV: no CSV and no temporary file" sh -c \
		"[ ! -e '$TMP/full/big.csv' ] && [ -z \"\$(find '$TMP/full' -name '.*')\" ]"
	check "full disk, CSV: the JSON report elsewhere is whole" jq_true "$TMP/csvfull.json" \
		'(.vcpus | length) == 8'
	umount "$TMP/full" && T_MOUNTS=""
else
	skip "full disk: cannot mount a small tmpfs here (needs root)"
fi
done_testing
