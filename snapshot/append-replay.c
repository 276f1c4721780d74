// SPDX-License-Identifier: GPL-2.0
/*
 * Replay an append stream (append.h) into per-region buffers, the last
 * record of a page winning, and check that it is whole: for the tests, and
 * for anyone who wants to know that a benchmark's baseline wrote everything.
 * The file is not trusted: each header is decoded and checked before its
 * counts or offsets are used.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/append.h"
#include "snapshot/bitmap.h"
#include "snapshot/state.h"

struct replay {
	struct snap_append_replay *r;
	int fd;
	const char *path;
	uint64_t size, off;
	uint64_t data_pages, zero_pages;
	struct error *err;
};

static int read_at(struct replay *p, void *buf, uint64_t len, uint64_t off)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = pread(p->fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_errno(p->err, errno, "%s: read at %llu", p->path,
					 (unsigned long long)(off + done));
		if (n == 0)
			return err_set(p->err, -EPROTO, "%s: truncated at %llu", p->path,
				       (unsigned long long)(off + done));
		done += (uint64_t)n;
	}
	return 0;
}

static int alloc_regions(struct replay *p)
{
	const struct snap_config *cfg = &p->r->hdr.cfg;
	unsigned int i;

	for (i = 0; i < cfg->nr_regions; i++) {
		uint64_t pages = cfg->regions[i].size / SNAP_PAGE_SIZE;

		p->r->mem[i] = calloc(1, cfg->regions[i].size);
		p->r->seen[i] = calloc(SNAP_BITMAP_WORDS(pages), sizeof(uint64_t));
		if (!p->r->mem[i] || !p->r->seen[i])
			return err_set(p->err, -ENOMEM, "%s: no memory for region %s (%llu bytes)",
				       p->path, cfg->regions[i].id,
				       (unsigned long long)cfg->regions[i].size);
	}
	return 0;
}

/* A PAGES chunk's runs, its payload at data_off: page data read in place, zero runs cleared. */
static int replay_pages(struct replay *p, const struct snap_append_chunk *c, uint64_t data_off)
{
	unsigned int i;
	int ret;

	for (i = 0; i < c->nr_runs; i++) {
		const struct snap_append_run *run = &c->runs[i];
		uint8_t *dst = p->r->mem[run->region] + run->first * SNAP_PAGE_SIZE;
		uint64_t len = (uint64_t)run->count * SNAP_PAGE_SIZE;

		if (run->flags & SNAP_APPEND_RUN_ZERO) {
			memset(dst, 0, len);
			p->zero_pages += run->count;
		} else {
			ret = read_at(p, dst, len, data_off);
			if (ret)
				return ret;
			data_off += len;
			p->data_pages += run->count;
		}
		snap_bitmap_set_range(p->r->seen[run->region], run->first, run->count);
	}
	return 0;
}

static int replay_state(struct replay *p, const struct snap_append_chunk *c, uint64_t data_off)
{
	struct snap_state_reader sr;
	int ret;

	if (p->r->state)
		return err_set(p->err, -EPROTO, "%s: a second state chunk (%llu)", p->path,
			       (unsigned long long)c->seq);
	p->r->state = malloc(c->payload);
	if (!p->r->state)
		return err_set(p->err, -ENOMEM, "%s: no memory for the state", p->path);
	p->r->state_used = c->state_used;
	ret = read_at(p, p->r->state, c->payload, data_off);
	if (!ret)
		ret = snap_state_open(&sr, p->r->state, c->state_used, p->err);
	return ret ? err_prefix(p->err, "%s: state chunk", p->path) : 0;
}

/* END: last, at the file's end, and everything it says equal to what was read. */
static int check_end(struct replay *p, const struct snap_append_chunk *c, uint64_t off)
{
	const struct snap_config *cfg = &p->r->hdr.cfg;
	const struct snap_append_end *e = &c->end;
	unsigned int i;

	if (off + SNAP_APPEND_HDR_SIZE != p->size)
		return err_set(p->err, -EPROTO, "%s: %llu bytes after the end chunk", p->path,
			       (unsigned long long)(p->size - off - SNAP_APPEND_HDR_SIZE));
	if (e->end_off != off)
		return err_set(p->err, -EPROTO, "%s: end chunk says it is at %llu, it is at %llu",
			       p->path, (unsigned long long)e->end_off, (unsigned long long)off);
	if (!p->r->state)
		return err_set(p->err, -EPROTO, "%s: no state chunk before the end", p->path);
	if (e->data_pages != p->data_pages || e->zero_pages != p->zero_pages)
		return err_set(p->err, -EPROTO,
			       "%s: end chunk counts %llu data and %llu zero pages, the file "
			       "holds %llu and %llu",
			       p->path, (unsigned long long)e->data_pages,
			       (unsigned long long)e->zero_pages, (unsigned long long)p->data_pages,
			       (unsigned long long)p->zero_pages);
	if (e->passes < p->r->max_pass)
		return err_set(p->err, -EPROTO,
			       "%s: end chunk says %u passes, a chunk is of pass %u", p->path,
			       e->passes, p->r->max_pass);
	for (i = 0; i < cfg->nr_regions; i++) {
		uint64_t pages = cfg->regions[i].size / SNAP_PAGE_SIZE;
		uint64_t seen = snap_bitmap_count(p->r->seen[i], pages);

		if (seen != pages)
			return err_set(p->err, -EPROTO,
				       "%s: region %s: %llu of %llu pages never written", p->path,
				       cfg->regions[i].id, (unsigned long long)(pages - seen),
				       (unsigned long long)pages);
		if (snap_digest_pages(p->r->mem[i], pages, NULL) != e->digest[i])
			return err_set(p->err, -EPROTO,
				       "%s: region %s does not match the end chunk's digest",
				       p->path, cfg->regions[i].id);
	}
	p->r->end = *e;
	return 0;
}

