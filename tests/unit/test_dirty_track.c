// SPDX-License-Identifier: GPL-2.0
/*
 * Dirty trackers (vmm/dirty-track.h) on plain bitmaps, without KVM: what
 * snapshot-log, snapshot-end, snapshot-commit and a failure do to them, and
 * the one property that matters: no dirty bit is ever lost.
 */
#include "../harness.h"

#include "vmm/dirty-track.h"

#define NR_REGIONS 2
#define WORDS0	   4 /* 256 pages */
#define WORDS1	   2 /* 128 pages */

static const uint64_t words[NR_REGIONS] = {WORDS0, WORDS1};

FIXTURE(track)
{
	struct dirty_track dt;
	char why[DIRTY_TRACK_WHY_MAX];
};

FIXTURE_SETUP(track)
{
	dirty_track__init(&self->dt);
	ASSERT_EQ(dirty_track__set_shape(&self->dt, NR_REGIONS, words, NULL), 0);
}

FIXTURE_TEARDOWN(track)
{
	dirty_track__exit(&self->dt);
}

static struct dirty_tag tag(uint8_t image, uint32_t slot, uint64_t id)
{
	struct dirty_tag t = {.slot = slot, .write_id = id};

	memset(t.uuid, image, sizeof(t.uuid));
	return t;
}

/* A fetch that found page `page` of region r dirty, as mem__fetch_dirty() hands it over. */
static void feed(struct dirty_track *dt, unsigned int r, uint64_t page)
{
	uint64_t bm[WORDS0] = {0};

	bm[page / 64] |= 1ULL << (page % 64);
	dirty_track__or_region(dt, r, bm, page / 64, 1);
}

static bool bit(const uint64_t *bm, uint64_t page)
{
	return bm[page / 64] >> (page % 64) & 1;
}

/* begin() that must succeed; whether it was incremental. */
static bool begin(struct th_result *_r, struct dirty_track *dt, struct dirty_tag t,
		  const uint64_t *base, char *why, struct dirty_tracker **out)
{
	struct dirty_tracker *tr = NULL;
	bool incr = true;

	why[0] = '\0';
	ASSERT_EQ(dirty_track__begin(dt, &t, base, &tr, &incr, why, DIRTY_TRACK_WHY_MAX, NULL), 0);
	ASSERT_NOT_NULL(tr);
	if (out)
		*out = tr;
	return incr;
}

/* Full snapshot of (image, slot) with write id id, completed and committed; pages after it. */
static struct dirty_tracker *full_committed(struct th_result *_r, struct dirty_track *dt,
					    uint8_t image, uint32_t slot, uint64_t id, char *why)
{
	struct dirty_tag t = tag(image, slot, id);
	struct dirty_tracker *tr;

	EXPECT_FALSE(begin(_r, dt, t, NULL, why, &tr));
	EXPECT_TRUE(dirty_track__end(dt, &t));
	ASSERT_EQ(dirty_track__commit(dt, &t, NULL), 0);
	EXPECT_TRUE(tr->valid);
	return tr;
}

TEST_F(track, unknown_image_is_a_full_snapshot)
{
	struct dirty_tag t = tag(1, 0, 0x10);
	uint64_t base = 0x5;
	struct dirty_tracker *tr;

	EXPECT_NULL(dirty_track__lookup(&self->dt, t.uuid, 0, &base, self->why, sizeof(self->why)));
	EXPECT_NOT_NULL(strstr(self->why, "has not tracked slot 0 of that image since it started"));
	EXPECT_FALSE(begin(_r, &self->dt, t, &base, self->why, &tr));
	EXPECT_NOT_NULL(strstr(self->why, "has not tracked"));
	/* A new tracker: invalid, accepting the attempt, accumulating from now. */
	EXPECT_FALSE(tr->valid);
	EXPECT_FALSE(tr->pending);
	ASSERT_EQ(tr->nr_ids, 1);
	EXPECT_EQ(tr->ids[0], 0x10);
	EXPECT_EQ(dirty_track__pages(&self->dt, tr, false), 0);
	/* Invalid trackers do not keep logging on. */
	EXPECT_FALSE(dirty_track__needs_log(&self->dt));
}

