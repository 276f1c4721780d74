/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A queue of image writes kept in flight together (io_uring, or libnbd's
 * asynchronous writes for an NBD export: snapshot/nbd.h), so scattered
 * dirty pages reach the device at its queue depth rather than one at a time.
 * Falls back to synchronous writes where io_uring is unavailable.
 *
 * Buffers must stay untouched by the caller until snap_ioq_drain() returns:
 * the writer queues straight from guest memory or its staging buffer.
 */
#ifndef KVMSNAP_IOQ_H
#define KVMSNAP_IOQ_H

#include <liburing.h>
#include <sys/uio.h>

#include "snapshot/image.h"

#define SNAP_IOQ_DEPTH 128

struct snap_ioq_slot {
	const uint8_t *buf;
	size_t len;
	uint64_t off;
	const struct iovec *iov; /* a vectored write: buf is NULL */
	unsigned int nr_iov;
};

struct snap_ioq {
	struct snap_image *img;
	struct io_uring ring;
	bool uring; /* false: synchronous pwrite */
	unsigned int inflight;
	unsigned int nr_free;
	struct snap_ioq_slot slots[SNAP_IOQ_DEPTH];
	struct snap_ioq_slot *free[SNAP_IOQ_DEPTH];
};

/* Never fails: without io_uring, writes are synchronous. */
void snap_ioq_init(struct snap_ioq *q, struct snap_image *img);
/* Queue one write; may wait for an earlier one to finish. 0 or -errno. */
int snap_ioq_write(struct snap_ioq *q, const void *buf, size_t len, uint64_t off,
		   struct error *err);
/*
 * Queue one write of nr_iov buffers laid end to end from off (the append
 * stream's chunks: a header and runs of guest pages). iov, too, must stay
 * untouched until snap_ioq_drain(). 0 or -errno.
 */
int snap_ioq_writev(struct snap_ioq *q, const struct iovec *iov, unsigned int nr_iov, uint64_t off,
		    struct error *err);
/* Wait for every queued write. 0, or the first error. */
int snap_ioq_drain(struct snap_ioq *q, struct error *err);
/* Drain (errors ignored) and release the ring. */
void snap_ioq_exit(struct snap_ioq *q);
const char *snap_ioq_engine(const struct snap_ioq *q);

#endif
