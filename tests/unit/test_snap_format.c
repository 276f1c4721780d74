// SPDX-License-Identifier: GPL-2.0
/*
 * Block codecs (snapshot/format.c): round trips, and that any single flipped
 * bit, a wrong magic, a future version or a hostile field is refused.
 */
#include "../harness.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "lib/le.h"
#include "snapshot/snapshot.h"

static void add_region(struct snap_config *c, const char *id, uint64_t size)
{
	struct snap_region_desc *r = &c->regions[c->nr_regions++];

	snprintf(r->id, sizeof(r->id), "%s", id);
	r->size = size;
}

static void test_config(struct snap_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->machine, sizeof(c->machine), "%s", SNAP_MACHINE_PC);
	c->vcpus = 2;
	c->ram_size = 256 << 20;
	c->vram_size = 16 << 20;
	add_region(c, "pc.ram", 256 << 20);
	add_region(c, "vga.vram", 16 << 20);
	add_region(c, "pc.bios", 256 << 10);
	add_region(c, "acpi.tables", 128 << 10);
}

/* A complete header of slot `slot` of an image with nr_slots slots. */
static void test_slot_header(struct snap_header *h, uint32_t order, uint32_t nr_slots,
			     uint32_t slot)
{
	struct snap_config c;
	struct snap_layout l;
	struct error err;

	test_config(&c);
	memset(h, 0, sizeof(*h));
	snap_layout_compute_slot(&c, order, nr_slots, slot, &l, &err);
	h->version = 2;
	h->write_id = 0x0123456789abcdefULL;
	memcpy(h->uuid, "0123456789abcdef", 16);
	h->state = SNAP_STATE_COMPLETE;
	h->order = order;
	h->generation = 7;
	h->created_ns = 1700000000000000000ULL;
	h->started_ns = 1700000001000000000ULL;
	h->completed_ns = 1700000002000000000ULL;
	snap_header_set_layout(h, &l);
	h->state_used = 4096;
	snprintf(h->metadata, sizeof(h->metadata), "machine=kvmsnap-pc-1\nguest=dirtier\n");
	h->metadata_len = (uint32_t)strlen(h->metadata);
}

static void test_header(struct snap_header *h, uint32_t order)
{
	test_slot_header(h, order, 1, 0);
}

static void test_footer(struct snap_footer *f)
{
	unsigned int i;

	memset(f, 0, sizeof(*f));
	f->generation = 7;
	f->write_id = 0x0123456789abcdefULL;
	f->nr_regions = 4;
	f->digest_algo = SNAP_DIGEST_XXH3_TREE;
	f->pause_ns = 1700000001500000000ULL;
	f->passes = 5;
	f->flags = SNAP_FOOTER_CONVERGED;
	f->downtime_us = 1234;
	f->total_us = 987654;
	f->bytes_written = 300 << 20;
	for (i = 0; i < 4; i++) {
		f->digest[i] = 0x1111111111111111ULL * (i + 1);
		f->region_size[i] = 4096ULL << i;
	}
}

/* Recompute a block's checksum after a deliberate edit: test the field checks behind it. */
static void reseal(uint8_t *buf)
{
	put_le64(buf + 0xff8, XXH3_64bits(buf, 0xff8));
}

