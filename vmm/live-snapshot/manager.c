// SPDX-License-Identifier: GPL-2.0
/* The snapshot manager: see manager.h. */
#include "live-snapshot/manager.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/conn.h"
#include "live-snapshot/begin.h"
#include "live-snapshot/receive.h"
#include "snapshot/append.h"
#include "snapshot/bitmap.h"
#include "snapshot/clock.h"
#include "snapshot/stage.h"
#include "state/state.h"
#include "digest.h"
#include "sandbox/lockdown.h"
#include "util/util.h"

#define MANAGER_TIMEOUT_S 60

struct manager {
	struct ctl_conn *conn;
	struct snap_vm vm;
	struct snapshot_begin layout; /* the VM's reply, checked */
	int fds[1 + SNAP_MAX_REGIONS];
	unsigned int nr_fds;
	const uint8_t *shm; /* the VM's shared area, read-only */
	bool session;	    /* snapshot-begin succeeded, snapshot-end not yet sent */
	const struct manager_opts *o;
	struct snap_image *img;
	struct snap_append_file *append; /* --append: the file written instead of img */
	uint64_t base;		 /* write id in the slot's header before this snapshot; 0: none */
	struct snap_report *rep; /* for why a snapshot was full */
};

static int call(struct manager *m, const char *cmd, struct json_object **reply, struct error *err)
{
	struct json_object *r = NULL;
	char msg[sizeof(err->msg)];
	int ret;

	ret = ctl_conn__call(m->conn, cmd, NULL, &r, NULL, 0, NULL, msg, sizeof(msg));
	if (ret)
		return err_set(err, ret, "%s", msg);
	if (reply)
		*reply = r;
	else
		json_object_put(r);
	return 0;
}

static uint64_t get_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? (uint64_t)json_object_get_uint64(v) : 0;
}

/* cmd with args, which it puts; the reply into *reply, or dropped when reply is NULL. */
static int call_args(struct manager *m, const char *cmd, struct json_object *args,
		     struct json_object **reply, struct error *err)
{
	struct json_object *r = NULL;
	char msg[sizeof(err->msg)];
	int ret = ctl_conn__call(m->conn, cmd, args, &r, NULL, 0, NULL, msg, sizeof(msg));

	json_object_put(args);
	if (reply)
		*reply = r;
	else
		json_object_put(r);
	return ret ? err_set(err, ret, "%s", msg) : 0;
}

/*
 * The bitmaps are copied out of the shared area, which the VM can change at
 * any time: the writer then walks memory nobody else writes, and bits past a
 * region's last page are dropped.
 */
static void copy_bitmaps(struct manager *m)
{
	unsigned int i;

	for (i = 0; i < m->vm.cfg.nr_regions; i++) {
		uint64_t pages = m->vm.cfg.regions[i].size / SNAP_PAGE_SIZE;
		uint64_t *bm = m->vm.regions[i].dirty;

		memcpy(bm, m->shm + m->layout.bitmap_off[i], SNAP_BITMAP_WORDS(pages) * 8);
		if (pages % 64)
			bm[pages / 64] &= (1ULL << (pages % 64)) - 1;
	}
}

static void add_hex64(struct json_object *o, const char *key, uint64_t v)
{
	char hex[17];

	snprintf(hex, sizeof(hex), "%016" PRIx64, v);
	json_object_object_add(o, key, json_object_new_string(hex));
}

/* The image slot this snapshot writes, as the VM's dirty tracker names it. */
static struct json_object *slot_args(const struct snap_image *img)
{
	struct json_object *a = json_object_new_object();
	char uuid[33];
	unsigned int i;

	for (i = 0; i < 16; i++)
		snprintf(uuid + 2 * i, 3, "%02x", img->hdr.uuid[i]);
	json_object_object_add(a, "uuid", json_object_new_string(uuid));
	json_object_object_add(a, "slot", json_object_new_int((int)img->slot));
	return a;
}

/*
 * Logging on. The VM tracks, per image slot, the pages changed since that
 * slot's last snapshot: asked with the slot's current write id (base), it
 * hands them over as pass 1, or says why it cannot.
 */
