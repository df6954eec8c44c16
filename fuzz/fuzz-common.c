// SPDX-License-Identifier: MIT
/* Helpers and invariants shared by the fuzz harnesses; see fuzz-common.h. */
#include "config.h"

#include "fuzz-common.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "options.h"
#include "util.h"

jmp_buf fuzz_exit_jmp;

static FILE *real_stderr;
static FILE *mem_stderr;
static char *mem_buf;
static size_t mem_len;

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	const char *captured = mem_stderr ? fuzz_stderr_end() : NULL;
	va_list ap;

	fprintf(stderr, "%s:%d: invariant broken: %s\n  ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (captured)
		fprintf(stderr, "  kvmstall printed on stderr: \"%s\"\n", captured);
	abort();
}

static void exit_hook(int status)
{
	longjmp(fuzz_exit_jmp, FUZZ_EXITED + status);
}

void fuzz_catch_exits(void)
{
	ks_exit_hook = exit_hook;
}

void fuzz_stderr_begin(void)
{
	free(mem_buf);
	mem_buf = NULL;
	mem_len = 0;
	mem_stderr = open_memstream(&mem_buf, &mem_len);
	if (!mem_stderr)
		abort();
	real_stderr = stderr;
	stderr = mem_stderr;
}

const char *fuzz_stderr_end(void)
{
	if (!mem_stderr)
		return "";
	stderr = real_stderr;
	fclose(mem_stderr);
	mem_stderr = NULL;
	return mem_buf ? mem_buf : "";
}

void fuzz_check_parse_exit(int status, const char *err)
{
	const char *nl = strchr(err, '\n');

	if (status <= 0) {
		FUZZ_CHECK(!*err, "%s printed on stderr: \"%s\"",
			   status ? "an accepted command line" : "--help or --version", err);
		return;
	}
	FUZZ_CHECK(status == KS_EXIT_USAGE, "the option parser exited with status %d: \"%s\"",
		   status, err);
	FUZZ_CHECK(!strncmp(err, "kvmstall: ", 10),
		   "a usage error without the program name: \"%s\"", err);
	FUZZ_CHECK(nl && !nl[1], "a usage error is not exactly one line: \"%s\"", err);
}

void fuzz_check_spec(const struct ks_ev_spec *s)
{
	uint64_t headroom;

	FUZZ_CHECK(s->kind < KS_EV_NR, "kind %d", (int)s->kind);
	FUZZ_CHECK(s->target < KS_TGT_NR, "target %d", (int)s->target);
	FUZZ_CHECK(s->edge <= KS_EDGE_ALL, "edge %d", (int)s->edge);
	FUZZ_CHECK(s->via <= KS_VIA_SYSCALL, "via %d", (int)s->via);
	FUZZ_CHECK(!isnan(s->rate) && s->rate >= 0 && s->rate <= 1e7, "rate %g", s->rate);
	/* Exactly one schedule: a rate, or bursts every so often. */
	FUZZ_CHECK((s->rate > 0) != (s->every_ns > 0), "rate %g and every %" PRIu64 " ns", s->rate,
		   s->every_ns);
	FUZZ_CHECK(!s->every_ns || s->every_ns >= 1000, "every %" PRIu64 " ns", s->every_ns);
	FUZZ_CHECK(s->burst >= 1 && s->burst <= 1000000, "burst %u", s->burst);
	FUZZ_CHECK(s->burst == 1 || s->every_ns, "burst %u without every", s->burst);
	FUZZ_CHECK(s->pages >= 1 && s->pages <= 1ULL << 30, "pages %" PRIu64, s->pages);
	FUZZ_CHECK(memchr(s->text, '\0', sizeof(s->text)), "the spec's text is not terminated");
	FUZZ_CHECK(s->target == KS_TGT_OUTSIDE ||
			   (s->kind != KS_EV_REMAP && s->kind != KS_EV_MREMAP),
		   "%s on target %s", ks_ev_kind_name(s->kind), ks_ev_target_name(s->target));
	FUZZ_CHECK(!s->hold_met || (s->target == KS_TGT_INSIDE &&
				    (s->kind == KS_EV_MPROTECT || s->kind == KS_EV_DONTNEED ||
				     s->kind == KS_EV_REMOVE || s->kind == KS_EV_PUNCH)),
		   "hold=met with %s on %s", ks_ev_kind_name(s->kind),
		   ks_ev_target_name(s->target));
	headroom = events__pool_headroom(s);
	FUZZ_CHECK(headroom <= s->pages * 1026, "pool headroom %" PRIu64 " for %" PRIu64 " pages",
		   headroom, s->pages);
}

