// SPDX-License-Identifier: MIT
/* Command-line parsing. */
#include "config.h"

#include "options.h"

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* Far above any KVM_CAP_MAX_VCPUS; the real limit is checked against KVM. */
#define KS_VCPUS_LIMIT 4096
#define KS_SLOTS_LIMIT 32000

/*
 * 20 us: far above the loop period (tens of ns) and a cache or TLB miss,
 * at or below the cost of one EPT/NPT violation exit or a wait on mmu_lock,
 * and below a host timer tick (1 to 4 ms), so every event that matters is
 * caught while a timer interrupt on the host side still shows up.
 */
#define KS_DEFAULT_THRESHOLD_NS 20000ULL

/* The test- payloads misbehave on purpose, for the test suite. */
static const struct {
	const char *name;
	enum ks_workload wl;
} workloads[] = {
	{ "spin", KS_WL_SPIN },	       { "touch", KS_WL_TOUCH },	  { "fault", KS_WL_FAULT },
	{ "test-crash", KS_WL_CRASH }, { "test-garbage", KS_WL_GARBAGE },
};

const char *workload_name(enum ks_workload w)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(workloads); i++)
		if (workloads[i].wl == w)
			return workloads[i].name;
	return "?";
}

static void usage(FILE *f)
{
	unsigned int i;

	fprintf(f, "Usage: kvmstall [OPTION]...\n"
		   "Launch a test VM on KVM, run a stall-measuring workload on every vCPU and\n"
		   "report how long and how often each vCPU stalled.\n"
		   "\n"
		   "VM:\n"
		   "  -c, --vcpus N            vCPUs, 1 to KVM_CAP_MAX_VCPUS (default 4)\n"
		   "  -m, --memory SIZE        test memory, split over the slots (default 1G)\n"
		   "  -b, --backing NAME       memory backing (default anon):\n");
	for (i = 0; i < KS_BACKING_NR; i++)
		fprintf(f, "                             %-17s %s\n",
			ks_backing_info((enum ks_backing)i)->name,
			ks_backing_info((enum ks_backing)i)->help);
	fprintf(f,
		"      --slots N            number of test memslots (default 1)\n"
		"      --decoy-size SIZE    VMM-private mapping before and after each slot\n"
		"                           (default one backing page, at least 2M)\n"
		"      --reserve-hugepages  grow the HugeTLB pool by what is missing and shrink\n"
		"                           it again at exit\n"
		"      --no-prefault        do not touch the memory before the run\n"
		"      --prefault-threads N threads for the prefault (default: online CPUs)\n"
		"      --pin                pin each vCPU thread to one CPU of its memory's node\n"
		"      --no-numa            do not place memory and vCPUs on NUMA nodes\n"
		"\n"
		"Workload:\n"
		"  -w, --workload NAME      spin   no memory traffic: scheduling and IPI stalls\n"
		"                           touch  write the vCPU's memory with a stride (default)\n"
		"                           fault  write pages the host has just dropped, so each\n"
		"                                  backing page takes an EPT/NPT fault again\n"
		"                           (test-crash and test-garbage are misbehaving payloads\n"
		"                           for the test suite)\n"
		"  -d, --duration TIME      run time, e.g. 10, 2.5s, 500ms (default 10s)\n"
		"  -t, --threshold TIME     a TSC gap longer than this is a stall (default 20us)\n"
		"      --stride SIZE        bytes between two writes of 'touch' (default 4K)\n"
		"\n"
		"Output:\n"
		"  -j, --json PATH          write the report as JSON (schema in kvmstall(1))\n"
		"      --csv PATH           write a time series, one row per interval and vCPU\n"
		"  -i, --interval TIME      sampling interval for --csv and progress (default 1s)\n"
		"  -q, --quiet              no progress line and no summary table\n"
		"  -v, --verbose            debug messages\n"
		"  -h, --help               this text\n"
		"  -V, --version            version\n"
		"\n"
		"Examples:\n"
		"  kvmstall --vcpus 4 --memory 1G --workload touch --duration 5\n"
		"  kvmstall -c 256 -m 4G -b hugetlb-2M --reserve-hugepages -d 5 -q --json out.json\n"
		"  kvmstall -c 8 -m 2G -b memfd-hugetlb-2M --slots 4 -w fault --csv series.csv\n"
		"\n"
		"Exit status: 0 on success, 1 when the run failed, 2 for bad usage.\n");
}

static void bad(const char *opt, const char *val, const char *accepted)
{
	die_usage("invalid %s '%s': %s", opt, val, accepted);
}

static unsigned int parse_count(const char *opt, const char *val, unsigned int max)
{
	unsigned long long v;
	char msg[96];

	snprintf(msg, sizeof(msg), "expected a whole number from 1 to %u", max);
	if (!parse_uint(val, max, &v) || v == 0)
		bad(opt, val, msg);
	return (unsigned int)v;
}

enum {
	OPT_SLOTS = 256,
	OPT_DECOY,
	OPT_RESERVE,
	OPT_NO_PREFAULT,
	OPT_PREFAULT_THREADS,
	OPT_PIN,
	OPT_NO_NUMA,
	OPT_STRIDE,
	OPT_CSV,
};

