// SPDX-License-Identifier: MIT
/* Option parsing: good values land in the config, bad ones exit 2 with one line. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "options.h"
#include "tap.h"
#include "util.h"

static void parse(struct ks_config *cfg, const char **argv)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	options__parse(cfg, argc, (char **)argv);
}

/* Parse in a child; returns its exit status and its stderr in @err. */
static int parse_in_child(const char **argv, char *err, size_t errlen)
{
	struct ks_config cfg;
	int pfd[2], status;
	ssize_t n, len = 0;
	pid_t pid;

	if (pipe(pfd) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], STDERR_FILENO);
		dup2(open("/dev/null", O_WRONLY), STDOUT_FILENO);
		close(pfd[0]);
		parse(&cfg, argv);
		_exit(0);
	}
	close(pfd[1]);
	while (len < (ssize_t)errlen - 1 &&
	       (n = read(pfd[0], err + len, errlen - 1 - (size_t)len)) > 0)
		len += n;
	err[len] = '\0';
	close(pfd[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static unsigned int lines(const char *s)
{
	unsigned int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

struct bad_case {
	const char *args[6];
	const char *must_name;
};

static const struct bad_case bad[] = {
	{ { "--backing", "hugetlb-4M" }, "--backing" },
	{ { "--backing", "" }, "--backing" },
	{ { "--vcpus", "0" }, "--vcpus" },
	{ { "--vcpus", "-3" }, "--vcpus" },
	{ { "--vcpus", "100000" }, "--vcpus" },
	{ { "--vcpus", "4x" }, "--vcpus" },
	{ { "--memory", "lots" }, "--memory" },
	{ { "--memory", "0" }, "--memory" },
	{ { "--memory", "99999999999999999999G" }, "--memory" },
	{ { "--slots", "0" }, "--slots" },
	{ { "--workload", "sleep" }, "--workload" },
	{ { "--duration", "0" }, "--duration" },
	{ { "--duration", "5 parsecs" }, "--duration" },
	{ { "--threshold", "1ns" }, "--threshold" },
	{ { "--stride", "12" }, "--stride" },
	{ { "--interval", "-1" }, "--interval" },
	{ { "--decoy-size", "x" }, "--decoy-size" },
	{ { "--json", "/nonexistent-dir/out.json" }, "--json" },
	{ { "--csv", "/proc/kvmstall-test.csv" }, "--csv" },
	{ { "--json", "/" }, "--json" },
	{ { "--frobnicate" }, "--frobnicate" },
	{ { "--vcpus" }, "--vcpus" },
	{ { "extra" }, "extra" },
	{ { "--ready-fd", "0" }, "--ready-fd" },
	{ { "--ready-fd", "three" }, "--ready-fd" },
	{ { "--ready-fd", "1000" }, "not open for writing" },
	{ { "--event-log", "some" }, "--event-log" },
	{ { "--event-log", "-1" }, "--event-log" },
	{ { "--anatomy", "yes" }, "expected on or off" },
	{ { "--antagonist", "swap" }, "expected numa-balancing, ksm, khugepaged or reclaim" },
	{ { "--antagonist", "ksm:period=0" }, "period=0" },
	{ { "--antagonist", "ksm:buffer=3M" }, "buffer=3M" },
	{ { "--antagonist", "khugepaged:rate=5" }, "unknown key 'rate'" },
	{ { "--antagonist", "numa-balancing:period" }, "not key=value" },
};

int main(void)
{
	const char *argv_good[] = { "kvmstall",
				    "--vcpus",
				    "256",
				    "--memory",
				    "4G",
				    "--backing",
				    "hugetlb-2M",
				    "--slots",
				    "4",
				    "-w",
				    "fault",
				    "-d",
				    "2.5s",
				    "-t",
				    "50",
				    "--stride",
				    "64",
				    "--pin",
				    "--no-prefault",
				    "--no-numa",
				    "--reserve-hugepages",
				    "-q",
				    "-i",
				    "100ms",
				    "--event-log",
				    "7",
				    "--anatomy",
				    "off",
				    "--antagonist",
				    "reclaim:period=5ms,buffer=8M",
				    NULL };
	const char *argv_default[] = { "kvmstall", NULL };
	struct ks_config cfg;
	char err[1024];
	size_t i;
	unsigned int nplan = 23 + 3 * (unsigned int)(sizeof(bad) / sizeof(bad[0]));

	tap_plan(nplan);
	parse(&cfg, argv_default);
	tap_ok(cfg.vcpus == 4 && cfg.memory == GiB && cfg.backing == KS_BACKING_ANON &&
		       cfg.slots == 1 && cfg.workload == KS_WL_TOUCH,
	       "defaults: 4 vCPUs, 1 GiB anon, 1 slot, touch");
	tap_eq_u64(cfg.threshold_ns, 20000, "default threshold 20 us");
	tap_eq_u64(cfg.duration_ns, 10 * NSEC_PER_SEC, "default duration 10 s");
	tap_ok(cfg.prefault && cfg.numa && !cfg.pin && !cfg.quiet, "default flags");
	tap_ok(cfg.ready_fd == -1, "no --ready-fd by default");
	tap_ok(cfg.event_log_max == -1, "--event-log all by default");
	tap_ok(cfg.anatomy, "--anatomy on by default");

	parse(&cfg, argv_good);
	tap_eq_u64(cfg.vcpus, 256, "--vcpus 256");
	tap_eq_u64(cfg.memory, 4 * GiB, "--memory 4G");
	tap_eq_u64(cfg.backing, KS_BACKING_HUGETLB_2M, "--backing hugetlb-2M");
	tap_eq_u64(cfg.slots, 4, "--slots 4");
	tap_eq_u64(cfg.workload, KS_WL_FAULT, "-w fault");
	tap_eq_u64(cfg.duration_ns, 2500 * 1000 * 1000ULL, "-d 2.5s");
	tap_eq_u64(cfg.threshold_ns, 50000, "-t 50 means 50 us");
	tap_eq_u64(cfg.stride, 64, "--stride 64");
	tap_eq_u64(cfg.interval_ns, 100 * 1000 * 1000ULL, "-i 100ms");
	tap_eq_u64(cfg.event_log_max, 7, "--event-log 7");
	tap_ok(!cfg.anatomy, "--anatomy off");
	tap_ok(cfg.nants == 1 && cfg.ants[0].kind == KS_ANT_RECLAIM &&
		       cfg.ants[0].period_ns == 5000000 && cfg.ants[0].buffer == 8ULL << 20,
	       "--antagonist reclaim:period=5ms,buffer=8M");
	tap_ok(cfg.pin && !cfg.prefault && !cfg.numa && cfg.reserve_hugepages && cfg.quiet &&
		       !cfg.progress,
	       "flags");

	{
		const char *h[] = { "kvmstall", "--help", NULL };

		tap_eq_u64(parse_in_child(h, err, sizeof(err)), 0, "--help exits 0");
	}
	{
		const char *v[] = { "kvmstall", "--version", NULL };

		tap_eq_u64(parse_in_child(v, err, sizeof(err)), 0, "--version exits 0");
	}
	{
		/* Control characters in a value are escaped: the message stays one line. */
		const char *c[] = { "kvmstall", "--vcpus", "1\n2\033[31m", NULL };

		parse_in_child(c, err, sizeof(err));
		if (!tap_ok(lines(err) == 1 && strstr(err, "'1\\n2\\x1b[31m'"),
			    "a newline and an escape in a value are written as \\n and \\x1b"))
			tap_diag("stderr: %s", err);
	}

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *argv[8] = { "kvmstall" };
		char desc[128] = "";
		unsigned int k;
		int rc;

		for (k = 0; k < 6 && bad[i].args[k]; k++) {
			argv[k + 1] = bad[i].args[k];
			strncat(desc, " ", sizeof(desc) - strlen(desc) - 1);
			strncat(desc, bad[i].args[k], sizeof(desc) - strlen(desc) - 1);
		}
		rc = parse_in_child(argv, err, sizeof(err));
		tap_eq_u64(rc, 2, desc);
		tap_ok(lines(err) == 1, "%s: exactly one line", desc);
		if (!tap_ok(strstr(err, bad[i].must_name) != NULL, "%s: the message names %s", desc,
			    bad[i].must_name))
			tap_diag("stderr: %s", err);
	}
	options__free(&cfg);
	return tap_done();
}
