// SPDX-License-Identifier: MIT
/* Messages, allocation, parsing and time helpers. */
#include "config.h"

#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *ks_prog = "kvmstall";
int ks_verbose;
void (*ks_exit_hook)(int status);

void ks_exit(int status)
{
	if (ks_exit_hook)
		ks_exit_hook(status);
	exit(status);
}

/*
 * Every message is one line, whatever the values it quotes hold: control
 * characters (a newline in an argument, a terminal escape sequence) are
 * written as \n, \t or \xHH.
 */
static void one_line(char *out, const char *in)
{
	static const char hex[] = "0123456789abcdef";

	for (; *in; in++) {
		unsigned char c = (unsigned char)*in;

		if (c >= 0x20 && c != 0x7f) {
			*out++ = (char)c;
			continue;
		}
		*out++ = '\\';
		if (c == '\n') {
			*out++ = 'n';
		} else if (c == '\t') {
			*out++ = 't';
		} else {
			*out++ = 'x';
			*out++ = hex[c >> 4];
			*out++ = hex[c & 0xf];
		}
	}
	*out = '\0';
}

static void vmsg(const char *prefix, const char *fmt, va_list ap, int err)
{
	char buf[1024], line[4 * sizeof(buf)];
	int n;

	n = snprintf(buf, sizeof(buf), "%s: %s", ks_prog, prefix);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	one_line(line, buf);
	if (err)
		fprintf(stderr, "%s: %s\n", line, strerror(err));
	else
		fprintf(stderr, "%s\n", line);
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap, 0);
	va_end(ap);
	ks_exit(KS_EXIT_FAIL);
}

void die_perror(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap, err);
	va_end(ap);
	ks_exit(KS_EXIT_FAIL);
}

void die_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap, 0);
	va_end(ap);
	ks_exit(KS_EXIT_USAGE);
}

void pr_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("error: ", fmt, ap, 0);
	va_end(ap);
}

void pr_warning(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap, 0);
	va_end(ap);
}

void pr_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap, 0);
	va_end(ap);
}

void pr_debug(const char *fmt, ...)
{
	va_list ap;

	if (!ks_verbose)
		return;
	va_start(ap, fmt);
	vmsg("debug: ", fmt, ap, 0);
	va_end(ap);
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		die("out of memory allocating %zu x %zu bytes", n, size);
	return p;
}

void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size ? size : 1);
	if (!p)
		die("out of memory allocating %zu bytes", size);
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		die("out of memory");
	return p;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t realtime_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

bool parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

bool parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	uint64_t mult = 1;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		mult = KiB;
		end++;
		break;
	case 'M':
		mult = MiB;
		end++;
		break;
	case 'G':
		mult = GiB;
		end++;
		break;
	case 'T':
		mult = 1024 * GiB;
		end++;
		break;
	default:
		return false;
	}
	/* Accept "2M", "2MB", "2MiB". */
	if (mult > 1 &&
	    (!strcmp(end, "iB") || !strcmp(end, "B") || !strcmp(end, "ib") || !strcmp(end, "b")))
		end += strlen(end);
	if (*end)
		return false;
	if (v > UINT64_MAX / mult)
		return false;
	*out = v * mult;
	return true;
}

bool parse_duration(const char *s, uint64_t def_unit_ns, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t ns;
	} units[] = {
		{ "ns", 1 },
		{ "us", 1000 },
		{ "ms", 1000000 },
		{ "s", NSEC_PER_SEC },
		{ "m", 60 * NSEC_PER_SEC },
		{ "min", 60 * NSEC_PER_SEC },
	};
	uint64_t unit = def_unit_ns;
	double v;
	char *end;
	size_t i;

	if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return false;
	if (*end) {
		for (i = 0; i < ARRAY_SIZE(units); i++)
			if (!strcmp(end, units[i].suffix))
				break;
		if (i == ARRAY_SIZE(units))
			return false;
		unit = units[i].ns;
	}
	v *= (double)unit;
	if (v >= 1.8e19)
		return false;
	*out = (uint64_t)(v + 0.5);
	return true;
}

const char *fmt_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned int i = 0;

	while (i + 1 < ARRAY_SIZE(units) && bytes >= 1024 && bytes % 1024 == 0) {
		bytes /= 1024;
		i++;
	}
	snprintf(buf, len, "%" PRIu64 " %s", bytes, units[i]);
	return buf;
}

char *read_file(const char *path)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

bool read_u64_file(const char *path, uint64_t *out)
{
	char *s = read_file(path), *end;
	unsigned long long v;
	bool ok;

	if (!s)
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	ok = !errno && end != s && (*end == '\n' || *end == '\0');
	free(s);
	if (ok)
		*out = v;
	return ok;
}

bool write_u64_file(const char *path, uint64_t v)
{
	char buf[32];
	int fd, n;
	bool ok;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", v);
	ok = write(fd, buf, (size_t)n) == n;
	close(fd);
	return ok;
}

FILE *out_file_open(const char *path, char *tmp, size_t tmplen)
{
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	FILE *f;
	int fd;

	/* Hidden, in the same directory (so rename() stays on one file system). */
	if ((size_t)snprintf(tmp, tmplen, "%.*s.%s.XXXXXX", (int)dirlen, path, path + dirlen) >=
	    tmplen) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fchmod(fd, 0644) < 0 || !(f = fdopen(fd, "w"))) {
		int err = errno;

		close(fd);
		unlink(tmp);
		errno = err;
		return NULL;
	}
	return f;
}

int out_file_commit(FILE *f, const char *tmp, const char *path)
{
	int err = 0;

	errno = 0; /* an earlier write's error may leave ferror() set and errno stale */
	if (fflush(f) != 0 || ferror(f))
		err = errno ? errno : EIO;
	else if (fsync(fileno(f)) < 0)
		err = errno;
	if (fclose(f) != 0 && !err)
		err = errno;
	if (!err && rename(tmp, path) < 0)
		err = errno;
	if (err) {
		unlink(tmp);
		return -err;
	}
	return 0;
}

void out_file_abort(FILE *f, const char *tmp)
{
	fclose(f);
	unlink(tmp);
}

void test_signal_point(const char *phase)
{
	const char *want = getenv("KVMSTALL_TEST_SIGNAL");
	size_t n = strlen(phase);
	unsigned long count = 1;

	if (!want || strncmp(want, phase, n) || (want[n] && want[n] != ':'))
		return;
	if (want[n] == ':')
		count = strtoul(want + n + 1, NULL, 10);
	pr_debug("KVMSTALL_TEST_SIGNAL: %lu SIGINT at %s", count, phase);
	while (count--)
		raise(SIGINT);
}

void nofile_raise(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) || r.rlim_cur >= r.rlim_max)
		return;
	r.rlim_cur = r.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &r))
		pr_debug("cannot raise the open file limit: %s", strerror(errno));
}

int nofile_limit(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) || r.rlim_cur == RLIM_INFINITY || r.rlim_cur > INT32_MAX)
		return INT32_MAX;
	return (int)r.rlim_cur;
}