TEST_F(track, full_then_incremental)
{
	struct dirty_tag t1 = tag(1, 0, 0x1), t2 = tag(1, 0, 0x2);
	struct dirty_tracker *tr;
	uint64_t base = 0x1;

	EXPECT_FALSE(begin(_r, &self->dt, t1, NULL, self->why, &tr));
	feed(&self->dt, 0, 3);	/* during the full snapshot */
	feed(&self->dt, 1, 70); /* the final fetch, paused */
	EXPECT_TRUE(dirty_track__end(&self->dt, &t1));
	EXPECT_TRUE(tr->pending);
	EXPECT_TRUE(dirty_track__needs_log(&self->dt));
	EXPECT_EQ(dirty_track__pages(&self->dt, tr, false), 0);
	EXPECT_EQ(dirty_track__pages(&self->dt, tr, true), 2);
	feed(&self->dt, 0, 5); /* after the resume */
	ASSERT_EQ(dirty_track__commit(&self->dt, &t1, NULL), 0);
	EXPECT_TRUE(tr->valid);
	EXPECT_FALSE(tr->pending);
	EXPECT_TRUE(dirty_track__needs_log(&self->dt));

	EXPECT_TRUE(begin(_r, &self->dt, t2, &base, self->why, &tr));
	/* Only what changed since the pause of the full snapshot. */
	EXPECT_EQ(dirty_track__pages(&self->dt, tr, false), 1);
	EXPECT_TRUE(bit(tr->bitmap[0], 5));
	EXPECT_FALSE(bit(tr->bitmap[0], 3));
	EXPECT_FALSE(bit(tr->bitmap[1], 70));
	/* The attempt's id is accepted too: it may be in the header if it fails. */
	ASSERT_EQ(tr->nr_ids, 2);
	EXPECT_EQ(tr->ids[1], 0x2);
}

TEST_F(track, lookup_mismatches)
{
	struct dirty_tag other = tag(2, 0, 0);
	uint64_t base = 0x1, unknown = 0x63;
	struct dirty_tracker *tr = full_committed(_r, &self->dt, 1, 0, 0x1, self->why);

	EXPECT_EQ(dirty_track__lookup(&self->dt, tr->uuid, 0, &base, self->why, sizeof(self->why)),
		  tr);
	/* Another image, another slot. */
	EXPECT_NULL(
	    dirty_track__lookup(&self->dt, other.uuid, 0, &base, self->why, sizeof(self->why)));
	EXPECT_NOT_NULL(strstr(self->why, "has not tracked slot 0"));
	EXPECT_NULL(
	    dirty_track__lookup(&self->dt, tr->uuid, 1, &base, self->why, sizeof(self->why)));
	EXPECT_NOT_NULL(strstr(self->why, "has not tracked slot 1"));
	/* A write id the tracker never saw: another writer. */
	EXPECT_NULL(
	    dirty_track__lookup(&self->dt, tr->uuid, 0, &unknown, self->why, sizeof(self->why)));
	EXPECT_STREQ(self->why, "slot 0 was last written by another writer (write id "
				"0000000000000063, tracked 0000000000000001)");
	/* No base: the manager knows of no completed snapshot there. */
	EXPECT_NULL(
	    dirty_track__lookup(&self->dt, tr->uuid, 0, NULL, self->why, sizeof(self->why)));
	EXPECT_NOT_NULL(strstr(self->why, "no base write id"));
}

TEST_F(track, mismatch_replaces_the_tracker)
{
	struct dirty_tracker *tr = full_committed(_r, &self->dt, 1, 0, 0x1, self->why);
	struct dirty_tag t = tag(1, 0, 0x3);
	uint64_t unknown = 0x2;

	feed(&self->dt, 0, 9);
	EXPECT_FALSE(begin(_r, &self->dt, t, &unknown, self->why, &tr));
	EXPECT_NOT_NULL(strstr(self->why, "another writer"));
	EXPECT_FALSE(tr->valid);
	EXPECT_EQ(dirty_track__pages(&self->dt, tr, false), 0);
	ASSERT_EQ(tr->nr_ids, 1);
	EXPECT_EQ(tr->ids[0], 0x3);
	EXPECT_EQ(self->dt.nr, 1);
}