static const struct option long_opts[] = {
	{ "vcpus", required_argument, NULL, 'c' },
	{ "memory", required_argument, NULL, 'm' },
	{ "backing", required_argument, NULL, 'b' },
	{ "slots", required_argument, NULL, OPT_SLOTS },
	{ "decoy-size", required_argument, NULL, OPT_DECOY },
	{ "reserve-hugepages", no_argument, NULL, OPT_RESERVE },
	{ "no-prefault", no_argument, NULL, OPT_NO_PREFAULT },
	{ "prefault-threads", required_argument, NULL, OPT_PREFAULT_THREADS },
	{ "pin", no_argument, NULL, OPT_PIN },
	{ "no-numa", no_argument, NULL, OPT_NO_NUMA },
	{ "workload", required_argument, NULL, 'w' },
	{ "duration", required_argument, NULL, 'd' },
	{ "threshold", required_argument, NULL, 't' },
	{ "stride", required_argument, NULL, OPT_STRIDE },
	{ "json", required_argument, NULL, 'j' },
	{ "csv", required_argument, NULL, OPT_CSV },
	{ "interval", required_argument, NULL, 'i' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void check_output_path(const char *opt, const char *path)
{
	bool existed = access(path, F_OK) == 0;
	int fd;

	if (!*path)
		die_usage("invalid %s '': expected a file path", opt);
	/* Fail now rather than after the run; append mode leaves an existing file intact. */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		die_usage("invalid %s '%s': cannot write there (%m); choose a writable path", opt,
			  path);
	close(fd);
	if (!existed)
		unlink(path);
}

void options__parse(struct ks_config *cfg, int argc, char **argv)
{
	size_t i;
	int c;

	*cfg = (struct ks_config){
		.vcpus = 4,
		.memory = GiB,
		.backing = KS_BACKING_ANON,
		.slots = 1,
		.duration_ns = 10 * NSEC_PER_SEC,
		.threshold_ns = KS_DEFAULT_THRESHOLD_NS,
		.workload = KS_WL_TOUCH,
		.stride = 4096,
		.interval_ns = NSEC_PER_SEC,
		.prefault = true,
		.numa = true,
		.argc = argc,
		.argv = argv,
	};
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:m:b:w:d:t:j:i:qvhV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cfg->vcpus = parse_count("--vcpus", optarg, KS_VCPUS_LIMIT);
			break;
		case 'm':
			if (!parse_size(optarg, &cfg->memory) || !cfg->memory)
				bad("--memory", optarg,
				    "expected a size such as 512M, 4G or 1073741824");
			break;
		case 'b':
			if (!ks_backing_parse(optarg, &cfg->backing))
				bad("--backing", optarg,
				    "expected anon, thp, hugetlb-2M, hugetlb-1G or memfd-hugetlb-2M");
			break;
		case OPT_SLOTS:
			cfg->slots = parse_count("--slots", optarg, KS_SLOTS_LIMIT);
			break;
		case OPT_DECOY:
			if (!parse_size(optarg, &cfg->decoy_size) || !cfg->decoy_size)
				bad("--decoy-size", optarg, "expected a size such as 2M or 1G");
			break;
		case OPT_RESERVE:
			cfg->reserve_hugepages = true;
			break;
		case OPT_NO_PREFAULT:
			cfg->prefault = false;
			break;
		case OPT_PREFAULT_THREADS:
			cfg->prefault_threads = parse_count("--prefault-threads", optarg, 1024);
			break;
		case OPT_PIN:
			cfg->pin = true;
			break;
		case OPT_NO_NUMA:
			cfg->numa = false;
			break;
		case 'w':
			for (i = 0; i < ARRAY_SIZE(workloads); i++)
				if (!strcmp(optarg, workloads[i].name))
					break;
			if (i == ARRAY_SIZE(workloads))
				bad("--workload", optarg, "expected spin, touch or fault");
			cfg->workload = workloads[i].wl;
			break;
		case 'd':
			if (!parse_duration(optarg, NSEC_PER_SEC, &cfg->duration_ns) ||
			    cfg->duration_ns < NSEC_PER_SEC / 100 ||
			    cfg->duration_ns > 86400 * NSEC_PER_SEC)
				bad("--duration", optarg,
				    "expected a time from 10ms to 24h, such as 10, 2.5s or 500ms");
			break;
		case 't':
			if (!parse_duration(optarg, 1000, &cfg->threshold_ns) ||
			    cfg->threshold_ns < 100 || cfg->threshold_ns > 10 * NSEC_PER_SEC)
				bad("--threshold", optarg,
				    "expected a time from 100ns to 10s, such as 20us or 1ms (bare numbers are us)");
			break;
		case OPT_STRIDE:
			if (!parse_size(optarg, &cfg->stride) || cfg->stride < 8 ||
			    cfg->stride % 8 || cfg->stride > GiB)
				bad("--stride", optarg,
				    "expected a multiple of 8 bytes from 8 to 1G, such as 64 or 4K");
			break;
		case 'j':
			cfg->json_path = optarg;
			break;
		case OPT_CSV:
			cfg->csv_path = optarg;
			break;
		case 'i':
			if (!parse_duration(optarg, NSEC_PER_SEC, &cfg->interval_ns) ||
			    cfg->interval_ns < NSEC_PER_SEC / 100 ||
			    cfg->interval_ns > 3600 * NSEC_PER_SEC)
				bad("--interval", optarg,
				    "expected a time from 10ms to 1h, such as 1 or 100ms");
			break;
		case 'q':
			cfg->quiet = true;
			break;
		case 'v':
			ks_verbose++;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("kvmstall %s\n", PACKAGE_VERSION);
			exit(0);
		case ':':
			die_usage("option %s needs a value; see kvmstall --help", argv[optind - 1]);
		default:
			die_usage("unknown option '%s'; see kvmstall --help", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage(
			"unexpected argument '%s'; kvmstall takes options only, see kvmstall --help",
			argv[optind]);
	if (cfg->json_path)
		check_output_path("--json", cfg->json_path);
	if (cfg->csv_path)
		check_output_path("--csv", cfg->csv_path);
	cfg->progress = !cfg->quiet && isatty(STDERR_FILENO);
}
