// SPDX-License-Identifier: GPL-2.0
/*
 * The VM side of a live snapshot; see session.h. The manager maps guest
 * memory read-only from the memfds and writes the image itself: this
 * process never holds the image. If the connection goes away mid-session
 * (the manager crashed or was killed), the session is ended as by
 * snapshot-end, so the guest runs on at full speed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "control/request.h"
#include "live-snapshot/session.h"
#include "live-snapshot/stream.h"
#include "snapshot/bitmap.h"
#include "snapshot/snapshot.h"
#include "state/state.h"
#include "util/memfd.h"

struct snapshot_session {
	int owner;	 /* control connection id */
	bool log_was_on; /* dirty logging was on before: leave it on at the end */
	bool logging;
	bool paused; /* by this session */
	int shm_fd;
	bool stream;   /* --via-stream: no memfds nor shared area; snapshot-stream only */
	int stream_fd; /* the manager's pipe, until the stream ends */
	int ro_fds[1 + MEM_MAX_REGIONS]; /* read-only descriptors sent to the manager */
	unsigned int nr_ro_fds;
	uint8_t *shm;
	size_t shm_size;
	uint64_t bitmap_off[MEM_MAX_REGIONS]; /* in shm, per region */
	uint64_t state_off, state_cap;
	bool tracked;	      /* snapshot-log named an image slot: tag */
	bool final_fetch;     /* the last snapshot-dirty ran while the VM was paused */
	struct dirty_tag tag; /* the image slot and this attempt's write id */
};

static void session_free(struct snapshot_session *s)
{
	if (s->stream_fd >= 0)
		close(s->stream_fd);

	unsigned int i;

	for (i = 0; i < s->nr_ro_fds; i++)
		close(s->ro_fds[i]);

	if (s->shm)
		munmap(s->shm, s->shm_size);
	if (s->shm_fd >= 0)
		close(s->shm_fd);
	free(s);
}

/*
 * End a session: the VM runs again and logging is as it was, or on while a
 * dirty tracker needs it. ok: snapshot-end without abort, after a fetch while
 * paused; the attempt's tracker then waits for snapshot-commit. Never fails
 * the guest. Returns when (CLOCK_MONOTONIC ns) the vCPUs were released, or 0.
 */
static uint64_t session_end(struct control_state *st, bool ok)
{
	struct snapshot_session *s = st->snap;
	struct kvm *kvm = st->kvm;
	uint64_t resumed = 0;

	if (!s)
		return 0;
	/* Full speed before anything else: a throttle never outlives its snapshot. */
	if (kvm__throttle(kvm) && kvm__set_throttle(kvm, 0))
		pr_warn("snapshot: cannot lift the vCPU throttle");
	/* Resume first: re-registering the slots takes milliseconds the guest need not wait. */
	if (s->paused) {
		if (kvm__resume(kvm, &resumed) && !kvm__has_exited(kvm))
			pr_warn("snapshot: cannot resume the VM");
		if (!resumed)
			resumed = now_ns();
	}
	if (s->tracked && ok && s->final_fetch)
		dirty_track__end(&kvm->mem.track, &s->tag);
	else if (s->tracked)
		dirty_track__abort(&kvm->mem.track, &s->tag);
	/*
	 * Between snapshots, KVM's log accumulates for the trackers: keep it on.
	 * On before only for a tracker this attempt replaced: off again.
	 */
	if (s->logging && kvm->mem.log_dirty && !mem__log_needed(&kvm->mem) &&
	    mem__set_log_dirty(&kvm->mem, false, NULL))
		pr_warn("snapshot: cannot turn dirty logging off; the guest runs with it on");
	st->snap = NULL;
	st->claimed_by = NULL;
	session_free(s);
	return resumed;
}

static void session_client_gone(struct control_state *st, int client)
{
	struct snapshot_session *s = st->snap;

	if (s && s->owner == client) {
		pr_warn("snapshot client went away mid-snapshot; the VM continues");
		session_end(st, false);
	}
}

static void session_exit(struct control_state *st)
{
	session_end(st, false);
}

static struct snapshot_session *owned_session(struct request *rq)
{
	struct snapshot_session *s = rq->st->snap;

