// SPDX-License-Identifier: GPL-2.0
/*
 * Dirty bitmaps: turning bits into runs (one large write each) at the edges,
 * and mapping KVM's per-slot bitmaps onto region pages across the legacy hole
 * and the VGA alias.
 */
#include "../harness.h"

#include "snapshot/bitmap.h"
#include "vmm/control/control.h"
#include "vmm/layout.h"
#include "vmm/mem.h"
#include "vmm/pc.h"
#include "vmm/util/util.h"

static void set_bit(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ULL << (i % 64);
}

/* Collect runs as "start+len " into out. */
static void runs(const uint64_t *bm, uint64_t nbits, char *out, size_t len)
{
	uint64_t pos, n;
	size_t used = 0;

	out[0] = '\0';
	for (pos = 0; snap_bitmap_next_run(bm, nbits, &pos, &n); pos += n)
		used += snprintf(out + used, len - used, "%llu+%llu ", (unsigned long long)pos,
				 (unsigned long long)n);
}

TEST(empty_and_full)
{
	uint64_t bm[4] = {0};
	char out[256];

	runs(bm, 256, out, sizeof(out));
	EXPECT_STREQ(out, "");
	memset(bm, 0xff, sizeof(bm));
	runs(bm, 256, out, sizeof(out));
	EXPECT_STREQ(out, "0+256 ");
	EXPECT_EQ(snap_bitmap_count(bm, 256), 256);
	/* Bits past nbits are not pages. */
	runs(bm, 200, out, sizeof(out));
	EXPECT_STREQ(out, "0+200 ");
	EXPECT_EQ(snap_bitmap_count(bm, 200), 200);
	EXPECT_EQ(snap_bitmap_count(bm, 1), 1);
}

TEST(first_and_last_page)
{
	uint64_t bm[2] = {0};
	char out[256];

	set_bit(bm, 0);
	set_bit(bm, 99);
	runs(bm, 100, out, sizeof(out));
	EXPECT_STREQ(out, "0+1 99+1 ");
	EXPECT_EQ(snap_bitmap_count(bm, 100), 2);
}

TEST(runs_across_word_boundaries)
{
	uint64_t bm[3] = {0};
	uint64_t i;
	char out[256];

	for (i = 60; i < 70; i++)
		set_bit(bm, i);
	for (i = 127; i < 129; i++)
		set_bit(bm, i);
	set_bit(bm, 191);
	runs(bm, 192, out, sizeof(out));
	EXPECT_STREQ(out, "60+10 127+2 191+1 ");
	bm[0] = ~0ULL;
	bm[1] = ~0ULL;
	runs(bm, 192, out, sizeof(out));
	EXPECT_STREQ(out, "0+129 191+1 ");
}

/* Ranges that start and end inside words, span whole ones, or stay in one. */
TEST(set_and_clear_ranges)
{
	uint64_t bm[4] = {0};
	char out[256];

	snap_bitmap_set_range(bm, 3, 200);
	runs(bm, 256, out, sizeof(out));
	EXPECT_STREQ(out, "3+200 ");
	snap_bitmap_clear_range(bm, 60, 70);
	runs(bm, 256, out, sizeof(out));
	EXPECT_STREQ(out, "3+57 130+73 ");
	snap_bitmap_clear_range(bm, 140, 2);
	snap_bitmap_set_range(bm, 250, 6);
	snap_bitmap_clear_range(bm, 0, 0);
	runs(bm, 256, out, sizeof(out));
	EXPECT_STREQ(out, "3+57 130+10 142+61 250+6 ");
	snap_bitmap_clear_range(bm, 0, 256);
	EXPECT_EQ(snap_bitmap_count(bm, 256), 0);
}

TEST(alternating_bits_make_single_page_runs)
{
	uint64_t bm[2] = {0x5555555555555555ULL, 0x5555555555555555ULL};
	uint64_t pos, n, count = 0;

	for (pos = 0; snap_bitmap_next_run(bm, 128, &pos, &n); pos += n) {
		EXPECT_EQ(n, 1);
		EXPECT_EQ(pos % 2, 0);
		count++;
	}
	EXPECT_EQ(count, 64);
}

FIXTURE(pc)
{
	struct mem_registry reg;
};

FIXTURE_SETUP(pc)
{
	struct pc_config cfg = {.ram_size = 4 * MiB, .vram_size = 1 * MiB, .nr_cpus = 1};

	mem__init(&self->reg);
	ASSERT_EQ(pc__setup_memory(&self->reg, &cfg, NULL), 0);
}

FIXTURE_TEARDOWN(pc)
{
	mem__exit(&self->reg);
}

/* The slot above the hole starts at region page 256 (1 MiB), not at 160. */
TEST_F(pc, slot_bits_land_on_region_pages_across_the_hole)
{
	struct mem_region *ram = mem__find_region(&self->reg, "pc.ram");
	uint64_t region[SNAP_BITMAP_WORDS(1024)] = {0};
	uint64_t low[SNAP_BITMAP_WORDS(160)] = {0}, high[SNAP_BITMAP_WORDS(768)] = {0};
	char out[256];

	ASSERT_EQ(ram->nr_ranges, 2);
	set_bit(low, 0);    /* first page of RAM */
	set_bit(low, 159);  /* last page below 640K */
	set_bit(high, 0);   /* first page at 1 MiB */
	set_bit(high, 767); /* last page of RAM */
	mem__merge_range_bitmap(region, &ram->ranges[0], low);
	mem__merge_range_bitmap(region, &ram->ranges[1], high);
	runs(region, ram->size / 4096, out, sizeof(out));
	EXPECT_STREQ(out, "0+1 159+1 256+1 1023+1 ");
	EXPECT_EQ(snap_bitmap_count(region, 1024), 4);
}

TEST_F(pc, contiguous_runs_across_slots_stay_apart_at_the_hole)
{
	struct mem_region *ram = mem__find_region(&self->reg, "pc.ram");
	uint64_t region[SNAP_BITMAP_WORDS(1024)] = {0};
	uint64_t low[SNAP_BITMAP_WORDS(160)], high[SNAP_BITMAP_WORDS(768)];
	char out[256];

	memset(low, 0xff, sizeof(low));
	memset(high, 0xff, sizeof(high));
	mem__merge_range_bitmap(region, &ram->ranges[0], low);
	mem__merge_range_bitmap(region, &ram->ranges[1], high);
	/* The hole's 96 pages are never dirty, so two runs, not one. */
	runs(region, 1024, out, sizeof(out));
	EXPECT_STREQ(out, "0+160 256+768 ");
}

TEST_F(pc, vga_alias_counts_each_page_once)
{
	struct mem_region *vga = mem__find_region(&self->reg, "vga.vram");
	uint64_t region[SNAP_BITMAP_WORDS(256)] = {0};
	uint64_t text[SNAP_BITMAP_WORDS(8)] = {0}, lfb[SNAP_BITMAP_WORDS(256)] = {0};
	char out[256];

	ASSERT_EQ(vga->nr_ranges, 2);
	set_bit(text, 0);
	set_bit(text, 7);
	set_bit(lfb, 0);
	set_bit(lfb, 255);
	mem__merge_range_bitmap(region, &vga->ranges[0], text);
	mem__merge_range_bitmap(region, &vga->ranges[1], lfb);
	runs(region, 256, out, sizeof(out));
	EXPECT_STREQ(out, "0+1 7+1 255+1 ");
}

TEST_HARNESS_MAIN
