// SPDX-License-Identifier: GPL-2.0
/* The NBD target backend: see nbd.h. */
#include "snapshot/nbd.h"

#include <errno.h>
#include <libnbd.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/align.h"

/* Larger requests are split: servers may refuse more than 32 MiB in one. */
#define NBD_MAX_REQUEST (8U << 20)

struct nbd_req {
	struct snap_nbd *n;
	bool busy;
	int error; /* errno the server (or libnbd) gave it, 0 when it succeeded */
	uint64_t off;
	size_t len;
	uint8_t *copy; /* writev: the buffers laid end to end */
	size_t copy_cap;
};

struct snap_nbd {
	struct nbd_handle *h;
	char uri[PATH_MAX];
	bool can_fua;
	bool dead;     /* lost or timed out: no more calls into libnbd but close */
	bool lost;     /* a request failed with ENOTCONN: the server went away */
	char why[256]; /* why it is dead */
	int dead_errno;
	unsigned int timeout_ms;
	unsigned int inflight;
	struct nbd_req req[SNAP_NBD_DEPTH];
	/* The synchronous request: here, so that a late callback never finds it gone. */
	struct nbd_req sync;
	int first_error; /* of a queued write since the last drain */
	uint64_t error_off;
	size_t error_len;
};

bool snap_nbd_is_uri(const char *path)
{
	return !strncmp(path, "nbd://", 6) || !strncmp(path, "nbd+unix://", 11) ||
	       !strncmp(path, "nbds://", 7) || !strncmp(path, "nbds+unix://", 12);
}

