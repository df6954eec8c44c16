#!/bin/sh
# SPDX-License-Identifier: MIT
# The A/B report as Markdown on stdout (bench/ab-report.sh runs this):
# RESULTS_DIR OUT_DIR, with OUT_DIR/{runs,stats,compare}.tsv and the plots
# already written.  Every figure is a median over the repetitions with its
# 95 % bootstrap interval; intervals that overlap are "no difference
# measured".
set -eu
res=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
meta="$res/meta.txt"
[ -f "$meta" ] || meta=/dev/null
quick_list="$here/matrix-quick.txt"

# How in-KVM time was measured, per kernel, from the first run of each
# that says ("on stock and patched from ...; on host-...: from ...").
inkvm=""
for kd in "$res"/raw/*/; do
	k=$(basename "$kd")
	[ "$k" != patched ] || continue
	how=""
	for f in "$kd"rep*/*.json.gz "$kd"rep*/*.json; do
		[ -e "$f" ] || continue
		case $f in *.gz) how=$(gzip -dc "$f" | jq -r '.anatomy.in_kvm_from // empty' 2> /dev/null) || how="" ;;
		*) how=$(jq -r '.anatomy.in_kvm_from // empty' "$f" 2> /dev/null) || how="" ;;
		esac
		[ -z "$how" ] || break
	done
	[ -n "$how" ] || continue
	[ "$k" != stock ] || k="stock and patched"
	inkvm="$inkvm${inkvm:+; }on $k from $how"
done

gawk -F'\t' -v metaf="$meta" -v quickf="$quick_list" -v res="$res" -v inkvm="$inkvm" '
function fmt(v) {
	if (v == "" || v == "NA") return "-"
	v += 0
	if (v == 0) return "0"
	if (v >= 100 || v <= -100) return sprintf("%.0f", v)
	if (v >= 10 || v <= -10) return sprintf("%.1f", v)
	if (v >= 1 || v <= -1) return sprintf("%.2f", v)
	return sprintf("%.3g", v)
}
function ci(s, m, k,    key) { # "median [lo-hi]" of a scenario, metric and kernel
	key = s SUBSEP m SUBSEP k
	if (!(key in med)) return "-"
	if (lo[key] == hi[key]) return fmt(med[key])
	return fmt(med[key]) " [" fmt(lo[key]) "-" fmt(hi[key]) "]"
}
function has(s, m, k) { return (s SUBSEP m SUBSEP k) in med }
function ratio(s, m,    key) {
	key = s SUBSEP m
	if (!(key in rat) || rat[key] == "NA") return "-"
	return fmt(rat[key]) " [" fmt(rlo[key]) "-" fmt(rhi[key]) "]"
}
function versus(s, b, m, k,    a, c) { # scenario s against baseline b on kernel k
	a = s SUBSEP m SUBSEP k; c = b SUBSEP m SUBSEP k
	if (!(a in med) || !(c in med)) return "not measured"
	if (lo[a] > hi[c]) return sprintf("higher (x%s)", fmt(med[c] ? med[a] / med[c] : 0))
	if (hi[a] < lo[c]) return sprintf("lower (x%s)", fmt(med[c] ? med[a] / med[c] : 0))
	return "no difference measured"
}
function M(s, m, k) { return (s SUBSEP m SUBSEP k) in med ? med[s SUBSEP m SUBSEP k] + 0 : -1 }
# The model: a fault retries when a notification is in flight (or completed)
# while it is being resolved.  Calibrated on one vCPU at 10k outside events/s:
# w = retries / (faults x notifications/s), the time each notification keeps
# a fault from completing; h = mmu_lock hold per acquisition.  Predicts
# retries/s = faults/s x min(1, rate x w) at every other rig point.
function model(    k, kk, cal, w, h, F, s, j, pr, me, err, N, R, Fh, p, U, maxerr, npts, b0, q0, da, hs, Fr, nsv, sv, sl, nb, v, a, b, sh, sc, kq, p99, Ns, Rs, pts, pl, i) {
	cal = "fault4k-dontneed-outside-10k"; b0 = "fault4k-none"
	if (M(cal, "retries_per_s", "stock") < 0 || M(b0, "retries_per_s", "stock") < 0) return
	printf "## Model and projection\n\n"
	printf "A fault retries when an invalidation is in flight, or has completed, while KVM resolves it. "
	printf "Calibrated per kernel on `%s` against `%s` (1 vCPU): **w** = the retries per fault that the events add, divided by the notifications per second, i.e. the time one notification keeps a fault from completing; and **h**, the time a notifier holds mmu_lock per acquisition (from `spin-dontneed-outside-10k` where it ran: the same events without the workload'"'"'s recycling). ", cal, b0
	printf "Faults are the workload'"'"'s iterations (one fault each; exits per fixed fault stay near 1).\n\n"
	printf "| kernel | faults/s | notifications/s | retries/s | w (us) | h (us) |\n|---|---|---|---|---|---|\n"
	for (kk = 1; kk <= 2; kk++) { k = kk == 1 ? "stock" : "patched"
		F = M(cal, "work_per_s", k); R = M(cal, "event_rate", k)
		q0[k] = M(b0, "work_per_s", k) > 0 ? M(b0, "retries_per_s", k) / M(b0, "work_per_s", k) : 0
		w[k] = (F > 0 && R > 0) ? (M(cal, "retries_per_s", k) / F - q0[k]) / R : 0
		if (w[k] < 0) w[k] = 0
		# h from the spin workload where there is one: no recycling, only the events.
		hs = M("spin-dontneed-outside-10k", "mn_lock_acquisitions", k) >= 0 ? "spin-dontneed-outside-10k" : cal
		da = M(hs, "mn_lock_acquisitions", k) - (hs == cal ? M(b0, "mn_lock_acquisitions", k) : 0)
		h[k] = da > 0 ? (M(hs, "mn_lock_hold_ms", k) - (hs == cal ? M(b0, "mn_lock_hold_ms", k) : 0)) * 1000 / da : 0
		printf "| %s | %s | %s | %s | %s | %s |\n", k, fmt(F), fmt(R), fmt(M(cal, "retries_per_s", k)), fmt(w[k] * 1e6), (da > 0 ? fmt(h[k]) : "- (no acquisitions added)") }
	printf "\nWithout events the workload'"'"'s own recycling (its inside invalidations) already retries %s (stock) and %s (patched) of faults; the model adds the events'"'"' share to that.\n\n", fmt(q0["stock"]), fmt(q0["patched"])
	printf "**Check against the rig points it can predict** (retries/s = faults/s x (baseline share + min(1, notifications/s x w))):\n\n"
	printf "| scenario | kernel | predicted retries/s | measured | error |\n|---|---|---|---|---|\n"
	maxerr = 0; npts = 0
	for (s in scen) if (s != cal && s ~ /^(fault4k|scale-c[0-9]+)-dontneed-outside-/) pts[s] = 1
	j = asorti(pts, pl)
	for (i = 1; i <= j; i++) { s = pl[i]
		for (kk = 1; kk <= 2; kk++) { k = kk == 1 ? "stock" : "patched"
			F = M(s, "work_per_s", k); R = M(s, "event_rate", k); me = M(s, "retries_per_s", k)
			if (F < 0 || R < 0 || me < 0) continue
			p = R * w[k]; if (p > 1) p = 1
			pr = F * (q0[k] + p)
			err = me > 0 ? 100 * (pr - me) / me : 0
			if (k == "stock") { npts++; if (err > maxerr || -err > maxerr) maxerr = err < 0 ? -err : err }
			printf "| %s | %s | %s | %s | %s |\n", s, k, fmt(pr), fmt(me), (me > 0 ? sprintf("%+.0f %%", err) : "-") } }
	if (!npts) printf "| (no other points in this set) | | | | |\n"
	else printf "\nOn stock the model is off by at most %.0f %% over %d points.\n", maxerr, npts
	# Projection: a host'"'"'s fault service time instead of the emulator'"'"'s,
	# measured where the set has a host leg, else assumed (two values).
	Fr = M("fault4k-none", "work_per_s", "stock")
	if (Fr <= 0) return
	Fh = hostk != "" ? M("fault4k-none", "work_per_s", hostk) : -1
	nsv = 0
	if (Fh > 0) { sv[++nsv] = 1e6 / Fh; sl[nsv] = "measured on " hostk }
	else { sv[++nsv] = 2; sl[nsv] = "assumed"; sv[++nsv] = 20; sl[nsv] = "assumed" }
	nb = M("fault4k-numab", "mn_notifications", "stock")
	printf "\n**Projection (not a measurement).** The rig'"'"'s fault takes %s us (1 / its faults per second without events). ", fmt(1e6 / Fr)
	if (Fh > 0) printf "On this host'"'"'s own KVM (%s) one vCPU faults %s times a second, %s us a fault: that is the service time used here. ", hostk, fmt(Fh), fmt(1e6 / Fh)
	else printf "This set has no host leg (no usable /dev/kvm where it was recorded), so the fault service time of a real host is not measured: the projection is given for two assumed values, %s us and %s us a fault. ", fmt(sv[1]), fmt(sv[2])
	printf "Assumptions: the rig'"'"'s w and h shrink by the same factor as the fault service time; every vCPU faults back to back, each fault retrying independently with probability p = min(1, notifications/s x w), with each kernel'"'"'s own w and h; the rig workload'"'"'s own recycling is left out; "
	printf "a retried fault is served again, so the p99 fault takes (1 + k) service times, k the 99th percentile of the geometric number of retries, plus h when notifiers hold mmu_lock more than 1 %% of the time; "
	printf "the notifications are outside every memslot, as NUMA balancing'"'"'s are for a HugeTLB guest"
	if (nb >= 0) printf " (in the rig, `fault4k-numab` sent %s notifications in %s s on stock)", fmt(nb), meta["duration_s"]
	printf ". "
	printf "Not modelled: vCPUs contending for mmu_lock among themselves (5.10 x86 takes it for every fault), which is where hundreds of vCPUs meet each notifier'"'"'s hold; the lock column is each vCPU'"'"'s share of that wait.\n\n"
	projected = 1
	printf "| fault service (us) | vCPUs | notifications/s | kernel | retries/s | faults thrown away | p99 fault (us) | mmu_lock held by notifiers |\n|---|---|---|---|---|---|---|---|\n"
	split("64 256", Ns, " "); split("1000 10000 100000", Rs, " ")
	for (v = 1; v <= nsv; v++) for (a = 1; a <= 2; a++) for (b = 1; b <= 3; b++) for (kk = 1; kk <= 2; kk++) { k = kk == 1 ? "stock" : "patched"
		sh = sv[v]; sc = sh * Fr / 1e6; N = Ns[a]; R = Rs[b]
		p = R * w[k] * sc; if (p > 1) p = 1
		U = R * 2 * h[k] * sc * 1e-6
		kq = 0; if (p >= 1) kq = -1; else while (p ^ (kq + 1) > 0.01) kq++
		p99 = kq < 0 ? "never completes" : fmt(sh * (1 + kq) + (U > 0.01 ? h[k] * sc : 0))
		printf "| %s (%s) | %d | %d | %s | %s | %.2g %% | %s | %s |\n", fmt(sh), sl[v], N, R, k, fmt(N * (1e6 / sh) * p), 100 * p, p99, (U >= 1 ? "saturated" : sprintf("%.2g %%", 100 * U)) }
	printf "\nInside notifications cost the same on both kernels (see above) and are not projected.\n\n"
}
# Where the stall time went, from the stall anatomy (--anatomy, on by
# default since it landed): shares of the stall time per kernel.
function anatomy(    s, j, k, kk, nk, kl, any, al_, na_) {
	printf "## Where the stall time went\n\n"
	for (s in scen) for (k in kern) if (has(s, "unexplained_pct", k)) { any = 1; al_[s] = 1 }
	if (!any) {
		printf "This set was recorded before the stall anatomy: its JSON has no `stall_causes`. `make ab` records it (kvmstall'"'"'s `--anatomy`, on by default).\n\n"
		return
	}
	printf "Each stall split by where the vCPU thread was on the host (kvmstall'"'"'s `--anatomy`): preempted while runnable, blocked asleep, inside KVM, or unexplained (the guest itself, or the emulation the host does not trace). Shares of the stall time in %%; repeated faults are page faults on an address already faulted on in the same stall. "
	printf "Inside KVM is measured %s.\n\n", inkvm != "" ? inkvm : "where the kernel shows it"
	printf "| scenario | kernel | preempted %% | blocked %% | in KVM %% | unexplained %% | repeated faults |\n|---|---|---|---|---|---|---|\n"
	nk = 0
	kl[++nk] = "stock"; kl[++nk] = "patched"; if (hostk != "") kl[++nk] = hostk
	na_ = asorti(al_, ali)
	for (j = 1; j <= na_; j++) { s = ali[j]
		for (kk = 1; kk <= nk; kk++) { k = kl[kk]
			if (!has(s, "unexplained_pct", k)) continue
			printf "| %s | %s | %s | %s | %s | %s | %s |\n", s, k, ci(s, "preempted_pct", k), ci(s, "blocked_pct", k),
				ci(s, "in_kvm_pct", k), ci(s, "unexplained_pct", k), ci(s, "repeated_faults", k) } }
	printf "\nA - is a part the kernel did not show (see `.anatomy.missing` in the run'"'"'s JSON).\n\n"
}
BEGIN {
	while ((getline line < metaf) > 0) { i = index(line, ": "); if (i) meta[substr(line, 1, i - 1)] = substr(line, i + 2) }
	while ((getline line < quickf) > 0) if (line !~ /^[ \t]*(#|$)/) quick[++nq] = line
	label["p50_us"] = "p50 stall (us)"; label["p99_us"] = "p99 stall (us)"
	label["p999_us"] = "p99.9 stall (us)"; label["max_us"] = "max stall (us)"
	label["stall_ms_per_vcpu_s"] = "stall time per vCPU-second (ms)"
	label["work_per_s"] = "work (iterations/s)"
	label["mn_invalidate_locked"] = "invalidations that took mmu_lock"
	label["mn_locked_not_own"] = "of them not the workload'"'"'s own recycling"
	label["mn_lock_acquisitions"] = "mmu_lock taken by notifiers"
	label["mn_lock_hold_ms"] = "mmu_lock held by notifiers (ms)"
	label["pf_notifier_retries"] = "fault retries (pf_notifier_retries)"
	label["retries_per_s"] = "fault retries per second"
	label["exits_per_fault"] = "exits per fixed fault"
	label["event_cpu_us"] = "event thread CPU per event (us)"
	label["event_rate"] = "events per second achieved"
	label["mn_tlb_flushes"] = "remote TLB flushes by notifiers"
	nh = split("p50_us p99_us p999_us max_us stall_ms_per_vcpu_s work_per_s mn_invalidate_locked mn_locked_not_own mn_lock_acquisitions mn_lock_hold_ms pf_notifier_retries exits_per_fault event_rate event_cpu_us", hm, " ")
}
FILENAME ~ /stats.tsv$/ && FNR > 1 { key = $1 SUBSEP $2 SUBSEP $3; med[key] = $5; lo[key] = $6; hi[key] = $7; n[key] = $4; scen[$1] = 1; kern[$3] = 1; next }
FILENAME ~ /compare.tsv$/ && FNR > 1 { key = $1 SUBSEP $2; rat[key] = $5; rlo[key] = $6; rhi[key] = $7; verdict[key] = $8; next }
FILENAME ~ /runs.tsv$/ && FNR > 1 {
	runs++; if ($NF != "ok") bad[$1 " " $2 " rep " $3] = $NF
	# Acceptance: anon 4 KiB fault runs whose only events are outside.
	if ($2 ~ /^(fault4k|scale-c[0-9]+)-dontneed-outside-/) {
		if ($1 == "stock") { so++; if ($14 != "NA" && $14 > 0) sopos++ }
		if ($1 == "patched") { po++; if ($14 != "NA" && $14 == 0) pozero++
			else if ($14 == "NA") notzero[++nnz] = sprintf("%s rep %s: the run has no mn_invalidate_locked (a kernel without the instrumentation?)", $2, $3)
			else notzero[++nnz] = sprintf("%s rep %s: %d more than its recycling (%d events%s; the host kernel meanwhile migrated %s pages and collapsed %s huge pages)",
				$2, $3, $14, $10, $29 == "NA" ? "" : sprintf("; %s of %d notifications elided", $29, $15),
				$30 == "NA" ? "an unrecorded number of" : $30, $31 == "NA" ? "an unrecorded number of" : $31) }
	}
	next
}
END {
	for (k in kern) if (k ~ /^host-/) hostk = k
	printf "# kvmstall A/B: stock against patched Linux 5.10\n\n"
	printf "Machine: %s; host kernel %s; host KVM: %s.  \n", meta["host"], meta["host_kernel"], meta["host_kvm"]
	printf "Rig: %s.  \nGuest kernels: %s (%s).  \n", meta["rig"], meta["guest_kernel"], meta["series"]
	printf "Run: %s, %s; %s repetitions per kernel, interleaved, %s s per run; kvmstall %s.  \n", meta["date"], meta["matrix"], meta["reps"], meta["duration_s"], meta["kvmstall"]
	if (meta["wall_s"] != "") printf "Wall time: %d min (kernels %d s).  \n", meta["wall_s"] / 60, meta["build_s"]
	printf "Regenerate this report from the raw JSON: `make ab-report RESULTS=%s`.\n\n", res
	printf "Every figure is the median over the repetitions with its 95 %% bootstrap interval in brackets. "
	printf "Where the intervals of stock and patched overlap, the verdict is \"no difference measured\". "
	printf "The rig is QEMU TCG: absolute times are the emulator'"'"'s, only comparisons between kernels mean something, "
	printf "and the lock and retry counters (debugfs, kernel-patch/instrument/) are exact.\n\n"
	if (length(bad)) {
		printf "**Runs that did not end with status ok:**"
		for (b in bad) printf " %s (%s);", b, bad[b]
		printf "\n\n"
	}

	printf "## Answers\n\n"
	base = "fault4k-none"
	printf "**Do events next to guest memory stall the 4 KiB fault workload?** Against the same workload without events (`%s`), p99 stall and work done (faults per second; under TCG every fault of this workload is itself a stall, so its stall time per vCPU-second is saturated and says nothing):\n\n", base
	printf "| scenario | kernel | p99 stall (us) | against no events | work (faults/s) | against no events |\n|---|---|---|---|---|---|\n"
	printf "| %s | stock | %s | | %s | |\n", base, ci(base, "p99_us", "stock"), ci(base, "work_per_s", "stock")
	printf "| %s | patched | %s | | %s | |\n", base, ci(base, "p99_us", "patched"), ci(base, "work_per_s", "patched")
	for (s in scen) if (s ~ /^fault4k-[a-z]+-outside-/) os[s] = 1
	no = asorti(os, osl)
	for (j = 1; j <= no; j++) { s = osl[j]
		for (kk = 1; kk <= 2; kk++) { k = kk == 1 ? "stock" : "patched"
			printf "| %s | %s | %s | %s | %s | %s |\n", s, k, ci(s, "p99_us", k), versus(s, base, "p99_us", k),
				ci(s, "work_per_s", k), versus(s, base, "work_per_s", k) } }
	printf "\n**And the antagonists of the kernel itself** (NUMA balancing, KSM, khugepaged working on VMM memory, reclaim from memory.high; `--antagonist`), against the same workload without them:\n\n"
	printf "| scenario | kernel | antagonist work (pages migrated, KSM scans, collapses, pages reclaimed) | p99 stall (us) | against none | work/s | against none | invalidations that took mmu_lock | fault retries |\n|---|---|---|---|---|---|---|---|---|\n"
	for (s in scen) if (s ~ /-(numab|ksm|khugepaged|reclaim)$/) { as_[s] = 1; if (s ~ /-reclaim$/) nrec++ }
	nas = asorti(as_, asl)
	for (j = 1; j <= nas; j++) { s = asl[j]; b = s; sub(/-[a-z]+$/, "-none", b)
		for (kk = 1; kk <= 2; kk++) { k = kk == 1 ? "stock" : "patched"
			printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s, k, ci(s, "antagonist_work", k), ci(s, "p99_us", k),
				versus(s, b, "p99_us", k), ci(s, "work_per_s", k), versus(s, b, "work_per_s", k),
				ci(s, "mn_invalidate_locked", k), ci(s, "pf_notifier_retries", k) } }
	if (!nas) printf "| (none in this set) | | | | | | | | |\n"
	if (nrec) printf "\nReclaim runs in a cgroup v2 around the VMM whose memory.high is half its buffer below what it uses, swapping to zram in the rig; with HugeTLB guest memory only VMM memory is reclaimed.\n\n"
	else printf "\nReclaim from memory.high is not in this set: it was recorded before the reclaim antagonist existed.\n\n"

	printf "**How many lock acquisitions and fault retries does each cause?** Per run (%s s):\n\n", meta["duration_s"]
	printf "| scenario | events | invalidations that took mmu_lock, stock | patched | of them not the workload'"'"'s own, stock | patched | fault retries, stock | patched | patched/stock | exits per fixed fault, stock | patched |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
	for (s in scen) if (s ~ /^(fault4k|fault2m|touch|spin)-/ && s !~ /-none$/) es[s] = 1
	ne = asorti(es, esl)
	for (j = 1; j <= ne; j++) { s = esl[j]
		printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s, ci(s, "events", "stock"),
			ci(s, "mn_invalidate_locked", "stock"), ci(s, "mn_invalidate_locked", "patched"),
			ci(s, "mn_locked_not_own", "stock"), ci(s, "mn_locked_not_own", "patched"),
			ci(s, "pf_notifier_retries", "stock"), ci(s, "pf_notifier_retries", "patched"),
			ratio(s, "pf_notifier_retries"), ci(s, "exits_per_fault", "stock"), ci(s, "exits_per_fault", "patched") }
	printf "\n"

	printf "**How does it grow with vCPUs and rate?**"
	ns = 0
	for (s in scen) if (s ~ /^scale-c[0-9]+-/) { sc[s] = 1; ns++ }
	if (!ns) printf " Not in this set: the full matrix (`make ab`) runs 1 to 16 vCPUs at 1k, 10k and 100k events/s.\n\n"
	else {
		printf " MADV_DONTNEED next to the slots, 4 KiB fault workload:\n\n"
		printf "| scenario | events/s achieved, stock | patched | fault retries/s, stock | patched | p99 stall (us), stock | patched | verdict on p99 |\n|---|---|---|---|---|---|---|---|\n"
		nsc = asorti(sc, scl)
		for (j = 1; j <= nsc; j++) { s = scl[j]
			printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", s, ci(s, "event_rate", "stock"), ci(s, "event_rate", "patched"),
				ci(s, "retries_per_s", "stock"), ci(s, "retries_per_s", "patched"),
				ci(s, "p99_us", "stock"), ci(s, "p99_us", "patched"), verdict[s SUBSEP "p99_us"] }
		printf "\n"
	}

	printf "**Do events on guest memory cost the same on both?**\n\n"
	printf "| scenario | p99 stall (us), stock | patched | verdict | stall ms per vCPU-s, stock | patched | verdict | invalidations that took mmu_lock, stock | patched |\n|---|---|---|---|---|---|---|---|---|\n"
	for (s in scen) if (s ~ /-inside-/) ins[s] = 1
	ni = asorti(ins, insl)
	for (j = 1; j <= ni; j++) { s = insl[j]
		printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s, ci(s, "p99_us", "stock"), ci(s, "p99_us", "patched"),
			verdict[s SUBSEP "p99_us"], ci(s, "stall_ms_per_vcpu_s", "stock"), ci(s, "stall_ms_per_vcpu_s", "patched"),
			verdict[s SUBSEP "stall_ms_per_vcpu_s"], ci(s, "mn_invalidate_locked", "stock"), ci(s, "mn_invalidate_locked", "patched") }
	printf "\n"

	anatomy()
	model()
	printf "## Checks\n\n"
	printf "Invalidations that took mmu_lock are counted beyond the fault workload'"'"'s own recycling of guest memory (`timing.fault_recycles`, which take the lock on both kernels: one invalidation each, two with HugeTLB, which 5.10 unmaps and maps again and announces twice).\n\n"
	printf "The check covers MADV_DONTNEED: mprotect next to guest memory splits and merges VMAs, and 5.10 announces every such split with a 2 MiB invalidation around the split point (`vma_adjust_trans_huge()`, even where no huge page is mapped), which overlaps guest memory when the VMM'"'"'s mapping and guest memory merged into one VMA; both kernels see those as guest-memory invalidations. kvmstall now keeps guest memory in a VMA of its own (VM_DONTDUMP), so runs recorded since then no longer have them: the mprotect-outside rows above tell which kind of set this is.\n\n"
	printf "- Anon 4 KiB fault runs with only outside MADV_DONTNEED: stock took mmu_lock for other invalidations in %d of %d runs (%s).\n", sopos, so, (so && sopos == so) ? "PASS" : "FAIL"
	printf "- The same runs on patched: no other invalidation took mmu_lock in %d of %d runs (%s).\n", pozero, po, (po && pozero == po) ? "PASS" : "FAIL"
	if (nnz) {
		printf "  The counters cannot tell which invalidation that was. One of the events taking the lock would be a defect of the patch; an invalidation of guest memory from elsewhere (the host kernel'"'"'s compaction, NUMA balancing or khugepaged moving guest pages) takes it on both kernels. Runs recorded since kvmstall reports `kvm_stats.host_vmstat` say how much the host kernel moved meanwhile:\n"
		for (j = 1; j <= nnz; j++) printf "  - %s.\n", notzero[j]
	}
	okr = 0; nr = 0
	for (j = 1; j <= no; j++) { s = osl[j]; a = s SUBSEP "pf_notifier_retries" SUBSEP "stock"; b = s SUBSEP "pf_notifier_retries" SUBSEP "patched"
		if ((a in med) && (b in med)) { nr++; if (med[a] > med[b]) okr++; else worse = worse " " s } }
	printf "- Stock'"'"'s median fault retries above patched'"'"'s in %d of %d outside scenarios (%s)%s.\n\n", okr, nr, (nr && okr == nr) ? "PASS" : "FAIL", worse ? ":" worse " are not" : ""

	printf "## Headline scenarios\n\n"
	for (j = 1; j <= nq; j++) { s = quick[j]
		if (!has(s, "p99_us", "stock")) continue
		printf "### %s\n\n", s
		printf "| | stock | patched | patched/stock | verdict |%s\n|---|---|---|---|---|%s\n", hostk ? " " hostk " |" : "", hostk ? "---|" : ""
		for (h = 1; h <= nh; h++) { m = hm[h]
			if (!has(s, m, "stock") && !has(s, m, "patched")) continue
			printf "| %s | %s | %s | %s | %s |%s\n", label[m], ci(s, m, "stock"), ci(s, m, "patched"), ratio(s, m),
				verdict[s SUBSEP m], hostk ? " " ci(s, m, hostk) " |" : "" }
		printf "\n![stall CDF](plots/cdf-%s.png) ![stalls over time](plots/time-%s.png)\n\n", s, s
	}

	printf "## Every scenario\n\n"
	printf "| scenario | p99 stall (us), stock | patched | verdict | stall ms per vCPU-s, stock | patched | verdict | work/s, stock | patched | verdict |%s\n|---|---|---|---|---|---|---|---|---|---|%s\n", hostk ? " p99 on " hostk " |" : "", hostk ? "---|" : ""
	na = asorti(scen, al)
	for (j = 1; j <= na; j++) { s = al[j]
		printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |%s\n", s, ci(s, "p99_us", "stock"), ci(s, "p99_us", "patched"),
			verdict[s SUBSEP "p99_us"], ci(s, "stall_ms_per_vcpu_s", "stock"), ci(s, "stall_ms_per_vcpu_s", "patched"),
			verdict[s SUBSEP "stall_ms_per_vcpu_s"], ci(s, "work_per_s", "stock"), ci(s, "work_per_s", "patched"),
			verdict[s SUBSEP "work_per_s"], hostk ? " " ci(s, "p99_us", hostk) " |" : "" }
	printf "\n## Plots\n\n"
	printf "![fault retries per second](plots/retries.png)\n\n![invalidations that took mmu_lock](plots/locked.png)\n\n"
	if (has("slots1-dontneed-outside-10k", "event_cpu_us", "stock")) printf "![cost per notification against memslots](plots/slots.png)\n\n"
	if (ns) printf "![retries against vCPUs](plots/scaling.png)\n\n"
	printf "Every scenario has a stall CDF (`plots/cdf-SCENARIO.png`) and stalls over time (`plots/time-SCENARIO.png`), also as SVG.\n\n"

	printf "## Not covered\n\n"
	if (meta["rig"] ~ /thread=multi/) printf "- This is the parallel rig (multi-threaded TCG): each guest CPU has a host thread of its own, so the event thread no longer takes its CPU time from the vCPU; on a 2-CPU host the two guest CPUs still compete with QEMU'"'"'s other threads. `event thread CPU per event` shows the notifier path'"'"'s cost per kernel.\n"
	else printf "- The rig runs its two guest CPUs on one host thread (TCG thread=single): the event thread and the vCPU share it, so CPU spent in the notifier path is taken from the vCPU. `event thread CPU per event` shows that cost per kernel; `make ab AB_RIG=parallel` runs the guest CPUs in parallel.\n"
	if (projected) printf "- Hundreds of vCPUs cannot be reached on two emulated CPUs: what this report says of them is the projection above, not a measurement.\n"
	else printf "- Hundreds of vCPUs cannot be reached on two emulated CPUs, and this set lacks what the model is calibrated on: no projection beyond the rig is made here.\n"
}' "$out/stats.tsv" "$out/compare.tsv" "$out/runs.tsv"

# Another complete run, compared with bench/ab-compare.sh ratios and kept
# next to the raw JSON as agreement.txt (with a line of explanation first).
if [ -f "$res/agreement.txt" ]; then
	printf '\n## Agreement with another complete run\n\n'
	sed -n '1,/^$/p' "$res/agreement.txt"
	printf '```\n'
	sed '1,/^$/d' "$res/agreement.txt"
	printf '```\n'
fi