static int replay_chunks(struct replay *p, struct snap_append_chunk *c, uint8_t *buf)
{
	uint64_t seq;
	int ret;

	for (seq = 0;; seq++) {
		uint64_t off = p->off;

		if (off == p->size)
			return err_set(
			    p->err, -EPROTO,
			    "%s: truncated after %llu chunks: no end chunk (the snapshot "
			    "did not finish)",
			    p->path, (unsigned long long)seq);
		if (p->size - off < SNAP_APPEND_HDR_SIZE)
			return err_set(p->err, -EPROTO,
				       "%s: truncated in chunk header %llu at %llu", p->path,
				       (unsigned long long)seq, (unsigned long long)off);
		ret = read_at(p, buf, SNAP_APPEND_HDR_SIZE, off);
		if (!ret)
			ret = snap_append_chunk_decode(buf, &p->r->hdr.cfg, c, p->err);
		if (ret)
			return err_prefix(p->err, "%s: at %llu", p->path, (unsigned long long)off);
		if (c->seq != seq)
			return err_set(p->err, -EPROTO,
				       "%s: chunk %llu at %llu says it is chunk %llu", p->path,
				       (unsigned long long)seq, (unsigned long long)off,
				       (unsigned long long)c->seq);
		if (c->payload > p->size - off - SNAP_APPEND_HDR_SIZE)
			return err_set(
			    p->err, -EPROTO,
			    "%s: truncated: chunk %llu's %llu bytes of data run past the "
			    "end",
			    p->path, (unsigned long long)seq, (unsigned long long)c->payload);
		p->off = off + SNAP_APPEND_HDR_SIZE + c->payload;
		p->r->chunks++;
		if (c->type == SNAP_APPEND_END)
			return check_end(p, c, off);
		if (c->type == SNAP_APPEND_PAGES && p->r->state)
			return err_set(p->err, -EPROTO, "%s: pages (chunk %llu) after the state",
				       p->path, (unsigned long long)seq);
		if (c->type == SNAP_APPEND_PAGES && c->pass < p->r->max_pass)
			return err_set(p->err, -EPROTO, "%s: chunk %llu of pass %u after pass %u",
				       p->path, (unsigned long long)seq, c->pass, p->r->max_pass);
		if (c->type == SNAP_APPEND_PAGES) {
			p->r->max_pass = c->pass;
			ret = replay_pages(p, c, off + SNAP_APPEND_HDR_SIZE);
		} else {
			ret = replay_state(p, c, off + SNAP_APPEND_HDR_SIZE);
		}
		if (ret)
			return ret;
	}
}

int snap_append_replay(const char *path, struct snap_append_replay *r, struct error *err)
{
	struct replay p = {.r = r, .path = path, .err = err};
	struct snap_append_chunk *c = malloc(sizeof(*c));
	uint8_t *buf = malloc(SNAP_APPEND_HDR_SIZE);
	struct stat st;
	int ret = 0;

	memset(r, 0, sizeof(*r));
	p.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!c || !buf)
		ret = err_set(err, -ENOMEM, "out of memory");
	else if (p.fd < 0)
		ret = err_errno(err, errno, "%s: cannot open", path);
	else if (fstat(p.fd, &st))
		ret = err_errno(err, errno, "%s: cannot stat", path);
	if (ret)
		goto out;
	r->file_bytes = p.size = (uint64_t)st.st_size;
	if (p.size < SNAP_APPEND_HDR_SIZE)
		ret = err_set(err, -EPROTO, "%s: truncated: %llu bytes, no file header", path,
			      (unsigned long long)p.size);
	if (!ret)
		ret = read_at(&p, buf, SNAP_APPEND_HDR_SIZE, 0);
	if (!ret && snap_append_header_decode(buf, &r->hdr, err))
		ret = err_prefix(err, "%s", path);
	if (!ret)
		ret = alloc_regions(&p);
	p.off = SNAP_APPEND_HDR_SIZE;
	if (!ret)
		ret = replay_chunks(&p, c, buf);
out:
	if (p.fd >= 0)
		close(p.fd);
	free(c);
	free(buf);
	return ret;
}

void snap_append_replay_free(struct snap_append_replay *r)
{
	unsigned int i;

	for (i = 0; i < SNAP_MAX_REGIONS; i++) {
		free(r->mem[i]);
		free(r->seen[i]);
	}
	free(r->state);
	memset(r, 0, sizeof(*r));
}
