// SPDX-License-Identifier: GPL-2.0
/*
 * The append sink (append.h): the precopy engine's pages appended to a
 * growing file, the benchmark baseline for the fixed image.
 *
 * Not a strawman: it runs the very engine, passes, throttle and pause of the
 * image writer, and the same I/O path: O_DIRECT where the file system has
 * it, writes straight from guest memory (or the engine's staging buffer)
 * through the image writer's io_uring queue (ioq.h). Each chunk goes out as
 * one vectored write of its header page and up to SNAP_APPEND_MAX_RUNS runs,
 * at most SNAP_APPEND_CHUNK_DATA bytes, at the end of the file: sequential,
 * in large batches. Zero runs (memfd holes) carry no data, as QEMU's zero
 * pages do not. Every page is hashed as the image writer hashes it, so that
 * END carries the same region digests as an image footer would.
 */
#include "snapshot/append.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/bitmap.h"
#include "snapshot/clock.h"
#include "snapshot/ioq.h"
#include "snapshot/precopy.h"

/* One chunk: its header page and what its vectored write points at. */
struct chunk {
	uint8_t hdr[SNAP_APPEND_HDR_SIZE] __attribute__((aligned(4096)));
	struct iovec iov[1 + SNAP_APPEND_MAX_RUNS];
	unsigned int nr_iov;
	struct snap_append_chunk c;
};

struct actx {
	struct snap_append_file *f;
	const struct snap_config *cfg;
	struct snap_report *rep;
	struct snap_ioq ioq;
	/* Every chunk allocated; the first nr_busy are queued or open until the next drain. */
	struct chunk **chunks;
	unsigned int nr_chunks, nr_busy;
	struct chunk *open; /* being filled */
	uint64_t seq;
	unsigned int pass; /* a pass ends at a drain */
	uint64_t *hashes[SNAP_MAX_REGIONS];
	uint64_t *seen[SNAP_MAX_REGIONS];
	uint64_t zero_hash;
};

static uint64_t region_pages(const struct snap_config *cfg, unsigned int r)
{
	return cfg->regions[r].size / SNAP_PAGE_SIZE;
}

/* Queue a chunk at the end of the file. Its buffers stay until the next drain. */
static int append_chunk(struct actx *a, struct chunk *ch, struct error *err)
{
	uint64_t off = a->f->file_bytes;

	ch->c.seq = a->seq++;
	snap_append_chunk_encode(&ch->c, a->cfg->nr_regions, ch->hdr);
	ch->iov[0] = (struct iovec){.iov_base = ch->hdr, .iov_len = SNAP_APPEND_HDR_SIZE};
	a->f->chunks++;
	a->f->file_bytes += SNAP_APPEND_HDR_SIZE + ch->c.payload;
	return snap_ioq_writev(&a->ioq, ch->iov, ch->nr_iov, off, err);
}

static struct chunk *new_chunk(struct actx *a, uint32_t type, struct error *err)
{
	struct chunk *ch, **grown;

	if (a->nr_busy == a->nr_chunks) {
		grown = realloc(a->chunks, (a->nr_chunks + 1) * sizeof(*grown));
		ch = aligned_alloc(4096, ALIGN_UP(sizeof(*ch), 4096));
		if (grown)
			a->chunks = grown;
		if (!grown || !ch) {
			free(ch);
			err_set(err, -ENOMEM, "out of memory for chunk headers");
			return NULL;
		}
		a->chunks[a->nr_chunks++] = ch;
	}
	ch = a->chunks[a->nr_busy++];
	memset(&ch->c, 0, sizeof(ch->c));
	ch->c.type = type;
	ch->c.pass = type == SNAP_APPEND_PAGES ? a->pass : 0;
	ch->nr_iov = 1;
	return ch;
}

static int flush_open(struct actx *a, struct error *err)
{
	struct chunk *ch = a->open;

	a->open = NULL;
	return ch ? append_chunk(a, ch, err) : 0;
}

