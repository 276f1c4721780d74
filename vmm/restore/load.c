// SPDX-License-Identifier: GPL-2.0
/*
 * Eager restore: the data areas read into guest memory by a few threads in
 * large pieces, each page hashed on arrival; and the VM state loaded. See
 * restore.h. The parallel reader also serves lazy.c (internal.h).
 */
#include "restore/internal.h"
#include "restore/restore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "state/state.h"
#include "util/util.h"

#define LOAD_THREADS 4 /* reads in flight; the CPU side (hashing) is light */

/* ---- reading data areas: eager restore, and lazy.c ---- */

size_t restore__pieces_for(uint64_t len)
{
	return (size_t)((len + LOAD_CHUNK - 1) / LOAD_CHUNK);
}

void restore__add_pieces(struct loader *ld, uint8_t *dst, uint64_t off, uint64_t len,
			 uint64_t *hashes, const char *what)
{
	uint64_t o;

	for (o = 0; o < len; o += LOAD_CHUNK) {
		struct load_piece *p = &ld->pieces[ld->nr_pieces++];

		p->dst = dst + o;
		p->off = off + o;
		p->len = (size_t)MIN(LOAD_CHUNK, len - o);
		p->hashes = hashes ? hashes + o / PAGE_SIZE : NULL;
		p->what = what;
	}
}

