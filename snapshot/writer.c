// SPDX-License-Identifier: GPL-2.0
/*
 * The image writer (Documentation/design.md, "Live snapshot"): the precopy
 * engine (precopy.c) with a sink that writes each page over its fixed slot
 * of the selected image slot.
 *
 *  1. header -> writing, next generation, new write id, durable
 *  2. the engine: log on; full: every section's descriptor and page header
 *     table, pass 1 every page; incremental: pass 1 only the pages the VM
 *     tracked since the slot's last snapshot; dirty passes; the final pause
 *     (state saved); resume
 *  3. the state area, the digest tables of the pages written, the footer;
 *     durable; header -> complete, durable
 *
 * The VM runs during everything but the engine's pause. Any failure leaves
 * the header `writing`, and the engine has resumed the VM and stopped logging.
 *
 * Digests stay exact at a cost proportional to the pages written: each
 * written page's hash is kept; at the end only the digest table blocks
 * (SNAP_HASH_BLOCK_PAGES pages each) that hold a written page are read,
 * merged, rehashed and written back, and the region digest is rehashed
 * from the block digest table (8 bytes per 2 MiB of guest memory).
 */
#include "snapshot/writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <xxhash.h>

#include "lib/align.h"
#include "snapshot/clock.h"
#include "lib/le.h"
#include "snapshot/bitmap.h"
#include "snapshot/combine.h"
#include "snapshot/hashq.h"
#include "snapshot/ioq.h"
#include "snapshot/precopy.h"

#define CHUNK_BYTES (1ULL << 20) /* largest single write (ioq.h: what is in flight) */
#define ZERO_BYTES  (8ULL << 20)
/* A hole this small between two runs goes out as zeros inside their write. */
#define HOLE_COMBINE_PAGES 64

/* The image sink: slots, and the per-page hashes the footer's digests come from. */
struct wctx {
	struct snap_image *img;
	const struct snap_config *cfg;
	const char *metadata;
	struct snap_report *rep;
	uint64_t *hashes[SNAP_MAX_REGIONS];  /* per-page XXH3 of what was written */
	uint64_t *written[SNAP_MAX_REGIONS]; /* bitmap: pages written by this snapshot */
	uint64_t *blocks[SNAP_MAX_REGIONS];  /* block digests */
	bool incremental;
	const uint8_t *zeros; /* ZERO_BYTES of zeros: what holes are */
	uint64_t zero_hash;
	/*
	 * Full snapshot over a complete one: that snapshot's page hashes,
	 * which its slots' data matches (NULL: nothing known of the slot);
	 * slot_zeroed: a new image's slot, every page zero. A hole whose slot
	 * already holds zeros needs no write.
	 */
	bool slot_complete, slot_zeroed;
	uint64_t *prev[SNAP_MAX_REGIONS];
	struct snap_ioq ioq;	  /* writes in flight */
	struct snap_combine comb; /* contiguous slots from scattered buffers: one write */
	struct snap_hashq *hq;	  /* their page hashes, on worker threads */
	unsigned int hash_threads;
	uint64_t t0;
};

static uint64_t region_pages(const struct snap_config *cfg, unsigned int r)
{
	return cfg->regions[r].size / SNAP_PAGE_SIZE;
}

/*
 * Whether page needs hashing: every page of a plain write (dirty NULL); in
 * a merged run, a page that changed or that this snapshot has not written.
 */
static bool stale_hash(const struct wctx *w, unsigned int r, const uint64_t *dirty, uint64_t page)
{
	return !dirty || snap_bitmap_test(dirty, page) || !snap_bitmap_test(w->written[r], page);
}

/*
 * Pages [first, first + n) of region r from src into their slots, and the
 * stale ones (stale_hash()) hashed. A clean page of a merged run holds what
 * its last write in this snapshot took, so its hash stands; or the guest
 * wrote it since, and the next fetch reports it, to be written and hashed
 * again. Hashing only the dirty pages saved two thirds of the hashing of
 * pass 2 (9,600 dirty pages in 26,500 written, 1 GiB guest at 50 pages/ms).
 */