/*
 * Add a run of pages to the open chunk, a new one when it is full; src NULL:
 * a zero run. Returns the pages taken (the chunk may hold fewer), or -errno.
 */
static int64_t add_run(struct actx *a, unsigned int r, uint64_t first, uint64_t n,
		       const uint8_t *src, struct error *err)
{
	struct chunk *ch = a->open;
	uint64_t cnt = MIN(n, UINT32_MAX);
	int ret;

	if (ch && (ch->c.nr_runs == SNAP_APPEND_MAX_RUNS ||
		   (src && ch->c.payload == SNAP_APPEND_CHUNK_DATA))) {
		ret = flush_open(a, err);
		if (ret)
			return ret;
		ch = NULL;
	}
	if (!ch) {
		ch = a->open = new_chunk(a, SNAP_APPEND_PAGES, err);
		if (!ch)
			return -ENOMEM;
	}
	if (src) {
		cnt = MIN(cnt, (SNAP_APPEND_CHUNK_DATA - ch->c.payload) / SNAP_PAGE_SIZE);
		ch->iov[ch->nr_iov++] =
		    (struct iovec){.iov_base = (void *)src, .iov_len = cnt * SNAP_PAGE_SIZE};
		ch->c.payload += cnt * SNAP_PAGE_SIZE;
		a->f->data_pages += cnt;
	} else {
		a->f->zero_pages += cnt;
	}
	ch->c.runs[ch->c.nr_runs++] = (struct snap_append_run){
	    .first = first,
	    .count = (uint32_t)cnt,
	    .region = (uint16_t)r,
	    .flags = src ? 0 : SNAP_APPEND_RUN_ZERO,
	};
	snap_bitmap_set_range(a->seen[r], first, cnt);
	return (int64_t)cnt;
}

/* Sink: pages [first, first + n) of region r from src, hashed and appended. */
static int sink_write(void *ctx, unsigned int r, uint64_t first, uint64_t n, const uint8_t *src,
		      struct error *err)
{
	struct actx *a = ctx;
	int64_t got;
	uint64_t i;

	for (i = 0; i < n; i++)
		a->hashes[r][first + i] = snap_page_hash(src + i * SNAP_PAGE_SIZE);
	for (; n; n -= (uint64_t)got, first += (uint64_t)got, src += got * SNAP_PAGE_SIZE) {
		got = add_run(a, r, first, n, src, err);
		if (got < 0)
			return (int)got;
	}
	return 0;
}

/* Sink: pages [first, first + n) of region r are zero: a run without data. */
static int sink_zeros(void *ctx, unsigned int r, uint64_t first, uint64_t n, struct error *err)
{
	struct actx *a = ctx;
	int64_t got;
	uint64_t i;

	for (i = 0; i < n; i++)
		a->hashes[r][first + i] = a->zero_hash;
	for (; n; n -= (uint64_t)got, first += (uint64_t)got) {
		got = add_run(a, r, first, n, NULL, err);
		if (got < 0)
			return (int)got;
	}
	return 0;
}

/* Sink: a pass ends; everything queued lands, and the chunks are free again. */
static int sink_drain(void *ctx, struct error *err)
{
	struct actx *a = ctx;
	int ret = flush_open(a, err), ret2 = snap_ioq_drain(&a->ioq, err);

	a->nr_busy = 0;
	a->pass++;
	return ret ? ret : ret2;
}

static const struct snap_sink_ops append_sink_ops = {
    .write = sink_write,
    .zeros = sink_zeros,
    .drain = sink_drain,
};

