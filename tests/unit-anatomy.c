// SPDX-License-Identifier: MIT
/*
 * The stall anatomy's arithmetic: host timelines built from records
 * (context switches, exits and entries, faults), stalls split into their
 * causes, perf records decoded and malformed ones ignored, exit reason
 * names read from a tracepoint format.
 */
#include "config.h"

#include <linux/perf_event.h>
#include <stdlib.h>
#include <string.h>

#include "anatomy.h"
#include "tap.h"
#include "util.h"

static struct ks_anatomy an;

static void feed(struct ks_an_thread *th, enum ks_an_ev ev, uint64_t t, uint16_t reason,
		 uint64_t addr)
{
	ks_anat_feed(th, ev, t, reason, addr);
}

static void split(struct ks_an_thread *th, uint64_t s, uint64_t e, struct ks_causes *c)
{
	memset(c, 0, sizeof(*c));
	ks_anat_split(&an, th, s, e, c);
}

static void free_thread(struct ks_an_thread *th)
{
	free(th->iv);
	free(th->faults);
	free(th->walks);
	memset(th, 0, sizeof(*th));
}

static void test_switches(void)
{
	struct ks_an_thread th = { 0 };
	struct ks_causes c;

	feed(&th, KS_AN_EV_SWITCH_OUT, 100, 1, 0); /* preempted */
	feed(&th, KS_AN_EV_SWITCH_IN, 200, 0, 0);
	feed(&th, KS_AN_EV_SWITCH_OUT, 300, 0, 0); /* asleep */
	feed(&th, KS_AN_EV_SWITCH_OUT, 310, 1, 0); /* a second out is ignored */
	feed(&th, KS_AN_EV_SWITCH_IN, 450, 0, 0);
	ks_anat_sort_thread(&th);
	tap_eq_u64(th.niv, 2, "two switch-outs, two off-CPU intervals");
	split(&th, 150, 400, &c);
	tap_ok(c.preempted_ns == 50 && c.blocked_ns == 100 && c.unexplained_ns == 100 &&
		       c.in_kvm_ns == 0 && c.stall_ns == 250 && c.stalls == 1,
	       "a stall across both: 50 preempted, 100 blocked, 100 unexplained (got %.0f %.0f "
	       "%.0f)",
	       c.preempted_ns, c.blocked_ns, c.unexplained_ns);
	split(&th, 460, 500, &c);
	tap_ok(c.unexplained_ns == 40 && c.preempted_ns == 0,
	       "a stall after them is all unexplained");
	free_thread(&th);

	/* Out, in, out, in back to back: one interval. */
	feed(&th, KS_AN_EV_SWITCH_OUT, 10, 1, 0);
	feed(&th, KS_AN_EV_SWITCH_IN, 20, 0, 0);
	feed(&th, KS_AN_EV_SWITCH_OUT, 20, 1, 0);
	feed(&th, KS_AN_EV_SWITCH_IN, 30, 0, 0);
	tap_ok(th.niv == 1 && th.iv[0].start == 10 && th.iv[0].end == 30,
	       "adjacent intervals of the same state are merged");
	free_thread(&th);
}

static void test_exits(void)
{
	struct ks_an_thread th = { 0 };
	struct ks_causes c;
	uint16_t a = ks_anat_reason(&an, 1, 48, "EPT_VIOLATION");
	uint16_t b = ks_anat_reason(&an, 1, 1, "EXTERNAL_INTERRUPT");

	feed(&th, KS_AN_EV_EXIT, 1000, a, 0);
	feed(&th, KS_AN_EV_PAGE_FAULT, 1010, 0, 0x5000);
	feed(&th, KS_AN_EV_ENTRY, 1100, 0, 0);
	feed(&th, KS_AN_EV_EXIT, 1200, b, 0);
	feed(&th, KS_AN_EV_PAGE_FAULT, 1210, 0, 0x5000);
	feed(&th, KS_AN_EV_PAGE_FAULT, 1220, 0, 0x7000);
	feed(&th, KS_AN_EV_SWITCH_OUT, 1250, 1, 0);
	feed(&th, KS_AN_EV_SWITCH_IN, 1300, 0, 0);
	/* Walks after kvm_exit was seen do not delimit anything. */
	feed(&th, KS_AN_EV_MMU_WALK, 1310, 0, 0x9000);
	feed(&th, KS_AN_EV_MMU_SET, 1320, 0, 0);
	feed(&th, KS_AN_EV_ENTRY, 1400, 0, 0);
	ks_anat_sort_thread(&th);
	split(&th, 1000, 1500, &c);
	tap_ok(c.reason_ns[a] == 100 && c.reason_ns[b] == 150 && c.in_kvm_ns == 250,
	       "in KVM by exit reason, less the time switched out (%.0f, %.0f)", c.reason_ns[a],
	       c.reason_ns[b]);
	tap_ok(c.preempted_ns == 50 && c.unexplained_ns == 200,
	       "preempted inside an exit; guest time unexplained");
	tap_ok(c.page_faults == 3 && c.repeated_faults == 1,
	       "kvm_page_fault counts faults, one repeated on the same address (%llu, %llu)",
	       (unsigned long long)c.page_faults, (unsigned long long)c.repeated_faults);
	split(&th, 1050, 1250, &c);
	tap_ok(c.reason_ns[a] == 50 && c.reason_ns[b] == 50 && c.unexplained_ns == 100,
	       "a stall that cuts intervals counts only their overlap");
	free_thread(&th);

	/* An exit still open at the end of the run ends there. */
	feed(&th, KS_AN_EV_EXIT, 500, a, 0);
	ks_anat_close(&th, 600);
	split(&th, 0, 1000, &c);
	tap_ok(c.in_kvm_ns == 100, "an exit open at the end is closed there");
	free_thread(&th);
}