static int write_pages(struct wctx *w, unsigned int r, uint64_t first, uint64_t n,
		       const uint8_t *src, const uint64_t *dirty, struct error *err)
{
	const struct snap_section *s = snap_layout_section(&w->img->layout, r);
	uint64_t done, cnt, p, q;
	int ret;

	for (done = 0; done < n; done += cnt) {
		cnt = MIN(n - done, CHUNK_BYTES / SNAP_PAGE_SIZE);
		ret = snap_combine_add(&w->comb, src + done * SNAP_PAGE_SIZE, cnt * SNAP_PAGE_SIZE,
				       s->data_off + (first + done) * SNAP_PAGE_SIZE, err);
		if (ret)
			return ret;
		/* Before written[] is set: a page not written yet needs its hash. */
		for (p = first + done; p < first + done + cnt; p = q) {
			bool stale = stale_hash(w, r, dirty, p);

			for (q = p + 1;
			     q < first + done + cnt && stale_hash(w, r, dirty, q) == stale; q++)
				;
			if (stale)
				snap_hashq_submit(w->hq, src + (p - first) * SNAP_PAGE_SIZE, q - p,
						  w->hashes[r] + p);
		}
		snap_bitmap_set_range(w->written[r], first + done, cnt);
	}
	return 0;
}

/* Sink: pages [first, first + n) of region r from src into their slots, hashed. */
static int sink_write(void *ctx, unsigned int r, uint64_t first, uint64_t n, const uint8_t *src,
		      struct error *err)
{
	return write_pages(ctx, r, first, n, src, NULL, err);
}

/* Sink: a merged run, of which only the pages set in dirty changed (write_pages()). */
static int sink_write_merged(void *ctx, unsigned int r, uint64_t first, uint64_t n,
			     const uint8_t *src, const uint64_t *dirty, struct error *err)
{
	return write_pages(ctx, r, first, n, src, dirty, err);
}

/* Zeros over the slots of pages [first, first + n) of region r. */
static int write_zeros(struct wctx *w, unsigned int r, uint64_t first, uint64_t n,
		       struct error *err)
{
	const struct snap_section *s = snap_layout_section(&w->img->layout, r);
	uint64_t done = 0, i;
	int ret;

	while (done < n) {
		uint64_t cnt = MIN(n - done, ZERO_BYTES / SNAP_PAGE_SIZE);

		ret = snap_combine_add(&w->comb, w->zeros, cnt * SNAP_PAGE_SIZE,
				       s->data_off + (first + done) * SNAP_PAGE_SIZE, err);
		if (ret)
			return ret;
		for (i = 0; i < cnt; i++)
			w->hashes[r][first + done + i] = w->zero_hash;
		snap_bitmap_set_range(w->written[r], first + done, cnt);
		done += cnt;
	}
	return 0;
}

/*
 * Does the slot of page hold zeros? What this snapshot wrote there, in an
 * earlier pass (whose hashes are in), else what the slot held before it.
 */
static bool slot_is_zero(const struct wctx *w, unsigned int r, uint64_t page)
{
	if (snap_bitmap_test(w->written[r], page))
		return w->hashes[r][page] == w->zero_hash;
	return w->slot_zeroed || (w->prev[r] && w->prev[r][page] == w->zero_hash);
}

/*
 * Sink: pages [first, first + n) of region r are zero (holes). Write zeros
 * over the slots that may hold anything else; a slot that the last
 * complete snapshot left zero keeps its zeros and its hash.
 */