static int op_log_start(void *ctx, bool *prefilled, struct error *err)
{
	struct manager *m = ctx;
	struct json_object *a, *r = NULL, *v;
	int ret;

	/*
	 * all_dirty: pass 1 re-arms each chunk just before its copy (op_clear),
	 * so the VM may leave every page unprotected until then.
	 */
	/* No image slot to track for: logging on, every page in pass 1. */
	if (m->append) {
		*prefilled = false;
		snprintf(m->rep->full_reason, sizeof(m->rep->full_reason), "append stream");
		a = json_object_new_object();
		json_object_object_add(a, "all_dirty", json_object_new_boolean(1));
		return call_args(m, "snapshot-log", a, NULL, err);
	}
	a = slot_args(m->img);
	json_object_object_add(a, "all_dirty", json_object_new_boolean(1));
	add_hex64(a, "attempt", m->img->hdr.write_id);
	if (m->o->incremental && m->base)
		add_hex64(a, "base", m->base);
	ret = call_args(m, "snapshot-log", a, &r, err);
	if (ret)
		return ret;
	*prefilled = json_object_object_get_ex(r, "incremental", &v) &&
		     json_object_get_boolean(v) && m->o->incremental && m->base;
	if (*prefilled)
		copy_bitmaps(m);
	else if (!m->o->incremental)
		snprintf(m->rep->full_reason, sizeof(m->rep->full_reason), "asked for");
	else if (!m->base)
		snprintf(m->rep->full_reason, sizeof(m->rep->full_reason),
			 "slot %u has never been written", m->img->slot);
	else
		snprintf(m->rep->full_reason, sizeof(m->rep->full_reason), "%s",
			 json_object_object_get_ex(r, "why", &v) ? json_object_get_string(v)
								 : "the VM did not say why");
	json_object_put(r);
	return 0;
}

static int op_fetch_dirty(void *ctx, struct error *err)
{
	struct manager *m = ctx;
	int ret = call(m, "snapshot-dirty", NULL, err);

	if (!ret)
		copy_bitmaps(m);
	return ret;
}

/*
 * The slot is durably complete: the VM may now count changes from this
 * snapshot on. Without this (an old VM, a lost connection) the VM keeps the
 * pages of this snapshot as changed too: the next one is larger, never wrong.
 */
static void commit_tracking(struct manager *m)
{
	struct json_object *a = slot_args(m->img);
	struct error e;

	add_hex64(a, "write_id", m->img->hdr.write_id);
	if (call_args(m, "snapshot-commit", a, NULL, &e))
		pr_warn("snapshot: the VM did not take the new base for incremental snapshots: %s",
			e.msg);
}

int manager__choose_slot(const struct manager_opts *o, struct snap_image *img, struct error *err)
{
	uint32_t slot = o->have_slot ? o->slot : snap_image_next_slot(img);

	if (o->have_slot && slot < img->nr_slots && img->nr_slots > 1 &&
	    slot == snap_image_default_slot(img) &&
	    img->slots[slot].hdr.state == SNAP_STATE_COMPLETE)
		pr_info("snapshot: slot %u holds the newest complete snapshot, and is overwritten",
			slot);
	return snap_image_select_slot(img, slot, true, err);
}

/* Select the slot to write and remember what it holds now. */
static int choose_slot(struct manager *m, struct error *err)
{
	const struct snap_slot_info *si;
	int ret = manager__choose_slot(m->o, m->img, err);

	if (ret)
		return ret;
	si = &m->img->slots[m->img->slot];
	m->base = si->ok && si->hdr.state != SNAP_STATE_EMPTY ? si->hdr.write_id : 0;
	return 0;
}

static int op_pause(void *ctx, uint64_t *latency_us, uint64_t *paused_us, struct error *err)
{
	struct json_object *r;
	int ret = call(ctx, "snapshot-pause", &r, err);

	if (!ret) {
		*latency_us = get_u64(r, "latency_us");
		*paused_us = get_u64(r, "paused_us");
		json_object_put(r);
	}
	return ret;
}

static int op_save_state(void *ctx, uint8_t *buf, size_t cap, size_t *used, struct error *err)
{
	struct manager *m = ctx;
	struct json_object *r;
	int ret = call(m, "snapshot-state", &r, err);

	if (ret)
		return ret;
	*used = get_u64(r, "used");
	json_object_put(r);
	if (*used > cap || *used > m->layout.state_cap)
		return err_set(err, -EPROTO,
			       "the VM state (%zu bytes) does not fit its %zu-byte area", *used,
			       cap);
	memcpy(buf, m->shm + m->layout.state_off, *used);
	/* Decoded as restore would: a VM that sends garbage never gets a complete image. */
	ret = vm_state__check(buf, *used, m->vm.cfg.vcpus, true, err);
	return ret ? err_prefix(err, "the VM sent a state that restore would refuse") : 0;
}

