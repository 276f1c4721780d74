// SPDX-License-Identifier: GPL-2.0
/*
 * Verify an image: its state, footer, state area and every page header, and
 * with deep, every region digest recomputed from the data areas. Page header
 * tables and data areas are read in large chunks: an image can hold millions
 * of pages.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/image.h"
#include "lib/le.h"
#include "snapshot/state.h"

#define CHUNK (8u << 20)
/* Pages per deep-verify chunk: whole digest blocks, and room for their tables in the buffer. */
#define CHUNK_PAGES (CHUNK / (SNAP_PAGE_SIZE + 16) / SNAP_HASH_BLOCK_PAGES * SNAP_HASH_BLOCK_PAGES)

struct vctx {
	struct snap_image *img;
	struct snap_verify_result *res;
	struct error *err;
	int ret; /* the first problem; later ones only count */
	uint8_t *buf;
	struct snap_footer footer;
};

#define problem(v, code, fmt, ...)                                                           \
	do {                                                                                 \
		if (!(v)->ret)                                                               \
			(v)->ret = err_set((v)->err, code, "image %s: " fmt, (v)->img->path, \
					   ##__VA_ARGS__);                                   \
	} while (0)

static bool all_zero(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* The state area's own checksum, its length against the header's, and every record. */
static int check_state(struct vctx *v, const uint8_t *buf)
{
	struct snap_state_reader r;
	struct snap_state_record rec;
	int ret;

	ret = snap_state_open(&r, buf, v->img->hdr.state_used, v->err);
	if (!ret && r.used != v->img->hdr.state_used)
		ret =
		    err_set(v->err, -EINVAL, "VM state area: %zu bytes used, the header says %llu",
			    r.used, (unsigned long long)v->img->hdr.state_used);
	while (!ret && (ret = snap_state_next(&r, &rec, v->err)) > 0)
		ret = 0;
	return ret;
}

static int read_state(struct vctx *v)
{
	const struct snap_header *h = &v->img->hdr;
	uint8_t *buf = malloc(h->state_used);
	int ret;

	if (!buf)
		return err_set(v->err, -ENOMEM, "out of memory for the VM state");
	ret = snap_image_pread(v->img, buf, h->state_used, h->state_off, v->err);
	if (!ret) {
		ret = check_state(v, buf);
		/* Each of check_state()'s messages names the VM state area itself. */
		if (ret)
			err_prefix(v->err, "image %s", v->img->path);
	}
	free(buf);
	return ret;
}

/*
 * One 8-byte word of a section's table area, at area offset o (o >= the
 * descriptor): a page header, a page or block digest (checked by deep; zero
 * in an empty slot), or padding.
 */
static void check_word(struct vctx *v, const struct snap_section *s, uint64_t o, uint64_t word)
{
	const char *id = v->img->cfg.regions[s->region].id;
	uint64_t i = (o - SNAP_SECTION_DESC) / 8, want;
	uint64_t tables = 2 * s->pages + snap_hash_blocks(s->pages);

	if (i >= s->pages) {
		if (word && (i >= tables || !v->res->complete))
			problem(v, -EINVAL, "section %u (%s): %s is set", s->id, id,
				i >= tables ? "padding after the digest tables"
					    : "a digest table entry of an empty slot");
		return;
	}
	want = v->res->complete ? snap_page_hdr(i, SNAP_PAGE_PRESENT) : 0;
	if (word == want)
		return;
	v->res->bad_page_headers++;
	problem(v, -EINVAL, "section %u (%s): page header %llu is 0x%llx, expected 0x%llx", s->id,
		id, (unsigned long long)i, (unsigned long long)word, (unsigned long long)want);
}

/* Descriptor, page header table and padding, [offset, data_off). */
static int check_headers(struct vctx *v, const struct snap_section *s)
{
	uint64_t area = s->data_off - s->offset, pos, o;
	int ret;

	for (pos = 0; pos < area; pos += CHUNK) {
		size_t n = area - pos < CHUNK ? (size_t)(area - pos) : CHUNK;

		ret = snap_image_pread(v->img, v->buf, n, s->offset + pos, v->err);
		if (ret)
			return ret;
		o = pos;
		if (pos == 0) {
			ret = snap_section_desc_check(v->buf, s, &v->img->cfg.regions[s->region],
						      v->err);
			if (ret && !v->ret)
				v->ret = err_prefix(v->err, "image %s", v->img->path);
			o = SNAP_SECTION_DESC;
		}
		/* CHUNK and the descriptor are multiples of 8: no word straddles a chunk. */
		for (; o < pos + n; o += 8)
			check_word(v, s, o, get_le64(v->buf + (o - pos)));
	}
	v->res->pages_checked += s->pages;
	return 0;
}

/* Pages [first, first + n) of a section: data, page digests and their block digests. */
static int check_digest_chunk(struct vctx *v, const struct snap_section *s, uint64_t first,
			      uint64_t n, uint64_t *hashes, struct snap_digest_stream *ds)
{
	const char *id = v->img->cfg.regions[s->region].id;
	uint64_t nb = snap_hash_blocks(n), i, b, h;
	uint8_t *table = v->buf + n * SNAP_PAGE_SIZE, *blocks = table + n * 8;
	int ret;

	ret = snap_image_pread(v->img, v->buf, n * SNAP_PAGE_SIZE,
			       s->data_off + first * SNAP_PAGE_SIZE, v->err);
	if (!ret)
		ret = snap_image_pread(v->img, table, n * 8, s->hash_off + first * 8, v->err);
	if (!ret)
		ret = snap_image_pread(v->img, blocks, nb * 8,
				       s->blocks_off + first / SNAP_HASH_BLOCK_PAGES * 8, v->err);
	if (ret)
		return ret;
	for (i = 0; i < n; i++) {
		hashes[i] = snap_page_hash(v->buf + i * SNAP_PAGE_SIZE);
		if (hashes[i] == get_le64(table + i * 8))
			continue;
		v->res->bad_page_digests++;
		problem(v, -EBADMSG,
			"region %s: page %llu does not match its digest (data %016llx, table "
			"%016llx)",
			id, (unsigned long long)(first + i), (unsigned long long)hashes[i],
			(unsigned long long)get_le64(table + i * 8));
	}
	for (b = 0; b < nb; b++) {
		uint64_t k = MIN(SNAP_HASH_BLOCK_PAGES, n - b * SNAP_HASH_BLOCK_PAGES);

		h = snap_digest_u64s(hashes + b * SNAP_HASH_BLOCK_PAGES, k);
		if (h == get_le64(blocks + b * 8))
			continue;
		v->res->bad_digests++;
		problem(v, -EBADMSG, "region %s: block digest %llu does not match its pages", id,
			(unsigned long long)(first / SNAP_HASH_BLOCK_PAGES + b));
	}
	snap_digest_add_hashes(ds, hashes, n);
	return 0;
}

/* The region digest from the data, and on the way every digest table entry. */
static int check_digest(struct vctx *v, const struct snap_section *s)
{
	const char *id = v->img->cfg.regions[s->region].id;
	uint64_t per_chunk = CHUNK_PAGES, first, n, d;
	struct snap_digest_stream ds;
	uint64_t *hashes = malloc(per_chunk * 8);
	int ret = 0;

	if (!hashes || snap_digest_begin(&ds)) {
		free(hashes);
		return err_set(v->err, -ENOMEM, "out of memory for a digest");
	}
	for (first = 0; first < s->pages && !ret; first += n) {
		n = MIN(s->pages - first, per_chunk);
		ret = check_digest_chunk(v, s, first, n, hashes, &ds);
	}
	d = snap_digest_end(&ds);
	free(hashes);
	if (ret)
		return ret;
	if (d != v->footer.digest[s->region]) {
		v->res->bad_digests++;
		problem(v, -EBADMSG, "region %s: digest mismatch (data %016llx, footer %016llx)",
			id, (unsigned long long)d, (unsigned long long)v->footer.digest[s->region]);
	}
	return 0;
}

/* The parts outside the sections: footer and state area for complete, zeros for empty. */
static int check_fixed(struct vctx *v)
{
	struct snap_image *img = v->img;
	int ret;

	if (!v->res->complete) {
		ret =
		    snap_image_pread(img, v->buf, SNAP_FOOTER_SIZE, img->layout.footer_off, v->err);
		if (ret)
			return ret;
		if (!all_zero(v->buf, SNAP_FOOTER_SIZE))
			problem(v, -EINVAL, "the footer of an empty image is not zero");
		if (img->hdr.state_used)
			problem(v, -EINVAL, "an empty image records VM state bytes");
		return 0;
	}
	ret = snap_image_read_footer(img, &v->footer, v->err);
	if (ret)
		return ret;
	v->res->footer_ok = true;
	ret = read_state(v);
	if (ret)
		return ret;
	v->res->state_ok = true;
	return 0;
}

int snap_image_verify(struct snap_image *img, bool deep, struct snap_verify_result *res,
		      struct error *err)
{
	struct vctx v = {.img = img, .res = res, .err = err};
	const struct snap_layout *l = &img->layout;
	unsigned int k;
	int ret;

	memset(res, 0, sizeof(*res));
	if (img->hdr.state == SNAP_STATE_WRITING)
		return err_set(err, -EINVAL,
			       "image %s: %s is 'writing': the snapshot of generation %llu was "
			       "interrupted",
			       img->path, snap_image_slot_name(img),
			       (unsigned long long)img->hdr.generation);
	res->complete = img->hdr.state == SNAP_STATE_COMPLETE;
	v.buf = aligned_alloc(SNAP_PAGE_SIZE, CHUNK);
	if (!v.buf)
		return err_set(err, -ENOMEM, "out of memory for verify");
	ret = check_fixed(&v);
	for (k = 0; !ret && k < l->nr_sections; k++)
		ret = check_headers(&v, &l->sections[k]);
	if (!ret && deep && res->complete) {
		for (k = 0; !ret && k < l->nr_sections; k++)
			ret = check_digest(&v, &l->sections[k]);
		res->digests_checked = !ret;
	}
	free(v.buf);
	return ret ? ret : v.ret;
}