static int sink_zeros(void *ctx, unsigned int r, uint64_t first, uint64_t n, struct error *err)
{
	struct wctx *w = ctx;
	const struct snap_section *s = snap_layout_section(&w->img->layout, r);
	uint64_t end = first + n, p = first, q, skipped = 0;
	int ret = 0;

	/* Between two runs: its zeros cost less inside their write than a write apart. */
	if (n <= HOLE_COMBINE_PAGES && w->comb.nr &&
	    w->comb.off + w->comb.len == s->data_off + first * SNAP_PAGE_SIZE)
		return write_zeros(w, r, first, n, err);

	while (p < end && !ret) {
		for (q = p; q < end && slot_is_zero(w, r, q); q++)
			w->hashes[r][q] = w->zero_hash;
		snap_bitmap_set_range(w->written[r], p, q - p);
		skipped += q - p;
		for (p = q; q < end && !slot_is_zero(w, r, q); q++)
			;
		if (q > p)
			ret = write_zeros(w, r, p, q - p, err);
		p = q;
	}
	/* The engine counted them as handed over: they were not written. */
	w->rep->bytes_written -= skipped * SNAP_PAGE_SIZE;
	w->rep->zero_pages_kept += skipped;
	return ret;
}

/* A pass ends: its writes have landed and their hashes are in place. */
static int sink_drain(void *ctx, struct error *err)
{
	struct wctx *w = ctx;
	struct error e2;
	int ret = snap_combine_flush(&w->comb, err), ret2;

	/* Drained whatever happened: nothing may refer to guest memory after this. */
	snap_hashq_wait(w->hq);
	ret2 = snap_ioq_drain(&w->ioq, ret ? &e2 : err);
	snap_combine_reset(&w->comb);
	return ret ? ret : ret2;
}

/*
 * The descriptor and page header table of a section: every page present.
 * Over a complete snapshot of the same layout, the table holds that
 * already (restore and verify check it): only the descriptor's block is
 * written. Building and writing the whole front of a 1 GiB section (4 MiB
 * with the digest tables, which the footer writes anyway) took 4-5 ms
 * before pass 1 could start.
 */
static int write_page_headers(struct wctx *w, unsigned int r, struct error *err)
{
	const struct snap_section *s = snap_layout_section(&w->img->layout, r);
	uint64_t len = w->slot_complete ? SNAP_PAGE_SIZE : s->data_off - s->offset, i;
	uint8_t *buf =
	    aligned_alloc(SNAP_PAGE_SIZE, len); /* aligned: no bounce copy with O_DIRECT */
	int ret;

	if (!buf)
		return err_set(err, -ENOMEM, "out of memory for page headers");
	memset(buf, 0, len);
	snap_section_desc_encode(s, &w->cfg->regions[r], buf);
	for (i = 0; i < s->pages && SNAP_SECTION_DESC + (i + 1) * 8 <= len; i++)
		put_le64(buf + SNAP_SECTION_DESC + i * 8, snap_page_hdr(i, SNAP_PAGE_PRESENT));
	ret = snap_image_pwrite(w->img, buf, len, s->offset, err);
	free(buf);
	return ret;
}

/* Incremental: the block digests of the slot's last snapshot, which the unwritten pages keep. */
static int read_block_digests(struct wctx *w, unsigned int r, struct error *err)
{
	const struct snap_section *s = snap_layout_section(&w->img->layout, r);

	return snap_image_read_u64s(w->img, w->blocks[r], snap_hash_blocks(s->pages), s->blocks_off,
				    err);
}

/* Full, over a complete snapshot: its page hashes of region r (what the slots hold). */
static int read_prev_hashes(struct wctx *w, unsigned int r, struct error *err)
{
	const struct snap_section *s = snap_layout_section(&w->img->layout, r);

	w->prev[r] = malloc(s->pages * sizeof(uint64_t));
	if (!w->prev[r])
		return err_set(err, -ENOMEM, "out of memory for page hashes");
	return snap_image_read_u64s(w->img, w->prev[r], s->pages, s->hash_off, err);
}

