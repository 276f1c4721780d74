// SPDX-License-Identifier: GPL-2.0
/*
 * The final batch's staging buffer (snapshot/stage.h): what it says is
 * faulted in is resident (mincore), the background worker stops where it
 * is told and never past its target, and a stop is safe at any moment.
 * Nothing here times anything: the worker is waited for by its progress.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../harness.h"

#include "snapshot/snapshot.h"
#include "snapshot/stage.h"

#define CAP (8ULL << 20)

/* Pages of [buf, buf + len) that are resident. */
static uint64_t resident_pages(const uint8_t *buf, uint64_t len)
{
	uint64_t n = len / SNAP_PAGE_SIZE, i, count = 0;
	unsigned char *vec = calloc(n, 1);

	if (!vec || mincore((void *)buf, len, vec)) {
		free(vec);
		return UINT64_MAX;
	}
	for (i = 0; i < n; i++)
		count += vec[i] & 1;
	free(vec);
	return count;
}

static uint64_t ready_now(struct snap_stage *st)
{
	return __atomic_load_n(&st->ready, __ATOMIC_RELAXED);
}

TEST(no_stage)
{
	struct snap_stage st;
	struct error err;

	ASSERT_EQ(snap_stage_alloc(&st, 0, &err), 0);
	EXPECT_EQ(st.buf, NULL);
	snap_stage_start_background(&st, CAP);
	EXPECT_FALSE(st.worker);
	snap_stage_prefault(&st, CAP);
	EXPECT_EQ(st.ready, 0);
	snap_stage_free(&st);
}

TEST(prefault_on_demand)
{
	struct snap_stage st;
	struct error err;

	ASSERT_EQ(snap_stage_alloc(&st, CAP, &err), 0);
	ASSERT_NE(st.buf, NULL);
	EXPECT_EQ(resident_pages(st.buf, CAP), 0);
	/* Rounded up to whole pages, and never past the cap. */
	snap_stage_prefault(&st, 3 * SNAP_PAGE_SIZE + 1);
	EXPECT_EQ(st.ready, 4 * SNAP_PAGE_SIZE);
	EXPECT_EQ(resident_pages(st.buf, CAP), 4);
	snap_stage_prefault(&st, 2 * SNAP_PAGE_SIZE); /* less than done: nothing */
	EXPECT_EQ(st.ready, 4 * SNAP_PAGE_SIZE);
	snap_stage_prefault(&st, 4 * CAP);
	EXPECT_EQ(st.ready, CAP);
	EXPECT_EQ(resident_pages(st.buf, CAP), CAP / SNAP_PAGE_SIZE);
	snap_stage_free(&st);
	EXPECT_EQ(st.buf, NULL);
}

TEST(background_reaches_its_target)
{
	struct timespec nap = {0, 1000000};
	uint64_t target = CAP / 2 + 100, deadline = 0;
	struct snap_stage st;
	struct error err;

	unsetenv("KVMSNAP_STAGE_WORKER");
	ASSERT_EQ(snap_stage_alloc(&st, CAP, &err), 0);
	snap_stage_start_background(&st, target);
	ASSERT_TRUE(st.worker);
	/* SCHED_IDLE: this thread sleeps, so the worker gets the CPU. */
	while (ready_now(&st) < CAP / 2 && deadline++ < 60000)
		nanosleep(&nap, NULL);
	snap_stage_stop(&st);
	EXPECT_FALSE(st.worker);
	/* Whole pages up to the target, not beyond: it was told half. */
	EXPECT_EQ(st.ready, CAP / 2);
	EXPECT_EQ(resident_pages(st.buf, CAP), CAP / 2 / SNAP_PAGE_SIZE);
	/* On demand goes on from there. */
	snap_stage_prefault(&st, CAP);
	EXPECT_EQ(resident_pages(st.buf, CAP), CAP / SNAP_PAGE_SIZE);
	snap_stage_free(&st);
}

TEST(stop_at_once)
{
	struct snap_stage st;
	struct error err;
	int i;

	/* Started and stopped straight away, again and again: nothing hangs or leaks. */
	ASSERT_EQ(snap_stage_alloc(&st, CAP, &err), 0);
	for (i = 0; i < 50; i++) {
		snap_stage_start_background(&st, CAP);
		snap_stage_stop(&st);
		EXPECT_FALSE(st.worker);
		EXPECT_LE(st.ready, CAP);
		/* Whatever it reached is resident. */
		EXPECT_GE(resident_pages(st.buf, CAP), st.ready / SNAP_PAGE_SIZE);
	}
	/* Freed with the worker running. */
	snap_stage_start_background(&st, CAP);
	snap_stage_free(&st);
	EXPECT_FALSE(st.worker);
}

TEST(worker_off_by_env)
{
	struct snap_stage st;
	struct error err;

	setenv("KVMSNAP_STAGE_WORKER", "0", 1);
	ASSERT_EQ(snap_stage_alloc(&st, CAP, &err), 0);
	snap_stage_start_background(&st, CAP);
	EXPECT_FALSE(st.worker);
	EXPECT_EQ(resident_pages(st.buf, CAP), 0);
	snap_stage_free(&st);
	unsetenv("KVMSNAP_STAGE_WORKER");
}

TEST_HARNESS_MAIN