TEST_F(track, abort_keeps_every_bit)
{
	struct dirty_tracker *tr = full_committed(_r, &self->dt, 1, 1, 0x1, self->why);
	struct dirty_tag t2 = tag(1, 1, 0x2), t3 = tag(1, 1, 0x3);
	uint64_t base = 0x1;

	feed(&self->dt, 0, 1);
	EXPECT_TRUE(begin(_r, &self->dt, t2, &base, self->why, &tr));
	feed(&self->dt, 1, 2);
	dirty_track__abort(&self->dt, &t2);
	EXPECT_TRUE(tr->valid);
	EXPECT_TRUE(bit(tr->bitmap[0], 1));
	EXPECT_TRUE(bit(tr->bitmap[1], 2));
	/* The failed attempt may have rewritten the header: either id is a base. */
	base = 0x2;
	EXPECT_TRUE(begin(_r, &self->dt, t3, &base, self->why, &tr));
	EXPECT_EQ(dirty_track__pages(&self->dt, tr, false), 2);
}

TEST_F(track, pending_without_commit_merges_back)
{
	struct dirty_tracker *tr = full_committed(_r, &self->dt, 1, 0, 0x1, self->why);
	struct dirty_tag t2 = tag(1, 0, 0x2), t3 = tag(1, 0, 0x3), t4 = tag(1, 0, 0x4);
	uint64_t base = 0x1, wrong = 0x7;
	struct error err = {0};

	feed(&self->dt, 0, 10);
	EXPECT_TRUE(begin(_r, &self->dt, t2, &base, self->why, &tr));
	feed(&self->dt, 0, 11);
	EXPECT_TRUE(dirty_track__end(&self->dt, &t2));
	feed(&self->dt, 0, 12);
	/* A commit of anything else changes nothing. */
	t2.write_id = wrong;
	EXPECT_EQ(dirty_track__commit(&self->dt, &t2, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "waiting for the commit of write id 0000000000000002"));
	t2.write_id = 0x2;
	EXPECT_TRUE(tr->pending);
	EXPECT_EQ(dirty_track__pages(&self->dt, tr, false), 1);
	/* No commit came: the next attempt merges the fallback back; old and new base accepted. */
	EXPECT_TRUE(begin(_r, &self->dt, t3, &base, self->why, &tr));
	EXPECT_FALSE(tr->pending);
	EXPECT_TRUE(bit(tr->bitmap[0], 10));
	EXPECT_TRUE(bit(tr->bitmap[0], 11));
	EXPECT_TRUE(bit(tr->bitmap[0], 12));
	dirty_track__abort(&self->dt, &t3);
	base = 0x2;
	EXPECT_TRUE(begin(_r, &self->dt, t4, &base, self->why, &tr));
	EXPECT_EQ(dirty_track__pages(&self->dt, tr, false), 3);
	/* The old pending commit arrives too late: refused, nothing changes. */
	EXPECT_EQ(dirty_track__commit(&self->dt, &t2, &err), -EINVAL);
	EXPECT_EQ(dirty_track__pages(&self->dt, tr, false), 3);
}

TEST_F(track, pending_full_snapshot_without_commit_stays_invalid)
{
	struct dirty_tag t1 = tag(1, 0, 0x1), t2 = tag(1, 0, 0x2);
	uint64_t base = 0x1;
	struct dirty_tracker *tr;

	EXPECT_FALSE(begin(_r, &self->dt, t1, NULL, self->why, &tr));
	EXPECT_TRUE(dirty_track__end(&self->dt, &t1));
	/* Only a commit says the full snapshot is complete. */
	EXPECT_FALSE(begin(_r, &self->dt, t2, &base, self->why, &tr));
	EXPECT_NOT_NULL(strstr(self->why, "no snapshot into it was committed"));
}