static int op_finish(void *ctx, uint64_t *resumed_us, struct error *err)
{
	struct manager *m = ctx;
	struct json_object *r;
	int ret;

	m->session = false;
	ret = call(m, "snapshot-end", &r, err);
	if (!ret) {
		if (resumed_us)
			*resumed_us = get_u64(r, "resumed_us");
		json_object_put(r);
	}
	return ret;
}

static int op_throttle(void *ctx, unsigned int pct, struct error *err)
{
	struct json_object *a = json_object_new_object();

	json_object_object_add(a, "percent", json_object_new_int((int)pct));
	return call_args(ctx, "snapshot-throttle", a, NULL, err);
}

static int op_clear(void *ctx, unsigned int r, uint64_t first, uint64_t n, struct error *err)
{
	struct json_object *a = json_object_new_object();

	json_object_object_add(a, "region", json_object_new_int((int)r));
	json_object_object_add(a, "first", json_object_new_uint64(first));
	json_object_object_add(a, "pages", json_object_new_uint64(n));
	return call_args(ctx, "snapshot-clear", a, NULL, err);
}

/* {names[i]: us[i] / 1000, ...}: a report's breakdown of some time in ms. */
static struct json_object *ms_json(const char *const *names, const uint64_t *us, size_t n)
{
	struct json_object *o = json_object_new_object();
	size_t i;

	for (i = 0; i < n; i++)
		json_object_object_add(o, names[i], json_object_new_double(us[i] / 1000.0));
	return o;
}

/* Where total_us went outside the passes and the pause. */
static struct json_object *phases_json(const struct snap_report *rep)
{
	static const char *const names[] = {"begin", "log_start", "sink_start", "complete"};
	const uint64_t us[] = {rep->begin_us, rep->log_start_us, rep->sink_start_us,
			       rep->complete_us};

	return ms_json(names, us, ARRAY_SIZE(us));
}

/* Where the downtime went after the final batch (its pass has its own duration). */
static struct json_object *pause_json(const struct snap_report *rep)
{
	static const char *const names[] = {"state", "sink", "unthrottle", "resume"};
	const uint64_t us[] = {rep->pause_state_us, rep->pause_sink_us, rep->pause_unthrottle_us,
			       rep->pause_resume_us};

	return ms_json(names, us, ARRAY_SIZE(us));
}

/* The built-in guests' progress counter (`stats` pages), or 0: how the guest fared meanwhile. */
static uint64_t guest_pages(struct manager *m)
{
	struct json_object *r = NULL;
	struct error e;
	uint64_t pages;

	if (call(m, "stats", &r, &e))
		return 0;
	pages = get_u64(r, "pages");
	json_object_put(r);
	return pages;
}

static const struct snap_vm_ops manager_ops = {
    .log_start = op_log_start,
    .fetch_dirty = op_fetch_dirty,
    .pause = op_pause,
    .save_state = op_save_state,
    .finish = op_finish,
    .throttle = op_throttle,
    .clear = op_clear,
};

/* What the descriptors the VM sent are, for the check of its reply. */
static int describe_fds(const struct manager *m, struct snapshot_fd_info *info, struct error *err)
{
	unsigned int i;

	for (i = 0; i < m->nr_fds; i++) {
		struct stat st;
		int seals = fcntl(m->fds[i], F_GET_SEALS), fl = fcntl(m->fds[i], F_GETFL);

		if (fstat(m->fds[i], &st) || fl < 0)
			return err_errno(err, errno, "snapshot-begin: descriptor %u", i);
		info[i].regular = S_ISREG(st.st_mode);
		info[i].size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
		info[i].size_sealed =
		    seals >= 0 && (seals & F_SEAL_SHRINK) && (seals & F_SEAL_GROW);
		info[i].writable = (fl & O_ACCMODE) != O_RDONLY;
	}
	return 0;
}

