// SPDX-License-Identifier: GPL-2.0
/*
 * Two-slot images (format 2, snapshot/layout.c, image.c, verify.c): where
 * each slot is, which slot readers and writers pick, a torn or foreign slot
 * header, and deep verify naming the page or digest that does not match.
 * Complete snapshots come from the stream writer (writer.h), so the digest
 * tables are the writer's own.
 */
#include "../harness.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "lib/le.h"
#include "snapshot/image.h"
#include "snapshot/state.h"
#include "snapshot/writer.h"

/*
 * pc.ram: 1040 pages, three digest blocks (512 + 512 + 16); vga.vram: 16
 * pages, one short block. One vCPU.
 */
#define RAM_PAGES  1040ULL
#define VRAM_PAGES 16ULL

/*
 * The sizes, by hand (Documentation/snapshot-format.md):
 *   state area     ALIGN4K(16384 + 32768)                       = 49152
 *   pc.ram tables  ALIGN4K(64 + 8 * 1040 + 8 * 1040 + 8 * 3)    = ALIGN4K(16728) = 20480
 *   vga.vram       ALIGN4K(64 + 8 * 16 + 8 * 16 + 8 * 1)        = ALIGN4K(328)   = 4096
 *   TotalRAM       (1040 + 16) * (4096 + 8)                     = 4333824
 *   digest tables  (8 * 1040 + 8 * 3) + (8 * 16 + 8 * 1)        = 8344 + 136 = 8480
 *   padding        (20480 - 8320 - 8344) + (4096 - 128 - 136)   = 3816 + 3832 = 7648
 *   slot span      4096 + 49152 + 4333824 + 8480 + 7648 + 4096  = 4407296
 */
#define STATE_SIZE    49152ULL
#define RAM_TABLES    20480ULL
#define TOTAL_RAM     4333824ULL
#define DIGEST_TABLES 8480ULL
#define PADDING	      7648ULL
#define SLOT_SPAN     4407296ULL

static void test_config(struct snap_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->machine, sizeof(c->machine), "%s", SNAP_MACHINE_PC);
	c->vcpus = 1;
	c->ram_size = RAM_PAGES * 4096;
	c->vram_size = VRAM_PAGES * 4096;
	c->nr_regions = 2;
	snprintf(c->regions[0].id, sizeof(c->regions[0].id), "pc.ram");
	c->regions[0].size = RAM_PAGES * 4096;
	snprintf(c->regions[1].id, sizeof(c->regions[1].id), "vga.vram");
	c->regions[1].size = VRAM_PAGES * 4096;
}

/* [a, a + alen) and [b, b + blen) share no byte. */
static bool disjoint(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a + alen <= b || b + blen <= a;
}

