// SPDX-License-Identifier: MIT
/* The --antagonist grammar: KIND[:key=value,...]; see antagonist.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "antagonist.h"
#include "util.h"

#define HUGE (2ULL << 20)

static const char *const kind_names[KS_ANT_NR] = {
	[KS_ANT_NUMA_BALANCING] = "numa-balancing",
	[KS_ANT_KSM] = "ksm",
	[KS_ANT_KHUGEPAGED] = "khugepaged",
	[KS_ANT_RECLAIM] = "reclaim",
};

static const uint64_t default_period_ms[KS_ANT_NR] = {
	[KS_ANT_NUMA_BALANCING] = 100,
	[KS_ANT_KSM] = 20,
	[KS_ANT_KHUGEPAGED] = 100,
	[KS_ANT_RECLAIM] = 10,
};

const char *ks_ant_kind_name(enum ks_ant_kind k)
{
	return k < KS_ANT_NR ? kind_names[k] : "?";
}

int ks_ant_parse(const char *text, struct ks_ant_spec *out, char *err, size_t errlen)
{
	char buf[128], *kv, *save = NULL, *colon;
	unsigned int k;

	memset(out, 0, sizeof(*out));
	if (strlen(text) >= sizeof(buf) || strlen(text) >= sizeof(out->text)) {
		snprintf(err, errlen, "invalid --antagonist: longer than %zu characters",
			 sizeof(buf) - 1);
		return -1;
	}
	snprintf(out->text, sizeof(out->text), "%s", text);
	snprintf(buf, sizeof(buf), "%s", text);
	colon = strchr(buf, ':');
	if (colon)
		*colon = '\0';
	for (k = 0; k < KS_ANT_NR; k++)
		if (!strcmp(buf, kind_names[k]))
			break;
	if (k == KS_ANT_NR) {
		snprintf(
			err, errlen,
			"invalid --antagonist '%s': unknown kind '%s'; expected numa-balancing, ksm, "
			"khugepaged or reclaim",
			text, buf);
		return -1;
	}
	out->kind = (enum ks_ant_kind)k;
	out->period_ns = default_period_ms[k] * 1000000ULL;
	out->buffer = 64ULL << 20;
	for (kv = colon ? strtok_r(colon + 1, ",", &save) : NULL; kv;
	     kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');

		if (!eq) {
			snprintf(err, errlen,
				 "invalid --antagonist '%s': '%s' is not key=value; keys: period, "
				 "buffer",
				 text, kv);
			return -1;
		}
		*eq++ = '\0';
		if (!strcmp(kv, "period")) {
			if (!parse_duration(eq, 1000000ULL, &out->period_ns) ||
			    out->period_ns < 1000000ULL || out->period_ns > 60 * 1000000000ULL) {
				snprintf(
					err, errlen,
					"invalid --antagonist '%s': period=%s; expected a time from "
					"1ms to 60s (bare numbers are ms)",
					text, eq);
				return -1;
			}
		} else if (!strcmp(kv, "buffer")) {
			if (!parse_size(eq, &out->buffer) || out->buffer < HUGE ||
			    out->buffer > (64ULL << 30) || out->buffer % HUGE) {
				snprintf(
					err, errlen,
					"invalid --antagonist '%s': buffer=%s; expected a multiple "
					"of 2M from 2M to 64G",
					text, eq);
				return -1;
			}
		} else {
			snprintf(
				err, errlen,
				"invalid --antagonist '%s': unknown key '%s'; keys: period, buffer",
				text, kv);
			return -1;
		}
	}
	return 0;
}
