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
/*
 * Bytes in flight at most. The engine re-arms a chunk's dirty logging when
 * it queues the chunk, and a page the guest writes between that and the
 * write reaching the device is handed over again in the next pass. With
 * up to 128 writes of 8 MiB queued, pass 2 of a 1 GiB guest dirtying
 * 50 pages/ms found 34 dirty pages per ms of pass 1; with 16 MiB (or 8) in
 * writes of 1 MiB, 27-28, where the guest's own half (the pages behind the
 * copy) is 25; pass 1 was no slower (Documentation/benchmarks.md). At
 * 2 GB/s, 16 MiB is 8 ms of writes.
 */
#define SNAP_IOQ_MAX_BYTES (16ULL << 20)

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
	uint64_t inflight_bytes, max_bytes; /* max_bytes 0: only the slots bound it */
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