TEST(header_round_trip)
{
	uint8_t buf[4096];
	struct snap_header h, d;
	struct error err;
	unsigned int order;

	for (order = 0; order < 2; order++) {
		test_header(&h, order);
		snap_header_encode(&h, buf);
		ASSERT_EQ(memcmp(buf, "KVMSNAPI", 8), 0);
		EXPECT_EQ(get_le32(buf + 8), 2);
		EXPECT_EQ(get_le32(buf + 0xc), 4096);
		EXPECT_EQ(get_le64(buf + 0x28), 7);
		EXPECT_EQ(get_le32(buf + 0x80), 4);
		EXPECT_EQ(get_le32(buf + 0x90), 1);
		EXPECT_EQ(get_le32(buf + 0x94), 0);
		EXPECT_EQ(get_le64(buf + 0x98), 0x0123456789abcdefULL);
		EXPECT_EQ(get_le64(buf + 0xa0), 0);
		EXPECT_EQ(get_le64(buf + 0xa8), 0);
		EXPECT_EQ(get_le64(buf + 0x100 + 0x08), h.sections[0].offset);
		EXPECT_EQ(get_le64(buf + 0x100 + 0x30), h.sections[0].hash_off);
		EXPECT_EQ(get_le64(buf + 0x100 + 0x38), h.sections[0].blocks_off);
		EXPECT_EQ(memcmp(buf + 0x500, "machine=", 8), 0);
		ASSERT_EQ(snap_header_decode(buf, &d, &err), 0);
		EXPECT_EQ(d.version, 2);
		EXPECT_EQ(memcmp(d.uuid, h.uuid, 16), 0);
		EXPECT_EQ(d.state, h.state);
		EXPECT_EQ(d.order, order);
		EXPECT_EQ(d.generation, h.generation);
		EXPECT_EQ(d.created_ns, h.created_ns);
		EXPECT_EQ(d.started_ns, h.started_ns);
		EXPECT_EQ(d.completed_ns, h.completed_ns);
		EXPECT_EQ(d.image_size, h.image_size);
		EXPECT_EQ(d.start_off, h.start_off);
		EXPECT_EQ(d.state_off, h.state_off);
		EXPECT_EQ(d.state_size, h.state_size);
		EXPECT_EQ(d.footer_off, h.footer_off);
		EXPECT_EQ(d.footer_size, h.footer_size);
		EXPECT_EQ(d.nr_sections, h.nr_sections);
		EXPECT_EQ(d.state_used, h.state_used);
		EXPECT_EQ(d.nr_slots, 1);
		EXPECT_EQ(d.slot, 0);
		EXPECT_EQ(d.write_id, h.write_id);
		EXPECT_EQ(memcmp(d.slot_off, h.slot_off, sizeof(h.slot_off)), 0);
		EXPECT_EQ(memcmp(d.sections, h.sections, sizeof(h.sections)), 0);
		EXPECT_EQ(d.metadata_len, h.metadata_len);
		EXPECT_STREQ(d.metadata, h.metadata);
	}
}

/* The data-zero flag: at 0x0b0, kept by an empty slot only. */
TEST(header_data_zero_flag)
{
	uint8_t buf[4096];
	struct snap_header h, d;
	struct error err;

	test_header(&h, SNAP_ORDER_REGISTRY);
	h.state = SNAP_STATE_EMPTY;
	h.state_used = 0;
	h.flags = SNAP_HDR_DATA_ZERO;
	snap_header_encode(&h, buf);
	EXPECT_EQ(get_le32(buf + 0xb0), 1);
	ASSERT_EQ(snap_header_decode(buf, &d, &err), 0);
	EXPECT_EQ(d.flags, SNAP_HDR_DATA_ZERO);
	h.state = SNAP_STATE_WRITING;
	snap_header_encode(&h, buf);
	EXPECT_EQ(snap_header_decode(buf, &d, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "zeros"));
}

/* Both headers of a two-slot image: every offset absolute, and the slot's own. */
TEST(slot_header_round_trip)
{
	uint8_t buf[4096];
	struct snap_header h0, h1, d;
	struct error err;

	test_slot_header(&h0, SNAP_ORDER_SIZE, 2, 0);
	test_slot_header(&h1, SNAP_ORDER_SIZE, 2, 1);
	ASSERT_NE(h1.slot_off[1], 0);
	EXPECT_EQ(memcmp(h0.slot_off, h1.slot_off, sizeof(h0.slot_off)), 0);
	EXPECT_EQ(h0.image_size, h1.image_size);
	EXPECT_EQ(h0.state_off, 8192);
	EXPECT_EQ(h1.state_off, h1.slot_off[1] + 4096);
	/* Slot 0 ends where slot 1's header begins; slot 1 at the end of the image. */
	EXPECT_EQ(h0.footer_off + 4096, h1.slot_off[1]);
	EXPECT_EQ(h1.footer_off + 4096, h1.image_size);

	snap_header_encode(&h1, buf);
	EXPECT_EQ(get_le32(buf + 0x90), 2);
	EXPECT_EQ(get_le32(buf + 0x94), 1);
	EXPECT_EQ(get_le64(buf + 0xa0), 0);
	EXPECT_EQ(get_le64(buf + 0xa8), h1.slot_off[1]);
	EXPECT_EQ(get_le64(buf + 0x60), h1.state_off);
	EXPECT_EQ(get_le64(buf + 0x100 + 0x08), h1.sections[0].offset);
	ASSERT_EQ(snap_header_decode(buf, &d, &err), 0);
	EXPECT_EQ(d.nr_slots, 2);
	EXPECT_EQ(d.slot, 1);
	EXPECT_EQ(d.slot_off[1], h1.slot_off[1]);
	EXPECT_EQ(d.state_off, h1.state_off);
	EXPECT_EQ(d.footer_off, h1.footer_off);
	EXPECT_EQ(memcmp(d.sections, h1.sections, sizeof(h1.sections)), 0);

	snap_header_encode(&h0, buf);
	ASSERT_EQ(snap_header_decode(buf, &d, &err), 0);
	EXPECT_EQ(d.slot, 0);
	EXPECT_EQ(d.slot_off[1], h0.slot_off[1]);
	EXPECT_EQ(d.footer_off, h0.footer_off);

	/* A header that claims the other slot, or moves its own, is refused. */
	snap_header_encode(&h1, buf);
	put_le32(buf + 0x94, 0);
	reseal(buf);
	EXPECT_EQ(snap_header_decode(buf, &d, &err), -EINVAL);
	snap_header_encode(&h0, buf);
	put_le32(buf + 0x94, 1);
	reseal(buf);
	EXPECT_EQ(snap_header_decode(buf, &d, &err), -EINVAL);
	snap_header_encode(&h1, buf);
	put_le64(buf + 0xa8, h1.slot_off[1] + 4096);
	reseal(buf);
	EXPECT_EQ(snap_header_decode(buf, &d, &err), -EINVAL);
	snap_header_encode(&h0, buf);
	put_le64(buf + 0xa8, 0);
	reseal(buf);
	EXPECT_EQ(snap_header_decode(buf, &d, &err), -EINVAL);
}

