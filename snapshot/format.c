// SPDX-License-Identifier: GPL-2.0
/*
 * Block codecs for the image format (Documentation/snapshot-format.md): the
 * header, the VM start section, the footer and the section descriptor. Every
 * field goes through le.h. Decoders check magic, version and checksum first,
 * then every field, before they fill the caller's structure.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "lib/le.h"
#include "lib/align.h"
#include "snapshot/snapshot.h"
#include "snapshot/state.h"

#define HDR_MAGIC     "KVMSNAPI"
#define START_MAGIC   "KSVMSTRT"
#define FOOTER_MAGIC  "KSFOOTER"
#define SECTION_MAGIC "KSRAMSEC"
#define CSUM_OFF      0xff8 /* every 4096-byte block ends with its XXH3 */

/* Header field offsets. */
#define H_VERSION     0x008
#define H_HDR_SIZE    0x00c
#define H_UUID	      0x010
#define H_STATE	      0x020
#define H_ORDER	      0x024
#define H_GENERATION  0x028
#define H_CREATED     0x030
#define H_STARTED     0x038
#define H_COMPLETED   0x040
#define H_IMAGE_SIZE  0x048
#define H_START_OFF   0x050
#define H_START_SIZE  0x058
#define H_STATE_OFF   0x060
#define H_STATE_SIZE  0x068
#define H_FOOTER_OFF  0x070
#define H_FOOTER_SIZE 0x078
#define H_NR_SECTIONS 0x080
#define H_META_LEN    0x084
#define H_STATE_USED  0x088
#define H_NR_SLOTS    0x090
#define H_SLOT	      0x094
#define H_WRITE_ID    0x098
#define H_SLOT_OFF    0x0a0 /* SNAP_MAX_SLOTS u64s */
#define H_FLAGS	      0x0b0
#define H_RESERVED1   0x0b4
#define H_TABLE	      0x100
#define H_ENTRY_SIZE  64
#define H_METADATA    0x500
#define H_RESERVED2   0x900

/* VM start section field offsets. */
#define S_VERSION  0x008
#define S_USED	   0x00c
#define S_MACHINE  0x010
#define S_VCPUS	   0x030
#define S_RSVD	   0x034
#define S_RAM	   0x038
#define S_VRAM	   0x040
#define S_RAMSTART 0x048

/* Footer field offsets. */
#define F_GENERATION 0x008
#define F_NR_REGIONS 0x010
#define F_ALGO	     0x014
#define F_PAUSE	     0x018
#define F_PASSES     0x020
#define F_FLAGS	     0x024
#define F_DOWNTIME   0x028
#define F_TOTAL	     0x030
#define F_BYTES	     0x038
#define F_WRITE_ID   0x040
#define F_REGIONS    0x048

const char *snap_state_name(uint32_t state)
{
	static const char *const names[] = {"empty", "writing", "complete"};

	return state < 3 ? names[state] : "invalid";
}

const char *snap_order_name(uint32_t order)
{
	static const char *const names[] = {"registry", "size"};

	return order < 2 ? names[order] : "invalid";
}

const char *snap_size_str(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
	int i;

	for (i = 4; i >= 0; i--) {
		uint64_t unit = 1ULL << (10 * (i + 1));

		if (v < unit)
			continue;
		/* Three significant digits, and never a rounded value that looks exact. */
		if (v % unit == 0)
			snprintf(buf, len, "%llu %s", (unsigned long long)(v / unit), units[i]);
		else if (v < 10 * unit)
			snprintf(buf, len, "%.2f %s", (double)v / (double)unit, units[i]);
		else
			snprintf(buf, len, "%.1f %s", (double)v / (double)unit, units[i]);
		return buf;
	}
	snprintf(buf, len, "%llu bytes", (unsigned long long)v);
	return buf;
}