/* Sink: logging is on, pass 1 is next. */
static int sink_start(void *ctx, bool incremental, struct error *err)
{
	struct wctx *w = ctx;
	const struct snap_layout *l = &w->img->layout;
	unsigned int k;
	int ret = 0;

	w->incremental = incremental;
	for (k = 0; !ret && k < l->nr_sections; k++) {
		unsigned int r = l->sections[k].region;

		if (incremental)
			ret = read_block_digests(w, r, err);
		else if (w->slot_complete)
			ret = read_prev_hashes(w, r, err);
		if (!ret && !incremental)
			ret = write_page_headers(w, r, err);
	}
	return ret;
}

static const struct snap_sink_ops image_sink_ops = {
    .start = sink_start,
    .write = sink_write,
    .write_merged = sink_write_merged,
    .zeros = sink_zeros,
    .drain = sink_drain,
};

/*
 * Digest table blocks [b0, b1) of region r, whose pages include written ones:
 * incremental, merge the unwritten pages' hashes from the image first; then
 * the block digests, and the blocks written back.
 */
static int update_hash_blocks(struct wctx *w, unsigned int r, uint64_t b0, uint64_t b1,
			      uint8_t *buf, struct error *err)
{
	const struct snap_section *s = snap_layout_section(&w->img->layout, r);
	uint64_t first = b0 * SNAP_HASH_BLOCK_PAGES;
	uint64_t n = MIN(b1 * SNAP_HASH_BLOCK_PAGES, s->pages) - first, i, b;
	int ret = 0;

	if (w->incremental)
		ret = snap_image_pread(w->img, buf, n * 8, s->hash_off + first * 8, err);
	if (ret)
		return ret;
	for (i = 0; i < n; i++) {
		if (snap_bitmap_test(w->written[r], first + i))
			put_le64(buf + i * 8, w->hashes[r][first + i]);
		else if (w->incremental)
			w->hashes[r][first + i] = get_le64(buf + i * 8);
		else /* a stream that left a page out: its slot holds an older snapshot's data */
			return err_set(err, -EPROTO, "region %s: page %llu was never written",
				       w->cfg->regions[r].id, (unsigned long long)(first + i));
	}
	for (b = b0; b < b1; b++) {
		uint64_t p = b * SNAP_HASH_BLOCK_PAGES;

		w->blocks[r][b] =
		    snap_digest_u64s(w->hashes[r] + p, MIN(SNAP_HASH_BLOCK_PAGES, s->pages - p));
	}
	return snap_image_pwrite(w->img, buf, n * 8, s->hash_off + first * 8, err);
}

#define HASH_RUN_BLOCKS 256 /* digest table blocks per read and write: 1 MiB */

/* Region r's digest tables for what this snapshot wrote, and its region digest. */
static int write_digests(struct wctx *w, unsigned int r, uint64_t *digest, struct error *err)
{
	const struct snap_section *s = snap_layout_section(&w->img->layout, r);
	uint64_t nb = snap_hash_blocks(s->pages), b = 0, end, i;
	uint8_t *buf = malloc(MAX(HASH_RUN_BLOCKS * SNAP_HASH_BLOCK_PAGES * 8, nb * 8));
	int ret = 0;

	if (!buf)
		return err_set(err, -ENOMEM, "out of memory for digest tables");
	while (!ret && b < nb) {
		/* The next run of blocks holding a written page, at most HASH_RUN_BLOCKS long. */
		uint64_t pos = b * SNAP_HASH_BLOCK_PAGES, len;

		if (!snap_bitmap_next_run(w->written[r], s->pages, &pos, &len))
			break;
		b = pos / SNAP_HASH_BLOCK_PAGES;
		end = MIN(DIV_ROUND_UP(pos + len, SNAP_HASH_BLOCK_PAGES), b + HASH_RUN_BLOCKS);
		ret = update_hash_blocks(w, r, b, end, buf, err);
		b = end;
	}
	for (i = 0; !ret && i < nb; i++)
		put_le64(buf + i * 8, w->blocks[r][i]);
	if (!ret)
		ret = snap_image_pwrite(w->img, buf, nb * 8, s->blocks_off, err);
	*digest = snap_digest_u64s(w->blocks[r], nb);
	free(buf);
	return ret;
}

