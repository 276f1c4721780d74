/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Write combining for the image: buffers whose slots follow each other in
 * the image (a run of guest pages, the zeros of a small hole, the next run)
 * go out as one vectored write, so a fragmented region costs a few large
 * writes instead of many small ones. The buffers and the iovec arrays stay
 * untouched until snap_ioq_drain(), as for any queued write.
 */
#ifndef KVMSNAP_COMBINE_H
#define KVMSNAP_COMBINE_H

#include "snapshot/ioq.h"

#define SNAP_COMBINE_MAX_BYTES (1ULL << 20) /* a combined write at most (ioq.h: in flight) */
#define SNAP_COMBINE_MAX_IOV   256	    /* buffers in one write */

struct snap_combine_block;

struct snap_combine {
	struct snap_ioq *ioq;
	uint64_t off, len;		 /* the pending write: image offset and bytes so far */
	unsigned int nr;		 /* its buffers, in cur->iov */
	struct snap_combine_block *cur;	 /* the pending write's iovec array */
	struct snap_combine_block *used; /* arrays handed to the queue since the last reset */
};

void snap_combine_init(struct snap_combine *c, struct snap_ioq *q);

/*
 * len bytes of buf belong at image offset off. Added to the pending write
 * if they continue it and fit; else that one is queued first. 0 or -errno.
 */
int snap_combine_add(struct snap_combine *c, const void *buf, size_t len, uint64_t off,
		     struct error *err);

/* Queue the pending write, if any. 0 or -errno. */
int snap_combine_flush(struct snap_combine *c, struct error *err);

/* After snap_ioq_drain(): the iovec arrays of queued writes may go. */
void snap_combine_reset(struct snap_combine *c);

/* Free everything; the queue must be drained (or torn down) first. */
void snap_combine_exit(struct snap_combine *c);

#endif