/* Check the snapshot-begin reply and its fds, then map them: struct snap_vm. */
static int map_vm(struct manager *m, struct json_object *r, struct error *err)
{
	struct snapshot_fd_info info[1 + SNAP_MAX_REGIONS];
	const struct snapshot_begin *b = &m->layout;
	unsigned int i;
	int ret;

	if (m->nr_fds > ARRAY_SIZE(info))
		return err_set(err, -EPROTO, "snapshot-begin: %u descriptors", m->nr_fds);
	ret = describe_fds(m, info, err);
	if (!ret)
		ret = snapshot_begin__check(r, info, m->nr_fds, &m->layout, err);
	if (ret)
		return ret;
	m->vm.cfg = b->cfg;
	snprintf(m->vm.metadata, sizeof(m->vm.metadata), "%s", b->metadata);
	/* Read-only: the manager can never change guest memory or the VM's bitmaps. */
	m->shm = mmap(NULL, b->shm_size, PROT_READ, MAP_SHARED, m->fds[0], 0);
	if (m->shm == MAP_FAILED) {
		m->shm = NULL;
		return err_errno(err, errno, "cannot map the snapshot area");
	}
	for (i = 0; i < b->cfg.nr_regions; i++) {
		struct snap_vm_region *vr = &m->vm.regions[i];
		uint64_t pages = b->cfg.regions[i].size / SNAP_PAGE_SIZE;

		vr->size = b->cfg.regions[i].size;
		vr->memfd = m->fds[1 + i];
		vr->dirty = calloc(SNAP_BITMAP_WORDS(pages), 8);
		if (!vr->dirty)
			return err_set(err, -ENOMEM, "out of memory for the dirty bitmaps");
		vr->mem = mmap(NULL, vr->size, PROT_READ, MAP_SHARED, vr->memfd, 0);
		if (vr->mem == MAP_FAILED) {
			vr->mem = NULL;
			return err_errno(err, errno, "cannot map region %s", b->cfg.regions[i].id);
		}
	}
	return 0;
}

static void unmap_vm(struct manager *m)
{
	unsigned int i;

	for (i = 0; i < m->vm.cfg.nr_regions; i++) {
		if (m->vm.regions[i].mem)
			munmap((void *)m->vm.regions[i].mem, m->vm.regions[i].size);
		free(m->vm.regions[i].dirty);
	}
	if (m->shm)
		munmap((void *)m->shm, m->layout.shm_size);
	for (i = 0; i < m->nr_fds; i++)
		close(m->fds[i]);
}

static void show_progress(const struct snap_progress *p, void *arg)
{
	(void)arg;
	fprintf(stderr, "\rkvmsnap: pass %u: %" PRIu64 " MiB dirty, %.0f MiB/s        ", p->pass,
		p->remaining_bytes >> 20, p->rate_mib_s);
	fflush(stderr);
}

static double rate_mib_s(uint64_t bytes, uint64_t us)
{
	return us ? (double)bytes / (1 << 20) / ((double)us / 1e6) : 0;
}

/* --append: the file instead of the image slot. bytes_written counts headers and page data. */
static void add_append_json(struct json_object *j, const struct manager_opts *o,
			    const struct snap_append_file *af)
{
	json_object_object_add(j, "format", json_object_new_string("append"));
	json_object_object_add(j, "file", json_object_new_string(o->image));
	json_object_object_add(j, "file_bytes", json_object_new_uint64(af->file_bytes));
	json_object_object_add(j, "pages", json_object_new_uint64(af->data_pages));
	json_object_object_add(j, "zero_pages", json_object_new_uint64(af->zero_pages));
	json_object_object_add(j, "chunks", json_object_new_uint64(af->chunks));
	json_object_object_add(j, "direct", json_object_new_boolean(af->io.direct));
	if (!af->io.direct)
		json_object_object_add(j, "direct_reason", json_object_new_string(af->direct_why));
}