TEST(header_every_bit_flip_is_refused)
{
	uint8_t buf[4096];
	struct snap_header h, d;
	struct error err;
	unsigned int off, bit, fails = 0;

	test_header(&h, SNAP_ORDER_REGISTRY);
	snap_header_encode(&h, buf);
	ASSERT_EQ(snap_header_decode(buf, &d, &err), 0);
	for (off = 0; off < 4096; off++) {
		for (bit = 0; bit < 8; bit++) {
			buf[off] ^= 1u << bit;
			if (snap_header_decode(buf, &d, &err) == 0)
				fails++;
			buf[off] ^= 1u << bit;
		}
	}
	EXPECT_EQ(fails, 0);
}

TEST(header_checksum_message)
{
	uint8_t buf[4096];
	struct snap_header h, d;
	struct error err;

	test_header(&h, SNAP_ORDER_REGISTRY);
	snap_header_encode(&h, buf);
	buf[0x30] ^= 0x40;
	EXPECT_EQ(snap_header_decode(buf, &d, &err), -EBADMSG);
	EXPECT_STREQ(err.msg, "header checksum mismatch (corrupted header)");
}

TEST(future_version_and_magic)
{
	uint8_t buf[4096];
	struct snap_header h, d;
	struct snap_config c, dc;
	struct error err;

	test_header(&h, SNAP_ORDER_REGISTRY);
	snap_header_encode(&h, buf);
	put_le32(buf + 8, 7);
	reseal(buf);
	EXPECT_EQ(snap_header_decode(buf, &d, &err), -ENOTSUP);
	EXPECT_STREQ(err.msg, "format version 7 is newer than this kvmsnap supports (2)");
	/* The version is checked before the checksum: a newer format may checksum differently. */
	buf[0x200] ^= 1;
	EXPECT_EQ(snap_header_decode(buf, &d, &err), -ENOTSUP);
	put_le32(buf + 8, 0);
	reseal(buf);
	EXPECT_EQ(snap_header_decode(buf, &d, &err), -EINVAL);

	/* Version 1: no conversion, a clear way out. */
	snap_header_encode(&h, buf);
	put_le32(buf + 8, 1);
	reseal(buf);
	EXPECT_EQ(snap_header_decode(buf, &d, &err), -ENOTSUP);
	EXPECT_STREQ(err.msg, "format version 1 is older than this kvmsnap reads (2); create the "
			      "image again with `kvmsnap image create`");

	snap_header_encode(&h, buf);
	memcpy(buf, "KVMSNAPX", 8);
	reseal(buf);
	EXPECT_EQ(snap_header_decode(buf, &d, &err), -EINVAL);
	EXPECT_STREQ(err.msg, "not a kvmsnap image (bad magic)");

	test_config(&c);
	snap_start_encode(&c, buf);
	put_le32(buf + 8, 3);
	reseal(buf);
	EXPECT_EQ(snap_start_decode(buf, &dc, &err), -ENOTSUP);
	EXPECT_STREQ(err.msg,
		     "VM start section: format version 3 is newer than this kvmsnap supports (2)");
	put_le32(buf + 8, 1);
	reseal(buf);
	EXPECT_EQ(snap_start_decode(buf, &dc, &err), -ENOTSUP);
	EXPECT_STREQ(err.msg, "VM start section: format version 1 is older than this kvmsnap "
			      "reads (2); create the image again with `kvmsnap image create`");
	snap_start_encode(&c, buf);
	buf[0] = 'X';
	EXPECT_EQ(snap_start_decode(buf, &dc, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "bad magic"));
}