	if (!s) {
		err_set(&rq->err, -EINVAL, "no snapshot session; send snapshot-begin first");
		return NULL;
	}
	if (s->owner != rq->st->client) {
		err_set(&rq->err, -EBUSY, "a snapshot session belongs to another connection");
		return NULL;
	}
	return s;
}

/* The session of this connection, in memfd mode (the shared area exists). */
static struct snapshot_session *memfd_session(struct request *rq)
{
	struct snapshot_session *s = owned_session(rq);

	if (s && s->stream) {
		err_set(&rq->err, -EINVAL, "a stream session takes only snapshot-stream and -end");
		return NULL;
	}
	return s;
}

/* The shared area: one bitmap per region, then the state buffer. */
static int session_alloc(struct kvm *kvm, struct snapshot_session *s)
{
	struct mem_region *r;
	unsigned int i = 0;
	uint64_t off = 0;

	mem__for_each_region (&kvm->mem, r) {
		s->bitmap_off[i++] = off;
		off += ALIGN_UP(mem__region_bitmap_bytes(r), 64);
	}
	s->state_off = ALIGN_UP(off, PAGE_SIZE);
	s->state_cap = snap_state_area_size(kvm->nr_cpus);
	s->shm_size = s->state_off + s->state_cap;
	s->shm_fd = memfd__create_sealed("kvmsnap-snapshot", s->shm_size, NULL);
	if (s->shm_fd < 0)
		return s->shm_fd;
	s->shm = mmap(NULL, s->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->shm_fd, 0);
	if (s->shm == MAP_FAILED) {
		s->shm = NULL;
		return -errno;
	}
	return 0;
}

static void describe_vm(struct request *rq, struct snapshot_session *s)
{
	struct kvm *kvm = rq->kvm;
	struct json_object *regions = json_object_new_array();
	struct mem_region *r, *vga = mem__find_region(&kvm->mem, "vga.vram");
	struct snap_config cfg = {.vcpus = kvm->nr_cpus, .ram_size = kvm->ram_size};
	char meta[SNAP_METADATA_MAX];
	unsigned int i = 0;

	request__add_str(rq->reply, "machine", SNAP_MACHINE_PC);
	request__add_u64(rq->reply, "vcpus", kvm->nr_cpus);
	request__add_u64(rq->reply, "mem", kvm->ram_size);
	request__add_u64(rq->reply, "vram", vga ? vga->size : 0);
	mem__for_each_region (&kvm->mem, r) {
		struct json_object *o = json_object_new_object();

		request__add_str(o, "id", r->name);
		request__add_u64(o, "size", r->size);
		if (!s->stream)
			request__add_u64(o, "bitmap_off", s->bitmap_off[i++]);
		json_object_array_add(regions, o);
	}
	json_object_object_add(rq->reply, "regions", regions);
	if (!s->stream) {
		request__add_u64(rq->reply, "shm_size", s->shm_size);
		request__add_u64(rq->reply, "state_off", s->state_off);
		request__add_u64(rq->reply, "state_cap", s->state_cap);
	}
	snprintf(cfg.machine, sizeof(cfg.machine), "%s", SNAP_MACHINE_PC);
	cfg.vram_size = vga ? vga->size : 0;
	snap_metadata_build(&cfg, kvm->guest_desc, meta, sizeof(meta));
	request__add_str(rq->reply, "metadata", meta);
	request__add_tracking(rq->reply, &kvm->mem.track);
}

static int attach_rdonly(struct request *rq, struct snapshot_session *s, int fd)
{
	int ro = memfd__reopen_rdonly(fd, &rq->err);

	if (ro < 0)
		return ro;
	s->ro_fds[s->nr_ro_fds++] = ro;
	return request__attach_fd(rq, ro);
}

static struct snapshot_session *session_new(struct control_state *st)
{
	struct snapshot_session *s = calloc(1, sizeof(*s));

	if (s) {
		s->owner = st->client;
		s->shm_fd = -1;
		s->stream_fd = -1;
	}
	return s;
}