TEST(two_slot_layout)
{
	struct snap_config c;
	struct snap_layout one, l0, l1, *ls[2] = {&l0, &l1};
	struct error err;
	unsigned int i, j, k;

	test_config(&c);
	ASSERT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &one, &err), 0);
	ASSERT_EQ(snap_layout_compute_slot(&c, SNAP_ORDER_REGISTRY, 2, 0, &l0, &err), 0);
	ASSERT_EQ(snap_layout_compute_slot(&c, SNAP_ORDER_REGISTRY, 2, 1, &l1, &err), 0);

	/* Each term of a slot, and a one-slot image is the start section and one slot. */
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(ls[i]->nr_slots, 2);
		EXPECT_EQ(ls[i]->slot, i);
		EXPECT_EQ(ls[i]->header_size, 4096);
		EXPECT_EQ(ls[i]->state_size, STATE_SIZE);
		EXPECT_EQ(ls[i]->total_ram, TOTAL_RAM);
		EXPECT_EQ(ls[i]->digest_tables, DIGEST_TABLES);
		EXPECT_EQ(ls[i]->padding, PADDING);
		EXPECT_EQ(ls[i]->footer_size, 4096);
		EXPECT_EQ(ls[i]->header_size + ls[i]->state_size + ls[i]->total_ram +
			      ls[i]->digest_tables + ls[i]->padding + ls[i]->footer_size,
			  SLOT_SPAN);
		/* Image size = 4096 (start) + 2 x slot span. */
		EXPECT_EQ(ls[i]->image_size, 4096 + 2 * SLOT_SPAN);
		EXPECT_EQ(ls[i]->image_size, 8818688);
		EXPECT_EQ(ls[i]->slot_off[0], 0);
		EXPECT_EQ(ls[i]->slot_off[1], 4096 + SLOT_SPAN);
		EXPECT_EQ(ls[i]->start_off, 4096);
	}
	EXPECT_EQ(one.image_size, 4096 + SLOT_SPAN);
	EXPECT_EQ(one.padding, PADDING);

	/* Slot 0: header at 0, start at 4096, then its state area. */
	EXPECT_EQ(l0.header_off, 0);
	EXPECT_EQ(l0.state_off, 8192);
	EXPECT_EQ(l0.sections[0].offset, 8192 + STATE_SIZE);
	EXPECT_EQ(l0.sections[0].data_off, 8192 + STATE_SIZE + RAM_TABLES);
	EXPECT_EQ(l0.sections[1].offset, 8192 + STATE_SIZE + RAM_TABLES + RAM_PAGES * 4096);
	EXPECT_EQ(l0.footer_off, 4411392 - 4096);
	/* The same places as a one-slot image. */
	EXPECT_EQ(memcmp(l0.sections, one.sections, sizeof(one.sections)), 0);
	EXPECT_EQ(l0.footer_off, one.footer_off);

	/* Slot 1: its own header right after slot 0's footer, no start section. */
	EXPECT_EQ(l1.header_off, 4411392);
	EXPECT_EQ(l1.header_off, l0.footer_off + 4096);
	EXPECT_EQ(l1.state_off, 4411392 + 4096);
	EXPECT_EQ(l1.footer_off + 4096, l1.image_size);
	for (k = 0; k < 2; k++) {
		const struct snap_section *a = &l0.sections[k], *b = &l1.sections[k];

		/* Everything of slot 1 is slot 0's, one slot span further. */
		EXPECT_EQ(b->offset, a->offset + SLOT_SPAN);
		EXPECT_EQ(b->table_off, a->table_off + SLOT_SPAN);
		EXPECT_EQ(b->hash_off, a->hash_off + SLOT_SPAN);
		EXPECT_EQ(b->blocks_off, a->blocks_off + SLOT_SPAN);
		EXPECT_EQ(b->data_off, a->data_off + SLOT_SPAN);
		EXPECT_EQ(b->size, a->size);
		EXPECT_EQ(b->pages, a->pages);
	}
	EXPECT_EQ(l1.sections[0].offset, 4464640);
	EXPECT_EQ(l1.sections[0].hash_off, 4464640 + 64 + 8 * RAM_PAGES);
	EXPECT_EQ(l1.sections[0].blocks_off, 4464640 + 64 + 16 * RAM_PAGES);
	EXPECT_EQ(l1.sections[1].offset, 8744960);
	EXPECT_EQ(l1.footer_off, 8814592);

	/* No part of one slot overlaps any part of the other, or the shared start section. */
	for (i = 0; i < 2; i++) {
		for (k = 0; k < 2; k++) {
			const struct snap_section *s = &ls[i]->sections[k];

			EXPECT_TRUE(disjoint(s->offset, s->size, 4096, 4096));
			for (j = 0; j < 2; j++) {
				const struct snap_section *t = &ls[1 - i]->sections[j];

				EXPECT_TRUE(disjoint(s->offset, s->size, t->offset, t->size));
			}
			EXPECT_TRUE(disjoint(s->offset, s->size, ls[1 - i]->header_off, 4096));
			EXPECT_TRUE(disjoint(s->offset, s->size, ls[1 - i]->state_off, STATE_SIZE));
			EXPECT_TRUE(disjoint(s->offset, s->size, ls[1 - i]->footer_off, 4096));
		}
		EXPECT_TRUE(
		    disjoint(ls[i]->state_off, STATE_SIZE, ls[1 - i]->state_off, STATE_SIZE));
		EXPECT_TRUE(disjoint(ls[i]->footer_off, 4096, ls[1 - i]->footer_off, 4096));
	}

	/* 1 or 2 slots, and a slot that exists. */
	EXPECT_EQ(snap_layout_compute_slot(&c, SNAP_ORDER_REGISTRY, 0, 0, &l0, &err), -EINVAL);
	EXPECT_EQ(snap_layout_compute_slot(&c, SNAP_ORDER_REGISTRY, 3, 0, &l0, &err), -EINVAL);
	EXPECT_EQ(snap_layout_compute_slot(&c, SNAP_ORDER_REGISTRY, 2, 2, &l0, &err), -EINVAL);
	EXPECT_EQ(snap_layout_compute_slot(&c, SNAP_ORDER_REGISTRY, 1, 1, &l0, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "slot 1 of 1"));
}

/* ---- images ---- */