/* Resealed hostile values: what the checksum cannot catch, the field checks must. */
TEST(header_hostile_fields)
{
	uint8_t good[4096], buf[4096];
	struct snap_header h, d;
	struct error err;

	test_header(&h, SNAP_ORDER_REGISTRY);
	snap_header_encode(&h, good);

#define HOSTILE(stmt)                                                  \
	do {                                                           \
		memcpy(buf, good, sizeof(buf));                        \
		stmt;                                                  \
		reseal(buf);                                           \
		EXPECT_EQ(snap_header_decode(buf, &d, &err), -EINVAL); \
	} while (0)

	HOSTILE(put_le32(buf + 0x0c, 512));	     /* header size */
	HOSTILE(put_le32(buf + 0x20, 3));	     /* state */
	HOSTILE(put_le32(buf + 0x24, 2));	     /* order */
	HOSTILE(put_le32(buf + 0x80, 0));	     /* no sections */
	HOSTILE(put_le32(buf + 0x80, 17));	     /* too many */
	HOSTILE(put_le32(buf + 0x80, 0xffffffff));   /* far too many */
	HOSTILE(put_le32(buf + 0x80, 3));	     /* one section left out */
	HOSTILE(put_le32(buf + 0x84, 1025));	     /* metadata too long */
	HOSTILE(put_le32(buf + 0x84, 3));	     /* metadata longer than its length */
	HOSTILE(put_le32(buf + 0x84, 100));	     /* NUL inside the metadata */
	HOSTILE(put_le64(buf + 0x48, ~0ULL));	     /* image size */
	HOSTILE(put_le64(buf + 0x50, 0));	     /* start offset */
	HOSTILE(put_le64(buf + 0x68, 4096));	     /* state area too small */
	HOSTILE(put_le64(buf + 0x68, ~0ULL - 4095)); /* state area huge */
	HOSTILE(put_le64(buf + 0x70, ~0ULL - 4095)); /* footer offset */
	HOSTILE(put_le64(buf + 0x78, 8192));	     /* footer size */
	HOSTILE(put_le64(buf + 0x88, ~0ULL));	     /* state used */
	HOSTILE(put_le64(buf + 0x88, 8));	     /* complete, but no state */
	HOSTILE(put_le32(buf + 0x90, 0));	     /* no slots */
	HOSTILE(put_le32(buf + 0x90, 3));	     /* too many slots */
	HOSTILE(put_le32(buf + 0x90, 2));	     /* two slots, no offset for slot 1 */
	HOSTILE(put_le32(buf + 0x94, 1));	     /* slot past the count */
	HOSTILE(put_le64(buf + 0xa0, 4096));	     /* slot 0 not at 0 */
	HOSTILE(put_le64(buf + 0xa8, 1ULL << 20));   /* an offset for a slot that is not there */
	HOSTILE(buf[0xb0] = 1);			     /* data-zero, but complete */
	HOSTILE(buf[0xb0] = 2);			     /* unknown flag */
	HOSTILE(buf[0xb4] = 1);			     /* reserved */
	HOSTILE(buf[0xff] = 1);			     /* reserved */
	HOSTILE(buf[0xa00] = 1);		     /* reserved */
	HOSTILE(put_le32(buf + 0x100, 2));	     /* section id */
	HOSTILE(put_le32(buf + 0x104, 9));	     /* region index */
	HOSTILE(put_le32(buf + 0x144, 0));	     /* region 0 twice */
	HOSTILE(put_le64(buf + 0x108, 4096));	     /* section offset */
	HOSTILE(put_le64(buf + 0x110, ~0ULL));	     /* section size */
	HOSTILE(put_le64(buf + 0x118, 0));	     /* table offset */
	HOSTILE(put_le64(buf + 0x120, get_le64(buf + 0x120) + 4096)); /* data offset */
	HOSTILE(put_le64(buf + 0x128, 1ULL << 62));		      /* pages */
	HOSTILE(put_le64(buf + 0x128, 0));			      /* no pages */
	HOSTILE(put_le64(buf + 0x130, get_le64(buf + 0x130) + 8));    /* page digest table */
	HOSTILE(put_le64(buf + 0x138, get_le64(buf + 0x138) - 8));    /* block digest table */
	HOSTILE(buf[0x100 + 4 * 64] = 1);			      /* unused entry */
	/* Registry order with the sections swapped. */
	HOSTILE({
		uint8_t e[64];

		memcpy(e, buf + 0x100, 64);
		memcpy(buf + 0x100, buf + 0x140, 64);
		memcpy(buf + 0x140, e, 64);
	});
#undef HOSTILE
}

