// SPDX-License-Identifier: GPL-2.0
/*
 * Image I/O at absolute offsets. With O_DIRECT the kernel wants buffer,
 * offset and length 4096-aligned; other requests go through an aligned
 * bounce buffer, so callers never need to care.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/align.h"
#include "lib/le.h"
#include "snapshot/image.h"
#include "snapshot/nbd.h"

#define BOUNCE_MAX (1024 * 1024)

static bool is_aligned(const void *buf, size_t len, uint64_t off)
{
	return (uintptr_t)buf % SNAP_PAGE_SIZE == 0 && len % SNAP_PAGE_SIZE == 0 &&
	       off % SNAP_PAGE_SIZE == 0;
}

static int io_err(struct snap_image *img, int e, const char *op, size_t len, uint64_t off,
		  struct error *err)
{
	return err_set(err, -e, "image %s: %s of %zu bytes at offset %llu failed: %s", img->path,
		       op, len, (unsigned long long)off, strerror(e));
}

static int raw_pread(struct snap_image *img, uint8_t *buf, size_t len, uint64_t off,
		     struct error *err)
{
	size_t done = 0;

	if (img->nbd)
		return snap_nbd_pread(img->nbd, buf, len, off, err);
	while (done < len) {
		ssize_t n = pread(img->fd, buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return io_err(img, errno, "read", len, off, err);
		if (n == 0)
			return err_set(err, -EIO, "image %s: unexpected end at offset %llu",
				       img->path, (unsigned long long)(off + done));
		done += (size_t)n;
	}
	return 0;
}

static int raw_pwrite(struct snap_image *img, const uint8_t *buf, size_t len, uint64_t off,
		      struct error *err)
{
	size_t done = 0;

	if (img->nbd)
		return snap_nbd_pwrite(img->nbd, buf, len, off, false, err);
	while (done < len) {
		ssize_t n = pwrite(img->fd, buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return io_err(img, n < 0 ? errno : EIO, "write", len, off, err);
		done += (size_t)n;
	}
	return 0;
}

static int check_range(struct snap_image *img, size_t len, uint64_t off, struct error *err)
{
	/* Before the header is known (image_size 0), open reads only the first blocks. */
	if (img->hdr.image_size && (off > img->hdr.image_size || len > img->hdr.image_size - off))
		return err_set(err, -EINVAL,
			       "image %s: access of %zu bytes at %llu is outside the image",
			       img->path, len, (unsigned long long)off);
	return 0;
}

/* The aligned window of at most BOUNCE_MAX bytes that covers the start of [off, off + len). */
static void window(size_t len, uint64_t off, uint64_t *start, size_t *head, size_t *span, size_t *n)
{
	*start = ALIGN_DOWN(off, SNAP_PAGE_SIZE);
	*head = (size_t)(off - *start);
	*span = ALIGN_UP(*head + len, (size_t)SNAP_PAGE_SIZE);
	if (*span > BOUNCE_MAX)
		*span = BOUNCE_MAX;
	*n = len < *span - *head ? len : *span - *head;
}

/* Big enough for the first (and so the largest) window. */
static uint8_t *bounce_alloc(size_t len, uint64_t off, struct error *err)
{
	uint64_t start;
	size_t head, span, n;
	uint8_t *b;

	window(len, off, &start, &head, &span, &n);
	b = aligned_alloc(SNAP_PAGE_SIZE, span);
	if (!b)
		err_set(err, -ENOMEM, "out of memory for an I/O bounce buffer");
	return b;
}

int snap_image_pread(struct snap_image *img, void *buf, size_t len, uint64_t off, struct error *err)
{
	uint8_t *p = buf, *bounce;
	int ret = check_range(img, len, off, err);

	if (ret)
		return ret;
	if (!img->direct || is_aligned(buf, len, off))
		return raw_pread(img, buf, len, off, err);
	bounce = bounce_alloc(len, off, err);
	if (!bounce)
		return -ENOMEM;
	while (len && !ret) {
		uint64_t start;
		size_t head, span, n;

		window(len, off, &start, &head, &span, &n);
		ret = raw_pread(img, bounce, span, start, err);
		memcpy(p, bounce + head, n);
		p += n;
		off += n;
		len -= n;
	}
	free(bounce);
	return ret;
}

int snap_image_read_u64s(struct snap_image *img, uint64_t *out, uint64_t n, uint64_t off,
			 struct error *err)
{
	int ret = snap_image_pread(img, out, n * 8, off, err);
	uint64_t i;

	/* In place: entry i's bytes are where entry i goes. */
	for (i = 0; !ret && i < n; i++)
		out[i] = get_le64((const uint8_t *)&out[i]);
	return ret;
}

int snap_image_pwrite(struct snap_image *img, const void *buf, size_t len, uint64_t off,
		      struct error *err)
{
	const uint8_t *p = buf;
	uint8_t *bounce;
	int ret = check_range(img, len, off, err);

	if (ret)
		return ret;
	if (!img->direct || is_aligned(buf, len, off))
		return raw_pwrite(img, buf, len, off, err);
	bounce = bounce_alloc(len, off, err);
	if (!bounce)
		return -ENOMEM;
	while (len && !ret) {
		uint64_t start;
		size_t head, span, n;

		window(len, off, &start, &head, &span, &n);
		/* Blocks only partly covered keep their other bytes. */
		if (head)
			ret = raw_pread(img, bounce, SNAP_PAGE_SIZE, start, err);
		if (!ret && (head + n) % SNAP_PAGE_SIZE && (!head || span > SNAP_PAGE_SIZE))
			ret = raw_pread(img, bounce + span - SNAP_PAGE_SIZE, SNAP_PAGE_SIZE,
					start + span - SNAP_PAGE_SIZE, err);
		if (ret)
			break;
		memcpy(bounce + head, p, n);
		ret = raw_pwrite(img, bounce, span, start, err);
		p += n;
		off += n;
		len -= n;
	}
	free(bounce);
	return ret;
}
