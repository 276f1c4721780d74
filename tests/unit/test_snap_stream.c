// SPDX-License-Identifier: GPL-2.0
/*
 * The stream record codec treats every byte as the VM's, and hostile: each
 * field of a header is tried out of range, and a loop of random headers
 * never yields a record outside its region or state area.
 */
#include "../harness.h"

#include "lib/le.h"
#include "snapshot/stream.h"

static void small_config(struct snap_config *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->machine, SNAP_MACHINE_PC);
	c->vcpus = 1;
	c->nr_regions = 2;
	strcpy(c->regions[0].id, "pc.ram");
	c->regions[0].size = 1 << 20; /* 256 pages */
	strcpy(c->regions[1].id, "vga.vram");
	c->regions[1].size = 64 << 10; /* 16 pages */
}

static int decode(const struct snap_rec *in, struct snap_rec *out, struct error *err)
{
	struct snap_config c;
	uint8_t buf[SNAP_REC_SIZE];

	small_config(&c);
	snap_rec_encode(in, buf);
	return snap_rec_decode(buf, &c, 4096, out, err);
}

TEST(good_records_round_trip)
{
	const struct snap_rec ok[] = {
	    {SNAP_REC_PASS, 0, 1, 0},	  {SNAP_REC_PAGES, 0, 0, 256}, {SNAP_REC_PAGES, 1, 15, 1},
	    {SNAP_REC_STATE, 0, 0, 4096}, {SNAP_REC_END, 0, 0, 0},
	};
	struct snap_rec out;
	struct error err;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ok); i++) {
		ASSERT_EQ(decode(&ok[i], &out, &err), 0);
		EXPECT_EQ(memcmp(&out, &ok[i], sizeof(out)), 0);
	}
	EXPECT_EQ(snap_rec_payload(&ok[1]), 256 * 4096);
	EXPECT_EQ(snap_rec_payload(&ok[3]), 4096);
	EXPECT_EQ(snap_rec_payload(&ok[4]), SNAP_REC_END_SIZE);
}

TEST(every_field_out_of_range_is_refused)
{
	const struct snap_rec bad[] = {
	    {0, 0, 0, 0},
	    {99, 0, 0, 0},
	    {SNAP_REC_PAGES, 2, 0, 1},			    /* no region 2 */
	    {SNAP_REC_PAGES, 0, 0, 0},			    /* empty run */
	    {SNAP_REC_PAGES, 0, 255, 2},		    /* past the end */
	    {SNAP_REC_PAGES, 0, 256, 1},		    /* starts at the end */
	    {SNAP_REC_PAGES, 0, UINT64_MAX, 2},		    /* wraps */
	    {SNAP_REC_PAGES, 0, 1, UINT64_MAX},		    /* wraps */
	    {SNAP_REC_PAGES, 0, 0, SNAP_REC_MAX_PAGES + 1}, /* too long a record */
	    {SNAP_REC_STATE, 0, 0, 4097},		    /* more than the state area */
	    {SNAP_REC_STATE, 1, 0, 8},
	    {SNAP_REC_END, 0, 0, 1},
	    {SNAP_REC_PASS, 3, 0, 0},
	};
	struct snap_rec out;
	struct error err;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(decode(&bad[i], &out, &err), -EPROTO);
		TH_LOG("%u: %s", i, err.msg);
	}
}

TEST(a_wrong_magic_is_refused)
{
	struct snap_rec r = {SNAP_REC_PASS, 0, 1, 0}, out;
	struct snap_config c;
	uint8_t buf[SNAP_REC_SIZE];
	struct error err;

	small_config(&c);
	snap_rec_encode(&r, buf);
	buf[3] ^= 1;
	EXPECT_EQ(snap_rec_decode(buf, &c, 4096, &out, &err), -EPROTO);
	EXPECT_NOT_NULL(strstr(err.msg, "magic"));
}

/* Random headers with the magic: whatever passes lies inside its region or area. */
TEST(random_headers_never_escape)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL, accepted = 0;
	struct snap_config c;
	uint8_t buf[SNAP_REC_SIZE];
	struct snap_rec out;
	unsigned int i, k;

	small_config(&c);
	for (i = 0; i < 200000; i++) {
		memcpy(buf, SNAP_REC_MAGIC, 8);
		for (k = 8; k < SNAP_REC_SIZE; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[k] = (uint8_t)(x >> 24);
		}
		/* Small values now and then, so that some pass. */
		if (i % 3 == 0)
			put_le32(buf + 8, (uint32_t)(x % 5));
		if (i % 5 == 0)
			put_le32(buf + 12, (uint32_t)(x % 3)), put_le64(buf + 16, x % 300),
			    put_le64(buf + 24, x % 40);
		if (snap_rec_decode(buf, &c, 4096, &out, NULL))
			continue;
		accepted++;
		if (out.type == SNAP_REC_PAGES) {
			ASSERT_LT(out.region, c.nr_regions);
			ASSERT_LE(out.first + out.count, c.regions[out.region].size / 4096);
			ASSERT_LE(out.count, SNAP_REC_MAX_PAGES);
		}
		if (out.type == SNAP_REC_STATE)
			ASSERT_LE(out.count, 4096);
	}
	TH_LOG("%llu of 200000 random headers accepted", (unsigned long long)accepted);
	EXPECT_GT(accepted, 0);
}

TEST_HARNESS_MAIN