TEST(start_section_round_trip)
{
	uint8_t buf[4096];
	struct snap_config c, d;
	struct error err;
	unsigned int i;

	test_config(&c);
	snap_start_encode(&c, buf);
	ASSERT_EQ(memcmp(buf, "KSVMSTRT", 8), 0);
	/* 0x48 + 4 + (2+6+8) + (2+8+8) + (2+7+8) + (2+11+8) + 8 */
	EXPECT_EQ(get_le32(buf + 0xc), 0x48 + 4 + 16 + 18 + 17 + 21 + 8);
	EXPECT_EQ(get_le32(buf + 0x48), 4);
	EXPECT_EQ(get_le16(buf + 0x4c), 6);
	EXPECT_EQ(memcmp(buf + 0x4e, "pc.ram", 6), 0);
	EXPECT_EQ(get_le64(buf + 0x54), 256 << 20);
	ASSERT_EQ(snap_start_decode(buf, &d, &err), 0);
	EXPECT_STREQ(d.machine, SNAP_MACHINE_PC);
	EXPECT_EQ(d.vcpus, 2);
	EXPECT_EQ(d.ram_size, c.ram_size);
	EXPECT_EQ(d.vram_size, c.vram_size);
	ASSERT_EQ(d.nr_regions, 4);
	for (i = 0; i < 4; i++) {
		EXPECT_STREQ(d.regions[i].id, c.regions[i].id);
		EXPECT_EQ(d.regions[i].size, c.regions[i].size);
	}
	EXPECT_EQ(memcmp(&c, &d, sizeof(c)), 0);
}

TEST(start_section_every_bit_flip_is_refused)
{
	uint8_t buf[4096];
	struct snap_config c, d;
	struct error err;
	unsigned int off, bit, fails = 0;

	test_config(&c);
	snap_start_encode(&c, buf);
	for (off = 0; off < 4096; off++) {
		for (bit = 0; bit < 8; bit++) {
			buf[off] ^= 1u << bit;
			if (snap_start_decode(buf, &d, &err) == 0)
				fails++;
			buf[off] ^= 1u << bit;
		}
	}
	EXPECT_EQ(fails, 0);
	buf[0x100] ^= 1;
	EXPECT_EQ(snap_start_decode(buf, &d, &err), -EBADMSG);
	EXPECT_STREQ(err.msg, "VM start section checksum mismatch (corrupted VM start section)");
}

TEST(start_section_hostile_fields)
{
	uint8_t good[4096], buf[4096];
	struct snap_config c, d;
	struct error err;

	test_config(&c);
	snap_start_encode(&c, good);

#define HOSTILE(stmt)                                                 \
	do {                                                          \
		memcpy(buf, good, sizeof(buf));                       \
		stmt;                                                 \
		reseal(buf);                                          \
		EXPECT_EQ(snap_start_decode(buf, &d, &err), -EINVAL); \
	} while (0)

	HOSTILE(put_le32(buf + 0x0c, 0xffffffff)); /* used */
	HOSTILE(put_le32(buf + 0x0c, 0x48));	   /* used too short */
	HOSTILE(put_le32(buf + 0x0c, get_le32(buf + 0x0c) + 1));
	HOSTILE(memset(buf + 0x10, 'm', 32)); /* machine without NUL */
	HOSTILE(memset(buf + 0x10, 0, 32));   /* no machine */
	HOSTILE(buf[0x2f] = 'x');	      /* junk after the machine's NUL */
	HOSTILE(put_le32(buf + 0x30, 0));     /* vcpus */
	HOSTILE(put_le32(buf + 0x30, 0xffffffff));
	HOSTILE(buf[0x34] = 1);		  /* reserved */
	HOSTILE(put_le32(buf + 0x48, 0)); /* region count */
	HOSTILE(put_le32(buf + 0x48, 0xffffffff));
	HOSTILE(put_le32(buf + 0x48, 3));
	HOSTILE(put_le16(buf + 0x4c, 0)); /* id length */
	HOSTILE(put_le16(buf + 0x4c, 0xffff));
	HOSTILE(put_le16(buf + 0x4c, 32));
	HOSTILE(buf[0x4f] = 0);			     /* NUL in an id */
	HOSTILE(buf[0x4f] = ' ');		     /* space in an id */
	HOSTILE(put_le64(buf + 0x54, 0));	     /* a size that no longer sums to the total */
	HOSTILE(buf[get_le32(buf + 0x0c) - 1] ^= 1); /* total */
	HOSTILE(buf[get_le32(buf + 0x0c)] = 1);	     /* junk after used */
#undef HOSTILE
}