static void test_mmu_faults(void)
{
	struct ks_an_thread th = { 0 };
	struct ks_causes c;
	uint16_t pf = ks_anat_reason(&an, UINT32_MAX - 1, 0, "kvm_pvm:page_fault");

	feed(&th, KS_AN_EV_MMU_WALK, 10, pf, 0x1000);
	feed(&th, KS_AN_EV_MMU_SET, 20, 0, 0);
	feed(&th, KS_AN_EV_MMU_SET, 25, 0, 0); /* a prefetch: the fault is already fixed */
	feed(&th, KS_AN_EV_MMU_WALK, 30, pf, 0x1000);
	feed(&th, KS_AN_EV_SWITCH_OUT, 35, 1, 0);
	feed(&th, KS_AN_EV_SWITCH_IN, 45, 0, 0);
	feed(&th, KS_AN_EV_MMU_SET, 50, 0, 0);
	feed(&th, KS_AN_EV_MMU_WALK, 60, pf, 0x2000); /* never fixed: its end is unknown */
	feed(&th, KS_AN_EV_MMU_WALK, 70, pf, 0x2000);
	feed(&th, KS_AN_EV_MMU_SET, 80, 0, 0);
	feed(&th, KS_AN_EV_MMU_WALK, 90, pf, 0x3000);
	feed(&th, KS_AN_EV_USER_EXIT, 95, 0, 0);
	ks_anat_sort_thread(&th);
	split(&th, 0, 100, &c);
	tap_ok(c.in_kvm_ns == 30 && c.reason_ns[pf] == 30,
	       "without kvm_exit: walk to set_spte, split by a switch (%.0f)", c.in_kvm_ns);
	tap_ok(c.preempted_ns == 10 && c.unexplained_ns == 60,
	       "a fault without set_spte adds nothing");
	tap_ok(c.page_faults == 5 && c.repeated_faults == 2,
	       "walks count the faults where kvm_page_fault never fired (%llu, %llu)",
	       (unsigned long long)c.page_faults, (unsigned long long)c.repeated_faults);
	free_thread(&th);
}

static void test_reasons_and_notifications(void)
{
	struct ks_an_thread th = { 0 };
	struct ks_causes c;
	uint64_t times[] = { 150, 5, 15 };
	char name[16];
	unsigned int i;
	uint16_t last = 0;

	an.notif_t = times;
	an.nnotif = 3;
	ks_anat_sort_notifications(&an);
	split(&th, 0, 100, &c);
	tap_ok(c.notifications == 2 && c.unexplained_ns == 100,
	       "notifications inside the stall are counted");
	an.notif_t = NULL;
	an.nnotif = 0;

	for (i = 0; i < 2 * KS_AN_MAX_REASONS; i++) {
		snprintf(name, sizeof(name), "r%u", i);
		last = ks_anat_reason(&an, 7, 1000 + i, name);
	}
	tap_ok(last == KS_AN_MAX_REASONS - 1 && an.nreasons == KS_AN_MAX_REASONS &&
		       !strcmp(an.reason_names[KS_AN_MAX_REASONS - 1], "other"),
	       "reasons beyond the table are summed as \"other\"");
}

/* A sample record as the kernel writes it: identifier, pid/tid, time, raw. */
static size_t sample(uint8_t *buf, uint64_t id, uint64_t t, const void *raw, uint32_t rawlen)
{
	struct perf_event_header h = { .type = PERF_RECORD_SAMPLE, .misc = 0 };
	size_t len = sizeof(h) + 28 + rawlen;
	uint32_t pidtid[2] = { 1, 2 };

	len = (len + 7) & ~(size_t)7;
	memset(buf, 0, len);
	h.size = (uint16_t)len;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + 8, &id, 8);
	memcpy(buf + 16, pidtid, 8);
	memcpy(buf + 24, &t, 8);
	memcpy(buf + 32, &rawlen, 4);
	memcpy(buf + 36, raw, rawlen);
	return len;
}