static int alloc_ctx(struct actx *a, struct error *err)
{
	uint8_t zero[SNAP_PAGE_SIZE] = {0};
	unsigned int r;

	snap_ioq_init(&a->ioq, &a->f->io);
	a->rep->io_engine = snap_ioq_engine(&a->ioq);
	a->zero_hash = snap_page_hash(zero);
	a->pass = 1;
	for (r = 0; r < a->cfg->nr_regions; r++) {
		uint64_t pages = region_pages(a->cfg, r);

		/* calloc: what is never written is never touched. */
		a->hashes[r] = calloc(pages, sizeof(uint64_t));
		a->seen[r] = calloc(SNAP_BITMAP_WORDS(pages), sizeof(uint64_t));
		if (!a->hashes[r] || !a->seen[r])
			return err_set(err, -ENOMEM, "out of memory for page hashes");
	}
	return 0;
}

static void free_ctx(struct actx *a)
{
	unsigned int i;

	/* Before the chunks go: writes from them may be in flight. */
	snap_ioq_exit(&a->ioq);
	for (i = 0; i < a->nr_chunks; i++)
		free(a->chunks[i]);
	free(a->chunks);
	for (i = 0; i < SNAP_MAX_REGIONS; i++) {
		free(a->hashes[i]);
		free(a->seen[i]);
	}
}

static int write_header(struct actx *a, struct error *err)
{
	struct snap_append_header h = {.version = SNAP_APPEND_VERSION, .cfg = *a->cfg};
	struct chunk *ch = new_chunk(a, 0, err); /* only its aligned page is used */

	if (!ch)
		return -ENOMEM;
	h.started_ns = snap_real_ns();
	snap_append_header_encode(&h, ch->hdr);
	a->f->file_bytes = SNAP_APPEND_HDR_SIZE;
	return snap_ioq_write(&a->ioq, ch->hdr, SNAP_APPEND_HDR_SIZE, 0, err);
}

static int write_state(struct actx *a, uint8_t *state, size_t used, struct error *err)
{
	struct chunk *ch = new_chunk(a, SNAP_APPEND_STATE, err);

	if (!ch)
		return -ENOMEM;
	ch->c.state_used = used;
	ch->c.payload = ALIGN_UP((uint64_t)used, SNAP_PAGE_SIZE);
	ch->iov[ch->nr_iov++] = (struct iovec){.iov_base = state, .iov_len = ch->c.payload};
	return append_chunk(a, ch, err);
}

/* END: totals and each region's digest, from the hash of every page's last record. */
static int write_end(struct actx *a, struct error *err)
{
	struct chunk *ch = new_chunk(a, SNAP_APPEND_END, err);
	struct snap_append_end *e;
	unsigned int r;

	if (!ch)
		return -ENOMEM;
	e = &ch->c.end;
	e->data_pages = a->f->data_pages;
	e->zero_pages = a->f->zero_pages;
	e->end_off = a->f->file_bytes;
	e->passes = a->rep->nr_passes;
	e->flags = a->rep->converged ? 1 : 0;
	e->downtime_us = a->rep->downtime_us;
	e->pause_ns = a->rep->pause_realtime_ns;
	e->digest_algo = SNAP_DIGEST_XXH3_TREE;
	for (r = 0; r < a->cfg->nr_regions; r++) {
		uint64_t pages = region_pages(a->cfg, r);

		/* The engine hands over every page in pass 1: a gap would be its bug. */
		if (snap_bitmap_count(a->seen[r], pages) != pages)
			return err_set(
			    err, -EPROTO, "region %s: %llu pages were never written",
			    a->cfg->regions[r].id,
			    (unsigned long long)(pages - snap_bitmap_count(a->seen[r], pages)));
		e->digest[r] = a->rep->digests[r] = snap_digest_tree(a->hashes[r], pages);
	}
	return append_chunk(a, ch, err);
}

