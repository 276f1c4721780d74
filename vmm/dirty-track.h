/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Dirty trackers: which pages changed since an image slot was last completed,
 * so that the next snapshot into that slot can write only those.
 *
 * A tracker belongs to one image slot, (uuid, slot), and holds one bitmap
 * per region (bit per region page, the shape of mem__region_bitmap_bytes()).
 * Every dirty-log fetch ORs what it fetched into every tracker
 * (dirty_track__or_region(), from mem__fetch_dirty()), so the bitmap holds
 * every page dirtied since the tracker's start. Write ids are opaque 64-bit
 * values that the image's slot header carries, one per snapshot attempt.
 *
 * A valid tracker accepts a small set of write ids: the slot holds, for each
 * page, content at least as new as the bitmap's start whenever its header
 * carries one of them. So an incremental snapshot on base X writes the
 * bitmap's pages, and X must be accepted. The life of a tracker:
 *
 *   begin   (snapshot-log)  a pending tracker is resumed first; if it is valid
 *                           and accepts base: incremental, the attempt's id
 *                           joins the accepted ones (a failed attempt may
 *                           have rewritten the header with it). Otherwise it
 *                           is replaced by an invalid one that accepts
 *                           {attempt} and accumulates from now.
 *   end     (snapshot-end)  pending on the attempt: the bitmap moves to a
 *                           fallback, a fresh one accumulates from the final
 *                           fetch (done while paused).
 *   commit  (snapshot-commit)  pending -> valid, accepting {write id}; the
 *                           fallback is dropped.
 *   resume  (no commit came)  the fallback merges back: a superset, so still
 *                           safe; the pending id joins the accepted ones.
 *   abort                   nothing is lost: the bitmap already holds
 *                           everything since its start.
 *
 * Turning dirty logging off loses what KVM had not handed over yet: every
 * tracker becomes invalid (dirty_track__invalidate()). More than
 * DIRTY_TRACK_MAX_IDS accepted ids makes a tracker invalid too.
 *
 * No KVM and no system calls here: the registry (mem.c) feeds it, the
 * snapshot session drives it, tests/unit/test_dirty_track.c tests it.
 */
#ifndef KVMSNAP_DIRTY_TRACK_H
#define KVMSNAP_DIRTY_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

#define DIRTY_TRACK_MAX		4 /* image slots tracked at once; the least recently used goes */
#define DIRTY_TRACK_MAX_IDS	8 /* accepted write ids; one more makes a tracker invalid */
#define DIRTY_TRACK_MAX_REGIONS 8 /* >= MEM_MAX_REGIONS (checked in mem.c) */
#define DIRTY_TRACK_EVICTED	8 /* evicted slots remembered, for the reason */
#define DIRTY_TRACK_UUID_SIZE	16
#define DIRTY_TRACK_UUID_HEX	32 /* lowercase hex digits of a uuid */
#define DIRTY_TRACK_ID_HEX	16 /* lowercase hex digits of a write id */
#define DIRTY_TRACK_WHY_MAX	160

/* One snapshot attempt into one image slot. */
struct dirty_tag {
	uint8_t uuid[DIRTY_TRACK_UUID_SIZE];
	uint32_t slot;
	uint64_t write_id;
};

/* Why a tracker is not valid. */
enum dirty_track_why {
	DIRTY_TRACK_OK,		  /* valid */
	DIRTY_TRACK_UNCOMMITTED,  /* started by an attempt that was not committed */
	DIRTY_TRACK_LOG_OFF,	  /* dirty logging was turned off */
	DIRTY_TRACK_FETCH_FAILED, /* a KVM_GET_DIRTY_LOG failed: bits may be lost */
	DIRTY_TRACK_TOO_MANY_IDS, /* more than DIRTY_TRACK_MAX_IDS attempts uncommitted */
};

struct dirty_tracker {
	bool used;
	bool valid;
	bool pending; /* snapshot-end done, snapshot-commit of pending_id awaited */
	enum dirty_track_why why;
	uint8_t uuid[DIRTY_TRACK_UUID_SIZE];
	uint32_t slot;
	uint64_t ids[DIRTY_TRACK_MAX_IDS]; /* accepted write ids */
	unsigned int nr_ids;
	uint64_t pending_id;
	uint64_t stamp;				    /* last use, for eviction */
	uint64_t nr_words[DIRTY_TRACK_MAX_REGIONS]; /* of each bitmap */
	uint64_t *bitmap[DIRTY_TRACK_MAX_REGIONS];
	uint64_t *fallback[DIRTY_TRACK_MAX_REGIONS]; /* while pending: up to the final fetch */
};

struct dirty_track_key {
	bool used;
	uint8_t uuid[DIRTY_TRACK_UUID_SIZE];
	uint32_t slot;
};