/* Whether [a, a + alen) and [b, b + blen) overlap. */
static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < (unsigned __int128)b + blen && b < (unsigned __int128)a + alen;
}

static void check_ranges(const struct ks_layout *l, const struct ks_ev_spec *s)
{
	static const uint64_t picks[] = { 0, 1, 2, 3, 12345, 0x9e3779b97f4a7c15ULL, UINT64_MAX };
	unsigned __int128 reserve = (unsigned __int128)2 * l->decoy_size + l->slot_size;
	uint64_t slot_off = ks_layout_slot_off(l);
	struct ks_ev_range r;
	char err[512];
	size_t i;
	uint64_t n;

	if (ks_ev_check_fit(l, s, err, sizeof(err)) < 0) {
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)), "unterminated message");
		return;
	}
	for (n = 0; n < 4; n++) {
		for (i = 0; i < ARRAY_SIZE(picks); i++) {
			FUZZ_CHECK(ks_ev_range(l, s, n, picks[i], &r, err, sizeof(err)) == 0,
				   "a spec that fits has no range: %s", err);
			FUZZ_CHECK(r.len == s->pages * l->page_size,
				   "range of %" PRIu64 " bytes for %" PRIu64 " pages", r.len,
				   s->pages);
			FUZZ_CHECK(r.off % l->page_size == 0, "offset %" PRIu64 " not page aligned",
				   r.off);
			FUZZ_CHECK((unsigned __int128)r.off + r.len <= reserve,
				   "range [%" PRIu64 ", +%" PRIu64 ") beyond the reservation",
				   r.off, r.len);
			FUZZ_CHECK(r.overlaps_slot == overlap(r.off, r.len, slot_off, l->slot_size),
				   "range [%" PRIu64 ", +%" PRIu64 ") says overlaps_slot=%d", r.off,
				   r.len, r.overlaps_slot);
			if (s->target == KS_TGT_INSIDE)
				FUZZ_CHECK(r.off >= slot_off && (unsigned __int128)r.off + r.len <=
									slot_off + l->slot_size,
					   "inside range [%" PRIu64 ", +%" PRIu64
					   ") leaves the slot",
					   r.off, r.len);
			if (s->target == KS_TGT_OUTSIDE)
				FUZZ_CHECK(!r.overlaps_slot, "outside range overlaps the slot");
			if (s->target == KS_TGT_EDGE)
				FUZZ_CHECK((unsigned __int128)r.off + r.len >= slot_off &&
						   r.off <= slot_off + l->slot_size,
					   "edge range [%" PRIu64 ", +%" PRIu64
					   ") does not touch the slot",
					   r.off, r.len);
		}
	}
}

static void check_layout(const struct ks_config *cfg)
{
	const struct ks_backing_info *b = ks_backing_info(cfg->backing);
	unsigned __int128 end;
	struct ks_layout l;
	char err[512];
	unsigned int i;

	memset(err, 0xa5, sizeof(err));
	if (ks_layout_compute(&l, cfg->vcpus, cfg->memory, cfg->slots, b->page_size,
			      cfg->decoy_size, err, sizeof(err)) < 0) {
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) && *err, "no message");
		FUZZ_CHECK(!strchr(err, '\n'), "a message of more than one line: %s", err);
		return;
	}
	FUZZ_CHECK(l.nvcpus == cfg->vcpus && l.nslots == cfg->slots, "counts");
	FUZZ_CHECK((unsigned __int128)l.slot_size * l.nslots == cfg->memory,
		   "%u slots of %" PRIu64 " bytes for %" PRIu64 " bytes", l.nslots, l.slot_size,
		   cfg->memory);
	FUZZ_CHECK(l.slot_size && l.slot_size % l.unit == 0 && l.unit % b->page_size == 0,
		   "slot size %" PRIu64 ", unit %" PRIu64, l.slot_size, l.unit);
	FUZZ_CHECK(l.region_size && l.region_size % b->page_size == 0 &&
			   (unsigned __int128)l.region_size * l.nvcpus <= cfg->memory,
		   "region %" PRIu64 " bytes for %u vCPUs", l.region_size, l.nvcpus);
	FUZZ_CHECK(l.decoy_size && l.decoy_size % b->page_size == 0, "decoy %" PRIu64,
		   l.decoy_size);
	FUZZ_CHECK(!cfg->decoy_size || l.decoy_size == cfg->decoy_size, "decoy size changed");
	FUZZ_CHECK(l.sys_size <= KS_GPA_TEST_BASE, "system region %" PRIu64, l.sys_size);
	FUZZ_CHECK(l.pgtable_pages * 4096 <= KS_PGTABLE_BYTES, "%" PRIu64 " page-table pages",
		   l.pgtable_pages);
	/* The test memory lies within what 4-level paging maps (256 TiB). */
	end = (unsigned __int128)KS_GPA_TEST_BASE + cfg->memory;
	FUZZ_CHECK(end <= (unsigned __int128)1 << 48,
		   "test memory of %" PRIu64 " bytes ends beyond 2^48", cfg->memory);
	FUZZ_CHECK(ks_layout_slot_gpa(&l, l.nslots - 1) + l.slot_size == (uint64_t)end,
		   "the last slot does not end where the test memory does");
	/* The slots' reservations (decoy, slot, decoy) fit the address space (128 TiB). */
	FUZZ_CHECK(((unsigned __int128)2 * l.decoy_size + l.slot_size) * l.nslots <
			   (unsigned __int128)1 << 47,
		   "%u reservations of 2 x %" PRIu64 " + %" PRIu64 " bytes", l.nslots, l.decoy_size,
		   l.slot_size);
	FUZZ_CHECK(ks_layout_reserve_size(&l) == 2 * l.decoy_size + l.slot_size, "reserve size");
	for (i = 0; i < cfg->nevents; i++)
		check_ranges(&l, &cfg->events[i]);
}

