// SPDX-License-Identifier: GPL-2.0
/*
 * The precopy writer (Documentation/design.md, "Live snapshot").
 *
 *  1. header -> writing, next generation, durable
 *  2. dirty logging on; pass 1 writes every page to its slot
 *  3. passes: fetch the dirty log, write each dirty run over its slots,
 *     until the dirty bytes fit the threshold or a limit is hit
 *  4. pause; fetch the last dirty log; copy the last batch out of guest
 *     memory (or, if it is too big to stage, write it while paused); save
 *     the vCPU and device state; resume
 *  5. write the staged batch, the state area and the footer; make it all
 *     durable; header -> complete, durable
 *
 * The VM runs during everything but step 4. Any failure calls finish(),
 * which resumes the VM and stops logging, and leaves the header `writing`.
 */
#include "snapshot/writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <time.h>
#include <xxhash.h>

#include "lib/align.h"
#include "snapshot/bitmap.h"
#include "snapshot/ioq.h"
#include "lib/le.h"

#define CHUNK_BYTES	 (8ULL << 20) /* largest single write */
#define STAGE_MIN	 (64ULL << 20)
#define ZERO_BYTES	 (8ULL << 20)
#define DEFAULT_DOWNTIME 20
#define DEFAULT_PASSES	 30
#define DEFAULT_TIME_MS	 60000

struct wctx {
	struct snap_image *img;
	struct snap_vm *vm;
	const struct snap_options *opts;
	struct snap_report *rep;
	struct error *err;
	uint64_t *hashes[SNAP_MAX_REGIONS]; /* per-page XXH3, kept current */
	uint8_t *stage;			    /* final-batch copy */
	uint8_t *zeros;			    /* ZERO_BYTES of zeros: what holes are */
	uint64_t zero_hash;
	uint64_t stage_cap;
	struct snap_ioq ioq; /* writes in flight */
	uint64_t t0;
};

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t region_pages(const struct snap_vm *vm, unsigned int r)
{
	return vm->cfg.regions[r].size / SNAP_PAGE_SIZE;
}

/* Write pages [first, first + n) of region r from src, and hash them. */
static int write_run(struct wctx *w, unsigned int r, uint64_t first, uint64_t n, const uint8_t *src)
{
	const struct snap_section *s = snap_layout_section(&w->img->layout, r);
	uint64_t done = 0, i;
	int ret;

	while (done < n) {
		uint64_t cnt = n - done;
		uint64_t bytes;

		if (cnt * SNAP_PAGE_SIZE > CHUNK_BYTES)
			cnt = CHUNK_BYTES / SNAP_PAGE_SIZE;
		bytes = cnt * SNAP_PAGE_SIZE;
		ret = snap_ioq_write(&w->ioq, src + done * SNAP_PAGE_SIZE, bytes,
				     s->data_off + (first + done) * SNAP_PAGE_SIZE, w->err);
		if (ret)
			return ret;
		for (i = 0; i < cnt; i++)
			w->hashes[r][first + done + i] =
			    XXH3_64bits(src + (done + i) * SNAP_PAGE_SIZE, SNAP_PAGE_SIZE);
		done += cnt;
	}
	w->rep->bytes_written += n * SNAP_PAGE_SIZE;
	return 0;
}

/* The descriptor and page header table of a section: every page present. */
static int write_page_headers(struct wctx *w, unsigned int r)
{
	const struct snap_section *s = snap_layout_section(&w->img->layout, r);
	uint64_t len = s->data_off - s->offset, i;
	uint8_t *buf =
	    aligned_alloc(SNAP_PAGE_SIZE, len); /* aligned: no bounce copy with O_DIRECT */
	int ret;

	if (buf)
		memset(buf, 0, len);
	if (!buf)
		return err_set(w->err, -ENOMEM, "out of memory for page headers");
	snap_section_desc_encode(s, &w->vm->cfg.regions[r], buf);
	for (i = 0; i < s->pages; i++)
		put_le64(buf + SNAP_SECTION_DESC + i * 8, snap_page_hdr(i, SNAP_PAGE_PRESENT));
	ret = snap_image_pwrite(w->img, buf, len, s->offset, w->err);
	free(buf);
	return ret;
}

