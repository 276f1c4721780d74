// SPDX-License-Identifier: GPL-2.0
/*
 * The append stream's two block codecs (append.h; the format is in
 * Documentation/snapshot-format.md, "Append stream (benchmark baseline)").
 * Every field is little-endian at its documented offset; decode checks
 * everything before it fills its output.
 */
#include <errno.h>
#include <string.h>
#include <xxhash.h>

#include "lib/le.h"
#include "snapshot/append.h"

#define CSUM_OFF 0xff8

/* File header offsets. */
#define H_VERSION  0x008
#define H_HDRSIZE  0x00c
#define H_PAGESIZE 0x010
#define H_REGIONS  0x014
#define H_STARTED  0x018
#define H_MACHINE  0x020
#define H_VCPUS	   0x040
#define H_RAM	   0x048
#define H_VRAM	   0x050
#define H_TABLE	   0x080
#define H_ENTRY	   48

/* Chunk header offsets. */
#define C_TYPE	  0x008
#define C_RUNS	  0x00c
#define C_SEQ	  0x010
#define C_PAYLOAD 0x018
#define C_PASS	  0x020
#define C_A	  0x028 /* STATE: bytes used; END: data pages */
#define C_B	  0x030 /* END: zero pages */
#define C_C	  0x038 /* END: where END begins */
/* END body, from SNAP_APPEND_RUNS_OFF. */
#define E_PASSES   0x040
#define E_FLAGS	   0x044
#define E_DOWNTIME 0x048
#define E_PAUSE	   0x050
#define E_ALGO	   0x058
#define E_DIGESTS  0x060