static int write_state(struct wctx *w, uint8_t *state, size_t used, struct error *err)
{
	struct snap_image *img = w->img;
	uint64_t len = ALIGN_UP((uint64_t)used, SNAP_PAGE_SIZE);

	img->hdr.state_used = used;
	return snap_image_pwrite(img, state, len, img->layout.state_off, err);
}

static int write_footer(struct wctx *w, struct error *err)
{
	struct snap_footer f = {0};
	uint8_t *buf = aligned_alloc(SNAP_PAGE_SIZE, SNAP_FOOTER_SIZE);
	unsigned int r;
	int ret;

	if (!buf)
		return err_set(err, -ENOMEM, "out of memory for the footer");
	f.generation = w->img->hdr.generation;
	f.write_id = w->img->hdr.write_id;
	f.nr_regions = w->cfg->nr_regions;
	f.digest_algo = SNAP_DIGEST_XXH3_TREE;
	f.pause_ns = w->rep->pause_realtime_ns;
	f.passes = w->rep->nr_passes;
	f.flags = w->rep->converged ? SNAP_FOOTER_CONVERGED : 0;
	f.downtime_us = w->rep->downtime_us;
	f.total_us = snap_mono_us() - w->t0;
	f.bytes_written = w->rep->bytes_written;
	for (r = 0, ret = 0; !ret && r < f.nr_regions; r++) {
		ret = write_digests(w, r, &f.digest[r], err);
		f.region_size[r] = w->cfg->regions[r].size;
		w->rep->digests[r] = f.digest[r];
	}
	snap_footer_encode(&f, buf);
	if (!ret)
		ret = snap_image_pwrite(w->img, buf, SNAP_FOOTER_SIZE, w->img->layout.footer_off,
					err);
	free(buf);
	return ret;
}

static int alloc_ctx(struct wctx *w, struct error *err)
{
	unsigned int r;

	snap_ioq_init(&w->ioq, w->img);
	snap_combine_init(&w->comb, &w->ioq);
	if (snap_hashq_init(&w->hq, w->hash_threads, err))
		return err->code;
	w->rep->hash_threads = snap_hashq_threads(w->hq);
	/*
	 * Read-only anonymous memory: every page of it is the kernel's zero
	 * page, so it costs no allocation and no clearing. A buffer cleared by
	 * hand took 4 ms of page faults at the start of every snapshot here.
	 */
	w->zeros = mmap(NULL, ZERO_BYTES, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w->zeros == MAP_FAILED) {
		w->zeros = NULL;
		return err_set(err, -ENOMEM, "out of memory for a zero buffer");
	}
	w->zero_hash = XXH3_64bits(w->zeros, SNAP_PAGE_SIZE);
	w->rep->io_engine = snap_ioq_engine(&w->ioq);
	for (r = 0; r < w->cfg->nr_regions; r++) {
		uint64_t pages = region_pages(w->cfg, r);

		/* calloc: pages of it that are never written are never touched. */
		w->hashes[r] = calloc(pages, sizeof(uint64_t));
		w->written[r] = calloc(SNAP_BITMAP_WORDS(pages), sizeof(uint64_t));
		w->blocks[r] = calloc(snap_hash_blocks(pages), sizeof(uint64_t));
		if (!w->hashes[r] || !w->written[r] || !w->blocks[r])
			return err_set(err, -ENOMEM, "out of memory for page hashes");
	}
	return 0;
}

static void free_ctx(struct wctx *w)
{
	unsigned int r;

	/* Before the buffers go: writes and hashes from them may be in flight. */
	snap_hashq_exit(w->hq);
	snap_ioq_exit(&w->ioq);
	snap_combine_exit(&w->comb);
	if (w->zeros)
		munmap((void *)w->zeros, ZERO_BYTES);
	for (r = 0; r < SNAP_MAX_REGIONS; r++) {
		free(w->hashes[r]);
		free(w->written[r]);
		free(w->blocks[r]);
		free(w->prev[r]);
	}
}

