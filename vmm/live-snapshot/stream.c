// SPDX-License-Identifier: GPL-2.0
/*
 * The VM side of `kvmsnap snapshot --via-stream`: the precopy engine runs in
 * the VM process, and its sink writes page records (snapshot/stream.h) into
 * the pipe the manager handed over. The manager never sees guest memory.
 */
#include "live-snapshot/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "snapshot/bitmap.h"
#include "snapshot/precopy.h"
#include "snapshot/stream.h"
#include "state/state.h"
#include "util/util.h"

#define STREAM_TIMEOUT_MS 30000 /* a manager that stops reading for this long has failed */

struct stream {
	struct kvm *kvm;
	struct snap_vm vm;
	int fd;
	bool log_was_on, logging, paused;
	uint8_t zeros[SNAP_PAGE_SIZE * 16];
};

/* All of buf into the pipe, waiting at most STREAM_TIMEOUT_MS at a time. */
static int send_all(struct stream *s, const void *buf, size_t len, struct error *err)
{
	const uint8_t *p = buf;

	while (len) {
		struct pollfd pfd = {.fd = s->fd, .events = POLLOUT};
		ssize_t n = send(s->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == ENOTSOCK)
			n = write(s->fd, p, len); /* a pipe: SIGPIPE is ignored in the VM */
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return err_errno(err, errno, "stream to the manager");
		if (poll(&pfd, 1, STREAM_TIMEOUT_MS) == 0)
			return err_set(err, -ETIMEDOUT,
				       "stream to the manager: nothing read for %d s",
				       STREAM_TIMEOUT_MS / 1000);
	}
	return 0;
}

static int send_rec(struct stream *s, uint32_t type, uint32_t region, uint64_t first,
		    uint64_t count, struct error *err)
{
	struct snap_rec r = {.type = type, .region = region, .first = first, .count = count};
	uint8_t hdr[SNAP_REC_SIZE];

	snap_rec_encode(&r, hdr);
	return send_all(s, hdr, sizeof(hdr), err);
}

/* ---- the engine's view of this VM ---- */

static int vm_log_start(void *ctx, bool *prefilled, struct error *err)
{
	struct stream *s = ctx;

	*prefilled = false; /* every page: pass 1 copies them all */
	unsigned int i;
	int ret;

	s->log_was_on = s->kvm->mem.log_dirty;
	ret = s->log_was_on ? 0 : mem__set_log_dirty(&s->kvm->mem, true, err);
	if (ret)
		return ret;
	s->logging = true;
	/* Logging was on already: drop what it gathered, so every page starts clean. */
	for (i = 0; s->log_was_on && i < s->kvm->mem.nr_regions; i++) {
		ret = mem__fetch_dirty(&s->kvm->mem, &s->kvm->mem.regions[i],
				       s->vm.regions[i].dirty, err);
		if (ret)
			return ret;
	}
	return 0;
}

static int vm_fetch_dirty(void *ctx, struct error *err)
{
	struct stream *s = ctx;
	unsigned int i;
	int ret;

	for (i = 0; i < s->kvm->mem.nr_regions; i++) {
		memset(s->vm.regions[i].dirty, 0,
		       mem__region_bitmap_bytes(&s->kvm->mem.regions[i]));
		ret = mem__fetch_dirty(&s->kvm->mem, &s->kvm->mem.regions[i],
				       s->vm.regions[i].dirty, err);
		if (ret)
			return ret;
	}
	return 0;
}

static int vm_pause(void *ctx, uint64_t *latency_us, uint64_t *paused_us, struct error *err)
{
	struct stream *s = ctx;
	uint64_t paused = 0;
	int ret = kvm__pause(s->kvm, latency_us, &paused);

	*paused_us = paused / 1000;
	if (ret && ret != -EALREADY)
		return err_set(err, ret, "cannot pause the VM: %s", strerror(-ret));
	s->paused = !ret; /* paused by someone else: it stays paused */
	return 0;
}

static int vm_save_state(void *ctx, uint8_t *buf, size_t cap, size_t *used, struct error *err)
{
	struct stream *s = ctx;
	struct vm_state_devices devs = {.com1 = s->kvm->com1, .rtc = s->kvm->rtc};

	return vm_state__save(s->kvm, &devs, buf, cap, used, err);
}

static int vm_finish(void *ctx, uint64_t *resumed_us, struct error *err)
{
	struct stream *s = ctx;
	uint64_t resumed = 0;

	(void)err;
	if (s->paused && kvm__resume(s->kvm, &resumed) && !kvm__has_exited(s->kvm))
		pr_warn("snapshot: cannot resume the VM");
	s->paused = false;
	if (resumed_us)
		*resumed_us = (resumed ? resumed : now_ns()) / 1000;
	/* Off would invalidate the dirty trackers, which every fetch here fed. */
	if (s->logging && s->kvm->mem.log_dirty && !mem__log_needed(&s->kvm->mem) &&
	    mem__set_log_dirty(&s->kvm->mem, false, NULL))
		pr_warn("snapshot: cannot turn dirty logging off; the guest runs with it on");
	s->logging = false;
	return 0;
}

static int vm_throttle(void *ctx, unsigned int pct, struct error *err)
{
	struct stream *s = ctx;
	int ret = kvm__set_throttle(s->kvm, pct);

	return ret ? err_set(err, ret, "cannot throttle the vCPUs: %s", strerror(-ret)) : 0;
}