static bool zero_bytes(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* A NUL-padded string field: a NUL, and only NULs after it. */
static bool padded_ok(const uint8_t *p, size_t n)
{
	const uint8_t *nul = memchr(p, 0, n);

	return nul && zero_bytes(nul, n - (size_t)(nul - p));
}

static void put_csum(uint8_t *buf)
{
	put_le64(buf + CSUM_OFF, XXH3_64bits(buf, CSUM_OFF));
}

static bool csum_ok(const uint8_t *buf)
{
	return get_le64(buf + CSUM_OFF) == XXH3_64bits(buf, CSUM_OFF);
}

void snap_append_header_encode(const struct snap_append_header *h,
			       uint8_t buf[SNAP_APPEND_HDR_SIZE])
{
	const struct snap_config *cfg = &h->cfg;
	unsigned int r;

	memset(buf, 0, SNAP_APPEND_HDR_SIZE);
	memcpy(buf, SNAP_APPEND_MAGIC, 8);
	put_le32(buf + H_VERSION, SNAP_APPEND_VERSION);
	put_le32(buf + H_HDRSIZE, SNAP_APPEND_HDR_SIZE);
	put_le32(buf + H_PAGESIZE, SNAP_PAGE_SIZE);
	put_le32(buf + H_REGIONS, cfg->nr_regions);
	put_le64(buf + H_STARTED, h->started_ns);
	memcpy(buf + H_MACHINE, cfg->machine, strnlen(cfg->machine, sizeof(cfg->machine)));
	put_le32(buf + H_VCPUS, cfg->vcpus);
	put_le64(buf + H_RAM, cfg->ram_size);
	put_le64(buf + H_VRAM, cfg->vram_size);
	for (r = 0; r < cfg->nr_regions && r < SNAP_MAX_REGIONS; r++) {
		uint8_t *e = buf + H_TABLE + r * H_ENTRY;

		memcpy(e, cfg->regions[r].id, strnlen(cfg->regions[r].id, SNAP_REGION_ID_MAX));
		put_le64(e + 32, cfg->regions[r].size);
	}
	put_csum(buf);
}

int snap_append_header_decode(const uint8_t buf[SNAP_APPEND_HDR_SIZE], struct snap_append_header *h,
			      struct error *err)
{
	struct snap_config *cfg = &h->cfg;
	struct error why;
	uint32_t v, n;
	unsigned int r;
	int ret;

	memset(h, 0, sizeof(*h));
	if (memcmp(buf, SNAP_APPEND_MAGIC, 8))
		return err_set(err, -EPROTO, "not an append stream (bad magic)");
	if (!csum_ok(buf))
		return err_set(err, -EPROTO, "file header: checksum mismatch");
	v = get_le32(buf + H_VERSION);
	if (v != SNAP_APPEND_VERSION)
		return err_set(err, -EPROTO, "file header: version %u, this kvmsnap reads %u", v,
			       SNAP_APPEND_VERSION);
	if (get_le32(buf + H_HDRSIZE) != SNAP_APPEND_HDR_SIZE ||
	    get_le32(buf + H_PAGESIZE) != SNAP_PAGE_SIZE)
		return err_set(err, -EPROTO,
			       "file header: header size %u, page size %u (want 4096)",
			       get_le32(buf + H_HDRSIZE), get_le32(buf + H_PAGESIZE));
	n = get_le32(buf + H_REGIONS);
	if (n < 1 || n > SNAP_MAX_REGIONS)
		return err_set(err, -EPROTO, "file header: %u regions (1 to %d)", n,
			       SNAP_MAX_REGIONS);
	if (!zero_bytes(buf + H_VCPUS + 4, 4) ||
	    !zero_bytes(buf + H_VRAM + 8, H_TABLE - H_VRAM - 8) ||
	    !zero_bytes(buf + H_TABLE + n * H_ENTRY, CSUM_OFF - H_TABLE - n * H_ENTRY))
		return err_set(err, -EPROTO, "file header: reserved bytes are not zero");
	if (!padded_ok(buf + H_MACHINE, 32))
		return err_set(err, -EPROTO, "file header: bad machine type field");
	h->version = v;
	h->started_ns = get_le64(buf + H_STARTED);
	memcpy(cfg->machine, buf + H_MACHINE, sizeof(cfg->machine));
	cfg->vcpus = get_le32(buf + H_VCPUS);
	cfg->ram_size = get_le64(buf + H_RAM);
	cfg->vram_size = get_le64(buf + H_VRAM);
	cfg->nr_regions = n;
	for (r = 0; r < n; r++) {
		const uint8_t *e = buf + H_TABLE + r * H_ENTRY;

		if (!padded_ok(e, 32) || !zero_bytes(e + 40, 8))
			return err_set(err, -EPROTO, "file header: region %u: bad entry", r);
		memcpy(cfg->regions[r].id, e, sizeof(cfg->regions[r].id));
		cfg->regions[r].size = get_le64(e + 32);
	}
	/* The config's own checks, as a format error. */
	ret = snap_config_check(cfg, &why);
	return ret ? err_set(err, -EPROTO, "file header: %s", why.msg) : 0;
}

void snap_append_chunk_encode(const struct snap_append_chunk *c, unsigned int nr_regions,
			      uint8_t buf[SNAP_APPEND_HDR_SIZE])
{
	unsigned int i;

	memset(buf, 0, SNAP_APPEND_HDR_SIZE);
	memcpy(buf, SNAP_APPEND_CHUNK_MAGIC, 8);
	put_le32(buf + C_TYPE, c->type);
	put_le64(buf + C_SEQ, c->seq);
	put_le64(buf + C_PAYLOAD, c->payload);
	if (c->type == SNAP_APPEND_PAGES) {
		put_le32(buf + C_RUNS, c->nr_runs);
		put_le32(buf + C_PASS, c->pass);
		for (i = 0; i < c->nr_runs && i < SNAP_APPEND_MAX_RUNS; i++) {
			uint8_t *e = buf + SNAP_APPEND_RUNS_OFF + i * SNAP_APPEND_RUN_SIZE;

			put_le64(e, c->runs[i].first);
			put_le32(e + 8, c->runs[i].count);
			put_le16(e + 12, c->runs[i].region);
			put_le16(e + 14, c->runs[i].flags);
		}
	} else if (c->type == SNAP_APPEND_STATE) {
		put_le64(buf + C_A, c->state_used);
	} else if (c->type == SNAP_APPEND_END) {
		const struct snap_append_end *e = &c->end;

		put_le64(buf + C_A, e->data_pages);
		put_le64(buf + C_B, e->zero_pages);
		put_le64(buf + C_C, e->end_off);
		put_le32(buf + E_PASSES, e->passes);
		put_le32(buf + E_FLAGS, e->flags);
		put_le64(buf + E_DOWNTIME, e->downtime_us);
		put_le64(buf + E_PAUSE, e->pause_ns);
		put_le32(buf + E_ALGO, e->digest_algo);
		for (i = 0; i < nr_regions && i < SNAP_MAX_REGIONS; i++)
			put_le64(buf + E_DIGESTS + i * 8, e->digest[i]);
	}
	put_csum(buf);
}

/* PAGES: every run inside its region, the payload exactly the data runs' pages. */
static int decode_runs(const uint8_t *buf, const struct snap_config *cfg,
		       struct snap_append_chunk *c, struct error *err)
{
	uint64_t data = 0;
	unsigned int i;

	if (c->nr_runs < 1 || c->nr_runs > SNAP_APPEND_MAX_RUNS)
		return err_set(err, -EPROTO, "chunk %llu: %u runs (1 to %d)",
			       (unsigned long long)c->seq, c->nr_runs, (int)SNAP_APPEND_MAX_RUNS);
	if (c->pass < 1 || c->pass > SNAP_MAX_PASSES)
		return err_set(err, -EPROTO, "chunk %llu: pass %u", (unsigned long long)c->seq,
			       c->pass);
	for (i = 0; i < c->nr_runs; i++) {
		const uint8_t *e = buf + SNAP_APPEND_RUNS_OFF + i * SNAP_APPEND_RUN_SIZE;
		struct snap_append_run *run = &c->runs[i];
		uint64_t pages;

		run->first = get_le64(e);
		run->count = get_le32(e + 8);
		run->region = get_le16(e + 12);
		run->flags = get_le16(e + 14);
		if (run->region >= cfg->nr_regions)
			return err_set(err, -EPROTO, "chunk %llu, run %u: region %u of %u",
				       (unsigned long long)c->seq, i, run->region, cfg->nr_regions);
		pages = cfg->regions[run->region].size / SNAP_PAGE_SIZE;
		/* Compared without adding: first + count cannot overflow here. */
		if (!run->count || run->first > pages || run->count > pages - run->first)
			return err_set(err, -EPROTO,
				       "chunk %llu, run %u: pages %llu+%u outside region %s (%llu "
				       "pages)",
				       (unsigned long long)c->seq, i,
				       (unsigned long long)run->first, run->count,
				       cfg->regions[run->region].id, (unsigned long long)pages);
		if (run->flags & ~SNAP_APPEND_RUN_ZERO)
			return err_set(err, -EPROTO, "chunk %llu, run %u: unknown flags %#x",
				       (unsigned long long)c->seq, i, run->flags);
		if (!(run->flags & SNAP_APPEND_RUN_ZERO))
			data += run->count;
	}
	if (!zero_bytes(buf + SNAP_APPEND_RUNS_OFF + c->nr_runs * SNAP_APPEND_RUN_SIZE,
			CSUM_OFF - SNAP_APPEND_RUNS_OFF - c->nr_runs * SNAP_APPEND_RUN_SIZE))
		return err_set(err, -EPROTO, "chunk %llu: bytes after its runs are not zero",
			       (unsigned long long)c->seq);
	if (c->payload != data * SNAP_PAGE_SIZE)
		return err_set(err, -EPROTO, "chunk %llu: payload %llu bytes, its runs hold %llu",
			       (unsigned long long)c->seq, (unsigned long long)c->payload,
			       (unsigned long long)(data * SNAP_PAGE_SIZE));
	return 0;
}

static int decode_end(const uint8_t *buf, const struct snap_config *cfg,
		      struct snap_append_chunk *c, struct error *err)
{
	struct snap_append_end *e = &c->end;
	unsigned int i;

	e->data_pages = get_le64(buf + C_A);
	e->zero_pages = get_le64(buf + C_B);
	e->end_off = get_le64(buf + C_C);
	e->passes = get_le32(buf + E_PASSES);
	e->flags = get_le32(buf + E_FLAGS);
	e->downtime_us = get_le64(buf + E_DOWNTIME);
	e->pause_ns = get_le64(buf + E_PAUSE);
	e->digest_algo = get_le32(buf + E_ALGO);
	if (c->nr_runs || c->payload || c->pass)
		return err_set(err, -EPROTO, "end chunk: runs, payload or pass not zero");
	if (e->passes < 1 || e->passes > SNAP_MAX_PASSES || e->flags & ~1u)
		return err_set(err, -EPROTO, "end chunk: %u passes, flags %#x", e->passes,
			       e->flags);
	if (e->digest_algo != SNAP_DIGEST_XXH3_TREE)
		return err_set(err, -EPROTO, "end chunk: digest algorithm %u (want %u)",
			       e->digest_algo, SNAP_DIGEST_XXH3_TREE);
	for (i = 0; i < cfg->nr_regions; i++)
		e->digest[i] = get_le64(buf + E_DIGESTS + i * 8);
	if (!zero_bytes(buf + E_ALGO + 4, 4) ||
	    !zero_bytes(buf + E_DIGESTS + cfg->nr_regions * 8,
			CSUM_OFF - E_DIGESTS - cfg->nr_regions * 8))
		return err_set(err, -EPROTO, "end chunk: reserved bytes are not zero");
	return 0;
}

int snap_append_chunk_decode(const uint8_t buf[SNAP_APPEND_HDR_SIZE], const struct snap_config *cfg,
			     struct snap_append_chunk *c, struct error *err)
{
	memset(c, 0, sizeof(*c));
	if (memcmp(buf, SNAP_APPEND_CHUNK_MAGIC, 8))
		return err_set(err, -EPROTO, "not a chunk header (bad magic)");
	if (!csum_ok(buf))
		return err_set(err, -EPROTO, "chunk header: checksum mismatch");
	c->type = get_le32(buf + C_TYPE);
	c->nr_runs = get_le32(buf + C_RUNS);
	c->seq = get_le64(buf + C_SEQ);
	c->payload = get_le64(buf + C_PAYLOAD);
	c->pass = get_le32(buf + C_PASS);
	if (!zero_bytes(buf + C_PASS + 4, 4))
		return err_set(err, -EPROTO, "chunk %llu: reserved bytes are not zero",
			       (unsigned long long)c->seq);
	if (c->payload % SNAP_PAGE_SIZE)
		return err_set(err, -EPROTO, "chunk %llu: payload %llu is not a multiple of 4096",
			       (unsigned long long)c->seq, (unsigned long long)c->payload);
	switch (c->type) {
	case SNAP_APPEND_PAGES:
		if (!zero_bytes(buf + C_A, SNAP_APPEND_RUNS_OFF - C_A))
			return err_set(err, -EPROTO, "chunk %llu: reserved bytes are not zero",
				       (unsigned long long)c->seq);
		return decode_runs(buf, cfg, c, err);
	case SNAP_APPEND_STATE:
		c->state_used = get_le64(buf + C_A);
		if (c->nr_runs || c->pass || !zero_bytes(buf + C_B, CSUM_OFF - C_B))
			return err_set(err, -EPROTO, "state chunk: reserved bytes are not zero");
		if (!c->state_used || c->state_used > SNAP_APPEND_STATE_MAX ||
		    c->payload != ALIGN_UP(c->state_used, SNAP_PAGE_SIZE))
			return err_set(
			    err, -EPROTO,
			    "state chunk: %llu bytes in a payload of %llu (at most %llu)",
			    (unsigned long long)c->state_used, (unsigned long long)c->payload,
			    (unsigned long long)SNAP_APPEND_STATE_MAX);
		return 0;
	case SNAP_APPEND_END:
		return decode_end(buf, cfg, c, err);
	default:
		return err_set(err, -EPROTO, "chunk %llu: unknown type %u",
			       (unsigned long long)c->seq, c->type);
	}
}
