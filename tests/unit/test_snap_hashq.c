// SPDX-License-Identifier: GPL-2.0
/*
 * The page-hashing queue (snapshot/hashq.h): with 0, 1 and several workers,
 * every hash lands where it was asked for and equals snap_page_hash() of
 * its page, also when more runs are queued than the ring holds, and runs
 * that are not multiples of a job. Nothing here times anything.
 */
#include <stdlib.h>
#include <string.h>

#include "../harness.h"

#include <xxhash.h>

#include "snapshot/hashq.h"
#include "snapshot/pagehash.h"
#include "snapshot/snapshot.h"

#define PAGES 3000 /* runs of 1..77 pages: about 77 submissions, jobs of odd sizes */

static uint8_t *random_pages(uint64_t n, uint64_t seed)
{
	uint8_t *p = malloc(n * SNAP_PAGE_SIZE);
	uint64_t i, x = seed;

	for (i = 0; p && i < n * SNAP_PAGE_SIZE / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		((uint64_t *)p)[i] = x;
	}
	return p;
}

static void check_threads(struct th_result *_r, unsigned int threads)
{
	uint8_t *pages = random_pages(PAGES, 0x1234 + threads);
	uint64_t *out = calloc(PAGES, sizeof(uint64_t)), done, i;
	struct snap_hashq *q = NULL;
	struct error err;

	ASSERT_NE(pages, NULL);
	ASSERT_NE(out, NULL);
	ASSERT_EQ(snap_hashq_init(&q, threads, &err), 0);
	EXPECT_EQ(snap_hashq_threads(q), threads);
	/* Runs of 1, 2, 3, ... pages: many more submissions than ring slots. */
	for (done = 0, i = 1; done < PAGES; i++) {
		uint64_t n = PAGES - done < i ? PAGES - done : i;

		snap_hashq_submit(q, pages + done * SNAP_PAGE_SIZE, n, out + done);
		done += n;
	}
	snap_hashq_wait(q);
	for (i = 0; i < PAGES; i++)
		if (out[i] != snap_page_hash(pages + i * SNAP_PAGE_SIZE)) {
			EXPECT_EQ(out[i], snap_page_hash(pages + i * SNAP_PAGE_SIZE));
			break;
		}
	/* A second round into the same table after a wait: the new values win. */
	memset(pages, 0xa5, SNAP_PAGE_SIZE);
	snap_hashq_submit(q, pages, 1, out);
	snap_hashq_submit(q, pages + SNAP_PAGE_SIZE, PAGES - 1, out + 1);
	snap_hashq_wait(q);
	EXPECT_EQ(out[0], snap_page_hash(pages));
	EXPECT_EQ(out[PAGES - 1], snap_page_hash(pages + (PAGES - 1) * SNAP_PAGE_SIZE));
	snap_hashq_exit(q);
	free(out);
	free(pages);
}

TEST(inline_hashes_match)
{
	check_threads(_r, 0);
}

TEST(one_worker_hashes_match)
{
	check_threads(_r, 1);
}

TEST(many_workers_hash_match)
{
	check_threads(_r, 5);
}

TEST(exit_with_work_queued_waits_for_it)
{
	uint8_t *pages = random_pages(PAGES, 99);
	uint64_t *out = calloc(PAGES, sizeof(uint64_t));
	struct snap_hashq *q = NULL;
	struct error err;

	ASSERT_NE(pages, NULL);
	ASSERT_NE(out, NULL);
	ASSERT_EQ(snap_hashq_init(&q, 3, &err), 0);
	snap_hashq_submit(q, pages, PAGES, out);
	snap_hashq_exit(q); /* no wait(): exit must finish the jobs, not drop them */
	EXPECT_EQ(out[PAGES - 1], snap_page_hash(pages + (PAGES - 1) * SNAP_PAGE_SIZE));
	EXPECT_EQ(out[0], snap_page_hash(pages));
	free(out);
	free(pages);
}

TEST(thread_count_is_capped)
{
	struct snap_hashq *q = NULL;
	struct error err;

	ASSERT_EQ(snap_hashq_init(&q, 1000, &err), 0);
	EXPECT_EQ(snap_hashq_threads(q), SNAP_HASHQ_MAX_THREADS);
	snap_hashq_exit(q);
	setenv("KVMSNAP_HASH_THREADS", "3", 1);
	EXPECT_EQ(snap_hashq_default_threads(), 3);
	setenv("KVMSNAP_HASH_THREADS", "0", 1);
	EXPECT_EQ(snap_hashq_default_threads(), 0);
	unsetenv("KVMSNAP_HASH_THREADS");
}

/*
 * Both builds of the page hash (snapshot/pagehash.h), and the one this CPU
 * runs, equal libxxhash's XXH3_64bits(): the image format is XXH3, not
 * whichever loop computed it.
 */
TEST(page_hash_builds_equal_libxxhash)
{
	uint8_t *p = random_pages(64, 99);
	unsigned int i;
	bool avx2;

	ASSERT_NOT_NULL(p);
	__builtin_cpu_init();
	avx2 = __builtin_cpu_supports("avx2");
	TH_LOG("AVX2 build %s", avx2 ? "checked too" : "not checked: no AVX2 here");
	memset(p, 0, SNAP_PAGE_SIZE); /* the zero page among them */
	for (i = 0; i < 64; i++) {
		uint64_t want = XXH3_64bits(p + i * SNAP_PAGE_SIZE, SNAP_PAGE_SIZE);

		EXPECT_EQ(snap_page_hash(p + i * SNAP_PAGE_SIZE), want);
		EXPECT_EQ(snap_page_hash_sse2(p + i * SNAP_PAGE_SIZE), want);
		if (avx2)
			EXPECT_EQ(snap_page_hash_avx2(p + i * SNAP_PAGE_SIZE), want);
	}
	free(p);
}

TEST_HARNESS_MAIN