int snap_append_write(struct snap_append_file *f, struct snap_vm *vm,
		      const struct snap_options *opts, struct snap_report *rep, struct error *err)
{
	struct actx a = {.f = f, .cfg = &vm->cfg, .rep = rep};
	struct snap_sink sink = {.ctx = &a, .ops = &append_sink_ops};
	struct snap_precopy_opts po = {.limits = opts};
	struct snap_stage own = {0};
	uint64_t state_cap = snap_state_area_size(vm->cfg.vcpus), t0 = snap_mono_us();
	uint8_t *state = NULL;
	size_t state_used = 0;
	int ret;

	memset(rep, 0, sizeof(*rep));
	f->file_bytes = f->data_pages = f->zero_pages = f->chunks = 0;
	ret = snap_config_check(&vm->cfg, err);
	if (!ret)
		ret = alloc_ctx(&a, err);
	if (!ret && !opts->stage)
		ret = snap_stage_alloc(&own, SNAP_STAGE_BYTES, err);
	if (!ret) {
		state = aligned_alloc(SNAP_PAGE_SIZE, state_cap);
		if (!state)
			ret = err_set(err, -ENOMEM, "out of memory for the VM state");
		else
			memset(state, 0, state_cap);
	}
	if (!ret)
		ret = write_header(&a, err);
	if (ret) {
		/* Nothing started in the VM yet: end the caller's session all the same. */
		struct error ferr;

		vm->ops->finish(vm->ctx, NULL, &ferr);
		goto out;
	}
	po.state = state;
	po.state_cap = state_cap;
	po.state_used = &state_used;
	po.stage = opts->stage ? opts->stage : &own;
	ret = snap_precopy_run(vm, &sink, &po, rep, err);
	/* The VM runs on; the state and END follow the last pass, then durable. */
	if (!ret)
		ret = write_state(&a, state, state_used, err);
	if (!ret)
		ret = write_end(&a, err);
	if (!ret)
		ret = sink_drain(&a, err);
	if (!ret && fdatasync(f->io.fd))
		ret = err_errno(err, errno, "%s: cannot make the file durable", f->io.path);
out:
	rep->bytes_written = rep->image_size = f->file_bytes;
	rep->total_us = snap_mono_us() - t0;
	snap_stage_free(&own); /* as the image writer: after the file is durable */
	free_ctx(&a);
	free(state);
	return ret;
}

int snap_append_open(struct snap_append_file *f, const char *path, bool direct, bool force,
		     struct error *err)
{
	struct stat st;
	bool exists = lstat(path, &st) == 0;
	int fd, fl;

	memset(f, 0, sizeof(*f));
	f->io.fd = -1;
	if (strlen(path) >= sizeof(f->io.path))
		return err_set(err, -ENAMETOOLONG, "%s: path too long", path);
	snprintf(f->io.path, sizeof(f->io.path), "%s", path);
	if (exists && !S_ISREG(st.st_mode))
		return err_set(err, -EINVAL, "%s: not a regular file (an append stream grows)",
			       path);
	if (exists && !force)
		return err_set(err, -EEXIST, "%s: exists (--force overwrites it)", path);
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (exists ? 0 : O_EXCL), 0600);
	if (fd < 0)
		return err_errno(err, errno, "%s: cannot create", path);
	f->io.fd = fd;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snap_append_close(f);
		return err_set(err, -EINVAL, "%s: not a regular file", path);
	}
	/* Locked before it is truncated: a file another writer holds is left alone. */
	if (flock(fd, LOCK_EX | LOCK_NB) || ftruncate(fd, 0)) {
		int e = errno;

		snap_append_close(f);
		return err_errno(err, e, "%s: in use or cannot be truncated", path);
	}
	fl = fcntl(fd, F_GETFL);
	if (!direct)
		snprintf(f->direct_why, sizeof(f->direct_why), "asked for buffered writes");
	else if (fl < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT))
		snprintf(f->direct_why, sizeof(f->direct_why),
			 "the file system has no O_DIRECT: %s", strerror(errno));
	else
		f->io.direct = true;
	return 0;
}

void snap_append_close(struct snap_append_file *f)
{
	if (f->io.fd >= 0)
		close(f->io.fd);
	f->io.fd = -1;
}
