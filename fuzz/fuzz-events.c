// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the --events spec grammar.  The input, as a string, goes to
 * ks_ev_parse().  Checks: a rejected spec gets one terminated message that
 * starts with "invalid --events '"; an accepted one meets
 * fuzz_check_spec() (one schedule, rate or every; burst, pages and the
 * other values in range; kinds and targets that go together; the spec's
 * text terminated and a copy of the input).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size), err[512];
	struct ks_ev_spec s;

	memset(err, 0xa5, sizeof(err));
	if (ks_ev_parse(text, &s, err, sizeof(err)) == 0) {
		fuzz_check_spec(&s);
		FUZZ_CHECK(strlen(text) < sizeof(s.text) && !strcmp(s.text, text),
			   "the spec's text is \"%s\"", s.text);
	} else {
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)), "the message is not terminated");
		FUZZ_CHECK(!strncmp(err, "invalid --events '", 18), "the message is \"%s\"", err);
	}
	free(text);
	return 0;
}
