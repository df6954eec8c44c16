/* SPDX-License-Identifier: MIT */
/* A small TAP producer for the unit tests. */
#ifndef KVMSTALL__TAP_H
#define KVMSTALL__TAP_H

#include <stdbool.h>

void tap_plan(unsigned int n);
bool tap_ok(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 0 if every test passed and the plan was kept, 1 otherwise. */
int tap_done(void);

/* Equality with both values in the diagnostics. */
#define tap_eq_u64(a, b, name)                                                                  \
	tap_eq_u64_at((unsigned long long)(a), (unsigned long long)(b), #a, #b, name, __FILE__, \
		      __LINE__)
bool tap_eq_u64_at(unsigned long long a, unsigned long long b, const char *ea, const char *eb,
		   const char *name, const char *file, int line);

#endif