/* --via-stream: the pipe came with the request; nothing of guest memory is handed out. */
static int begin_stream(struct request *rq)
{
	struct control_state *st = rq->st;
	struct snapshot_session *s;

	if (st->in_fd < 0)
		return err_set(&rq->err, -EINVAL,
			       "snapshot-begin: a stream snapshot needs the write end of a pipe "
			       "sent with the request");
	s = session_new(st);
	if (!s)
		return err_set(&rq->err, -ENOMEM, "out of memory");
	s->stream = true;
	s->stream_fd = st->in_fd;
	st->in_fd = -1;
	describe_vm(rq, s);
	st->snap = s;
	st->claimed_by = "a snapshot";
	return 0;
}

/* Only root or the VM's own user: both guest memory and its trackers are theirs. */
static int check_uid(struct request *rq, const char *cmd)
{
	struct control_state *st = rq->st;

	if (st->client_uid != 0 && st->client_uid != geteuid())
		return err_set(&rq->err, -EPERM,
			       "%s: only root or the VM's own user (uid %u) may take a snapshot, "
			       "not uid %u",
			       cmd, (unsigned int)geteuid(), (unsigned int)st->client_uid);
	return 0;
}

static int snapshot_begin(struct request *rq)
{
	struct control_state *st = rq->st;
	struct snapshot_session *s;
	struct json_object *v;
	struct mem_region *r;
	int ret;

	/* Guest memory goes to whoever asks: only to the VM's own user or root. */
	ret = check_uid(rq, "snapshot-begin");
	if (ret)
		return ret;
	if (st->snap)
		return err_set(&rq->err, -EBUSY, "a snapshot is already in progress");
	if (kvm__has_exited(rq->kvm) || !rq->kvm->nr_cpus)
		return err_set(&rq->err, -EINVAL, "the VM is not running");
	if (json_object_object_get_ex(rq->args, "stream", &v) && json_object_get_boolean(v))
		return begin_stream(rq);
	/* A region restored lazily is a private mapping of the image: no memfd to hand over yet. */
	ret = mem__ensure_memfds(&rq->kvm->mem, &rq->err);
	if (ret)
		return err_prefix(&rq->err,
				  "cannot copy the lazily restored memory out of its image");
	s = session_new(st);
	if (!s)
		return err_set(&rq->err, -ENOMEM, "out of memory");
	ret = session_alloc(rq->kvm, s);
	if (ret) {
		session_free(s);
		return err_set(&rq->err, ret, "cannot set up the snapshot area: %s",
			       strerror(-ret));
	}
	describe_vm(rq, s);
	/* Read-only, sealed descriptors: the manager can neither write nor resize guest memory. */
	ret = attach_rdonly(rq, s, s->shm_fd);
	mem__for_each_region (&rq->kvm->mem, r)
		ret = ret ? ret : attach_rdonly(rq, s, r->fd);
	if (ret) {
		session_free(s);
		return ret;
	}
	st->snap = s;
	st->claimed_by = "a snapshot";
	return 0;
}

/*
 * Fetch every range's log into its region's bitmap. lazy: with manual
 * protect, the pages stay writable until snapshot-clear re-arms them just
 * before the manager copies them; otherwise they are re-armed now.
 */
static int fetch_dirty(struct kvm *kvm, struct snapshot_session *s, bool lazy, uint64_t *total)
{
	struct mem_region *r;
	unsigned int i = 0;
	int ret;

	*total = 0;
	mem__for_each_region (&kvm->mem, r) {
		uint64_t *bm = (uint64_t *)(void *)(s->shm + s->bitmap_off[i++]);

		memset(bm, 0, mem__region_bitmap_bytes(r));
		ret = lazy ? mem__fetch_dirty_lazy(&kvm->mem, r, bm, NULL)
			   : mem__fetch_dirty(&kvm->mem, r, bm, NULL);
		if (ret)
			return ret;
		*total += snap_bitmap_count(bm, r->size / PAGE_SIZE);
	}
	return 0;
}

/* ---- image slot arguments: strict, one line naming the field ---- */

