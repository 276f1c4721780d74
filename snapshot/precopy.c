// SPDX-License-Identifier: GPL-2.0
/* The precopy engine; see precopy.h and Documentation/design.md, "Live snapshot". */
#include "snapshot/precopy.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/align.h"
#include "snapshot/clock.h"
#include "snapshot/bitmap.h"
#include "snapshot/throttle.h"

#define ZERO_RUN_MAX	 (8ULL << 20) /* largest run a sink gets at once */
#define DEFAULT_DOWNTIME 20
#define DEFAULT_PASSES	 30
#define DEFAULT_TIME_MS	 60000

struct engine {
	struct snap_vm *vm;
	const struct snap_sink *sink;
	const struct snap_precopy_opts *o;
	struct snap_report *rep;
	struct error *err;
	struct snap_stage *stage; /* the caller's, or an empty one: never stage */
	uint64_t pending;	  /* bytes dirty at the last fetch: what a final batch would be */
	uint64_t *kept[SNAP_MAX_REGIONS];  /* scratch of fetch_keeping(): a bitmap copy each */
	uint64_t *carry[SNAP_MAX_REGIONS]; /* found behind a pass's copy (check_throttle()) */
	bool carrying;			   /* carry holds pages for the next fetch */
	/*
	 * Pages the pass under way may leave for the next (the settle floor or
	 * the threshold), checked a quarter into it (check_throttle()); 0: none.
	 */
	uint64_t aim;
	struct snap_throttle thr;
	uint64_t fetched_us;   /* when the dirty log was last fetched */
	uint64_t copied_pages; /* handed to the sink from guest memory */
	uint64_t pass1_copied; /* of them in pass 1: holes went out as zeros, or not at all */
	uint64_t t0;
	bool settle_aimed; /* the throttle in force was set to leave the settle floor */
	struct seek_memo {
		off_t from, to;	     /* lseek(from) gave to; to == 0: nothing asked yet */
	} seek[SNAP_MAX_REGIONS][2]; /* per region, SEEK_DATA and SEEK_HOLE (seek_memo()) */
};

static uint64_t region_pages(const struct snap_vm *vm, unsigned int r)
{
	return vm->cfg.regions[r].size / SNAP_PAGE_SIZE;
}

static unsigned int nth_region(const struct engine *e, unsigned int k)
{
	return e->sink->order ? e->sink->order[k] : k;
}

static int sink_write(struct engine *e, unsigned int r, uint64_t first, uint64_t n,
		      const uint8_t *src)
{
	e->rep->bytes_written += n * SNAP_PAGE_SIZE;
	e->copied_pages += n;
	return e->sink->ops->write(e->sink->ctx, r, first, n, src, e->err);
}

/* A merged run of region r: only the pages set in dirty changed since their last copy. */
static int sink_write_merged(struct engine *e, unsigned int r, uint64_t first, uint64_t n,
			     const uint64_t *dirty)
{
	const uint8_t *src = e->vm->regions[r].mem + first * SNAP_PAGE_SIZE;

	if (!e->sink->ops->write_merged)
		return sink_write(e, r, first, n, src);
	e->rep->bytes_written += n * SNAP_PAGE_SIZE;
	e->copied_pages += n;
	return e->sink->ops->write_merged(e->sink->ctx, r, first, n, src, dirty, e->err);
}

static int sink_drain(struct engine *e)
{
	return e->sink->ops->drain ? e->sink->ops->drain(e->sink->ctx, e->err) : 0;
}

/* Pages [first, first + n) of region r are memfd holes: zero. */
static int sink_zeros(struct engine *e, unsigned int r, uint64_t first, uint64_t n)
{
	if (!e->sink->ops->zeros)
		return sink_write(e, r, first, n, e->vm->regions[r].mem + first * SNAP_PAGE_SIZE);
	e->rep->bytes_written += n * SNAP_PAGE_SIZE;
	return e->sink->ops->zeros(e->sink->ctx, r, first, n, e->err);
}

/*
 * lseek(whence) on region r's memfd, remembered. Pass 1 asks a chunk at a
 * time, and the kernel walks from off to the next hole or data, past the
 * chunk's end: with 32 chunks over a 1 GiB extent, that walk was 20% of
 * the CPU time of a snapshot. An answer holds for any off from the
 * question up to, not including, it: at the answer itself, a hole may have
 * been filled since, and a stale answer there would not move off (an
 * endless loop). A hole filled since makes a page look like a hole: the
 * guest wrote it, so it is dirty and handed over in the next pass.
 */
static off_t seek_memo(struct engine *e, unsigned int r, off_t off, int whence)
{
	struct seek_memo *m = &e->seek[r][whence == SEEK_HOLE];
	off_t to;

	if (m->to && off >= m->from && off < m->to)
		return m->to;
	to = lseek(e->vm->regions[r].memfd, off, whence);
	/* No data after off: the rest of the region is a hole. */
	if (to < 0 && errno == ENXIO && whence == SEEK_DATA)
		to = (off_t)e->vm->regions[r].size;
	if (to > 0)
		*m = (struct seek_memo){.from = off, .to = to};
	return to;
}