/* A well-formed block for a bad configuration: the decoder checks the config too. */
TEST(start_section_bad_config)
{
	uint8_t buf[4096];
	struct snap_config c, d;
	struct error err;

#define BAD_CONFIG(stmt, text)                                        \
	do {                                                          \
		test_config(&c);                                      \
		stmt;                                                 \
		snap_start_encode(&c, buf);                           \
		EXPECT_EQ(snap_start_decode(buf, &d, &err), -EINVAL); \
		EXPECT_NOT_NULL(strstr(err.msg, text));               \
	} while (0)

	BAD_CONFIG(c.regions[1].size = 0, "region vga.vram: size 0 is not a non-zero multiple");
	BAD_CONFIG(c.regions[1].size = 12345, "size 12345 is not a non-zero multiple of 4096");
	BAD_CONFIG(c.regions[1].size = SNAP_REGION_SIZE_MAX * 2, "too large");
	BAD_CONFIG(snprintf(c.regions[2].id, 32, "pc.ram"), "region id pc.ram appears twice");
	BAD_CONFIG(snprintf(c.regions[2].id, 32, "pc bios"), "spaces or control characters");
	BAD_CONFIG(c.vcpus = 0, "0 vCPUs");
	BAD_CONFIG(snprintf(c.machine, 32, "a\tb"), "bad machine type");
#undef BAD_CONFIG
}

TEST(footer_round_trip_and_flips)
{
	uint8_t buf[4096];
	struct snap_footer f, d;
	struct error err;
	unsigned int off, bit, fails = 0;

	test_footer(&f);
	snap_footer_encode(&f, buf);
	ASSERT_EQ(memcmp(buf, "KSFOOTER", 8), 0);
	EXPECT_EQ(get_le64(buf + 0x08), 7);
	EXPECT_EQ(get_le32(buf + 0x14), 2);
	EXPECT_EQ(get_le64(buf + 0x40), f.write_id);
	/* Region entries after the write id: digest, then size, 16 bytes each. */
	EXPECT_EQ(get_le64(buf + 0x48), f.digest[0]);
	EXPECT_EQ(get_le64(buf + 0x50), f.region_size[0]);
	EXPECT_EQ(get_le64(buf + 0x48 + 3 * 16), f.digest[3]);
	EXPECT_EQ(get_le64(buf + 0x50 + 3 * 16), f.region_size[3]);
	ASSERT_EQ(snap_footer_decode(buf, &d, &err), 0);
	EXPECT_EQ(memcmp(&f, &d, sizeof(f)), 0);
	for (off = 0; off < 4096; off++) {
		for (bit = 0; bit < 8; bit++) {
			buf[off] ^= 1u << bit;
			if (snap_footer_decode(buf, &d, &err) == 0)
				fails++;
			buf[off] ^= 1u << bit;
		}
	}
	EXPECT_EQ(fails, 0);
	buf[0x18] ^= 1;
	EXPECT_EQ(snap_footer_decode(buf, &d, &err), -EBADMSG);
	EXPECT_STREQ(err.msg, "footer checksum mismatch (corrupted footer)");
}

