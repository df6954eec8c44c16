// SPDX-License-Identifier: MIT
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>

static unsigned int planned, run, failed;

void tap_plan(unsigned int n)
{
	planned = n;
	printf("1..%u\n", n);
}

bool tap_ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	run++;
	printf("%sok %u - ", cond ? "" : "not ", run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		failed++;
	return cond;
}

void tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

bool tap_eq_u64_at(unsigned long long a, unsigned long long b, const char *ea, const char *eb,
		   const char *name, const char *file, int line)
{
	if (tap_ok(a == b, "%s", name))
		return true;
	tap_diag("%s:%d: %s == %s: %llu (0x%llx) != %llu (0x%llx)", file, line, ea, eb, a, a, b, b);
	return false;
}

int tap_done(void)
{
	if (run != planned) {
		tap_diag("planned %u tests but ran %u", planned, run);
		return 1;
	}
	fflush(stdout);
	return failed ? 1 : 0;
}
