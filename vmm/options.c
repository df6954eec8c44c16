// SPDX-License-Identifier: MIT
/* Command-line parsing. */
#include "config.h"

#include "options.h"

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* Far above any KVM_CAP_MAX_VCPUS; the real limit is checked against KVM. */
#define KS_VCPUS_LIMIT 4096
#define KS_SLOTS_LIMIT 65535

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
	{ "spin", KS_WL_SPIN },
	{ "touch", KS_WL_TOUCH },
	{ "fault", KS_WL_FAULT },
	{ "test-crash", KS_WL_CRASH },
	{ "test-garbage", KS_WL_GARBAGE },
	{ "test-ring", KS_WL_T_RING },
	{ "test-backwards", KS_WL_T_BACKWARDS },
	{ "test-histogram", KS_WL_T_HISTOGRAM },
	{ "test-ucalls", KS_WL_T_UCALLS },
	{ "test-params", KS_WL_T_PARAMS },
	{ "test-triple-fault", KS_WL_T_TRIPLE },
	{ "test-hlt", KS_WL_T_HLT },
	{ "test-never-ready", KS_WL_T_NEVER_READY },
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
		"      --start-timeout TIME how long vCPUs may take to reach the workload; the\n"
		"                           run goes on without the late ones (default 120s)\n"
		"      --no-numa            do not place memory and vCPUs on NUMA nodes\n"
		"\n"
		"Workload:\n"
		"  -w, --workload NAME      spin   no memory traffic: scheduling and IPI stalls\n"
		"                           touch  write the vCPU's memory with a stride (default)\n"
		"                           fault  write pages the host has just dropped, so each\n"
		"                                  backing page takes an EPT/NPT fault again\n"
		"                           (test-* are misbehaving payloads for the test suite)\n"
		"  -d, --duration TIME      run time, e.g. 10, 2.5s, 500ms (default 10s)\n"
		"  -t, --threshold TIME     a TSC gap longer than this is a stall (default 20us)\n"
		"      --stride SIZE        bytes between two writes of 'touch' (default 4K)\n"
		"\n"
		"Host memory events (repeatable; see kvmstall(1) for the grammar):\n"
		"  -e, --events KIND:TARGET[:key=value,...]\n"
		"                           KIND: madvise-dontneed, madvise-free, madvise-cold,\n"
		"                             madvise-pageout, madvise-remove, madvise-hugepage,\n"
		"                             madvise-nohugepage, madvise-mergeable,\n"
		"                             madvise-unmergeable, mprotect, migrate, remap,\n"
		"                             mremap, punch, age-idle, age-ksm\n"
		"                           TARGET: inside (guest memory), outside (decoys),\n"
		"                             edge (ranges touching a slot boundary)\n"
		"                           keys: rate=N (events/s, default 10), burst=N,every=T,\n"
		"                             delay=T, count=N, pages=N (backing pages, default 1),\n"
		"                             placement=random|seq, slots=0+2|1-3,\n"
		"                             edge=before|after|first|last|all, via=auto|uring|syscall,\n"
		"                             hold=met (wait until the guest meets each event)\n"
		"      --submit HOW         auto (io_uring where possible, default), uring or syscall\n"
		"      --verify-events      check through pagemap, smaps and friends that each\n"
		"                           event took effect (slow; exact with -w spin)\n"
		"      --antagonist KIND[:period=T,buffer=SIZE]\n"
		"                           the kernel's own memory work for the run, on VMM\n"
		"                           memory: numa-balancing, ksm, khugepaged or\n"
		"                           reclaim\n"
		"      --scenario FILE      a whole run as JSON: option names as keys, events as a\n"
		"                           list of specs; options on the command line win\n"
		"\n"
		"Output:\n"
		"  -j, --json PATH          write the report as JSON (schema in kvmstall(1))\n"
		"      --csv PATH           write a time series, one row per interval and vCPU\n"
		"      --event-log N|all    entries of each event stream's log in the JSON\n"
		"                           (default all; the first N, 0 for none)\n"
		"  -i, --interval TIME      sampling interval for --csv and progress (default 1s)\n"
		"      --anatomy on|off     where each vCPU thread was on the host during its\n"
		"                           stalls (perf_event_open; default on)\n"
		"      --ready-fd N         write \"ready\" to descriptor N and close it once every\n"
		"                           vCPU runs its workload and the events have started\n"
		"  -q, --quiet              no progress line and no summary table\n"
		"  -v, --verbose            debug messages\n"
		"  -h, --help               this text\n"
		"  -V, --version            version\n"
		"\n"
		"Examples:\n"
		"  kvmstall --vcpus 4 --memory 1G --workload touch --duration 5\n"
		"  kvmstall -c 256 -m 4G -b hugetlb-2M --reserve-hugepages -d 5 -q --json out.json\n"
		"  kvmstall -c 8 -m 2G -b memfd-hugetlb-2M --slots 4 -w fault --csv series.csv\n"
		"  kvmstall -c 4 -m 1G -b hugetlb-2M -w fault -d 10 \\\n"
		"      --events madvise-dontneed:outside:rate=10000 --events mprotect:inside:rate=10\n"
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