/* af: what went into the append file (--append), or NULL: an image. */
static void print_json(const struct manager_opts *o, const struct snap_config *cfg,
		       const struct snap_report *rep, const struct snap_append_file *af)
{
	struct json_object *j = json_object_new_object(), *passes = json_object_new_array();
	struct json_object *digests = json_object_new_array();
	char hex[DIGEST_HEX_SIZE];
	unsigned int i;

	json_object_object_add(j, "ok", json_object_new_boolean(1));
	if (af) {
		add_append_json(j, o, af);
	} else {
		json_object_object_add(j, "image", json_object_new_string(o->image));
		json_object_object_add(j, "image_size", json_object_new_uint64(rep->image_size));
		json_object_object_add(j, "generation", json_object_new_uint64(rep->generation));
		json_object_object_add(j, "slot", json_object_new_uint64(rep->slot));
		json_object_object_add(
		    j, "mode", json_object_new_string(rep->incremental ? "incremental" : "full"));
		if (!rep->incremental)
			json_object_object_add(j, "full_reason",
					       json_object_new_string(rep->full_reason));
	}
	json_object_object_add(j, "converged", json_object_new_boolean(rep->converged));
	json_object_object_add(j, "stop_reason",
			       json_object_new_string(rep->stop_reason ? rep->stop_reason : ""));
	json_object_object_add(j, "threshold", json_object_new_uint64(rep->threshold));
	json_object_object_add(j, "downtime_ms", json_object_new_double(rep->downtime_us / 1000.0));
	json_object_object_add(j, "pause_latency_us",
			       json_object_new_uint64(rep->pause_latency_us));
	json_object_object_add(j, "total_ms", json_object_new_double(rep->total_us / 1000.0));
	json_object_object_add(j, "bytes_written", json_object_new_uint64(rep->bytes_written));
	if (rep->guest_pages_per_sec)
		json_object_object_add(j, "guest_pages_per_sec",
				       json_object_new_uint64(rep->guest_pages_per_sec));
	if (rep->start_dirty_rate > 0)
		json_object_object_add(j, "start_dirty_mib_s",
				       json_object_new_double(rep->start_dirty_rate / 1048576.0));
	json_object_object_add(j, "io_engine",
			       json_object_new_string(rep->io_engine ? rep->io_engine : ""));
	json_object_object_add(j, "hash_threads", json_object_new_int(rep->hash_threads));
	json_object_object_add(j, "zero_pages_kept", json_object_new_uint64(rep->zero_pages_kept));
	json_object_object_add(j, "phases_ms", phases_json(rep));
	json_object_object_add(j, "pause_ms", pause_json(rep));
	for (i = 0; i < rep->nr_passes; i++) {
		const struct snap_pass *p = &rep->passes[i];
		struct json_object *po = json_object_new_object();

		json_object_object_add(po, "pass", json_object_new_int(i + 1));
		json_object_object_add(po, "final",
				       json_object_new_boolean(i + 1 == rep->nr_passes));
		json_object_object_add(po, "dirty_pages", json_object_new_uint64(p->dirty_pages));
		json_object_object_add(po, "bytes", json_object_new_uint64(p->bytes));
		json_object_object_add(po, "start_ms",
				       json_object_new_double(p->start_us / 1000.0));
		json_object_object_add(po, "cpu_ms", json_object_new_double(p->cpu_us / 1000.0));
		json_object_object_add(po, "duration_ms",
				       json_object_new_double(p->duration_us / 1000.0));
		json_object_object_add(po, "throttle_pct",
				       json_object_new_int((int)p->throttle_pct));
		json_object_object_add(po, "throttle_end_pct",
				       json_object_new_int((int)p->throttle_end_pct));
		json_object_object_add(po, "throttle_raised_at_ms",
				       json_object_new_double(p->throttle_raised_us / 1000.0));
		json_object_object_add(
		    po, "rate_mib_s", json_object_new_double(rate_mib_s(p->bytes, p->duration_us)));
		json_object_array_add(passes, po);
	}
	json_object_object_add(j, "passes", passes);
	for (i = 0; i < cfg->nr_regions; i++) {
		struct json_object *d = json_object_new_object();

		json_object_object_add(d, "region", json_object_new_string(cfg->regions[i].id));
		json_object_object_add(
		    d, "digest", json_object_new_string(digest__format(rep->digests[i], hex)));
		json_object_array_add(digests, d);
	}
	json_object_object_add(j, "digests", digests);
	printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	json_object_put(j);
}

