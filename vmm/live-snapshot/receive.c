// SPDX-License-Identifier: GPL-2.0
/*
 * The manager's side of `kvmsnap snapshot --via-stream`: it gives the VM the
 * write end of a socketpair, then reads page records (snapshot/stream.h) and
 * places each page in its slot. It never maps guest memory; every byte it
 * reads is the VM's, and checked before it is used.
 */
#include "live-snapshot/receive.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "live-snapshot/begin.h"
#include "sandbox/lockdown.h"
#include "snapshot/stream.h"
#include "state/state.h"
#include "util/util.h"

#define READ_TIMEOUT_MS 60000 /* the VM writes at least this often: a pass marker */
#define NR_BUFS		8     /* page buffers the image writes may be in flight from */
#define BUF_BYTES	(SNAP_REC_MAX_PAGES * SNAP_PAGE_SIZE)

struct receiver {
	int fd;
	struct snap_stream_writer *w;
	struct snap_report *rep;
	uint8_t *bufs[NR_BUFS];
	unsigned int next_buf;
	uint64_t pass_t0;
};

/* Exactly len bytes of the stream; the VM ending it early is an error. */
static int read_exact(int fd, void *buf, size_t len, struct error *err)
{
	uint8_t *p = buf;

	while (len) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, READ_TIMEOUT_MS) == 0)
			return err_set(err, -ETIMEDOUT, "stream: nothing from the VM for %d s",
				       READ_TIMEOUT_MS / 1000);
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_errno(err, errno, "stream");
		if (!n)
			return err_set(err, -EPIPE,
				       "stream: the VM ended it before its last record");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A buffer no write is in flight from: after a full round, wait for them all. */
static uint8_t *free_buf(struct receiver *rc, struct error *err)
{
	if (rc->next_buf == NR_BUFS) {
		if (snap_stream_writer_drain(rc->w, err))
			return NULL;
		rc->next_buf = 0;
	}
	return rc->bufs[rc->next_buf++];
}

static void end_pass(struct receiver *rc)
{
	struct snap_report *rep = rc->rep;

	if (rep->nr_passes)
		rep->passes[rep->nr_passes - 1].duration_us = (now_ns() / 1000) - rc->pass_t0;
}

/* PASS: a new pass begins; the report keeps what the manager saw of each. */
static void new_pass(struct receiver *rc)
{
	struct snap_report *rep = rc->rep;

	end_pass(rc);
	if (rep->nr_passes < SNAP_MAX_PASSES)
		memset(&rep->passes[rep->nr_passes++], 0, sizeof(rep->passes[0]));
	rc->pass_t0 = now_ns() / 1000;
}

static int receive_pages(struct receiver *rc, const struct snap_rec *r, struct error *err)
{
	uint8_t *buf = free_buf(rc, err);
	struct snap_pass *p;
	int ret;

	if (!buf)
		return -EIO;
	ret = read_exact(rc->fd, buf, r->count * SNAP_PAGE_SIZE, err);
	if (!ret)
		ret = snap_stream_writer_pages(rc->w, r->region, r->first, r->count, buf, err);
	if (!ret && rc->rep->nr_passes) {
		p = &rc->rep->passes[rc->rep->nr_passes - 1];
		p->dirty_pages += r->count;
		p->bytes += r->count * SNAP_PAGE_SIZE;
	}
	return ret;
}

/* Every record up to END; *state_used gets the size of the VM state received. */
static int receive_all(struct receiver *rc, const struct snap_image *img,
		       const struct snap_config *cfg, size_t *state_used, struct error *err)
{
	uint8_t hdr[SNAP_REC_SIZE], end[SNAP_REC_END_SIZE];
	bool have_state = false;
	struct snap_rec r;
	int ret;

	for (;;) {
		ret = read_exact(rc->fd, hdr, sizeof(hdr), err);
		if (!ret)
			ret = snap_rec_decode(hdr, cfg, img->layout.state_size, &r, err);
		if (ret)
			return ret;
		switch (r.type) {
		case SNAP_REC_PASS:
			new_pass(rc);
			break;
		case SNAP_REC_PAGES:
			ret = receive_pages(rc, &r, err);
			break;
		case SNAP_REC_STATE:
			if (have_state)
				return err_set(err, -EPROTO, "stream: two VM states");
			ret = read_exact(rc->fd, snap_stream_writer_state(rc->w), r.count, err);
			*state_used = r.count;
			have_state = true;
			break;
		case SNAP_REC_END:
			ret = read_exact(rc->fd, end, sizeof(end), err);
			if (ret)
				return ret;
			if (!have_state)
				return err_set(err, -EPROTO,
					       "stream: it ended without the VM state");
			end_pass(rc);
			snap_rec_end_decode(end, rc->rep);
			return 0;
		}
		if (ret)
			return ret;
	}
}