/* libnbd's last error, as one line. */
static const char *nbd_why(char *buf, size_t len)
{
	const char *e = nbd_get_error();
	char *p;

	snprintf(buf, len, "%s", e ? e : "unknown libnbd error");
	for (p = buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return buf;
}

static int dead_err(struct snap_nbd *n, struct error *err)
{
	return err_set(err, -n->dead_errno, "image %s: %s", n->uri, n->why);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The connection is gone: every request in flight is failed here, and
 * libnbd is not asked again, so it can touch none of their buffers.
 */
static int kill_conn(struct snap_nbd *n, int e, struct error *err)
{
	unsigned int i;

	n->dead = true;
	n->dead_errno = e;
	for (i = 0; i < SNAP_NBD_DEPTH; i++)
		n->req[i].busy = false;
	n->sync.busy = false;
	n->inflight = 0;
	if (!n->first_error)
		n->first_error = e;
	return dead_err(n, err);
}

static int lost(struct snap_nbd *n, const char *why, struct error *err)
{
	snprintf(n->why, sizeof(n->why), "the NBD connection was lost: %s", why);
	return kill_conn(n, ENOTCONN, err);
}

/*
 * Make progress on the connection once. The deadline runs from *t0, which
 * moves on whenever a request finishes: a slow server that keeps answering
 * is not timed out, one that stops is.
 */
static int poll_once(struct snap_nbd *n, uint64_t *t0, struct error *err)
{
	uint64_t spent = mono_ms() - *t0;
	unsigned int before = n->inflight;
	char msg[200];
	int r;

	if (spent >= n->timeout_ms) {
		snprintf(n->why, sizeof(n->why),
			 "the NBD server did not answer within %u ms; the connection is dropped",
			 n->timeout_ms);
		return kill_conn(n, ETIMEDOUT, err);
	}
	r = nbd_poll(n->h, (int)(n->timeout_ms - spent));
	if (r < 0 || n->lost || nbd_aio_is_dead(n->h) || nbd_aio_is_closed(n->h))
		return lost(n, r < 0 ? nbd_why(msg, sizeof(msg)) : "the server closed it", err);
	if (n->inflight < before)
		*t0 = mono_ms();
	return 0;
}

/* Wait until req is done (the deadline counts from now). */
static int wait_req(struct snap_nbd *n, struct nbd_req *req, struct error *err)
{
	uint64_t t0 = mono_ms();
	int ret;

	while (req->busy) {
		ret = poll_once(n, &t0, err);
		if (ret)
			return ret;
	}
	return 0;
}

static int req_done(void *user_data, int *error)
{
	struct nbd_req *req = user_data;
	struct snap_nbd *n = req->n;

	if (!req->busy) /* failed already, when the connection died */
		return 1;
	req->busy = false;
	req->error = *error;
	n->lost = n->lost || *error == ENOTCONN || *error == ESHUTDOWN;
	/* The synchronous request reports its own error. */
	if (*error && !n->first_error && req != &n->sync) {
		n->first_error = *error;
		n->error_off = req->off;
		n->error_len = req->len;
	}
	n->inflight--;
	return 1; /* retire the command: no nbd_aio_command_completed() needed */
}

static int connect_uri(struct snap_nbd *n, struct error *err)
{
	uint64_t t0 = mono_ms();
	char msg[200];

	n->h = nbd_create();
	if (!n->h)
		return err_set(err, -ENOMEM, "%s: %s", n->uri, nbd_why(msg, sizeof(msg)));
	/* Asynchronous connect: an unreachable host fails at the deadline, not TCP's. */
	if (nbd_aio_connect_uri(n->h, n->uri) < 0)
		return err_set(err, -ECONNREFUSED, "%s: cannot connect: %s", n->uri,
			       nbd_why(msg, sizeof(msg)));
	while (nbd_aio_is_connecting(n->h)) {
		uint64_t spent = mono_ms() - t0;

		if (spent >= n->timeout_ms)
			return err_set(err, -ETIMEDOUT,
				       "%s: no answer from the NBD server in %u ms", n->uri,
				       n->timeout_ms);
		if (nbd_poll(n->h, (int)(n->timeout_ms - spent)) < 0)
			return err_set(err, -ECONNREFUSED, "%s: cannot connect: %s", n->uri,
				       nbd_why(msg, sizeof(msg)));
	}
	if (!nbd_aio_is_ready(n->h))
		return err_set(err, -ECONNREFUSED, "%s: cannot connect: %s", n->uri,
			       nbd_why(msg, sizeof(msg)));
	return 0;
}

static unsigned int timeout_ms(void)
{
	const char *s = getenv("KVMSNAP_NBD_TIMEOUT_MS");
	char *end;
	unsigned long v;

	if (!s || !*s)
		return SNAP_NBD_TIMEOUT_MS;
	v = strtoul(s, &end, 10);
	return *end || !v || v > INT_MAX ? SNAP_NBD_TIMEOUT_MS : (unsigned int)v;
}

int snap_nbd_open(const char *uri, bool rdwr, struct snap_nbd **out, uint64_t *size,
		  struct error *err)
{
	struct snap_nbd *n = calloc(1, sizeof(*n));
	char msg[200];
	int64_t sz;
	int ret, i;

	*out = NULL;
	if (!n)
		return err_set(err, -ENOMEM, "out of memory");
	if (strlen(uri) >= sizeof(n->uri)) {
		free(n);
		return err_set(err, -ENAMETOOLONG, "NBD URI is too long");
	}
	strcpy(n->uri, uri);
	n->timeout_ms = timeout_ms();
	for (i = 0; i < SNAP_NBD_DEPTH; i++)
		n->req[i].n = n;
	ret = connect_uri(n, err);
	if (!ret) {
		sz = nbd_get_size(n->h);
		if (sz < 0)
			ret = err_set(err, -EIO, "%s: cannot get the export size: %s", uri,
				      nbd_why(msg, sizeof(msg)));
		else
			*size = (uint64_t)sz;
	}
	/* Refused before anything is written: nothing sent there could be made durable. */
	if (!ret && rdwr && nbd_is_read_only(n->h) == 1)
		ret = err_set(err, -EROFS, "%s: the NBD export is read-only", uri);
	if (!ret && rdwr && nbd_can_flush(n->h) != 1)
		ret = err_set(err, -EOPNOTSUPP,
			      "%s: the NBD server does not support flush, so no write to it can be "
			      "made durable",
			      uri);
	if (ret) {
		snap_nbd_close(n);
		return ret;
	}
	n->can_fua = nbd_can_fua(n->h) == 1;
	*out = n;
	return 0;
}

void snap_nbd_close(struct snap_nbd *n)
{
	unsigned int i;

	if (!n)
		return;
	if (n->h && !n->dead && nbd_aio_is_ready(n->h)) {
		struct error ignored;

		snap_nbd_drain(n, &ignored);
		/* Queued, not waited for (nbd_shutdown() could block): close ends it anyway. */
		if (!n->dead)
			nbd_aio_disconnect(n->h, 0);
	}
	if (n->h)
		nbd_close(n->h);
	for (i = 0; i < SNAP_NBD_DEPTH; i++)
		free(n->req[i].copy);
	free(n);
}

static int req_err(struct snap_nbd *n, int e, const char *op, size_t len, uint64_t off,
		   struct error *err)
{
	return err_set(err, -e, "image %s: %s of %zu bytes at offset %llu failed: %s", n->uri, op,
		       len, (unsigned long long)off, strerror(e));
}

/* A request of libnbd's that could not even be queued. */
static int submit_err(struct snap_nbd *n, const char *op, struct error *err)
{
	char msg[200];

	if (nbd_aio_is_dead(n->h)) {
		snprintf(n->why, sizeof(n->why), "the NBD connection was lost: %s",
			 nbd_why(msg, sizeof(msg)));
		return kill_conn(n, ENOTCONN, err);
	}
	return err_set(err, -EIO, "image %s: cannot send a %s: %s", n->uri, op,
		       nbd_why(msg, sizeof(msg)));
}

/* One synchronous request of at most NBD_MAX_REQUEST bytes. */
static int sync_req(struct snap_nbd *n, bool write, void *buf, size_t len, uint64_t off,
		    uint32_t flags, struct error *err)
{
	struct nbd_req *req = &n->sync;
	nbd_completion_callback cb = {.callback = req_done, .user_data = req};
	int64_t cookie;
	int ret;

	*req = (struct nbd_req){.n = n, .busy = true, .off = off, .len = len};
	/* req_done() counts it out of the queue's writes in flight. */
	n->inflight++;
	cookie = write ? nbd_aio_pwrite(n->h, buf, len, off, cb, flags)
		       : nbd_aio_pread(n->h, buf, len, off, cb, flags);
	if (cookie < 0) {
		n->inflight--;
		return submit_err(n, write ? "write" : "read", err);
	}
	ret = wait_req(n, req, err);
	if (!ret && n->lost)
		ret = lost(n, "the server closed it", err);
	if (!ret && req->error)
		ret = req_err(n, req->error, write ? "write" : "read", len, off, err);
	return ret;
}

int snap_nbd_pread(struct snap_nbd *n, void *buf, size_t len, uint64_t off, struct error *err)
{
	uint8_t *p = buf;
	int ret = 0;

	if (n->dead)
		return dead_err(n, err);
	while (len && !ret) {
		size_t c = MIN(len, (size_t)NBD_MAX_REQUEST);

		ret = sync_req(n, false, p, c, off, 0, err);
		p += c;
		off += c;
		len -= c;
	}
	return ret;
}

int snap_nbd_pwrite(struct snap_nbd *n, const void *buf, size_t len, uint64_t off, bool fua,
		    struct error *err)
{
	const uint8_t *p = buf;
	int ret = 0;

	if (n->dead)
		return dead_err(n, err);
	while (len && !ret) {
		size_t c = MIN(len, (size_t)NBD_MAX_REQUEST);

		ret = sync_req(n, true, (void *)p, c, off,
			       fua && n->can_fua ? LIBNBD_CMD_FLAG_FUA : 0, err);
		p += c;
		off += c;
		len -= c;
	}
	/* Without FUA, a flush makes it durable. */
	if (!ret && fua && !n->can_fua)
		ret = snap_nbd_flush(n, err);
	return ret;
}

int snap_nbd_flush(struct snap_nbd *n, struct error *err)
{
	struct nbd_req *req = &n->sync;
	nbd_completion_callback cb = {.callback = req_done, .user_data = req};
	int ret;

	/* A flush covers only the writes that completed before it was sent. */
	ret = snap_nbd_drain(n, err);
	if (ret)
		return ret;
	*req = (struct nbd_req){.n = n, .busy = true};
	n->inflight++;
	if (nbd_aio_flush(n->h, cb, 0) < 0) {
		n->inflight--;
		return submit_err(n, "flush", err);
	}
	ret = wait_req(n, req, err);
	if (!ret && n->lost)
		ret = lost(n, "the server closed it", err);
	if (!ret && req->error)
		ret = err_set(err, -req->error, "image %s: the NBD server failed to flush: %s",
			      n->uri, strerror(req->error));
	return ret;
}

/* A free slot, once a write in flight has finished if all are busy. */
static int get_slot(struct snap_nbd *n, struct nbd_req **out, struct error *err)
{
	uint64_t t0 = mono_ms();
	unsigned int i;
	int ret;

	for (;;) {
		if (n->dead)
			return dead_err(n, err);
		for (i = 0; i < SNAP_NBD_DEPTH; i++) {
			if (!n->req[i].busy) {
				*out = &n->req[i];
				return 0;
			}
		}
		ret = poll_once(n, &t0, err);
		if (ret)
			return ret;
	}
}

static int queue(struct snap_nbd *n, struct nbd_req *req, const void *buf, size_t len, uint64_t off,
		 struct error *err)
{
	nbd_completion_callback cb = {.callback = req_done, .user_data = req};

	req->busy = true;
	req->error = 0;
	req->off = off;
	req->len = len;
	n->inflight++;
	if (nbd_aio_pwrite(n->h, buf, len, off, cb, 0) < 0) {
		req->busy = false;
		n->inflight--;
		return submit_err(n, "write", err);
	}
	return 0;
}

/* The first failure of a write that has finished, reported once. */
static int queued_error(struct snap_nbd *n, struct error *err)
{
	int e = n->first_error;

	if (n->lost && !n->dead)
		return lost(n, "the server closed it", err);
	if (!e)
		return 0;
	n->first_error = 0;
	if (n->dead)
		return dead_err(n, err);
	return req_err(n, e, "write", n->error_len, n->error_off, err);
}

int snap_nbd_aio_pwrite(struct snap_nbd *n, const void *buf, size_t len, uint64_t off,
			struct error *err)
{
	const uint8_t *p = buf;
	struct nbd_req *req;
	int ret = queued_error(n, err);

	while (!ret && len) {
		size_t c = MIN(len, (size_t)NBD_MAX_REQUEST);

		ret = get_slot(n, &req, err);
		if (!ret)
			ret = queue(n, req, p, c, off, err);
		p += c;
		off += c;
		len -= c;
	}
	return ret;
}

int snap_nbd_aio_pwritev(struct snap_nbd *n, const struct iovec *iov, unsigned int nr_iov,
			 uint64_t off, struct error *err)
{
	struct nbd_req *req;
	size_t len = 0, pos = 0;
	unsigned int i;
	int ret = queued_error(n, err);

	for (i = 0; i < nr_iov; i++)
		len += iov[i].iov_len;
	if (!ret && len > NBD_MAX_REQUEST) {
		/* Never from the writer (its writes are 8 MiB at most): one piece at a time. */
		for (i = 0; !ret && i < nr_iov; off += iov[i].iov_len, i++)
			ret = snap_nbd_aio_pwrite(n, iov[i].iov_base, iov[i].iov_len, off, err);
		return ret;
	}
	if (!ret)
		ret = get_slot(n, &req, err);
	if (ret)
		return ret;
	/* NBD has no vectored write: the slot's own buffer, kept for the next one. */
	if (req->copy_cap < len) {
		free(req->copy);
		req->copy_cap = 0;
		req->copy = malloc(len);
		if (!req->copy)
			return err_set(err, -ENOMEM, "out of memory for an NBD write");
		req->copy_cap = len;
	}
	for (i = 0; i < nr_iov; pos += iov[i].iov_len, i++)
		memcpy(req->copy + pos, iov[i].iov_base, iov[i].iov_len);
	return queue(n, req, req->copy, len, off, err);
}

int snap_nbd_drain(struct snap_nbd *n, struct error *err)
{
	uint64_t t0 = mono_ms();
	int ret = 0;

	while (!ret && n->inflight && !n->dead)
		ret = poll_once(n, &t0, err);
	if (ret) {
		n->first_error = 0;
		return ret;
	}
	return n->dead ? dead_err(n, err) : queued_error(n, err);
}