TEST(footer_hostile_fields)
{
	uint8_t good[4096], buf[4096];
	struct snap_footer f, d;
	struct error err;

	test_footer(&f);
	snap_footer_encode(&f, good);

#define HOSTILE(stmt)                                                  \
	do {                                                           \
		memcpy(buf, good, sizeof(buf));                        \
		stmt;                                                  \
		reseal(buf);                                           \
		EXPECT_EQ(snap_footer_decode(buf, &d, &err), -EINVAL); \
	} while (0)

	HOSTILE(put_le32(buf + 0x10, 0));
	HOSTILE(put_le32(buf + 0x10, 17));
	HOSTILE(put_le32(buf + 0x10, 0xffffffff));
	HOSTILE(put_le32(buf + 0x10, 3)); /* the fourth entry becomes junk */
	HOSTILE(put_le32(buf + 0x14, 1)); /* format 1's flat digest */
	HOSTILE(put_le32(buf + 0x14, 3));
	HOSTILE(put_le32(buf + 0x20, 0));
	HOSTILE(put_le32(buf + 0x24, 2));
	HOSTILE(buf[0x200] = 1);
	HOSTILE(buf[0x48 + 4 * 16] = 1); /* just after the last region entry */
	HOSTILE(memcpy(buf, "KSFOOTEX", 8));
#undef HOSTILE
}

TEST(section_descriptor)
{
	struct snap_section s = {.id = 2, .region = 1, .pages = 4096};
	struct snap_region_desc r = {.id = "vga.vram", .size = 16 << 20};
	struct snap_region_desc other = {.id = "vga.vrax", .size = 16 << 20};
	uint8_t buf[64];
	struct error err;
	unsigned int off, bit, fails = 0;

	snap_section_desc_encode(&s, &r, buf);
	EXPECT_EQ(memcmp(buf, "KSRAMSEC", 8), 0);
	EXPECT_EQ(get_le32(buf + 8), 2);
	EXPECT_EQ(get_le32(buf + 12), 1);
	EXPECT_EQ(get_le64(buf + 16), 4096);
	EXPECT_EQ(get_le64(buf + 24), 16 << 20);
	EXPECT_STREQ((char *)buf + 32, "vga.vram");
	EXPECT_EQ(buf[63], 0);
	ASSERT_EQ(snap_section_desc_check(buf, &s, &r, &err), 0);
	EXPECT_EQ(snap_section_desc_check(buf, &s, &other, &err), -EINVAL);
	for (off = 0; off < 64; off++) {
		for (bit = 0; bit < 8; bit++) {
			buf[off] ^= 1u << bit;
			if (snap_section_desc_check(buf, &s, &r, &err) == 0)
				fails++;
			buf[off] ^= 1u << bit;
		}
	}
	EXPECT_EQ(fails, 0);
	buf[0] = 'x';
	EXPECT_EQ(snap_section_desc_check(buf, &s, &r, &err), -EINVAL);
	EXPECT_STREQ(err.msg, "section 2 (vga.vram): bad descriptor magic");
}

TEST(page_header_encoding)
{
	EXPECT_EQ(snap_page_hdr(0, SNAP_PAGE_PRESENT), 1);
	EXPECT_EQ(snap_page_hdr(5, SNAP_PAGE_PRESENT), 0x5001);
	EXPECT_EQ(snap_page_hdr(5, 0), 5 * 4096);
	/* Flags never spill into the offset. */
	EXPECT_EQ(snap_page_hdr(1, 0x1fff), 0x1fff);
	EXPECT_EQ(snap_page_hdr(0xfffffffffULL, 1), 0xfffffffff001ULL);
	EXPECT_EQ(snap_page_hdr(3, 1) >> 12, 3);
}

TEST(digest_tree)
{
	static uint8_t mem[8 * 4096];
	uint64_t hashes[8], want, block, got;
	uint8_t le[64], ble[8];
	struct snap_digest_stream s;
	unsigned int i;

	for (i = 0; i < sizeof(mem); i++)
		mem[i] = (uint8_t)(i * 7 + i / 4096);
	got = snap_digest_pages(mem, 8, hashes);
	/*
	 * By the spec: each page's XXH3; one (short) block of 8, its digest
	 * the XXH3 of the little-endian page hashes; the region digest the
	 * XXH3 of the little-endian block digest.
	 */
	for (i = 0; i < 8; i++) {
		EXPECT_EQ(hashes[i], XXH3_64bits(mem + i * 4096, 4096));
		EXPECT_EQ(snap_page_hash(mem + i * 4096), hashes[i]);
		put_le64(le + 8 * i, hashes[i]);
	}
	block = XXH3_64bits(le, sizeof(le));
	EXPECT_EQ(snap_digest_u64s(hashes, 8), block);
	put_le64(ble, block);
	want = XXH3_64bits(ble, 8);
	EXPECT_EQ(got, want);
	/* Not format 1's flat digest. */
	EXPECT_NE(got, block);
	EXPECT_EQ(snap_digest_tree(hashes, 8), want);
	EXPECT_EQ(snap_digest_u64s(&block, 1), want);
	ASSERT_EQ(snap_digest_begin(&s), 0);
	snap_digest_add(&s, mem, 3);
	snap_digest_add(&s, mem + 3 * 4096, 5);
	EXPECT_EQ(snap_digest_end(&s), want);
	mem[5 * 4096 + 17] ^= 1;
	EXPECT_NE(snap_digest_pages(mem, 8, NULL), want);
	/* No pages, no blocks: the XXH3 of nothing. */
	EXPECT_EQ(snap_digest_tree(NULL, 0), XXH3_64bits(NULL, 0));
}