FIXTURE(slots)
{
	char dir[64], path[96], other[96];
	struct snap_config cfg;
	struct snap_layout l[2];
};

FIXTURE_SETUP(slots)
{
	struct error err;
	unsigned int i;

	strcpy(self->dir, "/tmp/kvmsnap-slots-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/a.img", self->dir);
	snprintf(self->other, sizeof(self->other), "%s/b.img", self->dir);
	test_config(&self->cfg);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(snap_layout_compute_slot(&self->cfg, SNAP_ORDER_REGISTRY, 2, i,
						   &self->l[i], &err),
			  0);
}

FIXTURE_TEARDOWN(slots)
{
	char cmd[128];

	if (!self->dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	if (system(cmd))
		TH_LOG("cannot remove %s", self->dir);
}

static int create(const char *path, const struct snap_config *cfg, uint32_t order,
		  uint32_t nr_slots, struct error *err)
{
	struct snap_target_opts o = {.order = order, .nr_slots = nr_slots};
	struct snap_image img = {0};
	int ret = snap_image_create(path, cfg, &o, &img, err);

	if (!ret)
		snap_image_close(&img);
	return ret;
}

static void raw_read(const char *path, void *buf, size_t len, uint64_t off)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0 || pread(fd, buf, len, (off_t)off) != (ssize_t)len)
		abort();
	close(fd);
}

static void raw_write(const char *path, const void *buf, size_t len, uint64_t off)
{
	int fd = open(path, O_RDWR);

	if (fd < 0 || pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
		abort();
	close(fd);
}

static void flip(const char *path, uint64_t off, uint8_t mask)
{
	uint8_t b;

	raw_read(path, &b, 1, off);
	b ^= mask;
	raw_write(path, &b, 1, off);
}

/* Page `page` of region r of snapshot `seed`: every page different. */
static void fill_page(uint8_t *p, unsigned int r, uint64_t page, unsigned int seed)
{
	uint64_t i;

	for (i = 0; i < 4096; i += 8) {
		uint64_t v =
		    (page << 32) ^ (i * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)r << 56) ^ seed;

		put_le64(p + i, v);
	}
}

/*
 * A complete snapshot through the stream writer into `slot` (-1: the one
 * snap_image_next_slot() picks). *used_slot gets the slot written.
 */
static int write_snapshot(const char *path, const struct snap_config *cfg, int slot,
			  unsigned int seed, uint32_t *used_slot, struct error *err)
{
	struct snap_image img;
	struct snap_stream_writer *w = NULL;
	struct snap_state_writer sw;
	struct snap_report rep;
	uint8_t *buf = NULL, *rec;
	size_t used = 0;
	unsigned int r;
	uint64_t p;
	uint32_t s;
	int ret;

	ret = snap_image_open(path, SNAP_OPEN_RDWR, NULL, &img, err);
	if (ret)
		return ret;
	s = slot >= 0 ? (uint32_t)slot : snap_image_next_slot(&img);
	ret = snap_image_select_slot(&img, s, true, err);
	if (!ret)
		ret = snap_stream_writer_open(&w, &img, cfg, "machine=test\n", &rep, err);
	for (r = 0; !ret && r < cfg->nr_regions; r++) {
		uint64_t pages = cfg->regions[r].size / 4096;

		buf = malloc(pages * 4096);
		for (p = 0; p < pages; p++)
			fill_page(buf + p * 4096, r, p, seed);
		ret = snap_stream_writer_pages(w, r, 0, pages, buf, err);
		/* The data must stay put until it has been written. */
		if (!ret)
			ret = snap_stream_writer_drain(w, err);
		free(buf);
	}
	if (!ret) {
		snap_state_init(&sw, snap_stream_writer_state(w), img.layout.state_size);
		rec = snap_state_add(&sw, 1, 0, 64);
		if (rec)
			memset(rec, (int)seed, 64);
		ret = snap_state_finish(&sw, &used, err);
	}
	/* What a stream's end record reports (receive.c): the footer needs a pass. */
	rep.nr_passes = 1;
	rep.converged = true;
	if (!ret)
		ret = snap_stream_writer_finish(w, used, err);
	snap_stream_writer_close(w);
	if (!ret && used_slot)
		*used_slot = img.slot;
	snap_image_close(&img);
	return ret;
}

static int open_verify(const char *path, int slot, bool deep, struct snap_verify_result *res,
		       struct error *err)
{
	struct snap_image img;
	int ret = snap_image_open(path, SNAP_OPEN_RDONLY, NULL, &img, err);

