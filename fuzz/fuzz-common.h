/* SPDX-License-Identifier: MIT */
/*
 * What the fuzz harnesses share: catching kvmstall's exits, capturing what
 * it prints on stderr, and the invariants of what the parsers accept.
 */
#ifndef KVMSTALL__FUZZ_COMMON_H
#define KVMSTALL__FUZZ_COMMON_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

#include "kvmstall.h"

/* The libFuzzer entry points, defined by each harness. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: says which, with what kvmstall printed, and aborts. */
#define FUZZ_CHECK(cond, ...) ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__))
noreturn void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * After fuzz_catch_exits(), an exit of kvmstall with status S (die(),
 * die_usage(), --help) longjmp()s to fuzz_exit_jmp, where setjmp() returns
 * FUZZ_EXITED + S.  Objects the harness changes between its setjmp() and
 * the exit must be static or volatile.
 */
#define FUZZ_EXITED 0x100
extern jmp_buf fuzz_exit_jmp;
void fuzz_catch_exits(void);

/*
 * stderr goes to memory from fuzz_stderr_begin() to fuzz_stderr_end(),
 * which returns what was written (valid until the next begin).
 */
void fuzz_stderr_begin(void);
const char *fuzz_stderr_end(void);

/*
 * The contract of options__parse(): it returns, or exits 0 (--help,
 * --version) printing nothing on stderr, or exits 2 with exactly one line,
 * "kvmstall: ...", on stderr.  @status: the exit status, or -1 when
 * options__parse() returned (then stderr must be empty).
 */
void fuzz_check_parse_exit(int status, const char *err);

/* Invariants of an event spec that ks_ev_parse() accepted. */
void fuzz_check_spec(const struct ks_ev_spec *s);

/*
 * Invariants of a configuration that options__parse() accepted, and of
 * what kvmstall derives from it before it opens /dev/kvm: the layout and,
 * for each event stream that fits, the ranges it may hit.
 */
void fuzz_check_config(const struct ks_config *cfg);

/*
 * '/' becomes '_' in @s (and the JSON escape \u002f becomes \u005f), so
 * that every path an input names lies in the current directory: the
 * harnesses run in a scratch directory and must not open device nodes or
 * FIFOs elsewhere on the host.
 */
void fuzz_confine_paths(char *s, size_t n);

/* @n bytes of @data as a NUL-terminated string (embedded NULs end it early); free() it. */
char *fuzz_strndup(const uint8_t *data, size_t n);

#endif
