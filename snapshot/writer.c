// SPDX-License-Identifier: GPL-2.0
/*
 * The image writer (Documentation/design.md, "Live snapshot"): the precopy
 * engine (precopy.c) with a sink that writes each page over its fixed slot.
 *
 *  1. header -> writing, next generation, durable
 *  2. every section's descriptor and page header table
 *  3. the engine: pass 1, dirty passes, the final pause (state saved), resume
 *  4. the state area and the footer with the digests; durable; header ->
 *     complete, durable
 *
 * The VM runs during everything but the engine's pause. Any failure leaves
 * the header `writing`, and the engine has resumed the VM and stopped logging.
 */
#include "snapshot/writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "lib/align.h"
#include "snapshot/clock.h"
#include "lib/le.h"
#include "snapshot/ioq.h"
#include "snapshot/precopy.h"

#define CHUNK_BYTES (8ULL << 20) /* largest single write */
#define STAGE_MIN   (64ULL << 20)
#define ZERO_BYTES  (8ULL << 20)

/* The image sink: slots, and the per-page hashes the footer's digests come from. */
struct wctx {
	struct snap_image *img;
	const struct snap_config *cfg;
	const char *metadata;
	struct snap_report *rep;
	uint64_t *hashes[SNAP_MAX_REGIONS]; /* per-page XXH3, kept current */
	uint8_t *zeros;			    /* ZERO_BYTES of zeros: what holes are */
	uint64_t zero_hash;
	struct snap_ioq ioq; /* writes in flight */
	uint64_t t0;
};

static uint64_t region_pages(const struct snap_config *cfg, unsigned int r)
{
	return cfg->regions[r].size / SNAP_PAGE_SIZE;
}

/* Sink: pages [first, first + n) of region r from src into their slots, hashed. */
static int sink_write(void *ctx, unsigned int r, uint64_t first, uint64_t n, const uint8_t *src,
		      struct error *err)
{
	struct wctx *w = ctx;
	const struct snap_section *s = snap_layout_section(&w->img->layout, r);
	uint64_t done = 0, i;
	int ret;

	while (done < n) {
		uint64_t cnt = MIN(n - done, CHUNK_BYTES / SNAP_PAGE_SIZE);

		ret = snap_ioq_write(&w->ioq, src + done * SNAP_PAGE_SIZE, cnt * SNAP_PAGE_SIZE,
				     s->data_off + (first + done) * SNAP_PAGE_SIZE, err);
		if (ret)
			return ret;
		for (i = 0; i < cnt; i++)
			w->hashes[r][first + done + i] =
			    XXH3_64bits(src + (done + i) * SNAP_PAGE_SIZE, SNAP_PAGE_SIZE);
		done += cnt;
	}
	return 0;
}

/* Sink: pages [first, first + n) of region r are zero; write zeros over their slots. */
static int sink_zeros(void *ctx, unsigned int r, uint64_t first, uint64_t n, struct error *err)
{
	struct wctx *w = ctx;
	const struct snap_section *s = snap_layout_section(&w->img->layout, r);
	uint64_t done = 0, i;
	int ret;

	while (done < n) {
		uint64_t cnt = MIN(n - done, ZERO_BYTES / SNAP_PAGE_SIZE);

		ret = snap_ioq_write(&w->ioq, w->zeros, cnt * SNAP_PAGE_SIZE,
				     s->data_off + (first + done) * SNAP_PAGE_SIZE, err);
		if (ret)
			return ret;
		for (i = 0; i < cnt; i++)
			w->hashes[r][first + done + i] = w->zero_hash;
		done += cnt;
	}
	return 0;
}

static int sink_drain(void *ctx, struct error *err)
{
	return snap_ioq_drain(&((struct wctx *)ctx)->ioq, err);
}

static const struct snap_sink_ops image_sink_ops = {
    .write = sink_write,
    .zeros = sink_zeros,
    .drain = sink_drain,
};