/* A string argument of lowercase hex digits; 0 if absent (*present false). */
static int hex_arg(struct request *rq, const char *key, bool uuid, void *out, bool *present)
{
	struct json_object *j;
	int ret;

	*present = json_object_object_get_ex(rq->args, key, &j);
	if (!*present)
		return 0;
	/* The length too: a NUL inside the string would hide what follows it. */
	ret = json_object_is_type(j, json_type_string) &&
		      (size_t)json_object_get_string_len(j) == strlen(json_object_get_string(j))
		  ? 0
		  : -EINVAL;
	if (!ret)
		ret = uuid ? dirty_track__parse_uuid(json_object_get_string(j), out)
			   : dirty_track__parse_id(json_object_get_string(j), out);
	if (ret)
		return err_set(&rq->err, -EINVAL,
			       "\"%s\" must be a string of %d lowercase hex digits", key,
			       uuid ? DIRTY_TRACK_UUID_HEX : DIRTY_TRACK_ID_HEX);
	return 0;
}

static int slot_arg(struct request *rq, uint32_t *slot, bool *present)
{
	struct json_object *j;

	*present = json_object_object_get_ex(rq->args, "slot", &j);
	if (!*present)
		return 0;
	if (!json_object_is_type(j, json_type_int) || json_object_get_int64(j) < 0 ||
	    json_object_get_int64(j) > 1)
		return err_set(&rq->err, -EINVAL, "\"slot\" must be 0 or 1");
	*slot = (uint32_t)json_object_get_int64(j);
	return 0;
}

/*
 * uuid, slot and the write id under id_key: all three, or (optional) none.
 * *given says which. base, if not NULL, is the optional "base".
 */
static int tag_args(struct request *rq, const char *id_key, bool optional, struct dirty_tag *tag,
		    bool *given, uint64_t *base, bool *has_base)
{
	bool has_uuid, has_slot, has_id;
	int ret;

	ret = hex_arg(rq, "uuid", true, tag->uuid, &has_uuid);
	if (!ret)
		ret = slot_arg(rq, &tag->slot, &has_slot);
	if (!ret)
		ret = hex_arg(rq, id_key, false, &tag->write_id, &has_id);
	if (!ret && base)
		ret = hex_arg(rq, "base", false, base, has_base);
	if (ret)
		return ret;
	*given = has_uuid;
	if (!has_uuid && (has_slot || has_id || (base && *has_base)))
		return err_set(&rq->err, -EINVAL, "\"%s\" needs \"uuid\"",
			       has_slot ? "slot"
			       : has_id ? id_key
					: "base");
	if (!has_uuid && !optional)
		return err_set(&rq->err, -EINVAL, "\"uuid\" is missing");
	if (has_uuid && !has_slot)
		return err_set(&rq->err, -EINVAL, "\"slot\" is missing");
	if (has_uuid && !has_id)
		return err_set(&rq->err, -EINVAL, "\"%s\" is missing", id_key);
	if (base && *has_base && *base == tag->write_id)
		return err_set(&rq->err, -EINVAL, "\"%s\" must differ from \"base\"", id_key);
	return 0;
}

/* The tracker's bitmaps, or nothing, into the shared area: the pages to write first. */
static void share_bitmaps(struct kvm *kvm, struct snapshot_session *s,
			  const struct dirty_tracker *t)
{
	struct mem_region *r;
	unsigned int i = 0;

	mem__for_each_region (&kvm->mem, r) {
		uint64_t *bm = (uint64_t *)(void *)(s->shm + s->bitmap_off[i]);

		if (t)
			memcpy(bm, t->bitmap[i], mem__region_bitmap_bytes(r));
		else
			memset(bm, 0, mem__region_bitmap_bytes(r));
		i++;
	}
}

/*
 * With an image slot: fetch (feeding every tracker), then either the
 * slot's tracker accepts base (incremental: its pages are in the shared
 * bitmaps), or the shared bitmaps are zero and a new tracker starts.
 */
/* An optional boolean argument; *v keeps its value if absent. */
static int bool_arg(struct request *rq, const char *key, bool *v)
{
	struct json_object *j;

	if (!json_object_object_get_ex(rq->args, key, &j))
		return 0;
	if (!json_object_is_type(j, json_type_boolean))
		return err_set(&rq->err, -EINVAL, "\"%s\" must be true or false", key);
	*v = json_object_get_boolean(j);
	return 0;
}