/* A time option: bare numbers are in @unit ns; outside [min, max] says @accepted. */
static uint64_t parse_time(const char *opt, const char *val, uint64_t unit, uint64_t min,
			   uint64_t max, const char *accepted)
{
	uint64_t ns;

	if (!parse_duration(val, unit, &ns) || ns < min || ns > max)
		bad(opt, val, accepted);
	return ns;
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
	OPT_SUBMIT,
	OPT_SCENARIO,
	OPT_VERIFY_EVENTS,
	OPT_READY_FD,
	OPT_START_TIMEOUT,
	OPT_EVENT_LOG,
	OPT_ANTAGONIST,
	OPT_ANATOMY,
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
	{ "event-log", required_argument, NULL, OPT_EVENT_LOG },
	{ "events", required_argument, NULL, 'e' },
	{ "antagonist", required_argument, NULL, OPT_ANTAGONIST },
	{ "submit", required_argument, NULL, OPT_SUBMIT },
	{ "scenario", required_argument, NULL, OPT_SCENARIO },
	{ "verify-events", no_argument, NULL, OPT_VERIFY_EVENTS },
	{ "interval", required_argument, NULL, 'i' },
	{ "ready-fd", required_argument, NULL, OPT_READY_FD },
	{ "anatomy", required_argument, NULL, OPT_ANATOMY },
	{ "start-timeout", required_argument, NULL, OPT_START_TIMEOUT },
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

/* --ready-fd N: an open descriptor we may write to, other than standard input. */
static int parse_ready_fd(const char *val)
{
	unsigned long long v;
	int fl;

	if (!parse_uint(val, INT_MAX, &v) || v == 0)
		bad("--ready-fd", val, "expected a file descriptor number, 1 or more");
	fl = fcntl((int)v, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY)
		die_usage(
			"invalid --ready-fd '%s': descriptor %llu is not open for writing; open it "
			"in the shell, as in --ready-fd 3 3>FILE",
			val, v);
	/* Not inherited by anything kvmstall may start. */
	fcntl((int)v, F_SETFD, FD_CLOEXEC);
	return (int)v;
}

static void add_event(struct ks_config *cfg, const char *text)
{
	char err[512];

	cfg->events = xrealloc(cfg->events, (cfg->nevents + 1) * sizeof(*cfg->events));
	if (ks_ev_parse(text, &cfg->events[cfg->nevents], err, sizeof(err)) < 0)
		die_usage("%s", err);
	cfg->nevents++;
}

/* A JSON value as an option argument; NULL, with @why, if it is neither a string nor a number. */
static char *scenario_value(const char *key, json_t *v, char *why, size_t wl)
{
	char buf[64];

	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return xstrdup(buf);
	}
	if (json_is_real(v)) {
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
		return xstrdup(buf);
	}
	snprintf(why, wl, "\"%s\" must be a string or a number", key);
	return NULL;
}

/* {"kind": K, "target": T, "rate": 10, ...} as "K:T:rate=10,..."; NULL, with @why, if bad. */
static char *scenario_event(json_t *ev, char *why, size_t wl)
{
	const char *kind = json_string_value(json_object_get(ev, "kind"));
	const char *target = json_string_value(json_object_get(ev, "target"));
	char text[512], *v;
	const char *k;
	json_t *val;
	size_t n;
	bool first = true;

	if (json_is_string(ev))
		return xstrdup(json_string_value(ev));
	if (!json_is_object(ev) || !kind || !target) {
		snprintf(why, wl,
			 "each event is a spec string or an object with \"kind\" and \"target\"");
		return NULL;
	}
	n = (size_t)snprintf(text, sizeof(text), "%s:%s", kind, target);
	json_object_foreach(ev, k, val)
	{
		if (!strcmp(k, "kind") || !strcmp(k, "target"))
			continue;
		v = scenario_value(k, val, why, wl);
		if (!v)
			return NULL;
		if (n < sizeof(text))
			n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s=%s",
					      first ? ":" : ",", k, v);
		free(v);
		first = false;
	}
	if (n >= sizeof(text)) {
		snprintf(why, wl, "an event is too long");
		return NULL;
	}
	return xstrdup(text);
}