/* The descriptor and page header table of a section: every page present. */
static int write_page_headers(struct wctx *w, unsigned int r, struct error *err)
{
	const struct snap_section *s = snap_layout_section(&w->img->layout, r);
	uint64_t len = s->data_off - s->offset, i;
	uint8_t *buf =
	    aligned_alloc(SNAP_PAGE_SIZE, len); /* aligned: no bounce copy with O_DIRECT */
	int ret;

	if (!buf)
		return err_set(err, -ENOMEM, "out of memory for page headers");
	memset(buf, 0, len);
	snap_section_desc_encode(s, &w->cfg->regions[r], buf);
	for (i = 0; i < s->pages; i++)
		put_le64(buf + SNAP_SECTION_DESC + i * 8, snap_page_hdr(i, SNAP_PAGE_PRESENT));
	ret = snap_image_pwrite(w->img, buf, len, s->offset, err);
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
	f.nr_regions = w->cfg->nr_regions;
	f.digest_algo = SNAP_DIGEST_XXH3_TREE;
	f.pause_ns = w->rep->pause_realtime_ns;
	f.passes = w->rep->nr_passes;
	f.flags = w->rep->converged ? SNAP_FOOTER_CONVERGED : 0;
	f.downtime_us = w->rep->downtime_us;
	f.total_us = snap_mono_us() - w->t0;
	f.bytes_written = w->rep->bytes_written;
	for (r = 0; r < f.nr_regions; r++) {
		f.digest[r] = snap_digest_tree(w->hashes[r], region_pages(w->cfg, r));
		f.region_size[r] = w->cfg->regions[r].size;
		w->rep->digests[r] = f.digest[r];
	}
	snap_footer_encode(&f, buf);
	ret = snap_image_pwrite(w->img, buf, SNAP_FOOTER_SIZE, w->img->layout.footer_off, err);
	free(buf);
	return ret;
}

static int alloc_ctx(struct wctx *w, struct error *err)
{
	unsigned int r;

	snap_ioq_init(&w->ioq, w->img);
	w->zeros = aligned_alloc(SNAP_PAGE_SIZE, ZERO_BYTES);
	if (!w->zeros)
		return err_set(err, -ENOMEM, "out of memory for a zero buffer");
	memset(w->zeros, 0, ZERO_BYTES);
	w->zero_hash = XXH3_64bits(w->zeros, SNAP_PAGE_SIZE);
	w->rep->io_engine = snap_ioq_engine(&w->ioq);
	for (r = 0; r < w->cfg->nr_regions; r++) {
		w->hashes[r] = calloc(region_pages(w->cfg, r), sizeof(uint64_t));
		if (!w->hashes[r])
			return err_set(err, -ENOMEM, "out of memory for page hashes");
	}
	return 0;
}

static void free_ctx(struct wctx *w)
{
	unsigned int r;

	/* Before the buffers go: writes from them may be in flight. */
	snap_ioq_exit(&w->ioq);
	free(w->zeros);
	for (r = 0; r < SNAP_MAX_REGIONS; r++)
		free(w->hashes[r]);
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
	const struct snap_layout *l = &img->layout;
	unsigned int k;
	int ret;

	img->hdr.generation++;
	img->hdr.state = SNAP_STATE_WRITING;
	img->hdr.started_ns = snap_real_ns();
	img->hdr.completed_ns = 0;
	img->hdr.state_used = 0;
	snprintf(img->hdr.metadata, sizeof(img->hdr.metadata), "%s", w->metadata);
	img->hdr.metadata_len = (uint32_t)strlen(img->hdr.metadata);
	w->rep->generation = img->hdr.generation;
	ret = snap_image_write_header(img, true, err);
	/* 2 */
	for (k = 0; !ret && k < l->nr_sections; k++)
		ret = write_page_headers(w, l->sections[k].region, err);
	return ret;
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
	struct wctx w = {.img = img, .cfg = &vm->cfg, .metadata = vm->metadata, .rep = rep};
	unsigned int order[SNAP_MAX_REGIONS], k;
	struct snap_sink sink = {.ctx = &w, .ops = &image_sink_ops, .order = order};
	struct snap_precopy_opts po = {.limits = opts, .stage_cap = STAGE_MIN};
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
	if (!ret) {
		state = aligned_alloc(SNAP_PAGE_SIZE, img->layout.state_size);
		if (!state)
			ret = err_set(err, -ENOMEM, "out of memory for the VM state");
		else
			memset(state, 0, img->layout.state_size);
	}
	if (!ret)
		ret = begin_image(&w, err);
	if (ret) {
		/* Nothing started in the VM yet: end the caller's session all the same. */
		struct error ferr;

		vm->ops->finish(vm->ctx, NULL, &ferr);
		goto out;
	}
	po.state = state;
	po.state_cap = img->layout.state_size;
	po.state_used = &state_used;
	/* 3 */
	ret = snap_precopy_run(vm, &sink, &po, rep, err);
	if (!ret)
		ret = complete_image(&w, state, state_used, err);
out:
	rep->total_us = snap_mono_us() - w.t0;
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
	return snap_ioq_drain(&s->w.ioq, err);
}

uint8_t *snap_stream_writer_state(struct snap_stream_writer *s)
{
	return s->state;
}

int snap_stream_writer_finish(struct snap_stream_writer *s, size_t state_used, struct error *err)
{
	int ret = snap_ioq_drain(&s->w.ioq, err);

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