	if (ret)
		return ret;
	if (slot >= 0)
		ret = snap_image_select_slot(&img, (uint32_t)slot, false, err);
	if (!ret)
		ret = snap_image_verify(&img, deep, res, err);
	snap_image_close(&img);
	return ret;
}

/* Pretend that the snapshot of `generation` into slot completed (header only). */
static void fake_complete(struct snap_image *img, uint32_t slot, uint32_t state,
			  uint64_t generation, struct th_result *_r)
{
	struct error err;

	ASSERT_EQ(snap_image_select_slot(img, slot, true, &err), 0);
	img->hdr.state = state;
	img->hdr.flags = 0; /* as a writer clears it */
	img->hdr.generation = generation;
	img->hdr.write_id = 0x1000 + generation;
	img->hdr.state_used = state == SNAP_STATE_COMPLETE ? SNAP_STATE_HDR_SIZE : 0;
	ASSERT_EQ(snap_image_write_header(img, true, &err), 0);
}

TEST_F(slots, create_two_slots)
{
	uint8_t buf[4096];
	struct snap_header h[2];
	struct snap_image img;
	struct error err;
	struct stat st;
	unsigned int i;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, 2, &err), 0);
	ASSERT_EQ(stat(self->path, &st), 0);
	EXPECT_EQ((uint64_t)st.st_size, 4096 + 2 * SLOT_SPAN);

	/* Both headers, as written: empty, generation 0, each its own slot, one image. */
	for (i = 0; i < 2; i++) {
		raw_read(self->path, buf, 4096, self->l[1].slot_off[i]);
		ASSERT_EQ(snap_header_decode(buf, &h[i], &err), 0);
		EXPECT_EQ(h[i].state, SNAP_STATE_EMPTY);
		EXPECT_EQ(h[i].generation, 0);
		EXPECT_EQ(h[i].write_id, 0);
		EXPECT_EQ(h[i].nr_slots, 2);
		EXPECT_EQ(h[i].slot, i);
		EXPECT_EQ(h[i].state_off, self->l[i].state_off);
		EXPECT_EQ(h[i].footer_off, self->l[i].footer_off);
		EXPECT_EQ(memcmp(h[i].sections, self->l[i].sections, sizeof(h[i].sections)), 0);
	}
	EXPECT_EQ(memcmp(h[0].uuid, h[1].uuid, 16), 0);

	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDWR, NULL, &img, &err), 0);
	EXPECT_EQ(img.nr_slots, 2);
	EXPECT_TRUE(img.slots[0].ok);
	EXPECT_TRUE(img.slots[1].ok);
	/* Nothing complete, both at generation 0: slot 0 for everyone. */
	EXPECT_EQ(img.slot, 0);
	EXPECT_EQ(snap_image_default_slot(&img), 0);
	EXPECT_EQ(snap_image_next_slot(&img), 0);
	EXPECT_EQ(snap_image_next_generation(&img), 1);
	EXPECT_EQ(img.layout.header_off, 0);

	/* Generation 1 completes in slot 0: the next goes to slot 1. */
	fake_complete(&img, 0, SNAP_STATE_COMPLETE, 1, _r);
	EXPECT_EQ(snap_image_default_slot(&img), 0);
	EXPECT_EQ(snap_image_next_slot(&img), 1);
	EXPECT_EQ(snap_image_next_generation(&img), 2);
	/* Generation 2 in slot 1: the newest complete; the next goes back to 0. */
	fake_complete(&img, 1, SNAP_STATE_COMPLETE, 2, _r);
	EXPECT_EQ(img.layout.header_off, self->l[1].header_off);
	EXPECT_EQ(snap_image_default_slot(&img), 1);
	EXPECT_EQ(snap_image_next_slot(&img), 0);
	EXPECT_EQ(snap_image_next_generation(&img), 3);
	fake_complete(&img, 0, SNAP_STATE_COMPLETE, 3, _r);
	EXPECT_EQ(snap_image_default_slot(&img), 0);
	EXPECT_EQ(snap_image_next_slot(&img), 1);
	EXPECT_EQ(snap_image_next_generation(&img), 4);
	/*
	 * Generation 4 into slot 1 is interrupted: readers keep generation 3,
	 * the next writer takes slot 1 again, never slot 0, with generation 5.
	 */
	fake_complete(&img, 1, SNAP_STATE_WRITING, 4, _r);
	EXPECT_EQ(snap_image_default_slot(&img), 0);
	EXPECT_EQ(snap_image_next_slot(&img), 1);
	EXPECT_EQ(snap_image_next_generation(&img), 5);
	snap_image_close(&img);

	/* What was written is what a new open sees. */
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	EXPECT_TRUE(img.slots[0].ok);
	EXPECT_TRUE(img.slots[1].ok);
	EXPECT_EQ(img.slots[0].hdr.generation, 3);
	EXPECT_EQ(img.slots[0].hdr.state, SNAP_STATE_COMPLETE);
	EXPECT_EQ(img.slots[1].hdr.generation, 4);
	EXPECT_EQ(img.slots[1].hdr.state, SNAP_STATE_WRITING);
	EXPECT_EQ(img.slot, 0);
	EXPECT_EQ(img.hdr.generation, 3);
	EXPECT_EQ(snap_image_next_slot(&img), 1);
	EXPECT_EQ(snap_image_next_generation(&img), 5);
	/* There is no slot 2. */
	EXPECT_EQ(snap_image_select_slot(&img, 2, false, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "has 2 slots; there is no slot 2"));
	snap_image_close(&img);
}