static void print_human(const struct manager_opts *o, const struct snap_report *rep,
			const struct snap_append_file *af)
{
	unsigned int i;

	if (af)
		printf("append stream %s: complete, %" PRIu64 " bytes, %" PRIu64
		       " pages with data, %" PRIu64 " zero, %" PRIu64 " chunks, %s%s%s "
		       "(a benchmark baseline: kvmsnap cannot restore it)\n",
		       o->image, af->file_bytes, af->data_pages, af->zero_pages, af->chunks,
		       af->io.direct ? "O_DIRECT" : "buffered", af->io.direct ? "" : ": ",
		       af->io.direct ? "" : af->direct_why);
	else
		printf("snapshot %s: slot %u, generation %" PRIu64 ", complete, %s%s%s\n", o->image,
		       rep->slot, rep->generation, rep->incremental ? "incremental" : "full",
		       rep->incremental || !rep->full_reason[0] ? "" : ": ", rep->full_reason);
	printf("  %-6s %12s %12s %10s %12s %9s\n", "pass", "dirty pages", "MiB written", "MiB/s",
	       "duration ms", "throttle");
	for (i = 0; i < rep->nr_passes; i++) {
		const struct snap_pass *p = &rep->passes[i];
		char name[16], thr[24];

		snprintf(name, sizeof(name), i + 1 == rep->nr_passes ? "final" : "%u", i + 1);
		/* Raised within the pass: "70>99%". */
		if (p->throttle_end_pct != p->throttle_pct)
			snprintf(thr, sizeof(thr), "%u>%u%%", p->throttle_pct, p->throttle_end_pct);
		else
			snprintf(thr, sizeof(thr), "%u%%", p->throttle_pct);
		printf("  %-6s %12" PRIu64 " %12.1f %10.0f %12.2f %9s\n", name, p->dirty_pages,
		       p->bytes / 1048576.0, rate_mib_s(p->bytes, p->duration_us),
		       p->duration_us / 1000.0, thr);
	}
	printf("downtime %.2f ms (pause %.3f ms), total %.2f s, %s %.1f MiB, %s, %s (%s)\n",
	       rep->downtime_us / 1000.0, rep->pause_latency_us / 1000.0, rep->total_us / 1e6,
	       af ? "file" : "image", rep->image_size / 1048576.0,
	       rep->io_engine ? rep->io_engine : "",
	       rep->converged ? "converged" : "did not converge",
	       rep->stop_reason ? rep->stop_reason : "");
	if (rep->start_dirty_rate > 0)
		printf(
		    "dirty limit: the guest dirtied %.1f MiB/s before pass 1, throttled to %u%%\n",
		    rep->start_dirty_rate / 1048576.0, rep->passes[0].throttle_pct);
	if (rep->guest_pages_per_sec)
		printf("guest progress meanwhile: %" PRIu64 " pages/s (its own counter)\n",
		       rep->guest_pages_per_sec);
}

/*
 * What lasts across the snapshots of a series (--every): one control
 * connection, the image, held open and locked, the lock-down, applied
 * once everything privileged is open, and the stage, faulted in once.
 */
struct series {
	struct ctl_conn conn;
	struct snap_image img;
	struct snap_append_file append; /* --append */
	struct snap_stage stage;
	struct sandbox_user u;
	bool locked_down;
};

static int series_open(const struct manager_opts *o, struct series *s, struct error *err)
{
	char msg[sizeof(err->msg)];
	int ret;

	memset(s, 0, sizeof(*s));
	s->conn.fd = -1;
	s->img.fd = -1;
	s->append.io.fd = -1;
	/* The user database is read before anything is open. */
	if (o->lock_down) {
		ret = user__resolve(o->user, &s->u, err);
		if (ret)
			return ret;
	}
	ret = ctl_conn__open(&s->conn, o->control, MANAGER_TIMEOUT_S, msg, sizeof(msg));
	return ret ? err_set(err, ret, "%s", msg) : 0;
}

static void series_close(struct series *s)
{
	snap_stage_free(&s->stage);
	if (snap_image_is_open(&s->img))
		snap_image_close(&s->img);
	snap_append_close(&s->append);
	ctl_conn__close(&s->conn);
}

/* One snapshot session on the series' connection into its image. */
static int series_take(const struct manager_opts *o, struct series *s, struct snap_report *rep,
		       struct snap_config *cfg, struct error *err)
{
	struct manager m = {0};
	struct snap_options sopts = o->snap;
	struct json_object *r = NULL;
	char msg[sizeof(err->msg)];
	uint64_t g0, g1, t0;
	int ret;