static int snapshot_log(struct request *rq)
{
	struct snapshot_session *s = memfd_session(rq);
	struct dirty_tracker *t = NULL;
	struct dirty_tag tag = {0};
	char why[DIRTY_TRACK_WHY_MAX];
	bool tracked, has_base = false, incremental = false, want_all = false, all_dirty = false;
	uint64_t discard, base = 0;
	int ret;

	if (!s)
		return rq->err.code;
	if (s->logging)
		return err_set(&rq->err, -EALREADY,
			       "dirty logging is already on for this snapshot");
	ret = tag_args(rq, "attempt", true, &tag, &tracked, &base, &has_base);
	if (!ret)
		ret = bool_arg(rq, "all_dirty", &want_all);
	if (ret)
		return ret;
	s->log_was_on = rq->kvm->mem.log_dirty;
	if (s->log_was_on)
		ret = 0;
	else if (want_all)
		ret = mem__start_log_all_dirty(&rq->kvm->mem, &all_dirty, NULL);
	else
		ret = mem__set_log_dirty(&rq->kvm->mem, true, NULL);
	if (ret)
		return err_set(&rq->err, ret, "cannot turn dirty logging on: %s", strerror(-ret));
	request__add_bool(rq->reply, "all_dirty", all_dirty);
	s->logging = true;
	/* Logging was on already: the trackers get what it gathered, and every page starts clean. */
	if (s->log_was_on && fetch_dirty(rq->kvm, s, false, &discard))
		return err_set(&rq->err, -EINVAL, "cannot read the dirty log");
	if (tracked) {
		ret = dirty_track__begin(&rq->kvm->mem.track, &tag, has_base ? &base : NULL, &t,
					 &incremental, why, sizeof(why), &rq->err);
		if (ret)
			return ret;
		s->tracked = true;
		s->tag = tag;
	}
	share_bitmaps(rq->kvm, s, incremental ? t : NULL);
	if (!tracked)
		return 0;
	request__add_bool(rq->reply, "incremental", incremental);
	if (incremental)
		request__add_u64(rq->reply, "pages",
				 dirty_track__pages(&rq->kvm->mem.track, t, false));
	else
		request__add_str(rq->reply, "why", why);
	return 0;
}

static int snapshot_dirty(struct request *rq)
{
	struct snapshot_session *s = memfd_session(rq);
	uint64_t total;
	int ret;

	if (!s)
		return rq->err.code;
	if (!s->logging)
		return err_set(&rq->err, -EINVAL, "dirty logging is off; send snapshot-log first");
	/* Paused, the batch is copied at once: nothing to gain by re-arming later. */
	ret = fetch_dirty(rq->kvm, s, !kvm__is_paused(rq->kvm), &total);
	if (ret)
		return err_set(&rq->err, ret, "cannot read the dirty log: %s", strerror(-ret));
	/* The final fetch, if the VM stays paused until the end: nothing is unfetched but what
	 * the guest writes after the resume. */
	s->final_fetch = kvm__is_paused(rq->kvm);
	request__add_u64(rq->reply, "pages", total);
	return 0;
}

static int snapshot_pause(struct request *rq)
{
	struct snapshot_session *s = memfd_session(rq);
	uint64_t us = 0, paused = 0;
	int ret;

	if (!s)
		return rq->err.code;
	if (s->paused)
		return err_set(&rq->err, -EALREADY, "already paused by this snapshot");
	ret = kvm__pause(rq->kvm, &us, &paused);
	if (ret && ret != -EALREADY)
		return err_set(&rq->err, ret, "cannot pause the VM: %s", strerror(-ret));
	/* Paused by someone else before: leave it paused at the end. */
	s->paused = !ret;
	request__add_u64(rq->reply, "latency_us", us);
	/* CLOCK_MONOTONIC, as resumed_us: the manager's downtime starts here. */
	if (paused)
		request__add_u64(rq->reply, "paused_us", paused / 1000);
	return 0;
}