/* With nothing complete, the slot with the higher generation is the one to show. */
TEST_F(slots, default_slot_without_a_complete_one)
{
	struct snap_image img;
	struct error err;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, 2, &err), 0);
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDWR, NULL, &img, &err), 0);
	fake_complete(&img, 1, SNAP_STATE_WRITING, 1, _r);
	EXPECT_EQ(snap_image_default_slot(&img), 1);
	/* The older (empty) slot is overwritten first. */
	EXPECT_EQ(snap_image_next_slot(&img), 0);
	EXPECT_EQ(snap_image_next_generation(&img), 2);
	snap_image_close(&img);
}

/* Real snapshots through the writer: slots alternate, each verifies on its own. */
TEST_F(slots, snapshots_alternate_between_the_slots)
{
	struct snap_verify_result res;
	struct snap_image img;
	struct error err;
	uint32_t s;
	unsigned int i;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, 2, &err), 0);
	for (i = 1; i <= 3; i++) {
		ASSERT_EQ(write_snapshot(self->path, &self->cfg, -1, i, &s, &err), 0);
		/* 0, 1, 0: never over the newest complete snapshot. */
		EXPECT_EQ(s, (i - 1) % 2);
		ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
		EXPECT_EQ(img.slot, s);
		EXPECT_EQ(img.hdr.generation, i);
		EXPECT_EQ(img.hdr.state, SNAP_STATE_COMPLETE);
		EXPECT_NE(img.hdr.write_id, 0);
		if (i > 1) {
			EXPECT_EQ(img.slots[1 - s].hdr.generation, i - 1);
			EXPECT_NE(img.slots[1 - s].hdr.write_id, img.hdr.write_id);
		}
		snap_image_close(&img);
		ASSERT_EQ(open_verify(self->path, 0, true, &res, &err), 0);
		EXPECT_TRUE(res.digests_checked);
		if (i > 1) {
			ASSERT_EQ(open_verify(self->path, 1, true, &res, &err), 0);
			EXPECT_TRUE(res.digests_checked);
		}
	}
}

/* The footer of a slot belongs to the snapshot its header names. */
TEST_F(slots, footer_write_id_must_match)
{
	struct snap_verify_result res;
	struct snap_image img;
	struct error err;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, 2, &err), 0);
	ASSERT_EQ(write_snapshot(self->path, &self->cfg, 1, 1, NULL, &err), 0);
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDWR, NULL, &img, &err), 0);
	ASSERT_EQ(img.slot, 1);
	img.hdr.write_id ^= 1;
	ASSERT_EQ(snap_image_write_header(&img, true, &err), 0);
	snap_image_close(&img);
	EXPECT_EQ(open_verify(self->path, 1, false, &res, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "footer write id"));
	EXPECT_NOT_NULL(strstr(err.msg, "does not match the header's"));
}

/* Reseal a header block after an edit, so that only the field checks can refuse it. */
static void reseal(uint8_t *buf)
{
	put_le64(buf + 0xff8, XXH3_64bits(buf, 0xff8));
}

