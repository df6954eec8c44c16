// SPDX-License-Identifier: MIT
/* The JSON report parsed back, the CSV series and the summary table. */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "tap.h"
#include "util.h"

static void add_stall(struct ks_vcpu_stats *s, uint64_t ticks)
{
	s->hist[ks_hist_bucket(ticks)]++;
	s->stalls++;
	s->ring_tail++;
	s->stall_ticks += ticks;
	if (ticks > s->max_ticks)
		s->max_ticks = ticks;
}

static double num(json_t *root, const char *path)
{
	json_t *v = root;
	char buf[256], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && v; tok = strtok_r(NULL, ".", &save)) {
		if (json_is_array(v))
			v = json_array_get(v, strtoul(tok, NULL, 10));
		else
			v = json_object_get(v, tok);
	}
	return v ? json_number_value(v) : -1;
}

static struct ks_kvmstat mn_stats[] = {
	{ .name = "mn_invalidate_seen", .cumulative = true, .start = 100, .end = 10105 },
	{ .name = "mn_invalidate_locked", .cumulative = true, .start = 50, .end = 55 },
	{ .name = "mn_invalidate_elided", .cumulative = true, .start = 50, .end = 10050 },
	{ .name = "mn_clear_young_seen", .cumulative = true, .start = 7, .end = 7 },
	{ .name = "mn_clear_young_locked", .cumulative = true, .start = 7, .end = 7 },
	{ .name = "mn_clear_young_elided", .cumulative = true },
	{ .name = "mn_test_young_seen", .cumulative = true, .end = 3 },
	{ .name = "mn_test_young_locked", .cumulative = true, .end = 3 },
	{ .name = "mn_invalidate_active", .cumulative = false, .start = 2, .end = 0 },
	{ .name = "mmu_notifier_count", .cumulative = false, .start = 1, .end = 0 },
	{ .name = "mn_test_young_elided", .cumulative = true },
};