static int snapshot_state(struct request *rq)
{
	struct snapshot_session *s = memfd_session(rq);
	struct vm_state_devices devs = {.com1 = rq->kvm->com1, .rtc = rq->kvm->rtc};
	struct error err = {0};
	size_t used = 0;
	int ret;

	if (!s)
		return rq->err.code;
	if (!kvm__is_paused(rq->kvm))
		return err_set(&rq->err, -EINVAL, "the VM must be paused to save its state");
	ret = vm_state__save(rq->kvm, &devs, s->shm + s->state_off, s->state_cap, &used, &err);
	if (ret)
		return err_set(&rq->err, ret, "cannot save the VM state: %s", err.msg);
	request__add_u64(rq->reply, "used", used);
	return 0;
}

static int snapshot_end(struct request *rq)
{
	bool abort_ = false;
	uint64_t resumed;
	int ret;

	if (!owned_session(rq))
		return rq->err.code;
	ret = bool_arg(rq, "abort", &abort_);
	if (ret)
		return ret;
	resumed = session_end(rq->st, !abort_);
	/* CLOCK_MONOTONIC is one clock for every process: the manager's downtime ends here. */
	if (resumed)
		request__add_u64(rq->reply, "resumed_us", resumed / 1000);
	return 0;
}

/*
 * The slot's header is durably complete: its tracker, pending since the
 * session's end, becomes valid. Not part of a session: the manager sends it
 * once the image is durable, after snapshot-end.
 */
static int snapshot_commit(struct request *rq)
{
	struct dirty_tag tag = {0};
	bool given;
	int ret = check_uid(rq, "snapshot-commit");

	if (!ret)
		ret = tag_args(rq, "write_id", false, &tag, &given, NULL, NULL);
	if (!ret)
		ret = dirty_track__commit(&rq->kvm->mem.track, &tag, &rq->err);
	if (ret)
		return err_prefix(&rq->err, "snapshot-commit");
	return 0;
}

/* A non-negative integer argument, if given (*v untouched otherwise). */
static int uint_arg(struct request *rq, const char *key, uint64_t *v)
{
	struct json_object *j;

	if (!json_object_object_get_ex(rq->args, key, &j))
		return 0;
	if (!json_object_is_type(j, json_type_int) || json_object_get_int64(j) < 0)
		return err_set(&rq->err, -EINVAL, "\"%s\" must be a non-negative integer", key);
	*v = json_object_get_uint64(j);
	return 0;
}

/*
 * {"cmd":"snapshot-clear","region":R,"first":F,"pages":N}: the manager is
 * about to copy pages [F, F + N) of region R; re-arm dirty logging for
 * those the last snapshot-dirty reported (manual protect), so a write from
 * now on is logged for the next pass.
 */
static int snapshot_clear(struct request *rq)
{
	struct snapshot_session *s = memfd_session(rq);
	uint64_t region = 0, first = 0, pages = 0, n;
	struct mem_region *r;
	int ret;

	if (!s)
		return rq->err.code;
	if (!json_object_object_get_ex(rq->args, "region", NULL) ||
	    !json_object_object_get_ex(rq->args, "first", NULL) ||
	    !json_object_object_get_ex(rq->args, "pages", NULL))
		return err_set(&rq->err, -EINVAL,
			       "snapshot-clear needs \"region\", \"first\" and \"pages\"");
	ret = uint_arg(rq, "region", &region);
	if (!ret)
		ret = uint_arg(rq, "first", &first);
	if (!ret)
		ret = uint_arg(rq, "pages", &pages);
	if (ret)
		return ret;
	if (region >= rq->kvm->mem.nr_regions)
		return err_set(&rq->err, -EINVAL, "no region %" PRIu64, region);
	r = &rq->kvm->mem.regions[region];
	n = r->size / PAGE_SIZE;
	if (first > n || pages > n - first)
		return err_set(&rq->err, -EINVAL,
			       "pages %" PRIu64 "+%" PRIu64 " are past %s's %" PRIu64, first, pages,
			       r->name, n);
	if (!s->logging)
		return err_set(&rq->err, -EINVAL, "dirty logging is off; send snapshot-log first");
	return mem__clear_dirty(&rq->kvm->mem, r, first, pages, &rq->err);
}

