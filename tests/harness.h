/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A kselftest-style TAP harness.
 *
 *   TEST(name) { ... }                     a plain test
 *   TEST_TIMEOUT(name, seconds) { ... }    the same with its own timeout
 *   FIXTURE(f) { fields };                 per-test state
 *   FIXTURE_SETUP(f) { self->... }         runs in the child before each TEST_F
 *   FIXTURE_TEARDOWN(f) { ... }            runs in the child after each TEST_F
 *   FIXTURE_VARIANT(f) { fields };         parameters: each TEST_F of f runs
 *   FIXTURE_VARIANT_ADD(f, v) { .x = 1 };  once per variant, as f.v.test,
 *                                          reading variant->x (setup and
 *                                          teardown too)
 *   TEST_F(f, name) { self->... }          a test with a fixture (f_name
 *                                          when f has no variants)
 *   ASSERT_*(): fail and end the test; EXPECT_*(): fail and go on.
 *   SKIP(statement, fmt, ...): mark skipped with a reason, then run statement.
 *   TEST_REQUIRE(cond, fmt, ...): skip and end the test unless cond holds.
 *   TEST_HARNESS_MAIN                      the main() of a test program
 *
 * ASSERT_* and TEST_REQUIRE end the test from any depth, in helpers that
 * take the result pointer `_r` too: they longjmp out (th_bail()), as
 * kselftest does. Each test runs in a forked child, so nothing but the
 * child's own stack is unwound. Unlike kselftest, the teardown runs once
 * after every setup, also when the setup itself bailed out or skipped: self
 * starts zeroed and teardowns free only what was set up, and this way a
 * half-made fixture (a temporary folder, a loop device, a VM) is not left
 * behind. A bail-out in the teardown ends the teardown.
 *
 * Each test runs with a timeout (default 60 s). The result, and a skip
 * reason, travel back in a shared page. The output is TAP 13 and ends with
 * a "# Totals:" line that tests/run-tests sums up.
 */
#ifndef KVMSNAP_TEST_HARNESS_H
#define KVMSNAP_TEST_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TH_DEFAULT_TIMEOUT 60

struct th_result {
	int failed;
	int skipped;
	char reason[512];
};

struct th_variant {
	const char *name;
	const void *data;
	struct th_variant *next;
};

struct th_fixture {
	const char *name;
	struct th_variant *variants, **vtail;
};

struct th_test {
	const char *name;
	/* variant: the FIXTURE_VARIANT_ADD data, NULL without variants */
	void (*fn)(struct th_result *r, const void *variant);
	struct th_fixture *fixture; /* TEST_F only */
	int timeout;
	struct th_test *next;
};

extern struct th_test *th_head, **th_tail;
extern struct th_result *th_res;
/* Where th_bail() jumps to: set by the runner and by each TEST_F stage. */
extern jmp_buf *th_env;

void th_register(struct th_test *t);
void th_register_variant(struct th_fixture *f, struct th_variant *v);
/* End the current test, or the current fixture stage, at once. */
__attribute__((noreturn)) void th_bail(void);

#define TH_CAT_(a, b) a##b
#define TH_CAT(a, b)  TH_CAT_(a, b)

#define TH_REGISTER(id, test_name, fix, func, secs)                            \
	static struct th_test TH_CAT(_th_, id) = {                             \
	    .name = test_name, .fn = func, .fixture = fix, .timeout = (secs)}; \
	__attribute__((constructor)) static void TH_CAT(_th_reg_, id)(void)    \
	{                                                                      \
		th_register(&TH_CAT(_th_, id));                                \
	}