static int check_vm(struct snap_image *img, struct snap_vm *vm, struct error *err)
{
	unsigned int r;

	if (vm->cfg.nr_regions != img->cfg.nr_regions)
		return err_set(err, -EINVAL, "image %s has %u regions, the VM %u", img->path,
			       img->cfg.nr_regions, vm->cfg.nr_regions);
	for (r = 0; r < vm->cfg.nr_regions; r++)
		if (strcmp(vm->cfg.regions[r].id, img->cfg.regions[r].id) ||
		    vm->cfg.regions[r].size != img->cfg.regions[r].size || !vm->regions[r].mem ||
		    !vm->regions[r].dirty)
			return err_set(err, -EINVAL, "image %s does not match region %s of the VM",
				       img->path, vm->cfg.regions[r].id);
	return 0;
}

/* 1: from here until the end, the image cannot pass for a snapshot. */
static int begin_image(struct wctx *w, struct error *err)
{
	struct snap_image *img = w->img;
	int ret;

	img->hdr.generation = snap_image_next_generation(img);
	ret = snap_random_u64(&img->hdr.write_id, err);
	if (ret)
		return ret;
	img->hdr.state = SNAP_STATE_WRITING;
	img->hdr.flags = 0; /* from here on, the slots may hold anything */
	img->hdr.started_ns = snap_real_ns();
	img->hdr.completed_ns = 0;
	img->hdr.state_used = 0;
	snprintf(img->hdr.metadata, sizeof(img->hdr.metadata), "%s", w->metadata);
	img->hdr.metadata_len = (uint32_t)strlen(img->hdr.metadata);
	w->rep->generation = img->hdr.generation;
	w->rep->slot = img->slot;
	w->rep->write_id = img->hdr.write_id;
	return snap_image_write_header(img, true, err);
}

/* 4: everything after the VM has resumed: state, footer, durability, complete. */
static int complete_image(struct wctx *w, uint8_t *state, size_t state_used, struct error *err)
{
	struct snap_image *img = w->img;
	int ret;

	ret = write_state(w, state, state_used, err);
	if (!ret)
		ret = write_footer(w, err);
	/* Data and footer durable before the header may say complete. */
	if (!ret)
		ret = snap_image_sync(img, err);
	if (ret)
		return ret;
	img->hdr.state = SNAP_STATE_COMPLETE;
	img->hdr.completed_ns = snap_real_ns();
	return snap_image_write_header(img, true, err);
}

int snap_write(struct snap_image *img, struct snap_vm *vm, const struct snap_options *opts,
	       struct snap_report *rep, struct error *err)
{
	struct wctx w = {.img = img,
			 .cfg = &vm->cfg,
			 .metadata = vm->metadata,
			 .rep = rep,
			 .hash_threads = opts->hash_threads};
	unsigned int order[SNAP_MAX_REGIONS], k;
	struct snap_sink sink = {
	    .ctx = &w, .ops = &image_sink_ops, .order = order, .merge_gap = opts->merge_gap};
	struct snap_precopy_opts po = {.limits = opts};
	struct snap_stage own = {0};
	uint8_t *state = NULL;
	size_t state_used = 0;
	int ret;