	memset(rep, 0, sizeof(*rep));
	m.conn = &s->conn;
	m.vm.ctx = &m;
	m.vm.ops = &manager_ops;
	m.o = o;
	m.img = &s->img;
	m.append = o->append ? &s->append : NULL;
	ret = ctl_conn__call(m.conn, "snapshot-begin", NULL, &r, m.fds, ARRAY_SIZE(m.fds),
			     &m.nr_fds, msg, sizeof(msg));
	m.session = !ret;
	if (ret) {
		err_set(err, ret, "%s", msg);
		goto out;
	}
	/* The VM's word is checked before the image is even opened: a refusal touches nothing. */
	ret = map_vm(&m, r, err);
	if (!ret && m.append)
		ret = snap_append_open(m.append, o->image, o->target.direct, o->target.force, err);
	else if (!ret && !snap_image_is_open(&s->img))
		ret = snap_image_prepare(o->image, &m.vm.cfg, &o->target, &s->img, err);
	else if (!ret)
		ret = snap_config_compare(&s->img.cfg, &m.vm.cfg, err);
	/* Everything privileged is open: the socket, guest memory, the image. */
	if (!ret && o->lock_down && !s->locked_down) {
		ret = lockdown__apply(&s->u, SECCOMP_MANAGER, err);
		if (ret)
			err_prefix(err, "cannot lock the snapshot manager down");
		s->locked_down = !ret;
	}
	if (ret)
		goto out;
	if (o->progress) {
		sopts.progress = show_progress;
		sopts.progress_arg = &m;
	}
	ret = m.append ? 0 : choose_slot(&m, err);
	/*
	 * One stage for the series: faulting in 64 MiB again for every
	 * checkpoint cost about 16,000 page faults and an munmap each.
	 */
	if (!ret && !s->stage.buf)
		ret = snap_stage_alloc(&s->stage, SNAP_STAGE_BYTES, err);
	if (ret)
		goto out;
	sopts.stage = &s->stage;
	/* snap_write() clears the report: the reason is kept aside. */
	m.rep = calloc(1, sizeof(*m.rep));
	if (!m.rep) {
		ret = err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	g0 = guest_pages(&m);
	t0 = snap_mono_us();
	if (m.append)
		ret = snap_append_write(m.append, &m.vm, &sopts, rep, err);
	else
		ret = snap_write(&s->img, &m.vm, &sopts, rep, err);
	m.session = false; /* both always end the session */
	g1 = guest_pages(&m);
	if (!ret && g0 && g1 > g0 && snap_mono_us() > t0)
		rep->guest_pages_per_sec = (g1 - g0) * 1000000 / (snap_mono_us() - t0);
	if (!ret && !rep->incremental)
		memcpy(rep->full_reason, m.rep->full_reason, sizeof(rep->full_reason));
	if (!ret && !m.append)
		commit_tracking(&m);
	if (o->progress)
		fprintf(stderr, "\r%60s\r", "");
	if (cfg)
		*cfg = m.vm.cfg;
out:
	if (m.session) {
		struct error e2;

		/* Nothing started in the VM yet but the session: end it. */
		op_finish(&m, NULL, &e2);
	}
	json_object_put(r);
	free(m.rep);
	unmap_vm(&m);
	return ret;
}

int manager__take_snapshot(const struct manager_opts *o, struct snap_report *rep,
			   struct snap_config *cfg, struct error *err)
{
	struct series s;
	bool session = false;
	int ret = series_open(o, &s, err);

	if (!ret && o->stream) {
		memset(rep, 0, sizeof(*rep));
		ret = manager__receive_stream(&s.conn, o, o->lock_down ? &s.u : NULL, rep, cfg,
					      &session, err);
		if (session) {
			struct json_object *r = NULL;
			char msg[sizeof(err->msg)];

			/* Nothing started in the VM yet but the session: end it. */
			ctl_conn__call(&s.conn, "snapshot-end", NULL, &r, NULL, 0, NULL, msg,
				       sizeof(msg));
			json_object_put(r);
		}
	} else if (!ret) {
		ret = series_take(o, &s, rep, cfg, err);
	}
	series_close(&s);
	return ret;
}

/* --append: one snapshot into an append stream; what went into the file into *af. */
static int take_append(const struct manager_opts *o, struct snap_report *rep,
		       struct snap_config *cfg, struct snap_append_file *af, struct error *err)
{
	struct series s;
	int ret = series_open(o, &s, err);