int main(void)
{
	static struct ks_vcpu vcpus[3];
	static struct ks_slot slot;
	static struct ks_params params[3];
	const char *argv[] = { "kvmstall", "--vcpus", "3", NULL };
	struct ks_config cfg = { .vcpus = 3,
				 .memory = GiB,
				 .slots = 1,
				 .workload = KS_WL_SPIN,
				 .threshold_ns = 1000,
				 .duration_ns = NSEC_PER_SEC,
				 .argc = 3,
				 .argv = (char **)argv };
	struct ks_vm vm = { .cfg = &cfg, .vcpus = vcpus, .slots = &slot, .tsc_khz = 1000000 };
	struct ks_run r = { .vm = &vm,
			    .run_start_ns = 1000,
			    .run_end_ns = 1000 + 2 * NSEC_PER_SEC };
	char path[] = "/tmp/kvmstall-unit-XXXXXX";
	json_error_t jerr;
	json_t *root, *v;
	unsigned int i;
	uint64_t hsum = 0;
	size_t k;
	char *table = NULL;
	size_t tlen = 0;
	FILE *f;
	int fd;

	tap_plan(30);
	vm.backing = ks_backing_info(KS_BACKING_HUGETLB_2M);
	vm.layout = (struct ks_layout){ .nvcpus = 3,
					.nslots = 1,
					.page_size = 2 * MiB,
					.slot_size = GiB,
					.region_size = GiB / 3 / (2 * MiB) * (2 * MiB) };
	vm.kvm_fd = vm.vm_fd = -1;
	slot = (struct ks_slot){ .id = 1, .gpa = KS_GPA_TEST_BASE, .size = GiB, .node = -1 };
	for (i = 0; i < 3; i++) {
		vcpus[i] = (struct ks_vcpu){
			.id = i, .cpu = -1, .node = -1, .state = KS_VCPU_DONE, .params = &params[i]
		};
		ks_stats_init(&vcpus[i].stats);
		vcpus[i].stats.iterations = 1000000 * (i + 1);
		/* Each vCPU measured for 2 s of guest TSC (1 tick = 1 ns at this tsc_khz). */
		vcpus[i].stats.first_tsc = 1000;
		vcpus[i].stats.last_tsc = 1000 + 2 * NSEC_PER_SEC;
	}
	/* vCPU 0: stalls of 2, 4 ... 20 us; vCPU 1: none; vCPU 2: discarded. */
	for (i = 1; i <= 10; i++)
		add_stall(&vcpus[0].stats, 2000 * i);
	vcpus[2].stats.valid = false;
	snprintf(vcpus[2].stats.invalid_reason, sizeof(vcpus[2].stats.invalid_reason),
		 "test says so");
	r.kstats.source = "none";
	{
		/* The host's memory activity: parsed by name, reported as the run's difference. */
		static const char vmstat[] = "nr_free_pages 5\npgmigrate_success 40\n"
					     "pgmigrate_successx 9\nthp_split_pmd 7x\n"
					     "numa_pte_updates -1\npswpout 99999999999999999999\n"
					     "compact_stall 3";
		bool found[KS_VMSTAT_N];

		ks_vmstat_parse(vmstat, r.kstats.vmstat_start, found);
		tap_ok(found[0] && r.kstats.vmstat_start[0] == 40 && found[1] &&
			       r.kstats.vmstat_start[1] == 3 && !found[2] && !found[6] &&
			       !found[3] && !found[9],
		       "vmstat: names matched whole, values whole and in range, the last line "
		       "without a newline");
		for (i = 0; i < KS_VMSTAT_N; i++) {
			r.kstats.vmstat_end[i] = r.kstats.vmstat_start[i] + i;
			r.kstats.vmstat_ok[i] = found[i];
		}
	}
	report__finish(&r);

	fd = mkstemp(path);
	close(fd);
	tap_eq_u64(report__json(&r, path), 0, "report written");
	root = json_load_file(path, 0, &jerr);
	if (!tap_ok(root != NULL, "report parses as JSON"))
		tap_diag("%s line %d", jerr.text, jerr.line);
	tap_ok(!strcmp(json_string_value(json_object_get(root, "schema")), "kvmstall-report"),
	       "schema name");
	tap_eq_u64(num(root, "schema_version"), KS_REPORT_SCHEMA_VERSION, "schema version");
	v = json_object_get(root, "vcpus");
	tap_eq_u64(json_array_size(v), 3, "one entry per vCPU");
	tap_eq_u64(num(root, "vcpus.0.iterations"), 1000000, "vCPU 0 iterations");
	tap_eq_u64(num(root, "vcpus.0.stalls.count"), 10, "vCPU 0 stall count");
	tap_ok(num(root, "vcpus.0.stalls.max_ns") == 20000, "vCPU 0 max 20 us (1 tick = 1 ns)");
	tap_ok(num(root, "vcpus.0.stalls.p50_ns") >= 9000 &&
		       num(root, "vcpus.0.stalls.p50_ns") <= 11000,
	       "vCPU 0 p50 near 10 us (%.0f)", num(root, "vcpus.0.stalls.p50_ns"));
	tap_ok(num(root, "vcpus.0.stalls.per_second") == 5, "vCPU 0: 10 stalls in 2 s = 5/s");
	tap_ok(num(root, "total.vcpu_seconds") == 4, "total: 2 valid vCPUs x 2 s measured");
	for (k = 0; k < json_array_size(json_object_get(json_array_get(v, 0), "histogram")); k++)
		hsum += (uint64_t)json_integer_value(json_object_get(
			json_array_get(json_object_get(json_array_get(v, 0), "histogram"), k),
			"count"));
	tap_eq_u64(hsum, 10, "histogram buckets add up to the stall count");
	tap_eq_u64(num(root, "vcpus.1.stalls.count"), 0, "vCPU 1 has no stalls");
	tap_ok(json_is_false(json_object_get(json_array_get(v, 2), "valid")),
	       "vCPU 2 marked invalid");
	tap_eq_u64(num(root, "vcpus.2.iterations"), 0, "discarded data is not reported");
	tap_eq_u64(num(root, "total.stalls.count"), 10, "total over valid vCPUs");
	tap_eq_u64(num(root, "total.iterations"), 3000000, "total iterations over valid vCPUs");
	tap_eq_u64(num(root, "result.vcpus_discarded"), 1, "result counts the discarded vCPU");
	tap_ok(num(root, "kvm_stats.host_vmstat.pgmigrate_success") == 0 &&
		       num(root, "kvm_stats.host_vmstat.compact_stall") == 1 &&
		       json_is_null(json_object_get(
			       json_object_get(json_object_get(root, "kvm_stats"), "host_vmstat"),
			       "thp_split_pmd")),
	       "kvm_stats.host_vmstat: the run's differences, null where not read");
	tap_ok(!strcmp(json_string_value(
			       json_object_get(json_object_get(root, "config"), "backing")),
		       "hugetlb-2M"),
	       "config.backing");
	json_decref(root);

	tap_eq_u64(csv__open(&r, path), 0, "CSV opened");
	csv__sample(&r, r.run_start_ns + NSEC_PER_SEC);
	csv__close(&r);
	f = fopen(path, "r");
	for (i = 0; f && !feof(f);)
		i += fgetc(f) == '\n';
	if (f)
		fclose(f);
	tap_eq_u64(i, 4, "CSV: header and one row per vCPU");

	f = open_memstream(&table, &tlen);
	report__table(&r, f);
	fclose(f);
	tap_ok(strstr(table, "total") != NULL, "table has a total row");
	tap_ok(strstr(table, "DISCARDED") != NULL, "table flags the discarded vCPU");
	tap_ok(strstr(table, "mmu notifier") == NULL, "no notifier table without counters");
	free(table);

	/*
	 * A patched 5.10 kernel's debugfs counters: differences for the
	 * counters, end values for the two gauges.
	 */
	r.kstats.source = "debugfs";
	r.kstats.v = mn_stats;
	r.kstats.n = ARRAY_SIZE(mn_stats);
	tlen = 0;
	f = open_memstream(&table, &tlen);
	report__table(&r, f);
	fclose(f);
	tap_ok(strstr(table, "invalidate                10005              5        10000") != NULL,
	       "notifier table: received, took mmu_lock, elided");
	tap_ok(strstr(table, "clear_young") == NULL && strstr(table, "test_young ") != NULL,
	       "notifier table: only kinds that were seen, besides invalidate");
	tap_ok(strstr(table, "in progress at the end: 0 (holding off faults: 0)\n") != NULL,
	       "notifier table: balanced gauges");
	free(table);
	mn_stats[8].end = 1;
	tlen = 0;
	f = open_memstream(&table, &tlen);
	report__table(&r, f);
	fclose(f);
	tap_ok(strstr(table, "in progress at the end: 1 (holding off faults: 0) UNBALANCED") !=
		       NULL,
	       "notifier table: an invalidation left in flight is flagged");
	free(table);
	unlink(path);
	return tap_done();
}