void fuzz_check_config(const struct ks_config *cfg)
{
	unsigned int i;
	char **a;

	FUZZ_CHECK(cfg->vcpus >= 1 && cfg->vcpus <= 4096, "vcpus %u", cfg->vcpus);
	FUZZ_CHECK(cfg->memory > 0, "memory 0");
	FUZZ_CHECK(cfg->backing < KS_BACKING_NR, "backing %d", (int)cfg->backing);
	FUZZ_CHECK(cfg->slots >= 1 && cfg->slots <= 32000, "slots %u", cfg->slots);
	FUZZ_CHECK(cfg->duration_ns >= NSEC_PER_SEC / 100 &&
			   cfg->duration_ns <= 86400 * NSEC_PER_SEC,
		   "duration %" PRIu64 " ns", cfg->duration_ns);
	FUZZ_CHECK(cfg->threshold_ns >= 100 && cfg->threshold_ns <= 10 * NSEC_PER_SEC,
		   "threshold %" PRIu64 " ns", cfg->threshold_ns);
	FUZZ_CHECK(cfg->interval_ns >= NSEC_PER_SEC / 100 &&
			   cfg->interval_ns <= 3600 * NSEC_PER_SEC,
		   "interval %" PRIu64 " ns", cfg->interval_ns);
	FUZZ_CHECK(cfg->stride >= 8 && cfg->stride % 8 == 0 && cfg->stride <= GiB,
		   "stride %" PRIu64, cfg->stride);
	FUZZ_CHECK(cfg->prefault_threads <= 1024, "prefault threads %u", cfg->prefault_threads);
	FUZZ_CHECK(strcmp(workload_name(cfg->workload), "?"), "workload %d", (int)cfg->workload);
	FUZZ_CHECK(cfg->submit <= KS_VIA_SYSCALL, "submit %d", (int)cfg->submit);
	FUZZ_CHECK(cfg->ready_fd == -1 || cfg->ready_fd >= 1, "ready fd %d", cfg->ready_fd);
	FUZZ_CHECK(!cfg->json_path || *cfg->json_path, "empty --json path");
	FUZZ_CHECK(!cfg->csv_path || *cfg->csv_path, "empty --csv path");
	FUZZ_CHECK(!cfg->nevents || cfg->events, "%u events and no array", cfg->nevents);
	for (i = 0; i < cfg->nevents; i++) {
		fuzz_check_spec(&cfg->events[i]);
		FUZZ_CHECK(cfg->events[i].via_given || cfg->events[i].via == cfg->submit,
			   "event %u: via %d, --submit %d", i, (int)cfg->events[i].via,
			   (int)cfg->submit);
	}
	FUZZ_CHECK(!cfg->scenario_argv == !cfg->scenario, "a scenario without arguments");
	for (a = cfg->scenario_argv; a && *a; a++)
		FUZZ_CHECK(a - cfg->scenario_argv < 1 << 20, "scenario arguments not terminated");
	check_layout(cfg);
}

void fuzz_confine_paths(char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '/')
			s[i] = '_';
		if (i + 5 < n && s[i] == '\\' && s[i + 1] == 'u' && s[i + 2] == '0' &&
		    s[i + 3] == '0' && s[i + 4] == '2' && (s[i + 5] == 'f' || s[i + 5] == 'F'))
			s[i + 4] = '5';
	}
}

char *fuzz_strndup(const uint8_t *data, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, data, n);
	s[n] = '\0';
	return s;
}
