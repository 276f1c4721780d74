// SPDX-License-Identifier: GPL-2.0
/* Write combining for the image (combine.h). */
#include "snapshot/combine.h"

#include <errno.h>
#include <stdlib.h>

struct snap_combine_block {
	struct snap_combine_block *next;
	struct iovec iov[SNAP_COMBINE_MAX_IOV];
};

void snap_combine_init(struct snap_combine *c, struct snap_ioq *q)
{
	*c = (struct snap_combine){.ioq = q};
}

int snap_combine_flush(struct snap_combine *c, struct error *err)
{
	int ret;

	if (!c->nr)
		return 0;
	if (c->nr == 1) {
		/* A plain write: the array can serve the next one. */
		ret = snap_ioq_write(c->ioq, c->cur->iov[0].iov_base, c->len, c->off, err);
	} else {
		ret = snap_ioq_writev(c->ioq, c->cur->iov, c->nr, c->off, err);
		/* In flight: the array is the queue's until the next reset. */
		c->cur->next = c->used;
		c->used = c->cur;
		c->cur = NULL;
	}
	c->nr = 0;
	c->len = 0;
	return ret;
}

int snap_combine_add(struct snap_combine *c, const void *buf, size_t len, uint64_t off,
		     struct error *err)
{
	int ret;

	if (c->nr && (off != c->off + c->len || c->len + len > SNAP_COMBINE_MAX_BYTES ||
		      c->nr == SNAP_COMBINE_MAX_IOV)) {
		ret = snap_combine_flush(c, err);
		if (ret)
			return ret;
	}
	if (!c->cur) {
		c->cur = malloc(sizeof(*c->cur));
		if (!c->cur)
			return err_set(err, -ENOMEM, "out of memory for a combined write");
	}
	if (!c->nr)
		c->off = off;
	c->cur->iov[c->nr++] = (struct iovec){.iov_base = (void *)buf, .iov_len = len};
	c->len += len;
	/* A full one goes now: it can only be flushed by the next add anyway. */
	if (c->len >= SNAP_COMBINE_MAX_BYTES || c->nr == SNAP_COMBINE_MAX_IOV)
		return snap_combine_flush(c, err);
	return 0;
}

static void free_blocks(struct snap_combine_block *b)
{
	while (b) {
		struct snap_combine_block *next = b->next;

		free(b);
		b = next;
	}
}

void snap_combine_reset(struct snap_combine *c)
{
	free_blocks(c->used);
	c->used = NULL;
}

void snap_combine_exit(struct snap_combine *c)
{
	snap_combine_reset(c);
	free(c->cur);
	c->cur = NULL;
	c->nr = 0;
	c->len = 0;
}