TEST_F(track, commit_errors)
{
	struct dirty_tag t = tag(9, 1, 0x1);
	struct error err = {0};

	EXPECT_EQ(dirty_track__commit(&self->dt, &t, &err), -ENOENT);
	EXPECT_NOT_NULL(strstr(err.msg, "not tracked"));
	full_committed(_r, &self->dt, 9, 1, 0x1, self->why);
	EXPECT_EQ(dirty_track__commit(&self->dt, &t, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "waiting for no commit"));
}

TEST_F(track, least_recently_used_is_evicted)
{
	struct dirty_tracker *tr;
	struct dirty_tag t;
	uint64_t base = 0x1;
	uint8_t i;

	for (i = 1; i <= DIRTY_TRACK_MAX; i++)
		full_committed(_r, &self->dt, i, 0, 0x1, self->why);
	EXPECT_EQ(self->dt.nr, DIRTY_TRACK_MAX);
	/* Image 1 is used again: image 2 is now the least recently used. */
	t = tag(1, 0, 0x2);
	EXPECT_TRUE(begin(_r, &self->dt, t, &base, self->why, &tr));
	full_committed(_r, &self->dt, DIRTY_TRACK_MAX + 1, 0, 0x1, self->why);
	EXPECT_EQ(self->dt.nr, DIRTY_TRACK_MAX);
	t = tag(2, 0, 0x3);
	EXPECT_NULL(dirty_track__lookup(&self->dt, t.uuid, 0, &base, self->why, sizeof(self->why)));
	EXPECT_NOT_NULL(strstr(self->why, "the tracker of slot 0 was evicted"));
	t = tag(1, 0, 0);
	EXPECT_NOT_NULL(dirty_track__find(&self->dt, t.uuid, 0));
	t = tag(3, 0, 0);
	EXPECT_NOT_NULL(dirty_track__lookup(&self->dt, t.uuid, 0, &base, self->why, 64));
	/* Tracked again: no longer reported as evicted. */
	t = tag(2, 0, 0x4);
	EXPECT_FALSE(begin(_r, &self->dt, t, &base, self->why, &tr));
	EXPECT_NOT_NULL(strstr(self->why, "evicted"));
	EXPECT_FALSE(begin(_r, &self->dt, t, &base, self->why, &tr));
	EXPECT_NOT_NULL(strstr(self->why, "no snapshot into it was committed"));
}

TEST_F(track, eight_ids_then_invalid)
{
	struct dirty_tracker *tr = full_committed(_r, &self->dt, 1, 0, 0x1, self->why);
	uint64_t base = 0x1, id;
	struct dirty_tag t;

	/* Seven failed incremental attempts: eight ids accepted. */
	for (id = 2; id <= DIRTY_TRACK_MAX_IDS; id++) {
		t = tag(1, 0, id);
		EXPECT_TRUE(begin(_r, &self->dt, t, &base, self->why, &tr));
		dirty_track__abort(&self->dt, &t);
	}
	EXPECT_EQ(tr->nr_ids, DIRTY_TRACK_MAX_IDS);
	EXPECT_TRUE(tr->valid);
	/* A retry with a known id adds nothing. */
	t = tag(1, 0, 0x3);
	EXPECT_TRUE(begin(_r, &self->dt, t, &base, self->why, &tr));
	/* The ninth: invalid, a full snapshot, a new tracker. */
	t = tag(1, 0, 0x99);
	EXPECT_FALSE(begin(_r, &self->dt, t, &base, self->why, &tr));
	EXPECT_NOT_NULL(strstr(self->why, "more than 8 attempts"));
	EXPECT_FALSE(tr->valid);
	ASSERT_EQ(tr->nr_ids, 1);
	EXPECT_EQ(tr->ids[0], 0x99);
}