struct dirty_track {
	unsigned int nr_regions;		 /* 0 until dirty_track__set_shape() */
	uint64_t words[DIRTY_TRACK_MAX_REGIONS]; /* 64-bit words of each region bitmap */
	unsigned int nr;			 /* trackers in use: 0, the fetch feeds none */
	struct dirty_tracker t[DIRTY_TRACK_MAX];
	uint64_t clock;
	struct dirty_track_key evicted[DIRTY_TRACK_EVICTED]; /* a ring */
	unsigned int nr_evicted;
};

void dirty_track__init(struct dirty_track *dt);
/* Free every tracker. */
void dirty_track__exit(struct dirty_track *dt);

/*
 * The regions' bitmap sizes, in 64-bit words. Set once; a later call with
 * the same shape does nothing, another shape is -EINVAL (*err set).
 */
int dirty_track__set_shape(struct dirty_track *dt, unsigned int nr_regions, const uint64_t *words,
			   struct error *err);

/* OR words [first, first + n) of a region bitmap into every tracker's. No allocation. */
void dirty_track__or_region(struct dirty_track *dt, unsigned int region, const uint64_t *bits,
			    uint64_t first, uint64_t n);

/* Whether a tracker is valid or pending: dirty logging must then stay on. */
bool dirty_track__needs_log(const struct dirty_track *dt);

/* Dirty bits may have been lost (logging off, a failed fetch): no tracker is valid. */
void dirty_track__invalidate(struct dirty_track *dt, enum dirty_track_why why);

/* The tracker of (uuid, slot), or NULL. */
struct dirty_tracker *dirty_track__find(struct dirty_track *dt, const uint8_t *uuid, uint32_t slot);

/*
 * Whether the tracker of (uuid, slot) is valid and accepts base (NULL: no
 * base, never accepted): the tracker, or NULL with the reason in why (len
 * bytes). Changes nothing.
 */
struct dirty_tracker *dirty_track__lookup(struct dirty_track *dt, const uint8_t *uuid,
					  uint32_t slot, const uint64_t *base, char *why,
					  size_t len);

/*
 * A pending tracker whose commit never came: the fallback merges back into
 * the bitmap and the pending id is accepted too (if the tracker was valid).
 * Nothing if it is not pending.
 */
void dirty_track__resume(struct dirty_tracker *t);

/*
 * An attempt (tag: uuid, slot, attempt id) begins, after a fetch: resume,
 * then lookup(base). *incremental says which: true, the tracker's bitmaps
 * are those of the pages to write; false, why has the reason and the
 * tracker is a new invalid one that accepts {attempt} (the least recently
 * used one may be evicted for it). *out: the tracker. 0, or -ENOMEM/-EINVAL
 * with *err set.
 */
int dirty_track__begin(struct dirty_track *dt, const struct dirty_tag *tag, const uint64_t *base,
		       struct dirty_tracker **out, bool *incremental, char *why, size_t len,
		       struct error *err);

/*
 * The attempt's snapshot-end, on success: its tracker becomes pending on
 * tag->write_id. Nothing if the tracker is gone or no longer accepts the
 * attempt (evicted or invalidated since). Whether it became pending.
 */
bool dirty_track__end(struct dirty_track *dt, const struct dirty_tag *tag);

/*
 * The attempt failed (abort, a client gone): the tracker keeps every bit.
 * A tracker already pending on it is resumed.
 */
void dirty_track__abort(struct dirty_track *dt, const struct dirty_tag *tag);

/*
 * The slot's header is durably complete with tag->write_id: the pending
 * tracker becomes valid and accepts only it. -ENOENT/-EINVAL with *err set
 * (and nothing changed) unless the tracker is pending on that id.
 */
int dirty_track__commit(struct dirty_track *dt, const struct dirty_tag *tag, struct error *err);

/*
 * The slot's content is the memory as it is now (a restore from it): a
 * valid tracker with empty bitmaps, accepting {write_id}. 0 or -errno.
 */
int dirty_track__start(struct dirty_track *dt, const struct dirty_tag *tag, struct error *err);

/* Why a tracker is not valid, as the end of a sentence ("dirty logging was turned off since"). */
const char *dirty_track__why(enum dirty_track_why why);

/* Pages set in the tracker's bitmaps (or fallbacks). */
uint64_t dirty_track__pages(const struct dirty_track *dt, const struct dirty_tracker *t,
			    bool fallback);

/* Hex forms: a uuid as 32 lowercase hex digits, a write id as 16. 0 or -EINVAL. */
int dirty_track__parse_uuid(const char *s, uint8_t *uuid);
int dirty_track__parse_id(const char *s, uint64_t *id);
/* into buf, which holds DIRTY_TRACK_UUID_HEX + 1 (resp. DIRTY_TRACK_ID_HEX + 1) bytes */
char *dirty_track__format_uuid(const uint8_t *uuid, char *buf);
char *dirty_track__format_id(uint64_t id, char *buf);

#endif