static void free_args(char **argv, int argc)
{
	int i;

	for (i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}

/*
 * Turn a scenario file into a NULL-terminated argument list for
 * parse_args().  A bad file exits with status 2, after freeing what was
 * read so far.
 */
static char **scenario_args(const char *file, int *argc_out)
{
	json_error_t jerr;
	json_t *root, *v, *ev;
	char **argv, why[512];
	int argc = 1, err;
	const char *key;
	size_t i;
	struct stat sb;
	FILE *f = fopen(file, "r");

	/* A file that cannot be read: its name and the errno, nothing else. */
	if (!f)
		die_usage("invalid --scenario '%s': %m", file);
	if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
		fclose(f);
		die_usage("invalid --scenario '%s': %s", file, strerror(EISDIR));
	}
	root = json_loadf(f, 0, &jerr);
	err = errno;
	if (!root && ferror(f)) {
		fclose(f);
		die_usage("invalid --scenario '%s': %s", file, strerror(err));
	}
	fclose(f);
	if (!root)
		die_usage(
			"invalid --scenario '%s': %s (line %d, column %d); expected a JSON object "
			"of options",
			file, jerr.text, jerr.line, jerr.column);
	if (!json_is_object(root)) {
		json_decref(root);
		die_usage("invalid --scenario '%s': expected a JSON object of options", file);
	}
	argv = xcalloc(2, sizeof(char *));
	argv[0] = xstrdup("kvmstall");
	json_object_foreach(root, key, v)
	{
		char opt[64];

		if (!strcmp(key, "scenario") || !strcmp(key, "comment"))
			continue;
		argv = xrealloc(argv, (size_t)(argc + 3 + json_array_size(v) * 2) * sizeof(char *));
		if (!strcmp(key, "events")) {
			if (!json_is_array(v)) {
				snprintf(why, sizeof(why), "\"events\" must be a list");
				goto bad;
			}
			json_array_foreach(v, i, ev)
			{
				argv[argc++] = xstrdup("--events");
				argv[argc++] = scenario_event(ev, why, sizeof(why));
				if (!argv[argc - 1])
					goto bad;
			}
			continue;
		}
		if (!strcmp(key, "antagonists")) {
			if (!json_is_array(v)) {
				snprintf(why, sizeof(why),
					 "\"antagonists\" must be a list of strings");
				goto bad;
			}
			json_array_foreach(v, i, ev)
			{
				if (!json_is_string(ev)) {
					snprintf(
						why, sizeof(why),
						"\"antagonists\" must be a list of strings such as "
						"\"numa-balancing:period=100ms\"");
					goto bad;
				}
				argv[argc++] = xstrdup("--antagonist");
				argv[argc++] = xstrdup(json_string_value(ev));
			}
			continue;
		}
		snprintf(opt, sizeof(opt), "--%s", key);
		if (json_is_boolean(v)) {
			if (json_is_true(v))
				argv[argc++] = xstrdup(opt);
			continue;
		}
		argv[argc++] = xstrdup(opt);
		argv[argc++] = scenario_value(key, v, why, sizeof(why));
		if (!argv[argc - 1])
			goto bad;
	}
	argv[argc] = NULL;
	json_decref(root);
	*argc_out = argc;
	return argv;
bad:
	free_args(argv, argc);
	json_decref(root);
	die_usage("invalid --scenario '%s': %s", file, why);
}

static const char *find_scenario(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strncmp(argv[i], "--scenario=", 11))
			return argv[i] + 11;
		if (!strcmp(argv[i], "--scenario"))
			return i + 1 < argc ? argv[i + 1] : NULL;
	}
	return NULL;
}