	if (!ret)
		ret = series_take(o, &s, rep, cfg, err);
	*af = s.append;
	series_close(&s);
	return ret;
}

/* ---- --every: a checkpoint series ---- */

static volatile sig_atomic_t series_stop;

static void on_stop_signal(int sig)
{
	(void)sig;
	series_stop = 1;
}

/* One line, or one JSON record, per checkpoint. */
static void print_checkpoint(const struct manager_opts *o, unsigned int n,
			     const struct snap_report *rep, const struct error *err)
{
	struct json_object *j;

	if (!o->json) {
		if (err)
			printf("checkpoint %u: failed: %s\n", n, err->msg);
		else
			printf("checkpoint %u: slot %u, generation %" PRIu64 ", %s, %" PRIu64
			       " pages, %.1f MiB, downtime %.2f ms, %.2f s%s\n",
			       n, rep->slot, rep->generation,
			       rep->incremental ? "incremental" : "full",
			       (uint64_t)(rep->bytes_written / SNAP_PAGE_SIZE),
			       rep->bytes_written / 1048576.0, rep->downtime_us / 1000.0,
			       rep->total_us / 1e6, rep->converged ? "" : ", did not converge");
		fflush(stdout);
		return;
	}
	j = json_object_new_object();
	json_object_object_add(j, "checkpoint", json_object_new_uint64(n));
	json_object_object_add(j, "ok", json_object_new_boolean(!err));
	if (err) {
		json_object_object_add(j, "error", json_object_new_string(err->msg));
	} else {
		json_object_object_add(j, "slot", json_object_new_uint64(rep->slot));
		json_object_object_add(j, "generation", json_object_new_uint64(rep->generation));
		json_object_object_add(
		    j, "mode", json_object_new_string(rep->incremental ? "incremental" : "full"));
		if (!rep->incremental)
			json_object_object_add(j, "full_reason",
					       json_object_new_string(rep->full_reason));
		json_object_object_add(
		    j, "pages",
		    json_object_new_uint64((uint64_t)(rep->bytes_written / SNAP_PAGE_SIZE)));
		json_object_object_add(j, "bytes_written",
				       json_object_new_uint64(rep->bytes_written));
		json_object_object_add(j, "downtime_ms",
				       json_object_new_double(rep->downtime_us / 1000.0));
		json_object_object_add(j, "total_ms",
				       json_object_new_double(rep->total_us / 1000.0));
		json_object_object_add(j, "converged", json_object_new_boolean(rep->converged));
	}
	printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
	json_object_put(j);
}

/* The VM still answers on the connection. */
static bool vm_alive(struct series *s)
{
	struct json_object *r = NULL;
	char msg[ERROR_MSG_MAX];
	int ret = ctl_conn__call(&s->conn, "status", NULL, &r, NULL, 0, NULL, msg, sizeof(msg));

	json_object_put(r);
	return !ret;
}

/*
 * Snapshots every o->every_ms until SIGINT or SIGTERM, or the VM exits. A
 * failed checkpoint is reported and the next one comes on time: slots
 * alternate, so the last good snapshot survives it. Returns the exit status:
 * 0, or 1 if the series could not start or its last checkpoint failed.
 */
static int checkpoint_series(const struct manager_opts *o)
{
	struct snap_report *rep = calloc(1, sizeof(*rep));
	struct sigaction sa = {.sa_handler = on_stop_signal};
	struct error err = {0};
	unsigned int n = 0, failed = 0;
	struct series s;
	int ret, last = 0;

	if (!rep) {
		pr_err("out of memory");
		return 1;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	ret = series_open(o, &s, &err);
	if (ret) {
		pr_err("snapshot %s: %s", o->image, err.msg);
		free(rep);
		return 1;
	}
	while (!series_stop) {
		uint64_t t0 = snap_mono_us(), spent;

		n++;
		last = series_take(o, &s, rep, NULL, &err);
		print_checkpoint(o, n, rep, last ? &err : NULL);
		failed += !!last;
		if (last && !vm_alive(&s)) {
			pr_info("snapshot: the VM is gone; %u checkpoints, %u failed", n, failed);
			break;
		}
		/* poll() sleeps under the manager's seccomp allowlist; a signal ends it. */
		spent = (snap_mono_us() - t0) / 1000;
		if (!series_stop && spent < o->every_ms)
			poll(NULL, 0, (int)MIN(o->every_ms - spent, (uint64_t)INT32_MAX));
	}
	series_close(&s);
	free(rep);
	return last ? 1 : 0;
}

int manager__snapshot(const struct manager_opts *o)
{
	struct snap_report *rep = calloc(1, sizeof(*rep));
	struct snap_append_file *af = o->append ? calloc(1, sizeof(*af)) : NULL;
	struct error err = {0};
	struct snap_config cfg;
	int ret;

	if (o->every_ms) {
		free(af);
		free(rep);
		return checkpoint_series(o);
	}
	if (!rep || (o->append && !af)) {
		pr_err("out of memory");
		free(rep);
		return 1;
	}
	ret = af ? take_append(o, rep, &cfg, af, &err) : manager__take_snapshot(o, rep, &cfg, &err);
	if (ret)
		pr_err("snapshot %s: %s", o->image, err.msg);
	else if (o->json)
		print_json(o, &cfg, rep, af);
	else
		print_human(o, rep, af);
	free(af);
	free(rep);
	return ret ? 1 : 0;
}