#define TEST_TIMEOUT(test_name, secs)                                        \
	static void test_name(struct th_result *_r, const void *_variant);   \
	TH_REGISTER(test_name, #test_name, NULL, test_name, secs)            \
	static void test_name(struct th_result __attribute__((unused)) * _r, \
			      const void __attribute__((unused)) * _variant)

#define TEST(test_name) TEST_TIMEOUT(test_name, TH_DEFAULT_TIMEOUT)

/* The variant struct stays incomplete, and variant NULL, without FIXTURE_VARIANT. */
#define FIXTURE(f)                                                                       \
	struct _fixture_variant_##f;                                                     \
	static struct th_fixture _th_fixture_##f = {.name = #f,                          \
						    .vtail = &_th_fixture_##f.variants}; \
	struct _fixture_##f;                                                             \
	struct _fixture_##f

#define FIXTURE_VARIANT(f) struct _fixture_variant_##f

#define FIXTURE_VARIANT_ADD(f, v)                                                              \
	extern const struct _fixture_variant_##f _th_variant_##f##_##v;                        \
	static struct th_variant _th_variant_obj_##f##_##v = {.name = #v,                      \
							      .data = &_th_variant_##f##_##v}; \
	__attribute__((constructor)) static void _th_reg_variant_##f##_##v(void)               \
	{                                                                                      \
		th_register_variant(&_th_fixture_##f, &_th_variant_obj_##f##_##v);             \
	}                                                                                      \
	const struct _fixture_variant_##f _th_variant_##f##_##v =

#define TH_FIXTURE_ARGS(f)                                                       \
	struct _fixture_##f __attribute__((unused)) * self,                      \
	    const struct _fixture_variant_##f __attribute__((unused)) * variant, \
	    struct th_result __attribute__((unused)) * _r

#define FIXTURE_SETUP(f)    static void _setup_##f(TH_FIXTURE_ARGS(f))
#define FIXTURE_TEARDOWN(f) static void _teardown_##f(TH_FIXTURE_ARGS(f))

/*
 * Setup, body and teardown each run under their own jump target, so a
 * bail-out in the setup or body still reaches the teardown, once. self is
 * only reached through its address, so the longjmp cannot clobber it.
 */
#define TEST_F_TIMEOUT(f, test_name, secs)                                                       \
	static void _body_##f##_##test_name(TH_FIXTURE_ARGS(f));                                 \
	static void _run_##f##_##test_name(struct th_result *_r, const void *_variant)           \
	{                                                                                        \
		const struct _fixture_variant_##f *_v = _variant;                                \
		struct _fixture_##f self;                                                        \
		jmp_buf *outer = th_env, env;                                                    \
                                                                                                 \
		memset(&self, 0, sizeof(self));                                                  \
		th_env = &env;                                                                   \
		if (!setjmp(env)) {                                                              \
			_setup_##f(&self, _v, _r);                                               \
			if (!_r->failed && !_r->skipped)                                         \
				_body_##f##_##test_name(&self, _v, _r);                          \
		}                                                                                \
		if (!setjmp(env))                                                                \
			_teardown_##f(&self, _v, _r);                                            \
		th_env = outer;                                                                  \
	}                                                                                        \
	TH_REGISTER(f##_##test_name, #test_name, &_th_fixture_##f, _run_##f##_##test_name, secs) \
	static void _body_##f##_##test_name(TH_FIXTURE_ARGS(f))

#define TEST_F(f, test_name) TEST_F_TIMEOUT(f, test_name, TH_DEFAULT_TIMEOUT)

#define TH_LOG(fmt, ...) fprintf(stderr, "# %s:%d: " fmt "\n", __FILE__, __LINE__, ##__VA_ARGS__)

#define SKIP(statement, fmt, ...)                                             \
	do {                                                                  \
		snprintf(_r->reason, sizeof(_r->reason), fmt, ##__VA_ARGS__); \
		_r->skipped = 1;                                              \
		statement;                                                    \
	} while (0)

#define TEST_REQUIRE(cond, fmt, ...)                         \
	do {                                                 \
		if (!(cond))                                 \
			SKIP(th_bail(), fmt, ##__VA_ARGS__); \
	} while (0)

/*
 * Each side is evaluated once. Mixed signedness is compared as C does, like
 * kselftest: tests compare unsigned results with plain literals all the time.
 */
#define TH_CMP(a, b, op, is_assert)                                                              \
	do {                                                                                     \
		__typeof__(a) _a = (a);                                                          \
		__typeof__(b) _b = (b);                                                          \
		_Pragma("GCC diagnostic push");                                                  \
		_Pragma("GCC diagnostic ignored \"-Wsign-compare\"");                            \
		bool _ok = _a op _b;                                                             \
		_Pragma("GCC diagnostic pop");                                                   \
		if (!_ok) {                                                                      \
			TH_LOG("expected %s %s %s (%jd %s %jd)", #a, #op, #b, (intmax_t)_a, #op, \
			       (intmax_t)_b);                                                    \
			_r->failed = 1;                                                          \
			if (is_assert)                                                           \
				th_bail();                                                       \
		}                                                                                \
	} while (0)

#define TH_BOOL(c, want, is_assert)                                                    \
	do {                                                                           \
		if ((bool)(c) != (want)) {                                             \
			TH_LOG("expected %s to be %s", #c, (want) ? "true" : "false"); \
			_r->failed = 1;                                                \
			if (is_assert)                                                 \
				th_bail();                                             \
		}                                                                      \
	} while (0)

#define TH_STR(a, b, eq, is_assert)                                                                \
	do {                                                                                       \
		const char *_a = (a), *_b = (b);                                                   \
		if ((!_a || !_b) ? ((_a == _b) != (eq)) : ((strcmp(_a, _b) == 0) != (eq))) {       \
			TH_LOG("expected %s %s %s (\"%s\" vs \"%s\")", #a, (eq) ? "==" : "!=", #b, \
			       _a ? _a : "(null)", _b ? _b : "(null)");                            \
			_r->failed = 1;                                                            \
			if (is_assert)                                                             \
				th_bail();                                                         \
		}                                                                                  \
	} while (0)

#define ASSERT_EQ(a, b)	   TH_CMP(a, b, ==, 1)
#define ASSERT_NE(a, b)	   TH_CMP(a, b, !=, 1)
#define ASSERT_LT(a, b)	   TH_CMP(a, b, <, 1)
#define ASSERT_LE(a, b)	   TH_CMP(a, b, <=, 1)
#define ASSERT_GT(a, b)	   TH_CMP(a, b, >, 1)
#define ASSERT_GE(a, b)	   TH_CMP(a, b, >=, 1)
#define ASSERT_TRUE(c)	   TH_BOOL(c, true, 1)
#define ASSERT_FALSE(c)	   TH_BOOL(c, false, 1)
#define ASSERT_NULL(p)	   TH_BOOL((p) == NULL, true, 1)
#define ASSERT_NOT_NULL(p) TH_BOOL((p) != NULL, true, 1)
#define ASSERT_STREQ(a, b) TH_STR(a, b, 1, 1)
#define ASSERT_STRNE(a, b) TH_STR(a, b, 0, 1)
#define EXPECT_EQ(a, b)	   TH_CMP(a, b, ==, 0)
#define EXPECT_NE(a, b)	   TH_CMP(a, b, !=, 0)
#define EXPECT_LT(a, b)	   TH_CMP(a, b, <, 0)
#define EXPECT_LE(a, b)	   TH_CMP(a, b, <=, 0)
#define EXPECT_GT(a, b)	   TH_CMP(a, b, >, 0)
#define EXPECT_GE(a, b)	   TH_CMP(a, b, >=, 0)
#define EXPECT_TRUE(c)	   TH_BOOL(c, true, 0)
#define EXPECT_FALSE(c)	   TH_BOOL(c, false, 0)
#define EXPECT_NULL(p)	   TH_BOOL((p) == NULL, true, 0)
#define EXPECT_NOT_NULL(p) TH_BOOL((p) != NULL, true, 0)
#define EXPECT_STREQ(a, b) TH_STR(a, b, 1, 0)
#define EXPECT_STRNE(a, b) TH_STR(a, b, 0, 0)

int th_main(int argc, char **argv);

#define TEST_HARNESS_MAIN                              \
	struct th_test *th_head, **th_tail = &th_head; \
	int main(int argc, char **argv)                \
	{                                              \
		return th_main(argc, argv);            \
	}

#endif
