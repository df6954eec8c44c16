// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the scenario file.  The input is written to a memfd and
 * options__parse() runs "kvmstall --scenario /proc/self/fd/N", so that
 * json_loadf() and the scenario's conversion to options read it as they
 * read a file.  '/' (and \u002f) become '_' so that the paths it names lie
 * in the current directory (scripts/fuzz runs each harness in a scratch
 * one).  Checks as fuzz-options: a rejected scenario exits 2 with one line
 * on stderr; an accepted one meets fuzz_check_config(); nothing leaks,
 * whether the file is accepted or not (LeakSanitizer).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz-common.h"
#include "options.h"
#include "util.h"

static int memfd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	memfd = memfd_create("kvmstall-fuzz-scenario", MFD_CLOEXEC);
	if (memfd < 0) {
		perror("memfd_create");
		abort();
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	fuzz_catch_exits();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ks_config cfg;
	static char prog[] = "kvmstall", opt[] = "--scenario";
	char *argv[] = { prog, opt, path, NULL };
	char *buf = malloc(size ? size : 1);
	int status;

	if (!buf)
		abort();
	memcpy(buf, data, size);
	fuzz_confine_paths(buf, size);
	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, buf, size, 0) != (ssize_t)size) {
		perror("writing the scenario to the memfd");
		abort();
	}
	free(buf);

	memset(&cfg, 0, sizeof(cfg));
	ks_verbose = 0;
	fuzz_stderr_begin();
	status = setjmp(fuzz_exit_jmp);
	if (!status) {
		options__parse(&cfg, 3, argv);
		fuzz_check_parse_exit(-1, fuzz_stderr_end());
		fuzz_check_config(&cfg);
	} else {
		fuzz_check_parse_exit(status - FUZZ_EXITED, fuzz_stderr_end());
	}
	options__free(&cfg);
	return 0;
}