static void torn_slot0(struct _fixture_slots *self, uint32_t order, struct th_result *_r)
{
	struct snap_verify_result res;
	struct snap_image img;
	struct snap_layout l1;
	uint8_t junk[512];
	struct error err;

	ASSERT_EQ(snap_layout_compute_slot(&self->cfg, order, 2, 1, &l1, &err), 0);
	ASSERT_EQ(create(self->path, &self->cfg, order, 2, &err), 0);
	ASSERT_EQ(write_snapshot(self->path, &self->cfg, 1, 7, NULL, &err), 0);
	/* A torn write: one sector of slot 0's header is garbage. */
	memset(junk, 0xa5, sizeof(junk));
	raw_write(self->path, junk, sizeof(junk), 512);

	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDWR, NULL, &img, &err), 0);
	EXPECT_EQ(img.nr_slots, 2);
	EXPECT_FALSE(img.slots[0].ok);
	EXPECT_NOT_NULL(strstr(img.slots[0].why, "header checksum mismatch"));
	EXPECT_TRUE(img.slots[1].ok);
	EXPECT_EQ(img.slot, 1);
	EXPECT_EQ(img.layout.order, order);
	EXPECT_EQ(img.layout.header_off, l1.header_off);
	EXPECT_EQ(img.hdr.state, SNAP_STATE_COMPLETE);
	EXPECT_EQ(memcmp(&img.cfg, &self->cfg, sizeof(img.cfg)), 0);
	/* The damaged slot is the next one to write. */
	EXPECT_EQ(snap_image_next_slot(&img), 0);
	EXPECT_EQ(snap_image_next_generation(&img), 2);
	/* Not for reading, naming the slot and why. */
	EXPECT_EQ(snap_image_select_slot(&img, 0, false, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "slot 0 is damaged: header checksum mismatch"));
	/* For writing: rebuilt from slot 1's header, empty. */
	ASSERT_EQ(snap_image_select_slot(&img, 0, true, &err), 0);
	EXPECT_EQ(img.slot, 0);
	EXPECT_EQ(img.layout.header_off, 0);
	EXPECT_EQ(img.hdr.slot, 0);
	EXPECT_EQ(img.hdr.state, SNAP_STATE_EMPTY);
	EXPECT_EQ(img.hdr.generation, 0);
	EXPECT_EQ(img.hdr.state_off, 8192);
	EXPECT_EQ(memcmp(img.hdr.uuid, img.slots[1].hdr.uuid, 16), 0);
	snap_image_close(&img);

	/* Slot 1 still verifies in full. */
	ASSERT_EQ(open_verify(self->path, -1, true, &res, &err), 0);
	EXPECT_TRUE(res.complete);
	/* A snapshot repairs slot 0. */
	ASSERT_EQ(write_snapshot(self->path, &self->cfg, -1, 8, NULL, &err), 0);
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	EXPECT_TRUE(img.slots[0].ok);
	EXPECT_EQ(img.slot, 0);
	EXPECT_EQ(img.hdr.generation, 2);
	snap_image_close(&img);
	ASSERT_EQ(open_verify(self->path, 0, true, &res, &err), 0);
}

TEST_F(slots, torn_slot0_header_falls_back_to_slot1)
{
	torn_slot0(self, SNAP_ORDER_REGISTRY, _r);
}

/* Slot 1's header is found from the start section in either section order. */
TEST_F(slots, torn_slot0_header_size_order)
{
	torn_slot0(self, SNAP_ORDER_SIZE, _r);
}

TEST_F(slots, torn_header_without_a_second_slot_is_refused)
{
	struct snap_image img;
	uint8_t junk[512];
	struct error err;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, 1, &err), 0);
	memset(junk, 0xa5, sizeof(junk));
	raw_write(self->path, junk, sizeof(junk), 512);
	EXPECT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), -EBADMSG);
	EXPECT_NOT_NULL(strstr(err.msg, "header checksum mismatch"));
	EXPECT_NOT_NULL(strstr(err.msg, self->path));

	/* Two slots, both headers torn: nothing to fall back on. */
	ASSERT_EQ(create(self->other, &self->cfg, SNAP_ORDER_REGISTRY, 2, &err), 0);
	raw_write(self->other, junk, sizeof(junk), 512);
	raw_write(self->other, junk, sizeof(junk), self->l[1].header_off + 512);
	EXPECT_EQ(snap_image_open(self->other, SNAP_OPEN_RDONLY, NULL, &img, &err), -EBADMSG);
	EXPECT_NOT_NULL(strstr(err.msg, "header checksum mismatch"));
}