/* Pages [first, first + n) of region r are zero: write zeros over their slots. */
static int write_zeros(struct wctx *w, unsigned int r, uint64_t first, uint64_t n)
{
	const struct snap_section *s = snap_layout_section(&w->img->layout, r);
	uint64_t done = 0, i;
	int ret;

	while (done < n) {
		uint64_t cnt = MIN(n - done, ZERO_BYTES / SNAP_PAGE_SIZE);

		ret = snap_ioq_write(&w->ioq, w->zeros, cnt * SNAP_PAGE_SIZE,
				     s->data_off + (first + done) * SNAP_PAGE_SIZE, w->err);
		if (ret)
			return ret;
		for (i = 0; i < cnt; i++)
			w->hashes[r][first + done + i] = w->zero_hash;
		done += cnt;
	}
	w->rep->bytes_written += n * SNAP_PAGE_SIZE;
	return 0;
}

/*
 * A whole region, in pass 1. Where its memfd has holes (memory the guest
 * never touched), write zeros instead of reading the mapping: a read would
 * make the VM's kernel allocate and clear a page for every hole. A hole
 * that the guest fills meanwhile is dirty and is written in a later pass.
 */
static int write_region(struct wctx *w, unsigned int r)
{
	const struct snap_vm_region *vr = &w->vm->regions[r];
	uint64_t size = vr->size, off = 0;
	int ret = 0;

	if (vr->memfd < 0)
		return write_run(w, r, 0, size / SNAP_PAGE_SIZE, vr->mem);
	while (off < size && !ret) {
		off_t data = lseek(vr->memfd, (off_t)off, SEEK_DATA), hole;

		if (data < 0 && errno != ENXIO) /* no SEEK_DATA: read it all */
			return write_run(w, r, off / SNAP_PAGE_SIZE, (size - off) / SNAP_PAGE_SIZE,
					 vr->mem + off);
		if (data < 0 || (uint64_t)data > size)
			data = (off_t)size;
		data = (off_t)ALIGN_DOWN((uint64_t)data, SNAP_PAGE_SIZE);
		if ((uint64_t)data > off)
			ret = write_zeros(w, r, off / SNAP_PAGE_SIZE,
					  ((uint64_t)data - off) / SNAP_PAGE_SIZE);
		if (ret || (uint64_t)data >= size)
			break;
		hole = lseek(vr->memfd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = (off_t)size;
		hole = (off_t)ALIGN_UP((uint64_t)hole, SNAP_PAGE_SIZE);
		ret = write_run(w, r, (uint64_t)data / SNAP_PAGE_SIZE,
				((uint64_t)hole - (uint64_t)data) / SNAP_PAGE_SIZE, vr->mem + data);
		off = (uint64_t)hole;
	}
	return ret;
}

/* Pass 1: every page of every region, in image order, in large writes. */
static int first_pass(struct wctx *w, struct snap_pass *p)
{
	const struct snap_layout *l = &w->img->layout;
	uint64_t t = mono_us();
	unsigned int k;
	int ret;

	for (k = 0; k < l->nr_sections; k++) {
		unsigned int r = l->sections[k].region;

		ret = write_region(w, r);
		if (!ret)
			ret = write_page_headers(w, r);
		if (ret)
			return ret;
		p->dirty_pages += region_pages(w->vm, r);
	}
	/* A pass ends when its data is written: its rate sets the threshold. */
	ret = snap_ioq_drain(&w->ioq, w->err);
	p->bytes = p->dirty_pages * SNAP_PAGE_SIZE;
	p->duration_us = mono_us() - t;
	return ret;
}

static uint64_t count_dirty(const struct snap_vm *vm)
{
	uint64_t total = 0;
	unsigned int r;

	for (r = 0; r < vm->cfg.nr_regions; r++)
		total += snap_bitmap_count(vm->regions[r].dirty, region_pages(vm, r));
	return total;
}

/* Write every dirty run of every region straight from guest memory. */
static int write_dirty(struct wctx *w, struct snap_pass *p)
{
	const struct snap_layout *l = &w->img->layout;
	uint64_t t = mono_us(), pos, len;
	unsigned int k;
	int ret;

	for (k = 0; k < l->nr_sections; k++) {
		unsigned int r = l->sections[k].region;
		const uint8_t *mem = w->vm->regions[r].mem;

		for (pos = 0; snap_bitmap_next_run(w->vm->regions[r].dirty, region_pages(w->vm, r),
						   &pos, &len);
		     pos += len) {
			ret = write_run(w, r, pos, len, mem + pos * SNAP_PAGE_SIZE);
			if (ret)
				return ret;
			p->dirty_pages += len;
		}
	}
	/* Also what makes a batch written while paused safe to resume after. */
	ret = snap_ioq_drain(&w->ioq, w->err);
	p->bytes = p->dirty_pages * SNAP_PAGE_SIZE;
	p->duration_us = mono_us() - t;
	return ret;
}

static void progress(struct wctx *w, unsigned int pass, uint64_t remaining,
		     const struct snap_pass *p)
{
	struct snap_progress pr = {.pass = pass, .remaining_bytes = remaining};

	if (!w->opts->progress)
		return;
	if (p && p->duration_us)
		pr.rate_mib_s = (double)p->bytes / (1 << 20) / ((double)p->duration_us / 1e6);
	w->opts->progress(&pr, w->opts->progress_arg);
}

static struct snap_pass *new_pass(struct wctx *w)
{
	struct snap_pass *p = &w->rep->passes[w->rep->nr_passes++];

	memset(p, 0, sizeof(*p));
	return p;
}

/* Bytes per ms the last passes sustained, for the downtime-derived threshold. */
static uint64_t bandwidth_per_ms(const struct snap_report *rep)
{
	uint64_t bytes = 0, us = 0;
	unsigned int i;

	for (i = 0; i < rep->nr_passes; i++) {
		bytes += rep->passes[i].bytes;
		us += rep->passes[i].duration_us;
	}
	return us ? bytes * 1000 / us : 0;
}

/* Precopy passes until the dirty set fits the threshold or a limit is hit. */
static int precopy(struct wctx *w)
{
	const struct snap_options *o = w->opts;
	unsigned int max_passes = o->max_passes ? o->max_passes : DEFAULT_PASSES;
	uint64_t max_us = (o->max_time_ms ? o->max_time_ms : DEFAULT_TIME_MS) * 1000;
	uint64_t downtime = o->max_downtime_ms ? o->max_downtime_ms : DEFAULT_DOWNTIME;
	struct snap_pass *p;
	uint64_t dirty;
	int ret;

	if (max_passes > SNAP_MAX_PASSES - 1)
		max_passes = SNAP_MAX_PASSES - 1;
	p = new_pass(w);
	ret = first_pass(w, p);
	if (ret)
		return ret;
	for (;;) {
		w->rep->threshold =
		    o->threshold ? o->threshold : downtime * bandwidth_per_ms(w->rep);
		ret = w->vm->ops->fetch_dirty(w->vm->ctx, w->err);
		if (ret)
			return ret;
		dirty = count_dirty(w->vm) * SNAP_PAGE_SIZE;
		progress(w, w->rep->nr_passes, dirty, &w->rep->passes[w->rep->nr_passes - 1]);
		if (dirty <= w->rep->threshold) {
			w->rep->converged = true;
			w->rep->stop_reason = "dirty set below threshold";
			return 0;
		}
		if (w->rep->nr_passes >= max_passes) {
			w->rep->stop_reason = "pass limit reached";
			return 0;
		}
		if (mono_us() - w->t0 >= max_us) {
			w->rep->stop_reason = "time limit reached";
			return 0;
		}
		p = new_pass(w);
		ret = write_dirty(w, p);
		if (ret)
			return ret;
	}
}

/*
 * The bitmaps hold what precopy found but did not write. Pause, add what
 * was dirtied since, and take the whole batch out of guest memory.
 */
static int final_batch(struct wctx *w, struct snap_pass *p, bool *staged)
{
	struct snap_vm *vm = w->vm;
	uint64_t *pending[SNAP_MAX_REGIONS] = {0};
	uint64_t words, i, pos, len, t;
	unsigned int r;
	int ret = 0;

	/* Keep precopy's leftovers: fetch_dirty overwrites the bitmaps. */
	for (r = 0; r < vm->cfg.nr_regions; r++) {
		words = SNAP_BITMAP_WORDS(region_pages(vm, r));
		pending[r] = malloc(words * 8);
		if (!pending[r]) {
			ret = err_set(w->err, -ENOMEM, "out of memory for dirty bitmaps");
			goto out;
		}
		memcpy(pending[r], vm->regions[r].dirty, words * 8);
	}
	ret = vm->ops->pause(vm->ctx, &w->rep->pause_latency_us, w->err);
	if (ret)
		goto out;
	t = mono_us();
	ret = vm->ops->fetch_dirty(vm->ctx, w->err);
	if (ret)
		goto out;
	for (r = 0; r < vm->cfg.nr_regions; r++) {
		words = SNAP_BITMAP_WORDS(region_pages(vm, r));
		for (i = 0; i < words; i++)
			vm->regions[r].dirty[i] |= pending[r][i];
	}
	p->dirty_pages = count_dirty(vm);
	p->bytes = p->dirty_pages * SNAP_PAGE_SIZE;

	*staged = p->bytes <= w->stage_cap;
	if (*staged) {
		/* Copy out now, write after resuming: the downtime is a memcpy. */
		uint64_t off = 0;

		for (r = 0; r < vm->cfg.nr_regions; r++) {
			for (pos = 0; snap_bitmap_next_run(vm->regions[r].dirty,
							   region_pages(vm, r), &pos, &len);
			     pos += len) {
				memcpy(w->stage + off, vm->regions[r].mem + pos * SNAP_PAGE_SIZE,
				       len * SNAP_PAGE_SIZE);
				off += len * SNAP_PAGE_SIZE;
			}
		}
	} else {
		/* Too big to stage: write it from guest memory while paused. */
		p->dirty_pages = 0; /* write_dirty() counts them as it goes */
		ret = write_dirty(w, p);
	}
	p->duration_us = mono_us() - t;
out:
	for (r = 0; r < SNAP_MAX_REGIONS; r++)
		free(pending[r]);
	return ret;
}

/* Write the staged final batch, walking the bitmaps in the order they were copied. */
static int write_staged(struct wctx *w)
{
	struct snap_vm *vm = w->vm;
	uint64_t off = 0, pos, len;
	unsigned int r;
	int ret;

	for (r = 0; r < vm->cfg.nr_regions; r++) {
		for (pos = 0;
		     snap_bitmap_next_run(vm->regions[r].dirty, region_pages(vm, r), &pos, &len);
		     pos += len) {
			ret = write_run(w, r, pos, len, w->stage + off);
			if (ret)
				return ret;
			off += len * SNAP_PAGE_SIZE;
		}
	}
	return 0;
}

static int write_state(struct wctx *w, uint8_t *state, size_t used)
{
	struct snap_image *img = w->img;
	uint64_t len = ALIGN_UP((uint64_t)used, SNAP_PAGE_SIZE);

	img->hdr.state_used = used;
	return snap_image_pwrite(img, state, len, img->layout.state_off, w->err);
}

static int write_footer(struct wctx *w, uint64_t pause_ns)
{
	struct snap_footer f = {0};
	uint8_t *buf = aligned_alloc(SNAP_PAGE_SIZE, SNAP_FOOTER_SIZE);
	unsigned int r;
	int ret;

	if (!buf)
		return err_set(w->err, -ENOMEM, "out of memory for the footer");
	f.generation = w->img->hdr.generation;
	f.nr_regions = w->vm->cfg.nr_regions;
	f.digest_algo = SNAP_DIGEST_XXH3_TREE;
	f.pause_ns = pause_ns;
	f.passes = w->rep->nr_passes;
	f.flags = w->rep->converged ? SNAP_FOOTER_CONVERGED : 0;
	f.downtime_us = w->rep->downtime_us;
	f.total_us = mono_us() - w->t0;
	f.bytes_written = w->rep->bytes_written;
	for (r = 0; r < f.nr_regions; r++) {
		f.digest[r] = snap_digest_tree(w->hashes[r], region_pages(w->vm, r));
		f.region_size[r] = w->vm->cfg.regions[r].size;
		w->rep->digests[r] = f.digest[r];
	}
	snap_footer_encode(&f, buf);
	ret = snap_image_pwrite(w->img, buf, SNAP_FOOTER_SIZE, w->img->layout.footer_off, w->err);
	free(buf);
	return ret;
}

static int alloc_ctx(struct wctx *w)
{
	unsigned int r;

	snap_ioq_init(&w->ioq, w->img);
	w->zeros = aligned_alloc(SNAP_PAGE_SIZE, ZERO_BYTES);
	if (!w->zeros)
		return err_set(w->err, -ENOMEM, "out of memory for a zero buffer");
	memset(w->zeros, 0, ZERO_BYTES);
	w->zero_hash = XXH3_64bits(w->zeros, SNAP_PAGE_SIZE);
	w->rep->io_engine = snap_ioq_engine(&w->ioq);
	for (r = 0; r < w->vm->cfg.nr_regions; r++) {
		w->hashes[r] = calloc(region_pages(w->vm, r), sizeof(uint64_t));
		if (!w->hashes[r])
			return err_set(w->err, -ENOMEM, "out of memory for page hashes");
	}
	/* Enough for a batch several times the threshold the default downtime gives. */
	w->stage_cap = STAGE_MIN;
	/* Populated now: page faults during the pause would be downtime. */
	w->stage = mmap(NULL, w->stage_cap, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (w->stage == MAP_FAILED) {
		w->stage = NULL;
		return err_set(w->err, -ENOMEM, "out of memory for the final-batch buffer");
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
	if (w->stage)
		munmap(w->stage, w->stage_cap);
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

/* Everything after the VM has resumed: the rest of the data, then durability. */
static int complete_image(struct wctx *w, uint8_t *state, size_t state_used, uint64_t pause_ns,
			  bool staged)
{
	struct snap_image *img = w->img;
	int ret = 0;

	if (staged)
		ret = write_staged(w);
	if (!ret)
		ret = snap_ioq_drain(&w->ioq, w->err);
	if (!ret)
		ret = write_state(w, state, state_used);
	if (!ret)
		ret = write_footer(w, pause_ns);
	/* Data and footer durable before the header may say complete. */
	if (!ret)
		ret = snap_image_sync(img, w->err);
	if (ret)
		return ret;
	img->hdr.state = SNAP_STATE_COMPLETE;
	img->hdr.completed_ns = real_ns();
	return snap_image_write_header(img, true, w->err);
}

int snap_write(struct snap_image *img, struct snap_vm *vm, const struct snap_options *opts,
	       struct snap_report *rep, struct error *err)
{
	struct wctx w = {.img = img, .vm = vm, .opts = opts, .rep = rep, .err = err};
	uint8_t *state = NULL;
	size_t state_used = 0;
	uint64_t pause_ns = 0;
	bool staged = false;
	bool logging = false, resumed = false;
	struct error ferr;
	int ret;

	memset(rep, 0, sizeof(*rep));
	w.t0 = mono_us();
	rep->image_size = img->layout.image_size;
	ret = check_vm(img, vm, err);
	if (!ret)
		ret = alloc_ctx(&w);
	if (!ret) {
		state = aligned_alloc(SNAP_PAGE_SIZE, img->layout.state_size);
		if (!state)
			ret = err_set(err, -ENOMEM, "out of memory for the VM state");
		else
			memset(state, 0, img->layout.state_size);
	}
	if (ret)
		goto out;

	/* 1: from here until step 5 ends, the image cannot pass for a snapshot. */
	img->hdr.generation++;
	img->hdr.state = SNAP_STATE_WRITING;
	img->hdr.started_ns = real_ns();
	img->hdr.completed_ns = 0;
	img->hdr.state_used = 0;
	snprintf(img->hdr.metadata, sizeof(img->hdr.metadata), "%s", vm->metadata);
	img->hdr.metadata_len = (uint32_t)strlen(img->hdr.metadata);
	rep->generation = img->hdr.generation;
	ret = snap_image_write_header(img, true, err);
	if (ret)
		goto out;

	/* 2-3 */
	ret = vm->ops->log_start(vm->ctx, err);
	if (ret)
		goto out;
	logging = true;
	ret = precopy(&w);
	/* 4 */
	if (!ret) {
		struct snap_pass *p = new_pass(&w);
		uint64_t t_pause = mono_us();

		ret = final_batch(&w, p, &staged);
		pause_ns = real_ns();
		if (!ret)
			ret = vm->ops->save_state(vm->ctx, state, img->layout.state_size,
						  &state_used, err);
		/* The final batch is out of guest memory (or on disk): resume. */
		if (!ret) {
			uint64_t resumed_us = 0;

			ret = vm->ops->finish(vm->ctx, &resumed_us, err);
			resumed = !ret;
			/* The VM's own resume time, not when its reply arrived. */
			if (!resumed_us || resumed_us < t_pause)
				resumed_us = mono_us();
			rep->downtime_us = resumed_us - t_pause;
		}
	}
	/* 5 */
	if (!ret)
		ret = complete_image(&w, state, state_used, pause_ns, staged);
out:
	if (logging && !resumed) {
		/* Resume and stop logging whatever happened; keep the first error. */
		if (vm->ops->finish(vm->ctx, NULL, &ferr) && !ret)
			ret = err_set(err, ferr.code, "%s", ferr.msg);
	}
	rep->total_us = mono_us() - w.t0;
	free(state);
	free_ctx(&w);
	return ret;
}