static void test_records(void)
{
	static const char fmt[] =
		"name: kvm_exit\nformat:\n"
		"\tfield:unsigned int exit_reason;\toffset:8;\tsize:4;\tsigned:0;\n"
		"\tfield:u32 isa;\toffset:24;\tsize:4;\tsigned:0;\n\n"
		"print fmt: \"reason %s\", (REC->isa == 1) ? __print_symbolic(REC->exit_reason "
		"& 0xffff, { 0, \"EXCEPTION_NMI\" }, { 48, \"EPT_VIOLATION\" }) : "
		"__print_symbolic(REC->exit_reason, { 0x040 + 14, \"PF excp\" }, { 0x400, "
		"\"npf\" }, { -1, \"invalid_guest_state\" })";
	struct ks_an_thread th = { 0 };
	struct perf_event_header h;
	uint8_t buf[256], raw[32] = { 0 };
	uint32_t code = 0x400, isa = 2;
	uint64_t t = 777, lost[2] = { 9, 42 };
	size_t len;
	uint16_t r;

	an.nreasons = 0; /* a fresh table for this run */
	ks_anat_exit_names(&an, fmt);
	tap_ok(an.nvmx == 2 && an.nsvm == 3 && an.svm[0].code == 0x4e &&
		       an.svm[2].code == UINT32_MAX && !strcmp(an.svm[1].name, "npf"),
	       "exit names: the VMX and the SVM table, with sums and -1");
	r = ks_anat_exit_reason(&an, 1, 0x80000030); /* FAILED_VMENTRY | 48 */
	tap_ok(!strcmp(an.reason_names[r], "EPT_VIOLATION"), "VMX: the basic reason names it");
	snprintf(an.module, sizeof(an.module), "kvm_pvm");
	r = ks_anat_exit_reason(&an, 3, 17);
	tap_ok(!strcmp(an.reason_names[r], "kvm_pvm:17"),
	       "another KVM: the number with the module's name (%s)", an.reason_names[r]);

	an.exit_reason_off = 8;
	an.exit_isa_off = 24;
	th.nfds = 2;
	th.ids[0] = 100;
	th.kinds[0] = 0; /* kvm_exit */
	th.ids[1] = 101;
	th.kinds[1] = 1; /* kvm_entry */
	memcpy(raw + 8, &code, 4);
	memcpy(raw + 24, &isa, 4);
	len = sample(buf, 100, 1000, raw, 28);
	ks_anat_record(&an, &th, buf, len, false);
	len = sample(buf, 101, 1300, raw, 8);
	ks_anat_record(&an, &th, buf, len, false);
	tap_ok(th.niv == 1 && th.iv[0].start == 1000 && th.iv[0].end == 1300 &&
		       !strcmp(an.reason_names[th.iv[0].reason], "npf"),
	       "a kvm_exit and a kvm_entry sample make an npf interval");

	/* A raw size beyond the record, a record shorter than its header says. */
	len = sample(buf, 100, 2000, raw, 28);
	memcpy(buf + 32, &(uint32_t){ 200 }, 4);
	ks_anat_record(&an, &th, buf, len, false);
	len = sample(buf, 100, 2000, raw, 28);
	ks_anat_record(&an, &th, buf, len - 8, false);
	/* An exit whose reason field lies past its raw data: no reason read. */
	len = sample(buf, 100, 2000, raw, 4);
	ks_anat_record(&an, &th, buf, len, false);
	tap_ok(th.kvm && th.kvm_start == 2000 && th.records == 3,
	       "malformed records are ignored; a short raw record reads no field");

	/* A switch-out record: time from the sample_id trailer, the preempt flag. */
	h.type = PERF_RECORD_SWITCH;
	h.misc = PERF_RECORD_MISC_SWITCH_OUT | PERF_RECORD_MISC_SWITCH_OUT_PREEMPT;
	h.size = 32;
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + 16, &(uint64_t){ 2100 }, 8);
	ks_anat_record(&an, &th, buf, 32, false);
	tap_ok(th.off && th.off_preempt && th.off_start == 2100,
	       "a switch-out record while runnable is a preemption");

	h.type = PERF_RECORD_LOST;
	h.misc = 0;
	h.size = 40;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + 8, lost, 16);
	ks_anat_record(&an, &th, buf, 40, false);
	ks_anat_record(&an, &th, buf, 40, false);
	tap_eq_u64(th.lost, 84, "PERF_RECORD_LOST records add up");
	(void)t;
	free_thread(&th);
	free(an.vmx);
	free(an.svm);
	an.vmx = an.svm = NULL;
}

int main(void)
{
	tap_plan(21);
	test_switches();
	test_exits();
	test_mmu_faults();
	test_reasons_and_notifications();
	test_records();
	return tap_done();
}