TEST_F(track, logging_off_invalidates_everything)
{
	struct dirty_tracker *a = full_committed(_r, &self->dt, 1, 0, 0x1, self->why);
	struct dirty_tag t2 = tag(2, 1, 0x5), t3 = tag(1, 0, 0x6);
	struct dirty_tracker *b;
	uint64_t base = 0x1;
	struct error err = {0};

	EXPECT_FALSE(begin(_r, &self->dt, t2, NULL, self->why, &b));
	EXPECT_TRUE(dirty_track__end(&self->dt, &t2));
	EXPECT_TRUE(dirty_track__needs_log(&self->dt));
	dirty_track__invalidate(&self->dt, DIRTY_TRACK_LOG_OFF);
	EXPECT_FALSE(dirty_track__needs_log(&self->dt));
	EXPECT_FALSE(a->valid);
	EXPECT_FALSE(b->pending);
	/* A pending tracker cannot be revived by its commit, nor an attempt end. */
	EXPECT_EQ(dirty_track__commit(&self->dt, &t2, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "dirty logging was turned off since"));
	EXPECT_FALSE(dirty_track__end(&self->dt, &t2));
	EXPECT_FALSE(begin(_r, &self->dt, t3, &base, self->why, NULL));
	EXPECT_STREQ(self->why, "slot 0: dirty logging was turned off since");
}

TEST_F(track, restored_memory_is_tracked_clean)
{
	struct dirty_tag t = tag(4, 1, 0xabc), t2 = tag(4, 1, 0xabd);
	struct dirty_tracker *tr;
	uint64_t base = 0xabc;

	ASSERT_EQ(dirty_track__start(&self->dt, &t, NULL), 0);
	EXPECT_TRUE(dirty_track__needs_log(&self->dt));
	feed(&self->dt, 1, 127);
	EXPECT_TRUE(begin(_r, &self->dt, t2, &base, self->why, &tr));
	EXPECT_EQ(dirty_track__pages(&self->dt, tr, false), 1);
	EXPECT_TRUE(bit(tr->bitmap[1], 127));
}

TEST_F(track, or_region_stays_in_its_words)
{
	struct dirty_tracker *tr = full_committed(_r, &self->dt, 1, 0, 0x1, self->why);
	uint64_t bm[WORDS0];

	memset(bm, 0xff, sizeof(bm));
	dirty_track__or_region(&self->dt, 0, bm, 1, 2);
	EXPECT_EQ(tr->bitmap[0][0], 0);
	EXPECT_EQ(tr->bitmap[0][1], ~0ULL);
	EXPECT_EQ(tr->bitmap[0][2], ~0ULL);
	EXPECT_EQ(tr->bitmap[0][3], 0);
	/* Past the region: clamped; past the regions: ignored. */
	dirty_track__or_region(&self->dt, 1, bm, 1, 8);
	EXPECT_EQ(tr->bitmap[1][0], 0);
	EXPECT_EQ(tr->bitmap[1][1], ~0ULL);
	dirty_track__or_region(&self->dt, NR_REGIONS, bm, 0, 1);
	EXPECT_EQ(dirty_track__pages(&self->dt, tr, false), 3 * 64);
}

TEST(shape_is_fixed)
{
	struct dirty_track dt;
	uint64_t other[NR_REGIONS] = {WORDS0, WORDS1 + 1};
	struct dirty_tag t = tag(1, 0, 1);
	struct error err = {0};

	dirty_track__init(&dt);
	EXPECT_EQ(dirty_track__start(&dt, &t, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "dirty logging on"));
	ASSERT_EQ(dirty_track__set_shape(&dt, NR_REGIONS, words, NULL), 0);
	EXPECT_EQ(dirty_track__set_shape(&dt, NR_REGIONS, words, NULL), 0);
	EXPECT_EQ(dirty_track__set_shape(&dt, NR_REGIONS, other, &err), -EINVAL);
	dirty_track__exit(&dt);
}