/* Several blocks, the last one short: 1500 = 512 + 512 + 476 pages. */
TEST(digest_tree_large)
{
	const uint64_t pages = 1500;
	uint8_t *mem = calloc(pages, 4096);
	uint64_t *hashes = calloc(pages, 8), d, blocks[3];
	uint8_t *le = calloc(pages, 8), ble[3 * 8];
	struct snap_digest_stream s;
	uint64_t i, b;

	ASSERT_NOT_NULL(mem);
	for (i = 0; i < pages; i++)
		mem[i * 4096] = (uint8_t)i;
	d = snap_digest_pages(mem, pages, hashes);
	for (i = 0; i < pages; i++)
		put_le64(le + 8 * i, hashes[i]);
	for (b = 0; b < 3; b++) {
		uint64_t n = b < 2 ? 512 : 476;

		blocks[b] = XXH3_64bits(le + b * 512 * 8, n * 8);
		EXPECT_EQ(snap_digest_u64s(hashes + b * 512, n), blocks[b]);
		put_le64(ble + 8 * b, blocks[b]);
	}
	EXPECT_EQ(d, XXH3_64bits(ble, sizeof(ble)));
	EXPECT_EQ(snap_digest_u64s(blocks, 3), d);
	EXPECT_EQ(snap_digest_tree(hashes, pages), d);
	/* More than one block's worth of u64s: still the XXH3 of all of them. */
	EXPECT_EQ(snap_digest_u64s(hashes, pages), XXH3_64bits(le, pages * 8));
	/* Streamed in runs that straddle the block boundaries. */
	ASSERT_EQ(snap_digest_begin(&s), 0);
	for (i = 0; i < pages; i += 100)
		snap_digest_add(&s, mem + i * 4096, 100);
	EXPECT_EQ(snap_digest_end(&s), d);
	ASSERT_EQ(snap_digest_begin(&s), 0);
	snap_digest_add_hashes(&s, hashes, 512);
	snap_digest_add_hashes(&s, hashes + 512, pages - 512);
	EXPECT_EQ(snap_digest_end(&s), d);
	/* One changed page changes its block's digest only, and the region's. */
	mem[700 * 4096 + 5] ^= 1;
	EXPECT_NE(snap_digest_pages(mem, pages, hashes), d);
	EXPECT_EQ(snap_digest_u64s(hashes, 512), blocks[0]);
	EXPECT_NE(snap_digest_u64s(hashes + 512, 512), blocks[1]);
	EXPECT_EQ(snap_digest_u64s(hashes + 1024, 476), blocks[2]);
	free(mem);
	free(hashes);
	free(le);
}

TEST(error_helpers)
{
	struct error err;

	EXPECT_EQ(err_set(&err, -EIO, "disk %d failed", 3), -EIO);
	EXPECT_EQ(err.code, -EIO);
	EXPECT_STREQ(err.msg, "disk 3 failed");
	EXPECT_EQ(err_prefix(&err, "image %s", "a.img"), -EIO);
	EXPECT_STREQ(err.msg, "image a.img: disk 3 failed");
	EXPECT_EQ(err_set(NULL, -EINVAL, "nobody listens"), -EINVAL);
	EXPECT_STREQ(snap_state_name(SNAP_STATE_WRITING), "writing");
	EXPECT_STREQ(snap_state_name(9), "invalid");
	EXPECT_STREQ(snap_order_name(SNAP_ORDER_SIZE), "size");
}

TEST_HARNESS_MAIN