static const struct snap_vm_ops stream_vm_ops = {
    .log_start = vm_log_start,
    .fetch_dirty = vm_fetch_dirty,
    .pause = vm_pause,
    .save_state = vm_save_state,
    .finish = vm_finish,
    .throttle = vm_throttle,
};

/* ---- the sink: records into the pipe ---- */

static int sink_write(void *ctx, unsigned int r, uint64_t first, uint64_t n, const uint8_t *src,
		      struct error *err)
{
	struct stream *s = ctx;
	uint64_t done, cnt;
	int ret = 0;

	for (done = 0; !ret && done < n; done += cnt) {
		cnt = MIN(n - done, SNAP_REC_MAX_PAGES);
		ret = send_rec(s, SNAP_REC_PAGES, r, first + done, cnt, err);
		if (!ret)
			ret = send_all(s, src + done * SNAP_PAGE_SIZE, cnt * SNAP_PAGE_SIZE, err);
	}
	return ret;
}

/* Holes are zeros: sent from a zero buffer, not read (which would allocate them). */
static int sink_zeros(void *ctx, unsigned int r, uint64_t first, uint64_t n, struct error *err)
{
	struct stream *s = ctx;
	uint64_t per = sizeof(s->zeros) / SNAP_PAGE_SIZE, done, cnt, k;
	int ret = 0;

	for (done = 0; !ret && done < n; done += cnt) {
		cnt = MIN(n - done, SNAP_REC_MAX_PAGES);
		ret = send_rec(s, SNAP_REC_PAGES, r, first + done, cnt, err);
		for (k = 0; !ret && k < cnt; k += per)
			ret = send_all(s, s->zeros, MIN(per, cnt - k) * SNAP_PAGE_SIZE, err);
	}
	return ret;
}

static const struct snap_sink_ops stream_sink_ops = {.write = sink_write, .zeros = sink_zeros};

/* A PASS record at the start of each dirty pass; an error shows in the next write. */
static void pass_marker(const struct snap_progress *p, void *arg)
{
	struct stream *s = arg;

	send_rec(s, SNAP_REC_PASS, 0, p->pass + 1, p->remaining_bytes / SNAP_PAGE_SIZE, NULL);
}

static int setup(struct stream *s, struct kvm *kvm, int fd, struct error *err)
{
	struct mem_region *r;
	unsigned int i = 0;

	s->kvm = kvm;
	s->fd = fd;
	/* Never block without a deadline: send_all() polls with one. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	s->vm.ctx = s;
	s->vm.ops = &stream_vm_ops;
	mem__for_each_region (&kvm->mem, r) {
		struct snap_vm_region *vr = &s->vm.regions[i];

		memcpy(s->vm.cfg.regions[i].id, r->name,
		       MIN(strlen(r->name), (size_t)SNAP_REGION_ID_MAX));
		s->vm.cfg.regions[i].size = r->size;
		/* A lazily restored region (no memfd) is read through its mapping. */
		vr->mem = r->host;
		vr->memfd = r->fd;
		vr->size = r->size;
		vr->dirty = calloc(1, mem__region_bitmap_bytes(r));
		if (!vr->dirty)
			return err_set(err, -ENOMEM, "out of memory for the dirty bitmaps");
		i++;
	}
	s->vm.cfg.nr_regions = i;
	s->vm.cfg.vcpus = kvm->nr_cpus;
	return 0;
}

int stream__run(struct kvm *kvm, int fd, const struct snap_options *limits, struct snap_report *rep,
		struct error *err)
{
	struct stream *s = calloc(1, sizeof(*s));
	struct snap_options lim = *limits;
	struct snap_precopy_opts po = {.limits = &lim};
	struct snap_stage stage = {0};
	struct snap_sink sink = {.ops = &stream_sink_ops};
	uint64_t state_cap = snap_state_area_size(kvm->nr_cpus);
	uint8_t *state = malloc(state_cap), end[SNAP_REC_END_SIZE];
	size_t used = 0;
	unsigned int i;
	int ret;

	memset(rep, 0, sizeof(*rep));
	if (!s || !state) {
		ret = err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	ret = setup(s, kvm, fd, err);
	if (!ret)
		ret = snap_stage_alloc(&stage, SNAP_STAGE_BYTES, err);
	if (ret)
		goto out;
	lim.progress = pass_marker;
	lim.progress_arg = s;
	sink.ctx = s;
	po.stage = &stage;
	po.state = state;
	po.state_cap = state_cap;
	po.state_used = &used;
	ret = send_rec(s, SNAP_REC_PASS, 0, 1, 0, err);
	if (!ret)
		ret = snap_precopy_run(&s->vm, &sink, &po, rep, err);
	else
		vm_finish(s, NULL, NULL);
	if (!ret)
		ret = send_rec(s, SNAP_REC_STATE, 0, 0, used, err);
	if (!ret)
		ret = send_all(s, state, used, err);
	if (!ret) {
		snap_rec_end_encode(rep, end);
		ret = send_rec(s, SNAP_REC_END, 0, 0, 0, err);
		if (!ret)
			ret = send_all(s, end, sizeof(end), err);
	}
out:
	snap_stage_free(&stage);
	for (i = 0; s && i < s->vm.cfg.nr_regions; i++)
		free(s->vm.regions[i].dirty);
	free(state);
	free(s);
	return ret;
}