/* Slot 1's header torn: slot 0 serves, slot 1 is marked and can be rewritten. */
TEST_F(slots, torn_slot1_header)
{
	struct snap_image img;
	uint8_t junk[512];
	struct error err;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, 2, &err), 0);
	ASSERT_EQ(write_snapshot(self->path, &self->cfg, 0, 1, NULL, &err), 0);
	memset(junk, 0xa5, sizeof(junk));
	raw_write(self->path, junk, sizeof(junk), self->l[1].header_off + 1024);
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDWR, NULL, &img, &err), 0);
	EXPECT_TRUE(img.slots[0].ok);
	EXPECT_FALSE(img.slots[1].ok);
	EXPECT_NOT_NULL(strstr(img.slots[1].why, "header checksum mismatch"));
	EXPECT_EQ(img.slot, 0);
	EXPECT_EQ(snap_image_next_slot(&img), 1);
	EXPECT_EQ(snap_image_select_slot(&img, 1, false, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "slot 1 is damaged"));
	EXPECT_EQ(snap_image_select_slot(&img, 1, true, &err), 0);
	EXPECT_EQ(img.layout.header_off, self->l[1].header_off);
	snap_image_close(&img);
}

TEST_F(slots, version_1_header_is_refused)
{
	struct snap_image img;
	uint8_t buf[4096];
	struct error err;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, 1, &err), 0);
	raw_read(self->path, buf, 4096, 0);
	put_le32(buf + 8, 1);
	reseal(buf);
	raw_write(self->path, buf, 4096, 0);
	EXPECT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), -ENOTSUP);
	EXPECT_NOT_NULL(strstr(err.msg, "format version 1 is older than this kvmsnap reads (2); "
					"create the image again with `kvmsnap image create`"));
	EXPECT_NOT_NULL(strstr(err.msg, self->path));
}