	memset(rep, 0, sizeof(*rep));
	w.t0 = snap_mono_us();
	rep->image_size = img->layout.image_size;
	/* Pass 1 goes through the image front to back. */
	for (k = 0; k < img->layout.nr_sections; k++)
		order[k] = img->layout.sections[k].region;
	ret = check_vm(img, vm, err);
	if (!ret)
		ret = alloc_ctx(&w, err);
	if (!ret && !opts->stage)
		ret = snap_stage_alloc(&own, SNAP_STAGE_BYTES, err);
	if (!ret) {
		state = aligned_alloc(SNAP_PAGE_SIZE, img->layout.state_size);
		if (!state)
			ret = err_set(err, -ENOMEM, "out of memory for the VM state");
		else
			memset(state, 0, img->layout.state_size);
	}
	/* Before begin_image() makes it `writing`: do the slots match their hashes? */
	w.slot_complete = img->hdr.state == SNAP_STATE_COMPLETE;
	w.slot_zeroed = img->hdr.state == SNAP_STATE_EMPTY && (img->hdr.flags & SNAP_HDR_DATA_ZERO);
	if (!ret)
		ret = begin_image(&w, err);
	if (ret) {
		/* Nothing started in the VM yet: end the caller's session all the same. */
		struct error ferr;

		vm->ops->finish(vm->ctx, NULL, &ferr);
		goto out;
	}
	po.stage = opts->stage ? opts->stage : &own;
	po.state = state;
	po.state_cap = img->layout.state_size;
	po.state_used = &state_used;
	/* 3 */
	rep->begin_us = snap_mono_us() - w.t0;
	ret = snap_precopy_run(vm, &sink, &po, rep, err);
	if (!ret) {
		uint64_t t = snap_mono_us();

		ret = complete_image(&w, state, state_used, err);
		rep->complete_us = snap_mono_us() - t;
	}
out:
	rep->total_us = snap_mono_us() - w.t0;
	/* The image is complete (or failed): unmapping the stage need not delay that. */
	snap_stage_free(&own);
	free(state);
	free_ctx(&w);
	return ret;
}

/* ---- the same image sink, fed from a page-record stream ---- */

struct snap_stream_writer {
	struct wctx w;
	uint8_t *state;
};

int snap_stream_writer_open(struct snap_stream_writer **out, struct snap_image *img,
			    const struct snap_config *cfg, const char *metadata,
			    struct snap_report *rep, struct error *err)
{
	struct snap_stream_writer *s = calloc(1, sizeof(*s));
	int ret;

	*out = NULL;
	if (!s)
		return err_set(err, -ENOMEM, "out of memory");
	memset(rep, 0, sizeof(*rep));
	s->w = (struct wctx){.img = img, .cfg = cfg, .metadata = metadata, .rep = rep};
	s->w.t0 = snap_mono_us();
	rep->image_size = img->layout.image_size;
	ret = snap_config_compare(&img->cfg, cfg, err);
	if (!ret)
		ret = alloc_ctx(&s->w, err);
	if (!ret) {
		s->state = aligned_alloc(SNAP_PAGE_SIZE, img->layout.state_size);
		ret = s->state ? 0 : err_set(err, -ENOMEM, "out of memory for the VM state");
	}
	if (!ret)
		ret = begin_image(&s->w, err);
	/* A stream is always a full snapshot. */
	if (!ret)
		ret = sink_start(&s->w, false, err);
	if (ret) {
		snap_stream_writer_close(s);
		return ret;
	}
	*out = s;
	return 0;
}

int snap_stream_writer_pages(struct snap_stream_writer *s, unsigned int r, uint64_t first,
			     uint64_t n, const uint8_t *data, struct error *err)
{
	s->w.rep->bytes_written += n * SNAP_PAGE_SIZE;
	return sink_write(&s->w, r, first, n, data, err);
}

int snap_stream_writer_drain(struct snap_stream_writer *s, struct error *err)
{
	return sink_drain(&s->w, err);
}

uint8_t *snap_stream_writer_state(struct snap_stream_writer *s)
{
	return s->state;
}

int snap_stream_writer_finish(struct snap_stream_writer *s, size_t state_used, struct error *err)
{
	int ret = sink_drain(&s->w, err);

	if (!ret) {
		memset(s->state + state_used, 0,
		       ALIGN_UP((uint64_t)state_used, SNAP_PAGE_SIZE) - state_used);
		ret = complete_image(&s->w, s->state, state_used, err);
	}
	s->w.rep->total_us = snap_mono_us() - s->w.t0;
	return ret;
}

void snap_stream_writer_close(struct snap_stream_writer *s)
{
	if (!s)
		return;
	free_ctx(&s->w);
	free(s->state);
	free(s);
}