/* Read one piece in full; drop O_DIRECT if the target refuses it here. */
static int read_piece(struct loader *ld, const struct load_piece *p)
{
	int fd = ld->fd;
	size_t done = 0;
	ssize_t n;

	if (fd < 0 && ld->img) {
		struct error err;
		int ret;

		pthread_mutex_lock(&ld->img_lock);
		ret = snap_image_pread(ld->img, p->dst, p->len, p->off, &err);
		pthread_mutex_unlock(&ld->img_lock);
		return ret;
	}
	while (done < p->len) {
		n = pread(fd, p->dst + done, p->len - done, (off_t)(p->off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && (fcntl(fd, F_GETFL) & O_DIRECT)) {
			/* Racing threads may both clear it: harmless. */
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_DIRECT);
			continue;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		done += (size_t)n;
	}
	return 0;
}

static void *load_thread(void *arg)
{
	struct loader *ld = arg;
	const struct load_piece *p;
	size_t i;
	int ret;

	while (!__atomic_load_n(&ld->error, __ATOMIC_RELAXED)) {
		i = __atomic_fetch_add(&ld->next, 1, __ATOMIC_RELAXED);
		if (i >= ld->nr_pieces)
			break;
		p = &ld->pieces[i];
		ret = read_piece(ld, p);
		if (ret) {
			int zero = 0;

			if (__atomic_compare_exchange_n(&ld->error, &zero, ret, false,
							__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
				ld->bad_piece = i;
			break;
		}
		/* Hash while the data is hot in the cache; the tree is built at the end. */
		if (p->hashes)
			snap_digest_pages(p->dst, p->len / PAGE_SIZE, p->hashes);
	}
	return NULL;
}

int restore__run_loaders(struct loader *ld, const char *path, unsigned int *threads,
			 struct error *err)
{
	pthread_t t[LOAD_THREADS];
	const struct load_piece *p;
	unsigned int n = 0, i;

	for (i = 0; i < LOAD_THREADS && i < ld->nr_pieces; i++) {
		if (pthread_create(&t[n], NULL, load_thread, ld))
			break;
		n++;
	}
	if (!n)
		load_thread(ld); /* no thread at all: read here */
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	if (threads)
		*threads = n ? n : 1;
	if (!ld->error)
		return 0;
	p = &ld->pieces[ld->bad_piece];
	return err_set(
	    err, ld->error, "image %s: cannot read %zu bytes at offset %" PRIu64 " (%s): %s", path,
	    p->len, p->off, p->what,
	    ld->error == -ENODATA ? "unexpected end of the image" : strerror(-ld->error));
}

/* ---- eager ---- */

/* A zero page between two runs costs less read along than as a read apart. */
#define ZERO_GAP_PAGES 64

/*
 * The slot's page digest table of region i, if it is the one the footer's
 * digest was made of; NULL otherwise (then every page is read).
 */
static uint64_t *read_page_table(struct restore_image *ri, unsigned int i, uint64_t pages)
{
	const struct snap_section *s = snap_layout_section(&ri->img.layout, i);
	uint64_t *t = malloc(pages * sizeof(uint64_t));
	struct error err;

	if (!t || snap_image_read_u64s(&ri->img, t, pages, s->hash_off, &err) ||
	    snap_digest_tree(t, pages) != ri->footer.digest[i]) {
		free(t);
		return NULL;
	}
	return t;
}

/* Are pages [first, first + n) of r holes of its memfd (zero, nothing allocated)? */
static bool all_hole(const struct mem_region *r, uint64_t first, uint64_t n)
{
	off_t data = lseek(r->fd, (off_t)(first * PAGE_SIZE), SEEK_DATA);

	return r->fd >= 0 &&
	       (data < 0 ? errno == ENXIO : (uint64_t)data >= (first + n) * PAGE_SIZE);
}

/*
 * Region i into pieces: only the pages the snapshot did not record as the
 * zero page, where the table is trusted and the memory there is a hole;
 * skipped pages get the zero page's hash. Returns the bytes to read.
 */
static uint64_t add_region_pieces(struct loader *ld, struct restore_image *ri, struct mem_region *r,
				  unsigned int i, uint64_t *hashes)
{
	static const uint8_t zero_page[PAGE_SIZE];
	uint64_t pages = r->size / PAGE_SIZE;
	uint64_t data_off = snap_layout_section(&ri->img.layout, i)->data_off;
	uint64_t *t = read_page_table(ri, i, pages), zero_hash, p = 0, q, z, bytes = 0;

	if (!t) {
		restore__add_pieces(ld, r->host, data_off, r->size, hashes, r->name);
		return r->size;
	}
	zero_hash = snap_page_hash(zero_page);
	while (p < pages) {
		for (z = p; z < pages && t[z] == zero_hash; z++)
			;
		if (z > p && all_hole(r, p, z - p)) {
			for (; p < z; p++)
				hashes[p] = zero_hash;
			continue;
		}
		/* A read from p: data, and zero runs that are short or not holes. */
		for (q = p;;) {
			while (q < pages && t[q] != zero_hash)
				q++;
			for (z = q; z < pages && t[z] == zero_hash; z++)
				;
			if (z == q ||
			    ((z == pages || z - q > ZERO_GAP_PAGES) && all_hole(r, q, z - q)))
				break;
			q = z;
		}
		restore__add_pieces(ld, (uint8_t *)r->host + p * PAGE_SIZE,
				    data_off + p * PAGE_SIZE, (q - p) * PAGE_SIZE, hashes + p,
				    r->name);
		bytes += (q - p) * PAGE_SIZE;
		p = q;
	}
	free(t);
	return bytes;
}

static int check_digests(const struct restore_image *ri, uint64_t *const *hashes,
			 struct mem_registry *mem, struct error *err)
{
	unsigned int i;

	for (i = 0; i < mem->nr_regions; i++) {
		uint64_t d = snap_digest_tree(hashes[i], mem->regions[i].size / PAGE_SIZE);

		if (d != ri->footer.digest[i])
			return err_set(
			    err, -EBADMSG,
			    "image %s: region %s: the memory read back has digest %016" PRIx64
			    ", the footer %016" PRIx64
			    ": the image is corrupted or was changed during the restore",
			    ri->img.path, mem->regions[i].name, d, ri->footer.digest[i]);
	}
	return 0;
}

int restore__load_eager(struct restore_image *ri, struct mem_registry *mem,
			struct restore_load_stats *st, struct error *err)
{
	struct loader ld = {
	    .fd = ri->img.fd, .img = &ri->img, .img_lock = PTHREAD_MUTEX_INITIALIZER};
	uint64_t *hashes[MEM_MAX_REGIONS] = {0};
	uint64_t t0 = now_ns();
	size_t n = 0;
	unsigned int i;
	int ret = 0;

	memset(st, 0, sizeof(*st));
	/* Reads are split at LOAD_CHUNK, and separated by more than ZERO_GAP_PAGES. */
	for (i = 0; i < mem->nr_regions; i++)
		n += restore__pieces_for(mem->regions[i].size) +
		     mem->regions[i].size / PAGE_SIZE / (ZERO_GAP_PAGES + 1) + 2;
	ld.pieces = calloc(n, sizeof(*ld.pieces));
	for (i = 0; ld.pieces && i < mem->nr_regions; i++) {
		struct mem_region *r = &mem->regions[i];

		hashes[i] = malloc(r->size / PAGE_SIZE * sizeof(uint64_t));
		if (!hashes[i])
			break;
		st->bytes += add_region_pieces(&ld, ri, r, i, hashes[i]);
	}
	if (!ld.pieces || i < mem->nr_regions) {
		ret = err_set(err, -ENOMEM, "out of memory for restoring %u regions",
			      mem->nr_regions);
		goto out;
	}
	st->direct = ld.fd >= 0 && (fcntl(ld.fd, F_GETFL) & O_DIRECT);
	ret = restore__run_loaders(&ld, ri->img.path, &st->threads, err);
	st->read_ns = now_ns() - t0;
	st->direct = st->direct && (fcntl(ld.fd, F_GETFL) & O_DIRECT);
	if (ret)
		goto out;
	ret = check_digests(ri, hashes, mem, err);
out:
	for (i = 0; i < MEM_MAX_REGIONS; i++)
		free(hashes[i]);
	free(ld.pieces);
	return ret;
}

/* ---- state ---- */

int restore__load_state(struct restore_image *ri, struct kvm *kvm,
			const struct vm_state_devices *devs, enum vm_clock_mode clock,
			struct error *err)
{
	int ret = vm_state__restore(kvm, devs, clock, ri->state, ri->state_len, err);

	return ret ? err_prefix(err, "image %s: cannot restore the VM state", ri->img.path) : 0;
}