static void parse_args(struct ks_config *cfg, int argc, char **argv)
{
	size_t i;
	int c;

	optind = 0; /* 0: full rescan, also of a second argument list */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:m:b:w:d:t:j:i:e:qvhV", long_opts, NULL)) != -1) {
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
			cfg->duration_ns = parse_time(
				"--duration", optarg, NSEC_PER_SEC, NSEC_PER_SEC / 100,
				86400 * NSEC_PER_SEC,
				"expected a time from 10ms to 24h, such as 10, 2.5s or 500ms");
			break;
		case 't':
			cfg->threshold_ns = parse_time(
				"--threshold", optarg, 1000, 100, 10 * NSEC_PER_SEC,
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
		case OPT_EVENT_LOG: {
			unsigned long long v;

			if (!strcmp(optarg, "all"))
				cfg->event_log_max = -1;
			else if (parse_uint(optarg, 1ULL << 40, &v))
				cfg->event_log_max = (long long)v;
			else
				bad("--event-log", optarg,
				    "expected all or a number of log entries per stream, 0 or more");
			break;
		}
		case 'e':
			add_event(cfg, optarg);
			break;
		case OPT_ANTAGONIST: {
			char err[300];

			if (cfg->nants >= 8)
				die_usage("too many --antagonist options: at most 8");
			cfg->ants = xrealloc(cfg->ants, (cfg->nants + 1) * sizeof(*cfg->ants));
			if (ks_ant_parse(optarg, &cfg->ants[cfg->nants], err, sizeof(err)) < 0)
				die_usage("%s", err);
			cfg->nants++;
			break;
		}
		case OPT_SUBMIT:
			if (!ks_via_parse(optarg, &cfg->submit))
				bad("--submit", optarg, "expected auto, uring or syscall");
			break;
		case OPT_VERIFY_EVENTS:
			cfg->verify_events = true;
			break;
		case OPT_START_TIMEOUT:
			cfg->start_timeout_ns =
				parse_time("--start-timeout", optarg, NSEC_PER_SEC,
					   NSEC_PER_SEC / 10, 3600 * NSEC_PER_SEC,
					   "expected a time from 100ms to 1h, such as 120 or 30s");
			break;
		case OPT_READY_FD:
			cfg->ready_fd = parse_ready_fd(optarg);
			break;
		case OPT_ANATOMY:
			if (!strcmp(optarg, "on"))
				cfg->anatomy = true;
			else if (!strcmp(optarg, "off"))
				cfg->anatomy = false;
			else
				bad("--anatomy", optarg, "expected on or off");
			break;
		case OPT_SCENARIO:
			break; /* read before the other options, see below */
		case 'i':
			cfg->interval_ns =
				parse_time("--interval", optarg, NSEC_PER_SEC, NSEC_PER_SEC / 100,
					   3600 * NSEC_PER_SEC,
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
			ks_exit(0);
		case 'V':
			printf("kvmstall %s\n", PACKAGE_VERSION);
			ks_exit(0);
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
}

void options__parse(struct ks_config *cfg, int argc, char **argv)
{
	const char *scenario = find_scenario(argc, argv);
	size_t i;

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
		.anatomy = true,
		.ready_fd = -1,
		.event_log_max = -1,
		.start_timeout_ns = 120 * NSEC_PER_SEC,
		.argc = argc,
		.argv = argv,
	};
	if (scenario) {
		int sargc;

		/* In @cfg before they are parsed: options__free() frees them after an error. */
		cfg->scenario = scenario;
		cfg->scenario_argv = scenario_args(scenario, &sargc);
		parse_args(cfg, sargc, cfg->scenario_argv);
	}
	parse_args(cfg, argc, argv);
	for (i = 0; i < cfg->nevents; i++)
		if (!cfg->events[i].via_given)
			cfg->events[i].via = cfg->submit;
	if (cfg->json_path)
		check_output_path("--json", cfg->json_path);
	if (cfg->csv_path)
		check_output_path("--csv", cfg->csv_path);
	cfg->progress = !cfg->quiet && isatty(STDERR_FILENO);
}

void options__free(struct ks_config *cfg)
{
	char **a;

	free(cfg->events);
	cfg->events = NULL;
	cfg->nevents = 0;
	free(cfg->ants);
	cfg->ants = NULL;
	cfg->nants = 0;
	for (a = cfg->scenario_argv; a && *a; a++)
		free(*a);
	free(cfg->scenario_argv);
	cfg->scenario_argv = NULL;
}
