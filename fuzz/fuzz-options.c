// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the option parser.  The input, split at NUL bytes, is the
 * command line after "kvmstall" (at most 64 words), for options__parse().
 * '/' becomes '_' so that --json, --csv and --scenario name files in the
 * current directory only (scripts/fuzz runs each harness in a scratch one).
 * Checks: a rejected command line exits 2 with one line on stderr, --help
 * and --version exit 0; an accepted one meets fuzz_check_config() (value
 * ranges, and the layout and event ranges kvmstall derives from it); and
 * options__free() frees everything either way (LeakSanitizer).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "options.h"
#include "util.h"

#define MAX_WORDS 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_catch_exits();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Static: options__parse() changes them before it may longjmp() back. */
	static struct ks_config cfg;
	static char *argv[MAX_WORDS + 2], prog[] = "kvmstall";
	char *buf = fuzz_strndup(data, size);
	int argc = 1, status;
	size_t i;

	fuzz_confine_paths(buf, size);
	argv[0] = prog;
	for (i = 0; i < size && argc <= MAX_WORDS; i += strlen(buf + i) + 1)
		argv[argc++] = buf + i;
	argv[argc] = NULL;

	memset(&cfg, 0, sizeof(cfg));
	ks_verbose = 0;
	fuzz_stderr_begin();
	status = setjmp(fuzz_exit_jmp);
	if (!status) {
		options__parse(&cfg, argc, argv);
		fuzz_check_parse_exit(-1, fuzz_stderr_end());
		fuzz_check_config(&cfg);
	} else {
		fuzz_check_parse_exit(status - FUZZ_EXITED, fuzz_stderr_end());
	}
	options__free(&cfg);
	free(buf);
	return 0;
}