TEST(hex_forms)
{
	uint8_t uuid[DIRTY_TRACK_UUID_SIZE];
	char buf[DIRTY_TRACK_UUID_HEX + 1];
	uint64_t id = 0;

	EXPECT_EQ(dirty_track__parse_uuid("00112233445566778899aabbccddeeff", uuid), 0);
	EXPECT_EQ(uuid[0], 0x00);
	EXPECT_EQ(uuid[15], 0xff);
	EXPECT_STREQ(dirty_track__format_uuid(uuid, buf), "00112233445566778899aabbccddeeff");
	EXPECT_EQ(dirty_track__parse_uuid("00112233445566778899AABBCCDDEEFF", uuid), -EINVAL);
	EXPECT_EQ(dirty_track__parse_uuid("00112233-4455-6677-8899-aabbccddeeff", uuid), -EINVAL);
	EXPECT_EQ(dirty_track__parse_uuid("00112233445566778899aabbccddeef", uuid), -EINVAL);
	EXPECT_EQ(dirty_track__parse_uuid("", uuid), -EINVAL);
	EXPECT_EQ(dirty_track__parse_id("fedcba9876543210", &id), 0);
	EXPECT_EQ(id, 0xfedcba9876543210ULL);
	EXPECT_STREQ(dirty_track__format_id(id, buf), "fedcba9876543210");
	EXPECT_STREQ(dirty_track__format_id(1, buf), "0000000000000001");
	EXPECT_EQ(dirty_track__parse_id("fedcba987654321", &id), -EINVAL);
	EXPECT_EQ(dirty_track__parse_id("fedcba98765432100", &id), -EINVAL);
	EXPECT_EQ(dirty_track__parse_id("0x00000000000001", &id), -EINVAL);
	EXPECT_EQ(dirty_track__parse_id("-000000000000001", &id), -EINVAL);
}

/*
 * The property: whatever happens (attempts that abort, end without commit,
 * or commit), when an attempt on the last committed id begins, the pages it
 * gets (and the tracker's bitmap after any abort) include every page
 * fetched since that id's final fetch. A model keeps every fetch.
 */
#define FED_MAX 4096

TEST_F(track, no_bit_is_ever_lost)
{
	static uint32_t fed[FED_MAX]; /* region << 16 | page */
	struct dirty_tracker *tr;
	struct dirty_tag t;
	uint64_t committed = 0x1000, next = 0x1001, rng = 0x9e3779b97f4a7c15ULL;
	unsigned int nr_fed = 0, since = 0, uncommitted = 0, step, k, n, i;

	full_committed(_r, &self->dt, 7, 1, committed, self->why);
	for (step = 0; step < 300 && nr_fed < FED_MAX - 64; step++) {
		uint64_t base = committed;
		unsigned int outcome;

		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		t = tag(7, 1, next++);
		ASSERT_TRUE(begin(_r, &self->dt, t, &base, self->why, &tr));
		/* The pages handed to the attempt: every fetch since the committed one's. */
		for (i = since; i < nr_fed; i++)
			ASSERT_TRUE(bit(tr->bitmap[fed[i] >> 16], fed[i] & 0xffff));
		for (n = rng % 16, k = 0; k < n; k++) {
			unsigned int r = (rng >> (8 + k)) & 1;
			uint64_t page = (rng >> (16 + k * 2)) % (r ? WORDS1 * 64 : WORDS0 * 64);

			feed(&self->dt, r, page);
			fed[nr_fed++] = r << 16 | (uint32_t)page;
		}
		outcome = uncommitted >= 5 ? 2 : (rng >> 40) % 3;
		if (outcome == 0) { /* failed: abort */
			dirty_track__abort(&self->dt, &t);
			for (i = since; i < nr_fed; i++)
				ASSERT_TRUE(bit(tr->bitmap[fed[i] >> 16], fed[i] & 0xffff));
			uncommitted++;
			continue;
		}
		ASSERT_TRUE(dirty_track__end(&self->dt, &t));
		/* Fetched after the pause: after the new id's completion. */
		feed(&self->dt, 0, step % (WORDS0 * 64));
		fed[nr_fed++] = (uint32_t)(step % (WORDS0 * 64));
		if (outcome == 1) { /* the manager died before its commit */
			uncommitted++;
			continue;
		}
		ASSERT_EQ(dirty_track__commit(&self->dt, &t, NULL), 0);
		committed = t.write_id;
		since = nr_fed - 1;
		uncommitted = 0;
	}
	EXPECT_GT(step, 100);
}

TEST_HARNESS_MAIN