void snap_size_pair_str(uint64_t x, char *xbuf, uint64_t y, char *ybuf)
{
	char a[32], b[32];

	snap_size_str(x, a, sizeof(a));
	snap_size_str(y, b, sizeof(b));
	if (x == y || strcmp(a, b)) {
		snprintf(xbuf, SNAP_SIZE_PAIR_LEN, "%s", a);
		snprintf(ybuf, SNAP_SIZE_PAIR_LEN, "%s", b);
		return;
	}
	snprintf(xbuf, SNAP_SIZE_PAIR_LEN, "%s (%llu bytes)", a, (unsigned long long)x);
	snprintf(ybuf, SNAP_SIZE_PAIR_LEN, "%s (%llu bytes)", b, (unsigned long long)y);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void put_checksum(uint8_t *buf)
{
	put_le64(buf + CSUM_OFF, XXH3_64bits(buf, CSUM_OFF));
}

static bool checksum_ok(const uint8_t *buf)
{
	return get_le64(buf + CSUM_OFF) == XXH3_64bits(buf, CSUM_OFF);
}

/* Magic, then version (a newer format may checksum differently), then checksum. */
static int check_block(const uint8_t *buf, const char *magic, const char *what, bool versioned,
		       struct error *err)
{
	uint32_t v;

	if (memcmp(buf, magic, 8))
		return err_set(err, -EINVAL, "%s: bad magic (not a kvmsnap %s)", what, what);
	if (versioned) {
		v = get_le32(buf + 8);
		if (v > SNAP_FORMAT_VERSION)
			return err_set(
			    err, -ENOTSUP,
			    "%s%sformat version %u is newer than this kvmsnap supports (%u)",
			    strcmp(what, "header") ? what : "", strcmp(what, "header") ? ": " : "",
			    v, SNAP_FORMAT_VERSION);
		if (v == 0)
			return err_set(err, -EINVAL, "%s: invalid format version 0", what);
		/* Version 1 had one slot and no digest tables: nothing to carry over. */
		if (v < SNAP_FORMAT_VERSION)
			return err_set(err, -ENOTSUP,
				       "%s%sformat version %u is older than this kvmsnap reads "
				       "(%u); create the image again with `kvmsnap image create`",
				       strcmp(what, "header") ? what : "",
				       strcmp(what, "header") ? ": " : "", v, SNAP_FORMAT_VERSION);
	}
	if (!checksum_ok(buf))
		return err_set(err, -EBADMSG, "%s checksum mismatch (corrupted %s)", what, what);
	return 0;
}

/* A NUL-padded name field: 1..width-1 bytes, then only NULs. */
static bool name_field_ok(const uint8_t *p, size_t width)
{
	size_t len = strnlen((const char *)p, width);

	return len > 0 && len < width && all_zero(p + len, width - len);
}

/* ---- header ---- */

void snap_header_encode(const struct snap_header *h, uint8_t buf[SNAP_HEADER_SIZE])
{
	size_t mlen = strnlen(h->metadata, SNAP_METADATA_MAX);
	unsigned int i, n = h->nr_sections <= SNAP_MAX_REGIONS ? h->nr_sections : 0;

	memset(buf, 0, SNAP_HEADER_SIZE);
	memcpy(buf, HDR_MAGIC, 8);
	put_le32(buf + H_VERSION, SNAP_FORMAT_VERSION);
	put_le32(buf + H_HDR_SIZE, SNAP_HEADER_SIZE);
	memcpy(buf + H_UUID, h->uuid, 16);
	put_le32(buf + H_STATE, h->state);
	put_le32(buf + H_ORDER, h->order);
	put_le64(buf + H_GENERATION, h->generation);
	put_le64(buf + H_CREATED, h->created_ns);
	put_le64(buf + H_STARTED, h->started_ns);
	put_le64(buf + H_COMPLETED, h->completed_ns);
	put_le64(buf + H_IMAGE_SIZE, h->image_size);
	put_le64(buf + H_START_OFF, h->start_off);
	put_le64(buf + H_START_SIZE, h->start_size);
	put_le64(buf + H_STATE_OFF, h->state_off);
	put_le64(buf + H_STATE_SIZE, h->state_size);
	put_le64(buf + H_FOOTER_OFF, h->footer_off);
	put_le64(buf + H_FOOTER_SIZE, h->footer_size);
	put_le32(buf + H_NR_SECTIONS, n);
	put_le32(buf + H_META_LEN, (uint32_t)mlen);
	put_le64(buf + H_STATE_USED, h->state_used);
	put_le32(buf + H_NR_SLOTS, h->nr_slots);
	put_le32(buf + H_SLOT, h->slot);
	put_le64(buf + H_WRITE_ID, h->write_id);
	put_le32(buf + H_FLAGS, h->flags);
	for (i = 0; i < SNAP_MAX_SLOTS; i++)
		put_le64(buf + H_SLOT_OFF + i * 8, h->slot_off[i]);
	for (i = 0; i < n; i++) {
		const struct snap_section *s = &h->sections[i];
		uint8_t *e = buf + H_TABLE + i * H_ENTRY_SIZE;

		put_le32(e + 0x00, s->id);
		put_le32(e + 0x04, s->region);
		put_le64(e + 0x08, s->offset);
		put_le64(e + 0x10, s->size);
		put_le64(e + 0x18, s->table_off);
		put_le64(e + 0x20, s->data_off);
		put_le64(e + 0x28, s->pages);
		put_le64(e + 0x30, s->hash_off);
		put_le64(e + 0x38, s->blocks_off);
	}
	memcpy(buf + H_METADATA, h->metadata, mlen);
	put_checksum(buf);
}

/*
 * The section table: entries in image order, contiguous from the end of the
 * state area to the footer, each internally consistent, the region indexes
 * a permutation of 0..n-1 and their order one of the two section orders.
 */
static int decode_sections(const uint8_t *buf, struct snap_header *h, struct error *err)
{
	uint64_t pos = h->state_off + h->state_size;
	bool seen[SNAP_MAX_REGIONS] = {false};
	unsigned int i;

	for (i = 0; i < h->nr_sections; i++) {
		const uint8_t *e = buf + H_TABLE + i * H_ENTRY_SIZE;
		struct snap_section *s = &h->sections[i];
		uint64_t table_area;

		s->id = get_le32(e + 0x00);
		s->region = get_le32(e + 0x04);
		s->offset = get_le64(e + 0x08);
		s->size = get_le64(e + 0x10);
		s->table_off = get_le64(e + 0x18);
		s->data_off = get_le64(e + 0x20);
		s->pages = get_le64(e + 0x28);
		s->hash_off = get_le64(e + 0x30);
		s->blocks_off = get_le64(e + 0x38);
		if (s->region >= h->nr_sections || seen[s->region] || s->id != s->region + 1)
			return err_set(
			    err, -EINVAL,
			    "section table entry %u: bad region index %u or section id %u", i,
			    s->region, s->id);
		seen[s->region] = true;
		if (s->pages == 0 || s->pages > SNAP_REGION_SIZE_MAX / SNAP_PAGE_SIZE)
			return err_set(err, -EINVAL, "section %u: bad page count %llu", s->id,
				       (unsigned long long)s->pages);
		/* pages is bounded, so none of this can overflow. */
		table_area =
		    ALIGN_UP(SNAP_SECTION_DESC + 16 * s->pages + 8 * snap_hash_blocks(s->pages),
			     SNAP_PAGE_SIZE);
		if (s->offset != pos || s->table_off != s->offset + SNAP_SECTION_DESC ||
		    s->hash_off != s->table_off + 8 * s->pages ||
		    s->blocks_off != s->hash_off + 8 * s->pages ||
		    s->data_off != s->offset + table_area ||
		    s->size != table_area + s->pages * SNAP_PAGE_SIZE)
			return err_set(err, -EINVAL,
				       "section %u: offsets or size do not match the layout",
				       s->id);
		if (i > 0 && h->order == SNAP_ORDER_SIZE &&
		    (s->pages > h->sections[i - 1].pages ||
		     (s->pages == h->sections[i - 1].pages &&
		      s->region < h->sections[i - 1].region)))
			return err_set(err, -EINVAL, "section %u is out of size order", s->id);
		if (h->order == SNAP_ORDER_REGISTRY && s->region != i)
			return err_set(err, -EINVAL, "section %u is out of registry order", s->id);
		pos += s->size;
		if (pos > h->footer_off)
			return err_set(err, -EINVAL, "section %u runs past the footer", s->id);
	}
	if (pos != h->footer_off)
		return err_set(err, -EINVAL, "the sections do not end at the footer");
	if (!all_zero(buf + H_TABLE + h->nr_sections * H_ENTRY_SIZE,
		      (SNAP_MAX_REGIONS - h->nr_sections) * H_ENTRY_SIZE))
		return err_set(err, -EINVAL, "unused section table entries are not zero");
	return 0;
}

int snap_header_decode(const uint8_t buf[SNAP_HEADER_SIZE], struct snap_header *out,
		       struct error *err)
{
	struct snap_header h;
	uint64_t state_max = SNAP_STATE_FIXED + SNAP_MAX_VCPUS * SNAP_STATE_PER_VCPU;
	uint64_t slot_end;
	unsigned int i;
	int ret;

	ret = check_block(buf, HDR_MAGIC, "header", true, err);
	if (ret) {
		if (ret == -EINVAL && memcmp(buf, HDR_MAGIC, 8))
			return err_set(err, ret, "not a kvmsnap image (bad magic)");
		return ret;
	}
	memset(&h, 0, sizeof(h));
	h.version = get_le32(buf + H_VERSION);
	memcpy(h.uuid, buf + H_UUID, 16);
	h.state = get_le32(buf + H_STATE);
	h.order = get_le32(buf + H_ORDER);
	h.generation = get_le64(buf + H_GENERATION);
	h.created_ns = get_le64(buf + H_CREATED);
	h.started_ns = get_le64(buf + H_STARTED);
	h.completed_ns = get_le64(buf + H_COMPLETED);
	h.image_size = get_le64(buf + H_IMAGE_SIZE);
	h.start_off = get_le64(buf + H_START_OFF);
	h.start_size = get_le64(buf + H_START_SIZE);
	h.state_off = get_le64(buf + H_STATE_OFF);
	h.state_size = get_le64(buf + H_STATE_SIZE);
	h.footer_off = get_le64(buf + H_FOOTER_OFF);
	h.footer_size = get_le64(buf + H_FOOTER_SIZE);
	h.nr_sections = get_le32(buf + H_NR_SECTIONS);
	h.metadata_len = get_le32(buf + H_META_LEN);
	h.state_used = get_le64(buf + H_STATE_USED);
	h.nr_slots = get_le32(buf + H_NR_SLOTS);
	h.slot = get_le32(buf + H_SLOT);
	h.write_id = get_le64(buf + H_WRITE_ID);
	h.flags = get_le32(buf + H_FLAGS);
	for (i = 0; i < SNAP_MAX_SLOTS; i++)
		h.slot_off[i] = get_le64(buf + H_SLOT_OFF + i * 8);

	if (get_le32(buf + H_HDR_SIZE) != SNAP_HEADER_SIZE)
		return err_set(err, -EINVAL, "header size %u is not %llu",
			       get_le32(buf + H_HDR_SIZE), SNAP_HEADER_SIZE);
	if (h.state > SNAP_STATE_COMPLETE)
		return err_set(err, -EINVAL, "unknown image state %u", h.state);
	if (h.flags & ~SNAP_HDR_FLAGS)
		return err_set(err, -EINVAL, "unknown header flags %#x", h.flags & ~SNAP_HDR_FLAGS);
	if ((h.flags & SNAP_HDR_DATA_ZERO) && h.state != SNAP_STATE_EMPTY)
		return err_set(err, -EINVAL, "a slot that is not empty claims to read as zeros");
	if (h.order > SNAP_ORDER_SIZE)
		return err_set(err, -EINVAL, "unknown section order %u", h.order);
	if (h.nr_sections < 1 || h.nr_sections > SNAP_MAX_REGIONS)
		return err_set(err, -EINVAL, "%u sections (must be 1 to %d)", h.nr_sections,
			       SNAP_MAX_REGIONS);
	if (h.metadata_len > SNAP_METADATA_MAX)
		return err_set(err, -EINVAL, "metadata length %u exceeds %d", h.metadata_len,
			       SNAP_METADATA_MAX);
	if (!all_zero(buf + H_RESERVED1, H_TABLE - H_RESERVED1) ||
	    !all_zero(buf + H_RESERVED2, CSUM_OFF - H_RESERVED2))
		return err_set(err, -EINVAL, "reserved header bytes are set");
	if (memchr(buf + H_METADATA, 0, h.metadata_len) ||
	    !all_zero(buf + H_METADATA + h.metadata_len, SNAP_METADATA_MAX - h.metadata_len))
		return err_set(err, -EINVAL, "metadata is not NUL-free text of the given length");
	memcpy(h.metadata, buf + H_METADATA, h.metadata_len);

	/* The slots, the fixed parts of the layout, then the state area, bounded before any sum. */
	if (h.nr_slots < 1 || h.nr_slots > SNAP_MAX_SLOTS || h.slot >= h.nr_slots)
		return err_set(err, -EINVAL, "bad slot %u of %u (an image has 1 or %d slots)",
			       h.slot, h.nr_slots, SNAP_MAX_SLOTS);
	if (h.slot_off[0] != 0)
		return err_set(err, -EINVAL, "slot 0 does not start at offset 0");
	for (i = 1; i < SNAP_MAX_SLOTS; i++)
		if ((i < h.nr_slots) != (h.slot_off[i] != 0) || h.slot_off[i] % SNAP_PAGE_SIZE ||
		    h.slot_off[i] > SNAP_REGION_SIZE_MAX * 64 ||
		    (i < h.nr_slots && h.slot_off[i] <= h.slot_off[i - 1]))
			return err_set(err, -EINVAL, "bad offset of slot %u", i);
	if (h.start_off != SNAP_HEADER_SIZE || h.start_size != SNAP_START_SIZE ||
	    h.state_off != h.slot_off[h.slot] +
			       (h.slot ? SNAP_HEADER_SIZE : SNAP_HEADER_SIZE + SNAP_START_SIZE) ||
	    h.footer_size != SNAP_FOOTER_SIZE)
		return err_set(err, -EINVAL, "header offsets do not match the format's layout");
	if (h.state_size < SNAP_STATE_FIXED + SNAP_STATE_PER_VCPU || h.state_size > state_max ||
	    (h.state_size - SNAP_STATE_FIXED) % SNAP_STATE_PER_VCPU)
		return err_set(err, -EINVAL, "bad VM state area size %llu",
			       (unsigned long long)h.state_size);
	if (h.state_used > h.state_size ||
	    (h.state == SNAP_STATE_COMPLETE && h.state_used < SNAP_STATE_HDR_SIZE))
		return err_set(err, -EINVAL, "bad VM state bytes used %llu",
			       (unsigned long long)h.state_used);
	slot_end = h.slot + 1 < h.nr_slots ? h.slot_off[h.slot + 1] : h.image_size;
	if (h.footer_off % SNAP_PAGE_SIZE || h.footer_off > SNAP_REGION_SIZE_MAX * 64 ||
	    slot_end != h.footer_off + h.footer_size || h.image_size < slot_end)
		return err_set(err, -EINVAL, "bad footer offset or image size");
	ret = decode_sections(buf, &h, err);
	if (ret)
		return ret;
	*out = h;
	return 0;
}

/* ---- VM start section ---- */

void snap_start_encode(const struct snap_config *cfg, uint8_t buf[SNAP_START_SIZE])
{
	uint64_t total = 0;
	unsigned int i, n = cfg->nr_regions <= SNAP_MAX_REGIONS ? cfg->nr_regions : 0;
	size_t pos = S_RAMSTART;

	memset(buf, 0, SNAP_START_SIZE);
	memcpy(buf, START_MAGIC, 8);
	put_le32(buf + S_VERSION, SNAP_FORMAT_VERSION);
	memcpy(buf + S_MACHINE, cfg->machine, strnlen(cfg->machine, sizeof(cfg->machine) - 1));
	put_le32(buf + S_VCPUS, cfg->vcpus);
	put_le64(buf + S_RAM, cfg->ram_size);
	put_le64(buf + S_VRAM, cfg->vram_size);
	put_le32(buf + pos, n);
	pos += 4;
	for (i = 0; i < n; i++) {
		size_t len = strnlen(cfg->regions[i].id, SNAP_REGION_ID_MAX);

		put_le16(buf + pos, (uint16_t)len);
		memcpy(buf + pos + 2, cfg->regions[i].id, len);
		put_le64(buf + pos + 2 + len, cfg->regions[i].size);
		pos += 2 + len + 8;
		total += cfg->regions[i].size;
	}
	put_le64(buf + pos, total);
	pos += 8;
	put_le32(buf + S_USED, (uint32_t)pos);
	put_checksum(buf);
}

/* The RAM start section, every length checked against the bytes used. */
static int decode_ram_start(const uint8_t *buf, uint32_t used, struct snap_config *cfg,
			    struct error *err)
{
	uint64_t total = 0;
	size_t pos = S_RAMSTART;
	unsigned int i;

	if (used < S_RAMSTART + 4 + 8)
		return err_set(err, -EINVAL, "VM start section: %u bytes used is too short", used);
	cfg->nr_regions = get_le32(buf + pos);
	pos += 4;
	if (cfg->nr_regions < 1 || cfg->nr_regions > SNAP_MAX_REGIONS)
		return err_set(err, -EINVAL, "RAM start section: %u regions (must be 1 to %d)",
			       cfg->nr_regions, SNAP_MAX_REGIONS);
	for (i = 0; i < cfg->nr_regions; i++) {
		struct snap_region_desc *r = &cfg->regions[i];
		uint16_t len;

		if (pos + 2 > used)
			return err_set(err, -EINVAL, "RAM start section: region %u is truncated",
				       i);
		len = get_le16(buf + pos);
		if (len < 1 || len > SNAP_REGION_ID_MAX || pos + 2 + len + 8 > used)
			return err_set(err, -EINVAL,
				       "RAM start section: region %u: bad id length %u", i, len);
		memset(r->id, 0, sizeof(r->id));
		memcpy(r->id, buf + pos + 2, len);
		r->size = get_le64(buf + pos + 2 + len);
		pos += 2 + len + 8;
		if (memchr(r->id, 0, len))
			return err_set(err, -EINVAL, "RAM start section: region %u: NUL in its id",
				       i);
		if (r->size > SNAP_REGION_SIZE_MAX)
			return err_set(err, -EINVAL, "RAM start section: region %s is too large",
				       r->id);
		total += r->size;
	}
	if (pos + 8 != used)
		return err_set(err, -EINVAL, "RAM start section: length does not match bytes used");
	if (get_le64(buf + pos) != total)
		return err_set(err, -EINVAL,
			       "RAM start section: total is not the sum of the sizes");
	return 0;
}

int snap_start_decode(const uint8_t buf[SNAP_START_SIZE], struct snap_config *out,
		      struct error *err)
{
	struct snap_config cfg;
	uint32_t used;
	int ret;

	ret = check_block(buf, START_MAGIC, "VM start section", true, err);
	if (ret)
		return ret;
	memset(&cfg, 0, sizeof(cfg));
	used = get_le32(buf + S_USED);
	if (used > CSUM_OFF)
		return err_set(err, -EINVAL, "VM start section: %u bytes used is too long", used);
	if (!name_field_ok(buf + S_MACHINE, sizeof(cfg.machine)))
		return err_set(err, -EINVAL, "VM start section: bad machine type field");
	memcpy(cfg.machine, buf + S_MACHINE, sizeof(cfg.machine));
	cfg.vcpus = get_le32(buf + S_VCPUS);
	cfg.ram_size = get_le64(buf + S_RAM);
	cfg.vram_size = get_le64(buf + S_VRAM);
	if (get_le32(buf + S_RSVD))
		return err_set(err, -EINVAL, "VM start section: reserved bytes are set");
	ret = decode_ram_start(buf, used, &cfg, err);
	if (ret)
		return ret;
	if (!all_zero(buf + used, CSUM_OFF - used))
		return err_set(err, -EINVAL, "VM start section: bytes after the used part are set");
	ret = snap_config_check(&cfg, err);
	if (ret)
		return err_prefix(err, "VM start section");
	*out = cfg;
	return 0;
}

/* ---- footer ---- */

void snap_footer_encode(const struct snap_footer *f, uint8_t buf[SNAP_FOOTER_SIZE])
{
	unsigned int i, n = f->nr_regions <= SNAP_MAX_REGIONS ? f->nr_regions : 0;

	memset(buf, 0, SNAP_FOOTER_SIZE);
	memcpy(buf, FOOTER_MAGIC, 8);
	put_le64(buf + F_GENERATION, f->generation);
	put_le32(buf + F_NR_REGIONS, n);
	put_le32(buf + F_ALGO, f->digest_algo);
	put_le64(buf + F_PAUSE, f->pause_ns);
	put_le32(buf + F_PASSES, f->passes);
	put_le32(buf + F_FLAGS, f->flags);
	put_le64(buf + F_DOWNTIME, f->downtime_us);
	put_le64(buf + F_TOTAL, f->total_us);
	put_le64(buf + F_BYTES, f->bytes_written);
	put_le64(buf + F_WRITE_ID, f->write_id);
	for (i = 0; i < n; i++) {
		put_le64(buf + F_REGIONS + i * 16, f->digest[i]);
		put_le64(buf + F_REGIONS + i * 16 + 8, f->region_size[i]);
	}
	put_checksum(buf);
}

int snap_footer_decode(const uint8_t buf[SNAP_FOOTER_SIZE], struct snap_footer *out,
		       struct error *err)
{
	struct snap_footer f;
	unsigned int i;
	int ret;

	ret = check_block(buf, FOOTER_MAGIC, "footer", false, err);
	if (ret)
		return ret;
	memset(&f, 0, sizeof(f));
	f.generation = get_le64(buf + F_GENERATION);
	f.nr_regions = get_le32(buf + F_NR_REGIONS);
	f.digest_algo = get_le32(buf + F_ALGO);
	f.pause_ns = get_le64(buf + F_PAUSE);
	f.passes = get_le32(buf + F_PASSES);
	f.flags = get_le32(buf + F_FLAGS);
	f.downtime_us = get_le64(buf + F_DOWNTIME);
	f.total_us = get_le64(buf + F_TOTAL);
	f.bytes_written = get_le64(buf + F_BYTES);
	f.write_id = get_le64(buf + F_WRITE_ID);
	if (f.nr_regions < 1 || f.nr_regions > SNAP_MAX_REGIONS)
		return err_set(err, -EINVAL, "footer: %u regions (must be 1 to %d)", f.nr_regions,
			       SNAP_MAX_REGIONS);
	if (f.digest_algo != SNAP_DIGEST_XXH3_TREE)
		return err_set(err, -EINVAL, "footer: unknown digest algorithm %u", f.digest_algo);
	if (f.passes < 1)
		return err_set(err, -EINVAL, "footer: 0 precopy passes");
	if (f.flags & ~SNAP_FOOTER_CONVERGED)
		return err_set(err, -EINVAL, "footer: unknown flags 0x%x", f.flags);
	for (i = 0; i < f.nr_regions; i++) {
		f.digest[i] = get_le64(buf + F_REGIONS + i * 16);
		f.region_size[i] = get_le64(buf + F_REGIONS + i * 16 + 8);
	}
	if (!all_zero(buf + F_REGIONS + f.nr_regions * 16,
		      CSUM_OFF - F_REGIONS - f.nr_regions * 16))
		return err_set(err, -EINVAL, "footer: reserved bytes are set");
	*out = f;
	return 0;
}

/* ---- section descriptor ---- */

void snap_section_desc_encode(const struct snap_section *s, const struct snap_region_desc *r,
			      uint8_t buf[SNAP_SECTION_DESC])
{
	memset(buf, 0, SNAP_SECTION_DESC);
	memcpy(buf, SECTION_MAGIC, 8);
	put_le32(buf + 0x08, s->id);
	put_le32(buf + 0x0c, s->region);
	put_le64(buf + 0x10, s->pages);
	put_le64(buf + 0x18, r->size);
	memcpy(buf + 0x20, r->id, strnlen(r->id, SNAP_REGION_ID_MAX));
}

/* The descriptor has no checksum: it must equal, byte for byte, the one the layout implies. */
int snap_section_desc_check(const uint8_t buf[SNAP_SECTION_DESC], const struct snap_section *s,
			    const struct snap_region_desc *r, struct error *err)
{
	uint8_t want[SNAP_SECTION_DESC];
	unsigned int i;

	snap_section_desc_encode(s, r, want);
	if (memcmp(buf, want, 8))
		return err_set(err, -EINVAL, "section %u (%s): bad descriptor magic", s->id, r->id);
	for (i = 8; i < SNAP_SECTION_DESC; i++)
		if (buf[i] != want[i])
			return err_set(err, -EINVAL,
				       "section %u (%s): descriptor does not match the section "
				       "table (byte %u)",
				       s->id, r->id, i);
	return 0;
}