/*
 * {"cmd":"snapshot-throttle","percent":N}: hold the vCPUs N percent of the
 * time (0 to 99) so that precopy converges. The session's end, however it
 * ends, sets 0 again: a throttle never outlives its snapshot.
 */
static int snapshot_throttle(struct request *rq)
{
	struct snapshot_session *s = memfd_session(rq);
	uint64_t pct = UINT64_MAX;
	int ret;

	if (!s)
		return rq->err.code;
	ret = uint_arg(rq, "percent", &pct);
	if (ret)
		return ret;
	if (pct > 99)
		return err_set(&rq->err, -EINVAL, "\"percent\" must be an integer from 0 to 99");
	ret = kvm__set_throttle(rq->kvm, (unsigned int)pct);
	if (ret)
		return err_set(&rq->err, ret, "cannot throttle the vCPUs: %s", strerror(-ret));
	request__add_u64(rq->reply, "percent", pct);
	return 0;
}

static int snapshot_stream(struct request *rq)
{
	struct snapshot_session *s = owned_session(rq);
	struct snap_options limits = {0};
	struct snap_report *rep;
	uint64_t passes = 0, throttle = 0;
	int ret;

	if (!s)
		return rq->err.code;
	if (!s->stream || s->stream_fd < 0)
		return err_set(&rq->err, -EINVAL,
			       "this session has no stream; begin with \"stream\": true");
	ret = uint_arg(rq, "threshold", &limits.threshold);
	if (!ret)
		ret = uint_arg(rq, "max_downtime_ms", &limits.max_downtime_ms);
	if (!ret)
		ret = uint_arg(rq, "max_time_ms", &limits.max_time_ms);
	if (!ret)
		ret = uint_arg(rq, "max_passes", &passes);
	if (!ret)
		ret = uint_arg(rq, "max_throttle", &throttle);
	if (!ret)
		ret = uint_arg(rq, "dirty_limit", &limits.dirty_limit);
	if (ret)
		return ret;
	limits.max_passes = (unsigned int)MIN(passes, SNAP_MAX_PASSES - 1);
	limits.max_throttle = (unsigned int)MIN(throttle, 99);
	rep = calloc(1, sizeof(*rep));
	if (!rep)
		return err_set(&rq->err, -ENOMEM, "out of memory");
	ret = stream__run(rq->kvm, s->stream_fd, &limits, rep, &rq->err);
	close(s->stream_fd); /* the manager sees the end of the stream */
	s->stream_fd = -1;
	if (!ret) {
		request__add_u64(rq->reply, "passes", rep->nr_passes);
		request__add_u64(rq->reply, "downtime_us", rep->downtime_us);
		request__add_u64(rq->reply, "bytes", rep->bytes_written);
	}
	free(rep);
	return ret;
}

static const char *const no_args[] = {NULL};
static const char *const begin_args[] = {"stream", NULL};
static const char *const log_args[] = {"uuid", "slot", "base", "attempt", "all_dirty", NULL};
static const char *const commit_args[] = {"uuid", "slot", "write_id", NULL};
static const char *const end_args[] = {"abort", NULL};
static const char *const stream_args[] = {"threshold",	"max_downtime_ms", "max_time_ms",
					  "max_passes", "max_throttle",	   "dirty_limit",
					  NULL};
static const char *const throttle_args[] = {"percent", NULL};
static const char *const clear_args[] = {"region", "first", "pages", NULL};

static const struct command session_commands[] = {
    {"snapshot-begin", begin_args, snapshot_begin},
    {"snapshot-log", log_args, snapshot_log},
    {"snapshot-dirty", no_args, snapshot_dirty},
    {"snapshot-pause", no_args, snapshot_pause},
    {"snapshot-state", no_args, snapshot_state},
    {"snapshot-end", end_args, snapshot_end},
    {"snapshot-stream", stream_args, snapshot_stream},
    {"snapshot-commit", commit_args, snapshot_commit},
    {"snapshot-throttle", throttle_args, snapshot_throttle},
    {"snapshot-clear", clear_args, snapshot_clear},
};

const struct control_service snapshot_session__service = {
    .commands = session_commands,
    .nr_commands = ARRAY_SIZE(session_commands),
    .client_gone = session_client_gone,
    .exit = session_exit,
};