/* A header block copied from another image (another uuid) is not this image's slot. */
TEST_F(slots, slot_header_of_another_image_is_refused)
{
	struct snap_image img;
	uint8_t buf[4096];
	struct error err;

	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, 2, &err), 0);
	ASSERT_EQ(create(self->other, &self->cfg, SNAP_ORDER_REGISTRY, 2, &err), 0);
	ASSERT_EQ(write_snapshot(self->other, &self->cfg, 1, 3, NULL, &err), 0);
	/* b's complete slot 1 header, same configuration, into a's slot 1. */
	raw_read(self->other, buf, 4096, self->l[1].header_off);
	raw_write(self->path, buf, 4096, self->l[1].header_off);

	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	EXPECT_TRUE(img.slots[0].ok);
	EXPECT_FALSE(img.slots[1].ok);
	EXPECT_NOT_NULL(strstr(img.slots[1].why, "belongs to another image or slot"));
	/* Readers stay on a's own slot, though b's header says complete. */
	EXPECT_EQ(img.slot, 0);
	EXPECT_EQ(img.hdr.state, SNAP_STATE_EMPTY);
	EXPECT_EQ(snap_image_select_slot(&img, 1, false, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "slot 1 is damaged: the header belongs to another image"));
	snap_image_close(&img);

	/* a's own slot 0 header in its slot 1 place: the right image, the wrong slot. */
	raw_read(self->path, buf, 4096, 0);
	raw_write(self->path, buf, 4096, self->l[1].header_off);
	ASSERT_EQ(snap_image_open(self->path, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	EXPECT_FALSE(img.slots[1].ok);
	EXPECT_NOT_NULL(strstr(img.slots[1].why, "belongs to another image or slot"));
	snap_image_close(&img);
}

/* ---- deep verify: the page, the page digest, the block digest ---- */

FIXTURE(deep)
{
	char dir[64], path[96];
	struct snap_config cfg;
	struct snap_layout l; /* slot 1 */
};

FIXTURE_SETUP(deep)
{
	struct error err;

	strcpy(self->dir, "/tmp/kvmsnap-slots-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/a.img", self->dir);
	test_config(&self->cfg);
	ASSERT_EQ(snap_layout_compute_slot(&self->cfg, SNAP_ORDER_REGISTRY, 2, 1, &self->l, &err),
		  0);
	/* Slot 1 complete, so that every offset below is a slot's own, not slot 0's. */
	ASSERT_EQ(create(self->path, &self->cfg, SNAP_ORDER_REGISTRY, 2, &err), 0);
	ASSERT_EQ(write_snapshot(self->path, &self->cfg, 1, 5, NULL, &err), 0);
}

FIXTURE_TEARDOWN(deep)
{
	char cmd[128];

	if (!self->dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->dir);
	if (system(cmd))
		TH_LOG("cannot remove %s", self->dir);
}

TEST_F(deep, written_snapshot_verifies)
{
	const struct snap_section *s = &self->l.sections[0];
	struct snap_verify_result res;
	struct error err;
	uint8_t page[4096], want[4096], le[8];
	uint64_t hashes[512], i;

	ASSERT_EQ(open_verify(self->path, -1, true, &res, &err), 0);
	EXPECT_TRUE(res.complete);
	EXPECT_TRUE(res.digests_checked);
	EXPECT_EQ(res.pages_checked, RAM_PAGES + VRAM_PAGES);
	EXPECT_EQ(res.bad_page_digests, 0);
	EXPECT_EQ(res.bad_digests, 0);
	/* Slot 0 stays empty, and verifies as such. */
	ASSERT_EQ(open_verify(self->path, 0, true, &res, &err), 0);
	EXPECT_FALSE(res.complete);

	/* The writer's tables, by the spec: page 600's hash, block 1's digest. */
	raw_read(self->path, page, 4096, s->data_off + 600 * 4096);
	fill_page(want, 0, 600, 5);
	EXPECT_EQ(memcmp(page, want, 4096), 0);
	raw_read(self->path, le, 8, s->hash_off + 600 * 8);
	EXPECT_EQ(get_le64(le), XXH3_64bits(want, 4096));
	for (i = 0; i < 512; i++) {
		fill_page(want, 0, 512 + i, 5);
		hashes[i] = XXH3_64bits(want, 4096);
	}
	raw_read(self->path, le, 8, s->blocks_off + 1 * 8);
	EXPECT_EQ(get_le64(le), snap_digest_u64s(hashes, 512));
}

TEST_F(deep, data_flip_names_the_page)
{
	const struct snap_section *s = &self->l.sections[0];
	struct snap_verify_result res;
	struct error err;

	flip(self->path, s->data_off + 700 * 4096 + 99, 0x10);
	/* The structure is intact: only deep verify can tell. */
	ASSERT_EQ(open_verify(self->path, -1, false, &res, &err), 0);
	EXPECT_EQ(open_verify(self->path, -1, true, &res, &err), -EBADMSG);
	EXPECT_EQ(res.bad_page_digests, 1);
	EXPECT_NOT_NULL(strstr(err.msg, "region pc.ram: page 700 does not match its digest"));
	EXPECT_NOT_NULL(strstr(err.msg, self->path));
	/* Recomputed from the data: block 1's digest and the region's differ too. */
	EXPECT_EQ(res.bad_digests, 2);
}

TEST_F(deep, page_digest_entry_flip_is_detected)
{
	const struct snap_section *s = &self->l.sections[1];
	struct snap_verify_result res;
	struct error err;

	flip(self->path, s->hash_off + 9 * 8 + 3, 0x01);
	ASSERT_EQ(open_verify(self->path, -1, false, &res, &err), 0);
	EXPECT_EQ(open_verify(self->path, -1, true, &res, &err), -EBADMSG);
	EXPECT_EQ(res.bad_page_digests, 1);
	EXPECT_NOT_NULL(strstr(err.msg, "region vga.vram: page 9 does not match its digest"));
	/* The data still hashes to the stored block and region digests. */
	EXPECT_EQ(res.bad_digests, 0);
}

TEST_F(deep, block_digest_entry_flip_is_detected)
{
	const struct snap_section *s = &self->l.sections[0];
	struct snap_verify_result res;
	struct error err;

	/* The last, short block (pages 1024..1039). */
	flip(self->path, s->blocks_off + 2 * 8 + 7, 0x80);
	ASSERT_EQ(open_verify(self->path, -1, false, &res, &err), 0);
	EXPECT_EQ(open_verify(self->path, -1, true, &res, &err), -EBADMSG);
	EXPECT_EQ(res.bad_page_digests, 0);
	EXPECT_EQ(res.bad_digests, 1);
	EXPECT_NOT_NULL(strstr(err.msg, "region pc.ram: block digest 2 does not match its pages"));
}

TEST_F(deep, footer_region_digest_flip_is_detected)
{
	struct snap_verify_result res;
	uint8_t buf[4096];
	struct error err;

	/* Region 1's digest, resealed: the footer decodes, the digest is wrong. */
	raw_read(self->path, buf, 4096, self->l.footer_off);
	buf[0x48 + 16 + 2] ^= 0x20;
	reseal(buf);
	raw_write(self->path, buf, 4096, self->l.footer_off);
	ASSERT_EQ(open_verify(self->path, -1, false, &res, &err), 0);
	EXPECT_EQ(open_verify(self->path, -1, true, &res, &err), -EBADMSG);
	EXPECT_EQ(res.bad_page_digests, 0);
	EXPECT_EQ(res.bad_digests, 1);
	EXPECT_NOT_NULL(strstr(err.msg, "region vga.vram: digest mismatch"));
}

TEST_HARNESS_MAIN