static int begin(struct ctl_conn *conn, int vm_end, struct snapshot_begin *b, struct error *err)
{
	struct json_object *args = json_object_new_object(), *r = NULL;
	char msg[sizeof(err->msg)];
	int ret;

	json_object_object_add(args, "stream", json_object_new_boolean(1));
	ret = ctl_conn__send(conn, "snapshot-begin", args, vm_end, msg, sizeof(msg));
	if (!ret)
		ret = ctl_conn__reply(conn, "snapshot-begin", &r, NULL, 0, NULL, msg, sizeof(msg));
	json_object_put(args);
	if (ret)
		return err_set(err, ret, "%s", msg);
	ret = snapshot_begin__check_stream(r, b, err);
	json_object_put(r);
	return ret;
}

static struct json_object *stream_args(const struct snap_options *l)
{
	struct json_object *a = json_object_new_object();

	json_object_object_add(a, "threshold", json_object_new_uint64(l->threshold));
	json_object_object_add(a, "max_downtime_ms", json_object_new_uint64(l->max_downtime_ms));
	json_object_object_add(a, "max_time_ms", json_object_new_uint64(l->max_time_ms));
	json_object_object_add(a, "max_passes", json_object_new_uint64(l->max_passes));
	json_object_object_add(a, "max_throttle", json_object_new_uint64(l->max_throttle));
	json_object_object_add(a, "dirty_limit", json_object_new_uint64(l->dirty_limit));
	return a;
}

int manager__receive_stream(struct ctl_conn *conn, const struct manager_opts *o,
			    const struct sandbox_user *lock_down, struct snap_report *rep,
			    struct snap_config *cfg, bool *session, struct error *err)
{
	struct receiver rc = {.fd = -1, .rep = rep};
	struct snap_image img = {.fd = -1};
	struct snapshot_begin b;
	struct json_object *args = NULL, *r = NULL;
	char msg[sizeof(err->msg)];
	size_t state_used = 0;
	int sv[2], ret, i;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return err_errno(err, errno, "cannot create the stream");
	rc.fd = sv[0];
	ret = begin(conn, sv[1], &b, err);
	close(sv[1]); /* the VM has its own now: EOF reaches us when it is done */
	*session = !ret;
	/* The VM's word is checked before the image is even opened. */
	if (!ret)
		ret = snap_image_prepare(o->image, &b.cfg, &o->target, &img, err);
	if (!ret)
		ret = manager__choose_slot(o, &img, err);
	if (!ret)
		ret = snap_stream_writer_open(&rc.w, &img, &b.cfg, b.metadata, rep, err);
	for (i = 0; !ret && i < NR_BUFS; i++) {
		rc.bufs[i] = aligned_alloc(SNAP_PAGE_SIZE, BUF_BYTES);
		if (!rc.bufs[i])
			ret = err_set(err, -ENOMEM, "out of memory for the stream buffers");
	}
	/* Everything privileged is open: the socket, the stream, the image. */
	if (!ret && lock_down) {
		ret = lockdown__apply(lock_down, SECCOMP_MANAGER, err);
		if (ret)
			err_prefix(err, "cannot lock the snapshot manager down");
	}
	if (!ret) {
		args = stream_args(&o->snap);
		ret = ctl_conn__send(conn, "snapshot-stream", args, -1, msg, sizeof(msg));
		if (ret)
			err_set(err, ret, "%s", msg);
	}
	if (!ret)
		ret = receive_all(&rc, &img, &b.cfg, &state_used, err);
	/* The stream request's own verdict comes after the stream. */
	if (!ret) {
		ret = ctl_conn__reply(conn, "snapshot-stream", &r, NULL, 0, NULL, msg, sizeof(msg));
		if (ret)
			err_set(err, ret, "%s", msg);
	}
	/* Decoded as restore would: a VM that sends garbage never gets a complete image. */
	if (!ret &&
	    vm_state__check(snap_stream_writer_state(rc.w), state_used, b.cfg.vcpus, true, err))
		ret = err_prefix(err, "the VM sent a state that restore would refuse");
	if (!ret)
		ret = snap_stream_writer_finish(rc.w, state_used, err);
	if (!ret && cfg)
		*cfg = b.cfg;
	rep->io_engine = "stream";
	snap_stream_writer_close(rc.w);
	for (i = 0; i < NR_BUFS; i++)
		free(rc.bufs[i]);
	json_object_put(args);
	json_object_put(r);
	close(rc.fd);
	if (snap_image_is_open(&img))
		snap_image_close(&img);
	return ret;
}
