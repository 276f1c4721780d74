// SPDX-License-Identifier: GPL-2.0
#include "snapshot/ioq.h"

#include <errno.h>
#include <string.h>

#include "lib/align.h"
#include "snapshot/nbd.h"

void snap_ioq_init(struct snap_ioq *q, struct snap_image *img)
{
	unsigned int i;

	memset(q, 0, sizeof(*q));
	q->img = img;
	q->max_bytes = SNAP_IOQ_MAX_BYTES;
	/* An NBD export keeps its own writes in flight (libnbd's asynchronous calls). */
	if (img->nbd)
		return;
	/* Unavailable (old kernel, seccomp, a sysctl): synchronous writes still work. */
	q->uring = io_uring_queue_init(SNAP_IOQ_DEPTH, &q->ring, 0) == 0;
	for (i = 0; i < SNAP_IOQ_DEPTH; i++)
		q->free[q->nr_free++] = &q->slots[i];
}

const char *snap_ioq_engine(const struct snap_ioq *q)
{
	if (q->img && q->img->nbd)
		return "libnbd";
	return q->uring ? "io_uring" : "pwrite";
}

/* Bytes [done, len) of a vectored write, synchronously: a short write's rest, or no ring. */
static int writev_sync(struct snap_ioq *q, const struct iovec *iov, unsigned int nr_iov,
		       uint64_t off, size_t done, struct error *err)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; !ret && i < nr_iov; off += iov[i].iov_len, i++) {
		size_t skip = MIN(done, iov[i].iov_len);

		done -= skip;
		if (skip < iov[i].iov_len)
			ret = snap_image_pwrite(q->img, (const uint8_t *)iov[i].iov_base + skip,
						iov[i].iov_len - skip, off + skip, err);
	}
	return ret;
}

/* Wait for one completion; finish a short write synchronously. */
static int reap_one(struct snap_ioq *q, struct error *err)
{
	struct io_uring_cqe *cqe;
	struct snap_ioq_slot *s;
	int ret, res;

	do {
		ret = io_uring_wait_cqe(&q->ring, &cqe);
	} while (ret == -EINTR);
	if (ret)
		return err_set(err, ret, "image %s: waiting for a write: %s", q->img->path,
			       strerror(-ret));
	s = io_uring_cqe_get_data(cqe);
	res = cqe->res;
	io_uring_cqe_seen(&q->ring, cqe);
	q->inflight--;
	q->inflight_bytes -= s->len;
	q->free[q->nr_free++] = s;
	if (res < 0)
		return err_set(err, res, "image %s: write of %zu bytes at offset %llu failed: %s",
			       q->img->path, s->len, (unsigned long long)s->off, strerror(-res));
	if ((size_t)res < s->len && s->iov)
		return writev_sync(q, s->iov, s->nr_iov, s->off, (size_t)res, err);
	if ((size_t)res < s->len)
		return snap_image_pwrite(q->img, s->buf + res, s->len - res, s->off + res, err);
	return 0;
}

/* A slot for one more write, once an earlier one has finished if all are in flight. */
static int get_slot(struct snap_ioq *q, struct snap_ioq_slot **s, struct io_uring_sqe **sqe,
		    struct error *err)
{
	int ret;

	while (!q->nr_free || (q->max_bytes && q->inflight && q->inflight_bytes >= q->max_bytes)) {
		ret = reap_one(q, err);
		if (ret)
			return ret;
	}
	*sqe = io_uring_get_sqe(&q->ring);
	*s = *sqe ? q->free[--q->nr_free] : NULL;
	return 0;
}

static int submit(struct snap_ioq *q, struct snap_ioq_slot *s, struct error *err)
{
	int ret = io_uring_submit(&q->ring);

	if (ret < 0) {
		q->free[q->nr_free++] = s;
		return err_set(err, ret, "image %s: io_uring submit: %s", q->img->path,
			       strerror(-ret));
	}
	q->inflight++;
	q->inflight_bytes += s->len;
	return 0;
}

int snap_ioq_write(struct snap_ioq *q, const void *buf, size_t len, uint64_t off, struct error *err)
{
	struct io_uring_sqe *sqe;
	struct snap_ioq_slot *s;
	int ret;

	if (q->img->nbd)
		return snap_nbd_aio_pwrite(q->img->nbd, buf, len, off, err);
	/* Unaligned requests need the image's bounce buffer: write them now. */
	if (!q->uring || (uintptr_t)buf % SNAP_PAGE_SIZE || len % SNAP_PAGE_SIZE ||
	    off % SNAP_PAGE_SIZE)
		return snap_image_pwrite(q->img, buf, len, off, err);
	ret = get_slot(q, &s, &sqe, err);
	if (ret)
		return ret;
	if (!s)
		return snap_image_pwrite(q->img, buf, len, off, err);
	*s = (struct snap_ioq_slot){.buf = buf, .len = len, .off = off};
	io_uring_prep_write(sqe, q->img->fd, buf, (unsigned int)len, off);
	io_uring_sqe_set_data(sqe, s);
	return submit(q, s, err);
}

int snap_ioq_writev(struct snap_ioq *q, const struct iovec *iov, unsigned int nr_iov, uint64_t off,
		    struct error *err)
{
	struct io_uring_sqe *sqe;
	struct snap_ioq_slot *s;
	size_t len = 0;
	unsigned int i;
	bool aligned = off % SNAP_PAGE_SIZE == 0;
	int ret;

	if (q->img->nbd)
		return snap_nbd_aio_pwritev(q->img->nbd, iov, nr_iov, off, err);
	for (i = 0; i < nr_iov; i++) {
		len += iov[i].iov_len;
		aligned = aligned && (uintptr_t)iov[i].iov_base % SNAP_PAGE_SIZE == 0 &&
			  iov[i].iov_len % SNAP_PAGE_SIZE == 0;
	}
	/* As snap_ioq_write(): what needs a bounce buffer is written now. */
	if (!q->uring || !aligned)
		return writev_sync(q, iov, nr_iov, off, 0, err);
	ret = get_slot(q, &s, &sqe, err);
	if (ret)
		return ret;
	if (!s)
		return writev_sync(q, iov, nr_iov, off, 0, err);
	*s = (struct snap_ioq_slot){.len = len, .off = off, .iov = iov, .nr_iov = nr_iov};
	io_uring_prep_writev(sqe, q->img->fd, iov, nr_iov, off);
	io_uring_sqe_set_data(sqe, s);
	return submit(q, s, err);
}

int snap_ioq_drain(struct snap_ioq *q, struct error *err)
{
	struct error later;
	int ret, first = 0;

	if (q->img->nbd)
		return snap_nbd_drain(q->img->nbd, err);
	/* Reap everything even after an error: buffers are in flight until then. */
	while (q->inflight) {
		ret = reap_one(q, first ? &later : err);
		if (ret && !first)
			first = ret;
	}
	return first;
}

void snap_ioq_exit(struct snap_ioq *q)
{
	struct error ignored;

	if (q->img && q->img->nbd)
		snap_nbd_drain(q->img->nbd, &ignored);
	if (!q->uring)
		return;
	snap_ioq_drain(q, &ignored);
	io_uring_queue_exit(&q->ring);
	q->uring = false;
}
