/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A kselftest-style TAP harness.
 *
 *   TEST(name) { ... }                     a plain test
 *   TEST_TIMEOUT(name, seconds) { ... }    the same with its own timeout
 *   FIXTURE(f) { fields };                 per-test state
 *   FIXTURE_SETUP(f) { self->... }         runs in the child before each TEST_F
 *   FIXTURE_TEARDOWN(f) { ... }            runs in the child after each TEST_F
 *   TEST_F(f, name) { self->... }          a test with a fixture
 *   ASSERT_*(): fail and end the test; EXPECT_*(): fail and go on.
 *   SKIP(statement, fmt, ...): mark skipped with a reason, then run statement.
 *   TEST_REQUIRE(cond, fmt, ...): skip the test unless cond holds.
 *   TEST_HARNESS_MAIN                      the main() of a test program
 *
 * Each test runs in a forked child with a timeout (default 60 s). The result,
 * and a skip reason, travel back in a shared page. The output is TAP 13 and
 * ends with a "# Totals:" line that tests/run-tests sums up.
 */
#ifndef KVMSNAP_TEST_HARNESS_H
#define KVMSNAP_TEST_HARNESS_H

#include <errno.h>
#include <inttypes.h>
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

struct th_test {
	const char *name;
	void (*fn)(struct th_test *t, struct th_result *r);
	int timeout;
	struct th_test *next;
};

extern struct th_test *th_head, **th_tail;
extern struct th_result *th_res;

static inline void th_register(struct th_test *t)
{
	t->next = NULL;
	*th_tail = t;
	th_tail = &t->next;
}

#define TH_CAT_(a, b) a##b
#define TH_CAT(a, b)  TH_CAT_(a, b)

#define TEST_TIMEOUT(test_name, secs)                                              \
	static void test_name(struct th_test *_t, struct th_result *_r);           \
	static struct th_test TH_CAT(_th_, test_name) = {                          \
	    .name = #test_name, .fn = test_name, .timeout = (secs)};               \
	__attribute__((constructor)) static void TH_CAT(_th_reg_, test_name)(void) \
	{                                                                          \
		th_register(&TH_CAT(_th_, test_name));                             \
	}                                                                          \
	static void test_name(struct th_test __attribute__((unused)) * _t,         \
			      struct th_result __attribute__((unused)) * _r)

#define TEST(test_name) TEST_TIMEOUT(test_name, TH_DEFAULT_TIMEOUT)

#define FIXTURE(f)           \
	struct _fixture_##f; \
	struct _fixture_##f

#define FIXTURE_SETUP(f)                                                           \
	static void _setup_##f(struct _fixture_##f __attribute__((unused)) * self, \
			       struct th_result __attribute__((unused)) * _r)
#define FIXTURE_TEARDOWN(f)                                                           \
	static void _teardown_##f(struct _fixture_##f __attribute__((unused)) * self, \
				  struct th_result __attribute__((unused)) * _r)

#define TEST_F_TIMEOUT(f, test_name, secs)                                                      \
	static void _body_##f##_##test_name(struct _fixture_##f *self, struct th_result *_r);   \
	TEST_TIMEOUT(f##_##test_name, secs)                                                     \
	{                                                                                       \
		struct _fixture_##f self;                                                       \
		memset(&self, 0, sizeof(self));                                                 \
		_setup_##f(&self, _r);                                                          \
		if (!_r->failed && !_r->skipped)                                                \
			_body_##f##_##test_name(&self, _r);                                     \
		_teardown_##f(&self, _r);                                                       \
	}                                                                                       \
	static void _body_##f##_##test_name(struct _fixture_##f __attribute__((unused)) * self, \
					    struct th_result __attribute__((unused)) * _r)

#define TEST_F(f, test_name) TEST_F_TIMEOUT(f, test_name, TH_DEFAULT_TIMEOUT)

#define TH_LOG(fmt, ...) fprintf(stderr, "# %s:%d: " fmt "\n", __FILE__, __LINE__, ##__VA_ARGS__)

#define SKIP(statement, fmt, ...)                                             \
	do {                                                                  \
		snprintf(_r->reason, sizeof(_r->reason), fmt, ##__VA_ARGS__); \
		_r->skipped = 1;                                              \
		statement;                                                    \
	} while (0)

#define TEST_REQUIRE(cond, fmt, ...)                      \
	do {                                              \
		if (!(cond))                              \
			SKIP(return, fmt, ##__VA_ARGS__); \
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
				return;                                                          \
		}                                                                                \
	} while (0)

#define TH_BOOL(c, want, is_assert)                                                    \
	do {                                                                           \
		if ((bool)(c) != (want)) {                                             \
			TH_LOG("expected %s to be %s", #c, (want) ? "true" : "false"); \
			_r->failed = 1;                                                \
			if (is_assert)                                                 \
				return;                                                \
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
				return;                                                            \
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