/*
 * Pages [first, end) of a region, in pass 1. Where its memfd has holes
 * (memory the guest never touched), the sink is told they are zero instead
 * of the mapping being read: a read would make the VM's kernel allocate
 * and clear a page for every hole. A hole that the guest fills meanwhile
 * is dirty and is handed over again in a later pass.
 */
static int copy_range(struct engine *e, unsigned int r, uint64_t first, uint64_t end)
{
	const struct snap_vm_region *vr = &e->vm->regions[r];
	uint64_t size = end * SNAP_PAGE_SIZE, off = first * SNAP_PAGE_SIZE;
	int ret = 0;

	if (vr->memfd < 0)
		return sink_write(e, r, first, end - first, vr->mem + off);
	while (off < size && !ret) {
		off_t data = seek_memo(e, r, (off_t)off, SEEK_DATA), hole;

		if (data < 0 && errno != ENXIO) /* no SEEK_DATA: read it all */
			return sink_write(e, r, off / SNAP_PAGE_SIZE, (size - off) / SNAP_PAGE_SIZE,
					  vr->mem + off);
		if (data < 0 || (uint64_t)data > size)
			data = (off_t)size;
		data = (off_t)ALIGN_DOWN((uint64_t)data, SNAP_PAGE_SIZE);
		if ((uint64_t)data > off)
			ret = sink_zeros(e, r, off / SNAP_PAGE_SIZE,
					 ((uint64_t)data - off) / SNAP_PAGE_SIZE);
		if (ret || (uint64_t)data >= size)
			break;
		hole = seek_memo(e, r, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = (off_t)size;
		hole = (off_t)ALIGN_UP((uint64_t)hole, SNAP_PAGE_SIZE);
		ret =
		    sink_write(e, r, (uint64_t)data / SNAP_PAGE_SIZE,
			       ((uint64_t)hole - (uint64_t)data) / SNAP_PAGE_SIZE, vr->mem + data);
		off = (uint64_t)hole;
	}
	return ret;
}

/* At the end of pass p: its CPU time (new_pass() noted the start). */
static uint64_t pass_cpu_us(const struct snap_pass *p)
{
	uint64_t now = snap_thread_cpu_us();

	return p->cpu_us && now >= p->cpu_us ? now - p->cpu_us : 0;
}

static struct snap_pass *new_pass(struct engine *e)
{
	struct snap_pass *p = &e->rep->passes[e->rep->nr_passes++];

	memset(p, 0, sizeof(*p));
	p->start_us = snap_mono_us() - e->t0;
	p->cpu_us = snap_thread_cpu_us();
	p->throttle_pct = e->thr.pct;
	p->throttle_end_pct = e->thr.pct;
	return p;
}

/* Full speed again: before the VM resumes, whatever happened. */
static int unthrottle(struct engine *e, struct error *err)
{
	if (!e->thr.pct)
		return 0;
	e->thr.pct = 0;
	return e->vm->ops->throttle(e->vm->ctx, 0, err);
}

/*
 * Pages re-armed at once. Whole words of the dirty bitmap: a re-arm is
 * widened to them, and must not reach into a chunk copied already.
 */
static uint64_t clear_chunk(const struct engine *e, unsigned int r)
{
	uint64_t n = e->o->limits->clear_chunk;

	if (!n)
		n = MAX(region_pages(e->vm, r) / SNAP_CLEAR_CHUNKS, SNAP_CLEAR_CHUNK_MIN);
	return MAX(ALIGN_DOWN(n, 64), 64);
}

/*
 * Pass 1 of a full snapshot, where the log can be re-armed a part at a
 * time (manual protect): before each chunk is copied, what the guest
 * dirtied in it since logging began is fetched (the VM's trackers must see
 * it) and re-armed, for the copy that follows has it. Without this, every
 * page the guest writes ahead of the copy is written twice. Fetching here
 * overwrites the dirty bitmaps, which pass 1 does not read: the fetch after
 * it reports every page left dirty, as KVM keeps a bit until it is re-armed.
 */
static int copy_region_rearmed(struct engine *e, unsigned int r)
{
	uint64_t pages = region_pages(e->vm, r), chunk = clear_chunk(e, r), c0, c1;
	int ret = 0;

	for (c0 = 0; c0 < pages && !ret; c0 = c1) {
		c1 = MIN(c0 + chunk, pages);
		ret = e->vm->ops->fetch_dirty(e->vm->ctx, e->err);
		if (!ret)
			ret = e->vm->ops->clear(e->vm->ctx, r, c0, c1 - c0, e->err);
		if (!ret)
			ret = copy_range(e, r, c0, c1);
	}
	e->fetched_us = snap_mono_us();
	return ret;
}

static int copy_region(struct engine *e, unsigned int r)
{
	if (e->vm->ops->clear && !e->rep->incremental)
		return copy_region_rearmed(e, r);
	return copy_range(e, r, 0, region_pages(e->vm, r));
}

/* Pass 1: every page of every region, in the sink's order. */
static int first_pass(struct engine *e, struct snap_pass *p)
{
	uint64_t t = snap_mono_us(), before = e->rep->bytes_written, copied = e->copied_pages;
	unsigned int k;
	int ret = 0;

	if (e->sink->ops->first_pass) {
		ret = e->sink->ops->first_pass(e->sink->ctx, e->err);
		for (k = 0; k < e->vm->cfg.nr_regions; k++)
			e->rep->bytes_written += e->vm->cfg.regions[k].size;
	}
	for (k = 0; !ret && !e->sink->ops->first_pass && k < e->vm->cfg.nr_regions; k++)
		ret = copy_region(e, nth_region(e, k));
	/* A pass ends when its data has landed: its rate sets the threshold. */
	if (!ret)
		ret = sink_drain(e);
	p->bytes = e->rep->bytes_written - before;
	p->dirty_pages = p->bytes / SNAP_PAGE_SIZE;
	e->pass1_copied = e->sink->ops->first_pass ? p->dirty_pages : e->copied_pages - copied;
	p->duration_us = snap_mono_us() - t;
	p->cpu_us = pass_cpu_us(p);
	return ret;
}

static uint64_t count_dirty(const struct snap_vm *vm)
{
	uint64_t total = 0;
	unsigned int r;

	for (r = 0; r < vm->cfg.nr_regions; r++)
		total += snap_bitmap_count(vm->regions[r].dirty, region_pages(vm, r));
	return total;
}

/* What the pause may copy when settling (snap_options.settle_floor). */
static uint64_t settle_floor(const struct engine *e)
{
	return e->o->limits->settle_floor ? e->o->limits->settle_floor : SNAP_SETTLE_FLOOR_DEFAULT;
}

/*
 * Below the threshold, one more pass while the dirty set is above the
 * settle floor and either still shrinks by a quarter or more each pass, or
 * the throttle can still rise (throttle_to_settle() sets it for the next
 * pass to leave about the floor): the downtime is a memcpy of the final
 * batch, and a pass over a small set costs the guest little. On a 1 GiB
 * guest dirtying 50 pages/ms this took the final batch from about 20-30 MiB
 * (4-7 ms of downtime) to a few MiB (Documentation/benchmarks.md). Not with
 * a threshold the caller gave: that one is meant.
 */
static bool worth_settling(const struct engine *e, uint64_t dirty, uint64_t before,
			   unsigned int max_passes, uint64_t max_us)
{
	bool can_throttle = e->vm->ops->throttle && e->thr.pct < e->thr.max;

	return !e->o->limits->threshold && dirty > settle_floor(e) &&
	       (dirty < before / 4 * 3 || can_throttle) && e->rep->nr_passes < max_passes &&
	       snap_mono_us() - e->t0 < max_us;
}

/*
 * The dirty run [pos, pos + len) and the dirty runs after it that start at
 * most sink->merge_gap clean pages later, as one run (below end): its
 * length. Writing the clean pages between is correct, as a clean page's
 * memory is what its last copy holds (a write since shows up in the next
 * fetch), and for a fixed image one larger write costs less than several
 * scattered ones. The dirty pages merged in are added to *dirty.
 */
static uint64_t merge_runs(const struct engine *e, const uint64_t *bm, uint64_t end, uint64_t pos,
			   uint64_t len, uint64_t *dirty)
{
	uint64_t gap = e->sink->merge_gap, next = pos + len, nlen;

	while (gap && next < end && snap_bitmap_next_run(bm, end, &next, &nlen) &&
	       next - (pos + len) <= gap) {
		*dirty += nlen;
		len = next + nlen - pos;
		next = pos + len;
	}
	return len;
}

/* The dirty bitmaps into e->kept, before a fetch overwrites them. */
static void keep_bitmaps(struct engine *e)
{
	unsigned int r;

	for (r = 0; r < e->vm->cfg.nr_regions; r++)
		memcpy(e->kept[r], e->vm->regions[r].dirty,
		       SNAP_BITMAP_WORDS(region_pages(e->vm, r)) * 8);
}

/*
 * A quarter into a pass, what has the guest dirtied since it began? More
 * than twice its share of what the pass may leave for the next (e->aim,
 * the settle floor or the threshold), and the throttle rises now rather
 * than after the pass (snap_throttle_in_pass()):
 *  - to the top if a throttle was in force: on a 1 GiB guest dirtying
 *    50 pages/ms, pass 2 ran 70 ms at about 70% and left 2,700-3,500
 *    pages, which a third pass wrote at 99%; the guest paces itself;
 *  - if none was, to what the pass's own rates need: pass 1's sequential
 *    rate had let pass 2 of a guest dirtying 200 pages/ms run unthrottled
 *    for 180 ms over scattered pages, and leave more than it had found.
 *
 * The look is a fetch that keeps the pass's bitmaps (fetch_keeping()). What
 * it finds in chunks not copied yet joins this pass; what it finds behind
 * the copy, before chunk c0 of the k-th region, is carried to the fetch
 * after the pass, as without manual protect this fetch re-armed it.
 */
static int check_throttle(struct engine *e, struct snap_pass *p, unsigned int k, uint64_t c0)
{
	struct snap_vm *vm = e->vm;
	uint64_t fresh = 0, words, behind, i, *d, aim = e->aim;
	unsigned int j, r;
	int ret;

	e->aim = 0; /* once a pass */
	keep_bitmaps(e);
	ret = vm->ops->fetch_dirty(vm->ctx, e->err);
	if (ret)
		return ret;
	for (j = 0; j < vm->cfg.nr_regions; j++) {
		r = nth_region(e, j);
		words = SNAP_BITMAP_WORDS(region_pages(vm, r));
		/* Words copied already; c0 starts a word (clear_chunk()). */
		behind = j < k ? words : 0;
		if (j == k)
			behind = c0 / 64;
		for (i = 0; i < words; i++) {
			d = &vm->regions[r].dirty[i];
			/* Ahead of the copy, the pass's own pages may still be reported. */
			fresh +=
			    (uint64_t)__builtin_popcountll(i < behind ? *d : *d & ~e->kept[r][i]);
			if (i < behind && *d) {
				e->carry[r][i] |= *d;
				e->carrying = true;
			}
			*d |= e->kept[r][i];
		}
	}
	snap_throttle_in_pass(&e->thr, fresh * SNAP_PAGE_SIZE, p->dirty_pages * SNAP_PAGE_SIZE,
			      e->pending, aim * SNAP_PAGE_SIZE);
	if (e->thr.pct == p->throttle_end_pct)
		return 0;
	p->throttle_raised_us = snap_mono_us() - e->t0 - p->start_us;
	p->throttle_end_pct = e->thr.pct;
	return e->vm->ops->throttle(e->vm->ctx, e->thr.pct, e->err);
}

/*
 * Every dirty run of every region, straight from guest memory. rearm: the
 * last fetch left the pages it reported writable (vm->ops->clear); each
 * chunk with dirty pages is re-armed just before it is copied, so that the
 * guest's writes until then cost neither a fault nor a copy in the next
 * pass.
 */
static int copy_dirty(struct engine *e, struct snap_pass *p, bool rearm)
{
	uint64_t t = snap_mono_us(), before = e->rep->bytes_written, pos, len, c0, c1, pages, run;
	unsigned int k;
	int ret;

	rearm = rearm && e->vm->ops->clear;
	for (k = 0; k < e->vm->cfg.nr_regions; k++) {
		unsigned int r = nth_region(e, k);
		const struct snap_vm_region *vr = &e->vm->regions[r];

		pages = region_pages(e->vm, r);
		for (c0 = 0; c0 < pages; c0 = c1) {
			c1 = MIN(c0 + clear_chunk(e, r), pages);
			pos = c0;
			if (!snap_bitmap_next_run(vr->dirty, c1, &pos, &len))
				continue;
			if (e->aim && e->pending && e->vm->ops->throttle &&
			    e->thr.pct < e->thr.max &&
			    4 * p->dirty_pages >= e->pending / SNAP_PAGE_SIZE) {
				ret = check_throttle(e, p, k, c0);
				if (ret)
					return ret;
			}
			if (rearm) {
				ret = e->vm->ops->clear(e->vm->ctx, r, c0, c1 - c0, e->err);
				if (ret)
					return ret;
			}
			for (; snap_bitmap_next_run(vr->dirty, c1, &pos, &len); pos += len) {
				p->dirty_pages += len;
				run = len;
				len = merge_runs(e, vr->dirty, c1, pos, len, &p->dirty_pages);
				ret = len == run ? sink_write(e, r, pos, len,
							      vr->mem + pos * SNAP_PAGE_SIZE)
						 : sink_write_merged(e, r, pos, len, vr->dirty);
				if (ret)
					return ret;
			}
		}
	}
	e->aim = 0;
	/* Also what makes a batch written while paused safe to resume after. */
	ret = sink_drain(e);
	p->bytes = e->rep->bytes_written - before;
	p->duration_us = snap_mono_us() - t;
	p->cpu_us = pass_cpu_us(p);
	return ret;
}

static void progress(struct engine *e, uint64_t remaining)
{
	const struct snap_options *l = e->o->limits;
	const struct snap_pass *p = &e->rep->passes[e->rep->nr_passes - 1];
	struct snap_progress pr = {.pass = e->rep->nr_passes, .remaining_bytes = remaining};

	if (!l->progress)
		return;
	if (p->duration_us)
		pr.rate_mib_s = (double)p->bytes / (1 << 20) / ((double)p->duration_us / 1e6);
	l->progress(&pr, l->progress_arg);
}

/* Bytes per ms the passes so far sustained, for the downtime-derived threshold. */
static uint64_t bandwidth_per_ms(const struct snap_report *rep)
{
	uint64_t bytes = 0, us = 0;
	unsigned int i;

	for (i = 0; i < rep->nr_passes; i++) {
		bytes += rep->passes[i].bytes;
		us += rep->passes[i].duration_us;
	}
	return us ? bytes * 1000 / us : 0;
}

/*
 * Every page the last fetch reported, re-armed: the next fetch then reports
 * exactly what the guest wrote since. Without manual protect the fetch
 * re-armed them already.
 */
static int rearm_all(struct engine *e)
{
	struct snap_vm *vm = e->vm;
	uint64_t pages, pos, len;
	unsigned int r;
	int ret = 0;

	for (r = 0; vm->ops->clear && r < vm->cfg.nr_regions && !ret; r++) {
		pages = region_pages(vm, r);
		pos = 0;
		if (snap_bitmap_next_run(vm->regions[r].dirty, pages, &pos, &len))
			ret = vm->ops->clear(vm->ctx, r, 0, pages, e->err);
	}
	return ret;
}

/*
 * Fetch the dirty log without losing what the bitmaps hold (fetch_dirty
 * overwrites them): afterwards they hold both. *fetched (may be NULL): the
 * pages the fetch itself reported.
 */
static int fetch_keeping(struct engine *e, uint64_t *fetched)
{
	struct snap_vm *vm = e->vm;
	uint64_t words, i, n = 0;
	unsigned int r;
	int ret;

	keep_bitmaps(e);
	ret = vm->ops->fetch_dirty(vm->ctx, e->err);
	if (ret)
		return ret;
	for (r = 0; r < vm->cfg.nr_regions; r++) {
		words = SNAP_BITMAP_WORDS(region_pages(vm, r));
		for (i = 0; i < words; i++) {
			n += (uint64_t)__builtin_popcountll(vm->regions[r].dirty[i]);
			vm->regions[r].dirty[i] |= e->kept[r][i];
		}
	}
	if (fetched)
		*fetched = n;
	return 0;
}

/* fetch_keeping()'s scratch and the carry, once a snapshot: nothing to allocate paused. */
static int alloc_kept(struct engine *e)
{
	unsigned int r;

	for (r = 0; r < e->vm->cfg.nr_regions; r++) {
		e->kept[r] = malloc(SNAP_BITMAP_WORDS(region_pages(e->vm, r)) * 8);
		e->carry[r] = calloc(SNAP_BITMAP_WORDS(region_pages(e->vm, r)), 8);
		if (!e->kept[r] || !e->carry[r])
			return err_set(e->err, -ENOMEM, "out of memory for dirty bitmaps");
	}
	return 0;
}

#define SAMPLE_MS 2 /* the window in which the guest's dirty rate is measured */

/*
 * How fast the guest dirties now, in bytes/s: the pages it wrote in a
 * window of SAMPLE_MS or so, every page re-armed before it. Counting only
 * the pages that were clean at the last fetch instead would see almost
 * nothing of a guest that rewrites a working set it has dirtied whole, and
 * the throttle would then creep up a step a pass (on a 2 GiB guest
 * rewriting 1 GiB: 9-10 passes, 2.3 s, against 5 passes and 1.3 s). A
 * working set smaller than what the guest rewrites in the window makes
 * this a lower bound. What precopy found stays in the bitmaps: the sample
 * is ORed into them.
 */
static int sample_dirty_rate(struct engine *e, double *rate)
{
	uint64_t pages, t0;
	int ret;

	*rate = 0;
	/*
	 * The window starts with a fetch of its own, kept for precopy. Without
	 * it, what the guest dirtied since precopy's last fetch would count as
	 * dirtied in the window: 30 ms of faulting in between once made the
	 * 2 ms sample 16 times too high. Before pass 1 nothing was fetched,
	 * and with KVM_DIRTY_LOG_INITIALLY_SET KVM reports every page: this
	 * fetch lets all of it be re-armed.
	 */
	ret = fetch_keeping(e, NULL);
	if (!ret)
		ret = rearm_all(e);
	if (ret)
		return ret;
	t0 = snap_mono_us();
	poll(NULL, 0, SAMPLE_MS); /* poll: in every seccomp allowlist that runs the engine */
	ret = fetch_keeping(e, &pages);
	if (ret)
		return ret;
	e->fetched_us = snap_mono_us();
	*rate = (double)pages * SNAP_PAGE_SIZE * 1e6 / (double)MAX(e->fetched_us - t0, 1);
	return 0;
}

/*
 * Settling, the dirty set below the threshold: hold the vCPUs so that the
 * next pass leaves at most the settle floor for the pause. Without it, a
 * guest that dirties nearly as fast as scattered slots are written keeps
 * the set where it is, and the pause copies all of it.
 *
 * If the rates misled (snap_throttle_settle_missed(): the set shrank by
 * less than a quarter, or the throttle aimed at the floor left more than
 * twice it), straight to the most the caller allows, once: the next pass
 * either shrinks the set or ends precopy (worth_settling()). Before this,
 * a paced guest held the set at 1.5 MiB for up to 12 passes of 6 ms at
 * 86% on a 1 GiB guest dirtying 50 pages/ms, and with the first rule
 * alone, settled at 67% over 5 passes (80 ms) that shrank the set by
 * a third to a half each.
 */
static int throttle_to_settle(struct engine *e, uint64_t dirty, uint64_t before)
{
	const struct snap_pass *p = &e->rep->passes[e->rep->nr_passes - 1];
	double dirty_rate = 0, clean_rate;
	unsigned int pct = e->thr.pct;
	int ret;

	if (!e->vm->ops->throttle || e->thr.pct >= e->thr.max)
		return 0;
	if (snap_throttle_settle_missed(dirty, before, settle_floor(e), e->settle_aimed)) {
		e->thr.pct = e->thr.max;
	} else {
		e->settle_aimed = true;
		ret = sample_dirty_rate(e, &dirty_rate);
		if (ret)
			return ret;
		clean_rate = p->duration_us ? (double)p->dirty_pages * SNAP_PAGE_SIZE * 1e6 /
						  (double)p->duration_us
					    : 0;
		snap_throttle_settle(&e->thr, dirty, settle_floor(e), dirty_rate, clean_rate);
	}
	return e->thr.pct == pct ? 0 : e->vm->ops->throttle(e->vm->ctx, e->thr.pct, e->err);
}

/*
 * A dirty limit, before pass 1: hold the vCPUs from the start so that the
 * guest dirties no faster than the limit. Pass 1 then leaves little for the
 * passes after it, at the cost of the guest's speed during it, which the
 * controller alone would spare until a pass failed to converge.
 */
static int throttle_to_limit(struct engine *e)
{
	double dirty_rate = 0;
	int ret;

	if (!e->o->limits->dirty_limit || !e->vm->ops->throttle || e->thr.pct >= e->thr.max)
		return 0;
	/*
	 * Twice: the first re-arms all of memory, which stalls the vCPUs, and
	 * a guest that paces itself then catches up in a burst that would
	 * count three times over; the second re-arms only what the first found.
	 */
	ret = sample_dirty_rate(e, &dirty_rate);
	if (!ret)
		ret = sample_dirty_rate(e, &dirty_rate);
	if (ret)
		return ret;
	e->rep->start_dirty_rate = dirty_rate;
	snap_throttle_limit(&e->thr, dirty_rate, (double)e->o->limits->dirty_limit);
	return e->thr.pct ? e->vm->ops->throttle(e->vm->ctx, e->thr.pct, e->err) : 0;
}

/*
 * The pass that just ended left dirty bytes: slow the vCPUs if it will not
 * converge, straight to what the measured rates need.
 */
static int throttle_after_pass(struct engine *e, uint64_t dirty)
{
	const struct snap_pass *p = &e->rep->passes[e->rep->nr_passes - 1];
	/*
	 * The dirty pages the pass cleaned, not the bytes it wrote: with merged
	 * runs it writes clean pages too, which clean nothing.
	 */
	uint64_t cleaned = p->dirty_pages * SNAP_PAGE_SIZE, seen = dirty;
	double dirty_rate = 0, clean_rate;
	int ret;

	/*
	 * Pass 1 re-arms each chunk just before its copy: a page's writes
	 * count from then, half the pass on average, so the fetch after it
	 * finds about half of what the guest dirtied meanwhile. Taken at face
	 * value, a 2 GiB guest rewriting 1 GiB went into pass 2 unthrottled.
	 */
	if (e->rep->nr_passes == 1 && e->vm->ops->clear && !e->rep->incremental)
		seen = 2 * dirty;
	/* Pass 1's holes cost it nothing: they are not what it cleaned. */
	if (e->rep->nr_passes == 1 && !e->rep->incremental)
		cleaned = e->pass1_copied * SNAP_PAGE_SIZE;
	/* Sample only when the throttle is going up anyway. */
	if (!e->vm->ops->throttle || !snap_throttle_rising(&e->thr, seen, cleaned))
		return 0;
	ret = sample_dirty_rate(e, &dirty_rate);
	if (ret)
		return ret;
	clean_rate = p->duration_us ? (double)cleaned * 1e6 / (double)p->duration_us : 0;
	/*
	 * What the pass left dirty over its duration is a rate too, a lower
	 * bound: the short sample can miss a guest slowed right then by the
	 * faults that the re-arm before it brings.
	 */
	if (p->duration_us)
		dirty_rate = MAX(dirty_rate, (double)seen * 1e6 / (double)p->duration_us);
	snap_throttle_next_rate(&e->thr, seen, cleaned, dirty_rate, clean_rate);
	/*
	 * And at least so that the next pass, at this pass's rate, leaves no
	 * more than the threshold. The rule above alone assumes that the
	 * guest dirties in proportion to the time it runs; one that paces
	 * itself (a producer at a fixed rate, the dirtier with rate=N) makes
	 * up for a mild throttle in the time left to it, and the set did not
	 * shrink: 2 GiB rewriting 1 GiB took 8 passes and 2.1 s, 1 GiB at
	 * 200 pages/ms 8 passes and 1.1 s, against 4-5 passes and 1.1 s,
	 * 0.63 s with this (Documentation/benchmarks.md).
	 */
	snap_throttle_settle(&e->thr, seen, e->rep->threshold, dirty_rate, clean_rate);
	return e->vm->ops->throttle(e->vm->ctx, e->thr.pct, e->err);
}

/*
 * Fault in as much of the stage as a final batch will likely need (twice
 * the dirty set just found, and 2 MiB): a page fault during the pause would
 * be downtime. Between passes only if no background worker does it: on
 * this thread it delays the next pass (30 ms for 64 MiB, measured), so
 * that the guest dirties more meanwhile. Before the pause, always.
 */
static void prefault_stage(struct engine *e, bool before_pause)
{
	if (before_pause || !e->stage->worker)
		snap_stage_prefault(e->stage, 2 * e->pending + (2ULL << 20));
}

/*
 * The fetch after a pass: what the guest dirtied since the last one, and
 * what check_throttle() found behind the pass's copy.
 */
static int fetch_after_pass(struct engine *e)
{
	struct snap_vm *vm = e->vm;
	uint64_t words, i;
	unsigned int r;
	int ret = vm->ops->fetch_dirty(vm->ctx, e->err);

	if (ret || !e->carrying)
		return ret;
	for (r = 0; r < vm->cfg.nr_regions; r++) {
		words = SNAP_BITMAP_WORDS(region_pages(vm, r));
		for (i = 0; i < words; i++)
			vm->regions[r].dirty[i] |= e->carry[r][i];
		memset(e->carry[r], 0, words * 8);
	}
	e->carrying = false;
	return 0;
}

/* Passes until the dirty set fits the threshold or a limit is hit. */
static int precopy(struct engine *e)
{
	const struct snap_options *l = e->o->limits;
	unsigned int max_passes = l->max_passes ? l->max_passes : DEFAULT_PASSES;
	uint64_t max_us = (l->max_time_ms ? l->max_time_ms : DEFAULT_TIME_MS) * 1000;
	uint64_t downtime = l->max_downtime_ms ? l->max_downtime_ms : DEFAULT_DOWNTIME;
	uint64_t dirty, before = UINT64_MAX;
	int ret = 0;

	max_passes = MIN(max_passes, SNAP_MAX_PASSES - 1);
	/* Incremental: the bitmaps hold what changed since the last snapshot; else every page. */
	if (e->sink->ops->start) {
		uint64_t t = snap_mono_us();

		ret = e->sink->ops->start(e->sink->ctx, e->rep->incremental, e->err);
		e->rep->sink_start_us = snap_mono_us() - t;
	}
	if (!ret)
		ret = throttle_to_limit(e);
	if (!ret)
		ret = e->rep->incremental ? copy_dirty(e, new_pass(e), false)
					  : first_pass(e, new_pass(e));
	for (; !ret; before = dirty) {
		e->rep->threshold =
		    l->threshold ? l->threshold : downtime * bandwidth_per_ms(e->rep);
		/*
		 * A final batch that outgrows the stage is written while paused,
		 * at the target's speed: stop with room for what the guest
		 * dirties until the pause, so that the batch stays a memcpy.
		 */
		if (!l->threshold && e->stage->buf)
			e->rep->threshold = MIN(e->rep->threshold, e->stage->cap / 2);
		ret = fetch_after_pass(e);
		if (ret)
			break;
		e->fetched_us = snap_mono_us();
		dirty = count_dirty(e->vm) * SNAP_PAGE_SIZE;
		progress(e, dirty);
		e->pending = dirty;
		if (dirty <= e->rep->threshold &&
		    !worth_settling(e, dirty, before, max_passes, max_us)) {
			e->rep->converged = true;
			e->rep->stop_reason = "dirty set below threshold";
		} else if (e->rep->nr_passes >= max_passes) {
			e->rep->stop_reason = "pass limit reached";
		} else if (snap_mono_us() - e->t0 >= max_us) {
			e->rep->stop_reason = "time limit reached";
		} else if (e->o->stop_if_not_halving && dirty > before / 2) {
			e->rep->stop_reason = "dirty set no longer halving";
		} else {
			/*
			 * Fault in the stage now, while the guest runs, for a batch
			 * this size: done between the last fetch and the pause, it
			 * would let the guest dirty more for the final batch.
			 */
			prefault_stage(e, false);
			/* And what the next pass may leave, which check_throttle() holds it to. */
			if (dirty <= e->rep->threshold) {
				ret = throttle_to_settle(e, dirty, before);
				e->aim = settle_floor(e) / SNAP_PAGE_SIZE;
			} else {
				ret = throttle_after_pass(e, dirty);
				e->aim = e->rep->threshold / SNAP_PAGE_SIZE;
			}
			if (!ret)
				ret = copy_dirty(e, new_pass(e), true);
			continue;
		}
		break;
	}
	return ret;
}

/* Copy every dirty run into the staging buffer, in region order. */
static void stage_batch(struct engine *e)
{
	struct snap_vm *vm = e->vm;
	uint64_t off = 0, pos, len;
	unsigned int r;

	for (r = 0; r < vm->cfg.nr_regions; r++) {
		for (pos = 0;
		     snap_bitmap_next_run(vm->regions[r].dirty, region_pages(vm, r), &pos, &len);
		     pos += len) {
			memcpy(e->stage->buf + off, vm->regions[r].mem + pos * SNAP_PAGE_SIZE,
			       len * SNAP_PAGE_SIZE);
			off += len * SNAP_PAGE_SIZE;
		}
	}
}

/* Hand the staged batch over, walking the bitmaps in the order it was copied. */
static int write_staged(struct engine *e)
{
	struct snap_vm *vm = e->vm;
	uint64_t off = 0, pos, len;
	unsigned int r;
	int ret;

	for (r = 0; r < vm->cfg.nr_regions; r++) {
		for (pos = 0;
		     snap_bitmap_next_run(vm->regions[r].dirty, region_pages(vm, r), &pos, &len);
		     pos += len) {
			ret = sink_write(e, r, pos, len, e->stage->buf + off);
			if (ret)
				return ret;
			off += len * SNAP_PAGE_SIZE;
		}
	}
	return sink_drain(e);
}

/*
 * Paused: the bitmaps hold what precopy found but did not copy. Add what
 * was dirtied since, and take the whole batch out of guest memory.
 */
static int final_batch(struct engine *e, struct snap_pass *p, bool *staged)
{
	uint64_t t = snap_mono_us();
	int ret;

	/* Precopy's leftovers stay. */
	ret = fetch_keeping(e, NULL);
	if (ret)
		return ret;
	p->dirty_pages = count_dirty(e->vm);
	p->bytes = p->dirty_pages * SNAP_PAGE_SIZE;
	*staged = e->stage->buf && p->bytes <= e->stage->cap;
	if (*staged) {
		/* Copy out now, hand over after resuming: the downtime is a memcpy. */
		stage_batch(e);
	} else {
		/* Too big to stage: hand it over from guest memory while paused. */
		p->dirty_pages = 0; /* copy_dirty() counts them as it goes */
		ret = copy_dirty(e, p, false);
	}
	p->duration_us = snap_mono_us() - t;
	p->cpu_us = pass_cpu_us(p);
	return ret;
}

/* Everything while paused: for a VM whose memory changes cannot be logged. */
static int copy_paused(struct engine *e)
{
	struct snap_pass *p = new_pass(e);
	int ret = 0;

	if (e->sink->ops->start)
		ret = e->sink->ops->start(e->sink->ctx, false, e->err);
	if (!ret)
		ret = first_pass(e, p);

	e->rep->stop_reason = "copied while paused";
	e->rep->converged = !ret;
	return ret;
}

/* The µs since *t, which moves to now: one step of a timed sequence. */
static uint64_t lap_us(uint64_t *t)
{
	uint64_t now = snap_mono_us(), us = now - *t;

	*t = now;
	return us;
}

/* The pause: last batch, state, the sink's hook, resume. */
static int pause_and_finish(struct engine *e, bool logged, bool *resumed, bool *staged)
{
	struct snap_vm *vm = e->vm;
	uint64_t t_pause, paused_us = 0, resumed_us = 0, t;
	int ret;

	prefault_stage(e, true);
	ret = vm->ops->pause(vm->ctx, &e->rep->pause_latency_us, &paused_us, e->err);
	if (ret)
		return ret;
	/* The VM's own pause time, not when its reply arrived. */
	t_pause = snap_mono_us();
	if (paused_us && paused_us < t_pause)
		t_pause = paused_us;
	ret = logged ? final_batch(e, new_pass(e), staged) : copy_paused(e);
	e->rep->pause_realtime_ns = snap_real_ns();
	t = snap_mono_us();
	if (!ret && e->o->state)
		ret = vm->ops->save_state(vm->ctx, e->o->state, e->o->state_cap, e->o->state_used,
					  e->err);
	e->rep->pause_state_us = lap_us(&t);
	if (!ret && e->sink->ops->paused)
		ret = e->sink->ops->paused(e->sink->ctx, e->err);
	e->rep->pause_sink_us = lap_us(&t);
	if (!ret)
		ret = unthrottle(e, e->err);
	e->rep->pause_unthrottle_us = lap_us(&t);
	if (ret)
		return ret;
	/* The final batch is out of guest memory (or has landed): resume. */
	ret = vm->ops->finish(vm->ctx, &resumed_us, e->err);
	*resumed = !ret;
	/* The VM's own resume time, not when its reply arrived. */
	if (!resumed_us || resumed_us < t_pause)
		resumed_us = snap_mono_us();
	e->rep->downtime_us = resumed_us - t_pause;
	e->rep->pause_resume_us = resumed_us > t ? resumed_us - t : 0;
	return ret;
}

int snap_precopy_run(struct snap_vm *vm, const struct snap_sink *sink,
		     const struct snap_precopy_opts *o, struct snap_report *rep, struct error *err)
{
	struct engine e = {.vm = vm, .sink = sink, .o = o, .rep = rep, .err = err};
	bool logged = vm->ops->log_start != NULL, resumed = false;
	struct snap_stage none = {0};
	bool staged = false;
	struct error ferr;
	unsigned int r;
	int ret = 0;

	e.t0 = snap_mono_us();
	snap_throttle_init(&e.thr, o->limits->max_throttle);
	e.stage = o->stage ? o->stage : &none;
	if (logged)
		ret = alloc_kept(&e);
	if (!ret && logged) {
		uint64_t t, ram = 0;

		/* No batch is larger than the VM's memory. */
		for (r = 0; r < vm->cfg.nr_regions; r++)
			ram += vm->cfg.regions[r].size;
		snap_stage_start_background(e.stage, ram);
		t = snap_mono_us();
		ret = vm->ops->log_start(vm->ctx, &rep->incremental, err);
		rep->log_start_us = snap_mono_us() - t;
		if (!ret)
			ret = precopy(&e);
	}
	if (!ret)
		ret = pause_and_finish(&e, logged, &resumed, &staged);
	if (!ret && staged)
		ret = write_staged(&e);
	if (!resumed) {
		/* Full speed, resume and stop logging whatever happened; keep the first error. */
		if (unthrottle(&e, &ferr) && !ret)
			ret = err_set(err, ferr.code, "%s", ferr.msg);
		if (vm->ops->finish(vm->ctx, NULL, &ferr) && !ret)
			ret = err_set(err, ferr.code, "%s", ferr.msg);
	}
	/* Nothing may refer to guest memory or the stage once this returns. */
	snap_stage_stop(e.stage);
	if (ret && sink->ops->drain)
		sink->ops->drain(sink->ctx, &ferr);
	for (r = 0; r < SNAP_MAX_REGIONS; r++) {
		free(e.kept[r]);
		free(e.carry[r]);
	}
	rep->total_us = snap_mono_us() - e.t0;
	return ret;
}
