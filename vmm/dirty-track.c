// SPDX-License-Identifier: GPL-2.0
/* Dirty trackers per image slot; see dirty-track.h for the rules. */
#include "dirty-track.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/align.h"

#define STR_(x) #x
#define STR(x)	STR_(x)

void dirty_track__init(struct dirty_track *dt)
{
	memset(dt, 0, sizeof(*dt));
}

static void tracker_free(struct dirty_tracker *t)
{
	unsigned int r;

	for (r = 0; r < DIRTY_TRACK_MAX_REGIONS; r++) {
		free(t->bitmap[r]);
		free(t->fallback[r]);
	}
	memset(t, 0, sizeof(*t));
}

void dirty_track__exit(struct dirty_track *dt)
{
	unsigned int i;

	for (i = 0; i < DIRTY_TRACK_MAX; i++)
		tracker_free(&dt->t[i]);
	dirty_track__init(dt);
}

int dirty_track__set_shape(struct dirty_track *dt, unsigned int nr_regions, const uint64_t *words,
			   struct error *err)
{
	if (dt->nr_regions) {
		if (dt->nr_regions == nr_regions &&
		    !memcmp(dt->words, words, nr_regions * sizeof(*words)))
			return 0;
		return err_set(err, -EINVAL, "dirty tracking: the memory regions changed");
	}
	if (!nr_regions || nr_regions > DIRTY_TRACK_MAX_REGIONS)
		return err_set(err, -EINVAL, "dirty tracking: %u regions", nr_regions);
	dt->nr_regions = nr_regions;
	memcpy(dt->words, words, nr_regions * sizeof(*words));
	return 0;
}

void dirty_track__or_region(struct dirty_track *dt, unsigned int region, const uint64_t *bits,
			    uint64_t first, uint64_t n)
{
	unsigned int i;
	uint64_t w;

	if (!dt->nr || region >= dt->nr_regions || first >= dt->words[region])
		return;
	n = MIN(n, dt->words[region] - first);
	for (i = 0; i < DIRTY_TRACK_MAX; i++) {
		uint64_t *bm = dt->t[i].bitmap[region];

		if (!dt->t[i].used)
			continue;
		for (w = first; w < first + n; w++)
			bm[w] |= bits[w];
	}
}

bool dirty_track__needs_log(const struct dirty_track *dt)
{
	unsigned int i;

	for (i = 0; i < DIRTY_TRACK_MAX; i++)
		if (dt->t[i].used && (dt->t[i].valid || dt->t[i].pending))
			return true;
	return false;
}

void dirty_track__invalidate(struct dirty_track *dt, enum dirty_track_why why)
{
	unsigned int i;

	for (i = 0; i < DIRTY_TRACK_MAX; i++) {
		struct dirty_tracker *t = &dt->t[i];

		if (!t->used)
			continue;
		/* No id is accepted any more, so neither an end nor a commit can revive it. */
		t->valid = false;
		t->pending = false;
		t->why = why;
		t->nr_ids = 0;
	}
}

static bool key_eq(const uint8_t *a, uint32_t sa, const uint8_t *b, uint32_t sb)
{
	return sa == sb && !memcmp(a, b, DIRTY_TRACK_UUID_SIZE);
}

struct dirty_tracker *dirty_track__find(struct dirty_track *dt, const uint8_t *uuid, uint32_t slot)
{
	unsigned int i;

	for (i = 0; i < DIRTY_TRACK_MAX; i++)
		if (dt->t[i].used && key_eq(dt->t[i].uuid, dt->t[i].slot, uuid, slot))
			return &dt->t[i];
	return NULL;
}

static bool has_id(const struct dirty_tracker *t, uint64_t id)
{
	unsigned int i;

	for (i = 0; i < t->nr_ids; i++)
		if (t->ids[i] == id)
			return true;
	return false;
}

/* Accept id as well; one too many makes the tracker invalid. */
static void add_id(struct dirty_tracker *t, uint64_t id)
{
	if (has_id(t, id))
		return;
	if (t->nr_ids == DIRTY_TRACK_MAX_IDS) {
		t->valid = false;
		t->why = DIRTY_TRACK_TOO_MANY_IDS;
		return;
	}
	t->ids[t->nr_ids++] = id;
}

static bool was_evicted(const struct dirty_track *dt, const uint8_t *uuid, uint32_t slot)
{
	unsigned int i;

	for (i = 0; i < DIRTY_TRACK_EVICTED; i++)
		if (dt->evicted[i].used &&
		    key_eq(dt->evicted[i].uuid, dt->evicted[i].slot, uuid, slot))
			return true;
	return false;
}

static void forget_evicted(struct dirty_track *dt, const uint8_t *uuid, uint32_t slot)
{
	unsigned int i;

	for (i = 0; i < DIRTY_TRACK_EVICTED; i++)
		if (dt->evicted[i].used &&
		    key_eq(dt->evicted[i].uuid, dt->evicted[i].slot, uuid, slot))
			dt->evicted[i].used = false;
}

static void note_evicted(struct dirty_track *dt, const struct dirty_tracker *t)
{
	struct dirty_track_key *k = &dt->evicted[dt->nr_evicted++ % DIRTY_TRACK_EVICTED];

	k->used = true;
	memcpy(k->uuid, t->uuid, DIRTY_TRACK_UUID_SIZE);
	k->slot = t->slot;
}

const char *dirty_track__why(enum dirty_track_why why)
{
	switch (why) {
	case DIRTY_TRACK_OK:
		return "it is valid";
	case DIRTY_TRACK_UNCOMMITTED:
		return "no snapshot into it was committed since this VM began tracking it";
	case DIRTY_TRACK_LOG_OFF:
		return "dirty logging was turned off since";
	case DIRTY_TRACK_FETCH_FAILED:
		return "a dirty-log fetch failed since";
	case DIRTY_TRACK_TOO_MANY_IDS:
		return "more than " STR(
		    DIRTY_TRACK_MAX_IDS) " attempts on it since its last committed snapshot";
	}
	return "?";
}

struct dirty_tracker *dirty_track__lookup(struct dirty_track *dt, const uint8_t *uuid,
					  uint32_t slot, const uint64_t *base, char *why,
					  size_t len)
{
	struct dirty_tracker *t = dirty_track__find(dt, uuid, slot);
	char a[DIRTY_TRACK_ID_HEX + 1], b[DIRTY_TRACK_ID_HEX + 1];

	if (!t) {
		if (was_evicted(dt, uuid, slot))
			snprintf(why, len,
				 "the tracker of slot %u was evicted (this VM tracks at most %d "
				 "image slots)",
				 slot, DIRTY_TRACK_MAX);
		else
			snprintf(why, len,
				 "this VM has not tracked slot %u of that image since it started",
				 slot);
		return NULL;
	}
	if (t->pending) {
		snprintf(why, len, "slot %u is waiting for the commit of write id %s", slot,
			 dirty_track__format_id(t->pending_id, a));
		return NULL;
	}
	if (!t->valid) {
		snprintf(why, len, "slot %u: %s", slot, dirty_track__why(t->why));
		return NULL;
	}
	if (!base) {
		snprintf(why, len, "no base write id was given for slot %u", slot);
		return NULL;
	}
	if (!has_id(t, *base)) {
		if (t->nr_ids > 1)
			snprintf(why, len,
				 "slot %u was last written by another writer (write id %s, tracked "
				 "%s and %u more)",
				 slot, dirty_track__format_id(*base, a),
				 dirty_track__format_id(t->ids[0], b), t->nr_ids - 1);
		else
			snprintf(why, len,
				 "slot %u was last written by another writer (write id %s, tracked "
				 "%s)",
				 slot, dirty_track__format_id(*base, a),
				 dirty_track__format_id(t->nr_ids ? t->ids[0] : 0, b));
		return NULL;
	}
	return t;
}

void dirty_track__resume(struct dirty_tracker *t)
{
	unsigned int r;
	uint64_t *bm, *fb;
	size_t w;

	if (!t->pending)
		return;
	for (r = 0; r < DIRTY_TRACK_MAX_REGIONS && t->bitmap[r]; r++) {
		bm = t->bitmap[r];
		fb = t->fallback[r];
		/* The fallback's words are the bitmap's: both were allocated alike. */
		for (w = 0; fb && w < t->nr_words[r]; w++)
			bm[w] |= fb[w];
	}
	t->pending = false;
	/* An invalid tracker only becomes valid through a commit. */
	if (t->valid)
		add_id(t, t->pending_id);
}

/* A fresh tracker for (uuid, slot): the old one, a free one, or the least recently used. */
static int tracker_make(struct dirty_track *dt, const uint8_t *uuid, uint32_t slot,
			struct dirty_tracker **out, struct error *err)
{
	struct dirty_tracker *t = dirty_track__find(dt, uuid, slot), *lru = NULL;
	unsigned int i, r;

	if (!dt->nr_regions)
		return err_set(err, -EINVAL, "dirty tracking needs dirty logging on");
	for (i = 0; !t && i < DIRTY_TRACK_MAX; i++) {
		if (!dt->t[i].used) {
			t = &dt->t[i];
			break;
		}
		if (!lru || dt->t[i].stamp < lru->stamp)
			lru = &dt->t[i];
	}
	if (!t) {
		note_evicted(dt, lru);
		t = lru;
		t->used = false;
		dt->nr--;
	}
	for (r = 0; r < dt->nr_regions; r++) {
		if (!t->bitmap[r])
			t->bitmap[r] = calloc(dt->words[r], 8);
		if (!t->fallback[r])
			t->fallback[r] = calloc(dt->words[r], 8);
		if (!t->bitmap[r] || !t->fallback[r])
			return err_set(err, -ENOMEM, "out of memory for a dirty tracker");
		memset(t->bitmap[r], 0, dt->words[r] * 8);
		t->nr_words[r] = dt->words[r];
	}
	if (!t->used)
		dt->nr++;
	t->used = true;
	t->valid = false;
	t->pending = false;
	t->why = DIRTY_TRACK_UNCOMMITTED;
	memcpy(t->uuid, uuid, DIRTY_TRACK_UUID_SIZE);
	t->slot = slot;
	t->nr_ids = 0;
	t->pending_id = 0;
	t->stamp = ++dt->clock;
	forget_evicted(dt, uuid, slot);
	*out = t;
	return 0;
}

int dirty_track__begin(struct dirty_track *dt, const struct dirty_tag *tag, const uint64_t *base,
		       struct dirty_tracker **out, bool *incremental, char *why, size_t len,
		       struct error *err)
{
	struct dirty_tracker *t = dirty_track__find(dt, tag->uuid, tag->slot);
	int ret;

	*incremental = false;
	*out = NULL;
	if (t)
		dirty_track__resume(t);
	t = dirty_track__lookup(dt, tag->uuid, tag->slot, base, why, len);
	if (t) {
		t->stamp = ++dt->clock;
		/* A failed attempt may leave its id in the header: still a superset. */
		add_id(t, tag->write_id);
		if (t->valid) {
			*incremental = true;
			*out = t;
			return 0;
		}
		snprintf(why, len, "slot %u: %s", tag->slot, dirty_track__why(t->why));
	}
	ret = tracker_make(dt, tag->uuid, tag->slot, &t, err);
	if (ret)
		return ret;
	t->ids[t->nr_ids++] = tag->write_id;
	*out = t;
	return 0;
}

bool dirty_track__end(struct dirty_track *dt, const struct dirty_tag *tag)
{
	struct dirty_tracker *t = dirty_track__find(dt, tag->uuid, tag->slot);
	unsigned int r;
	uint64_t *tmp;

	if (!t || !has_id(t, tag->write_id))
		return false;
	dirty_track__resume(t);
	/* Swap, not copy: the fresh bitmap is the old fallback, cleared. */
	for (r = 0; r < dt->nr_regions; r++) {
		tmp = t->fallback[r];
		t->fallback[r] = t->bitmap[r];
		t->bitmap[r] = tmp;
		memset(t->bitmap[r], 0, t->nr_words[r] * 8);
	}
	t->pending = true;
	t->pending_id = tag->write_id;
	t->stamp = ++dt->clock;
	return true;
}

void dirty_track__abort(struct dirty_track *dt, const struct dirty_tag *tag)
{
	struct dirty_tracker *t = dirty_track__find(dt, tag->uuid, tag->slot);

	/* Otherwise nothing to do: every fetch since the tracker began is in its bitmap. */
	if (t && t->pending && t->pending_id == tag->write_id)
		dirty_track__resume(t);
}

int dirty_track__commit(struct dirty_track *dt, const struct dirty_tag *tag, struct error *err)
{
	struct dirty_tracker *t = dirty_track__find(dt, tag->uuid, tag->slot);
	char a[DIRTY_TRACK_ID_HEX + 1], b[DIRTY_TRACK_ID_HEX + 1];

	if (!t)
		return err_set(err, -ENOENT, "slot %u of that image is not tracked%s", tag->slot,
			       was_evicted(dt, tag->uuid, tag->slot) ? " (its tracker was evicted)"
								     : "");
	if (!t->pending)
		return err_set(err, -EINVAL, "slot %u is waiting for no commit%s%s", tag->slot,
			       t->valid ? "" : ": ", t->valid ? "" : dirty_track__why(t->why));
	if (t->pending_id != tag->write_id)
		return err_set(err, -EINVAL,
			       "slot %u is waiting for the commit of write id %s, not %s",
			       tag->slot, dirty_track__format_id(t->pending_id, a),
			       dirty_track__format_id(tag->write_id, b));
	t->pending = false;
	t->valid = true;
	t->why = DIRTY_TRACK_OK;
	t->ids[0] = tag->write_id;
	t->nr_ids = 1;
	t->stamp = ++dt->clock;
	return 0;
}

int dirty_track__start(struct dirty_track *dt, const struct dirty_tag *tag, struct error *err)
{
	struct dirty_tracker *t;
	int ret = tracker_make(dt, tag->uuid, tag->slot, &t, err);

	if (ret)
		return ret;
	t->valid = true;
	t->why = DIRTY_TRACK_OK;
	t->ids[t->nr_ids++] = tag->write_id;
	return 0;
}

uint64_t dirty_track__pages(const struct dirty_track *dt, const struct dirty_tracker *t,
			    bool fallback)
{
	uint64_t n = 0, w;
	unsigned int r;

	for (r = 0; r < dt->nr_regions; r++) {
		const uint64_t *bm = fallback ? t->fallback[r] : t->bitmap[r];

		for (w = 0; bm && w < t->nr_words[r]; w++)
			n += (uint64_t)__builtin_popcountll(bm[w]);
	}
	return n;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int dirty_track__parse_uuid(const char *s, uint8_t *uuid)
{
	unsigned int i;

	if (strlen(s) != DIRTY_TRACK_UUID_HEX)
		return -EINVAL;
	for (i = 0; i < DIRTY_TRACK_UUID_SIZE; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		uuid[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int dirty_track__parse_id(const char *s, uint64_t *id)
{
	uint64_t v = 0;
	unsigned int i;

	if (strlen(s) != DIRTY_TRACK_ID_HEX)
		return -EINVAL;
	for (i = 0; i < DIRTY_TRACK_ID_HEX; i++) {
		int d = hex_digit(s[i]);

		if (d < 0)
			return -EINVAL;
		v = v << 4 | (uint64_t)d;
	}
	*id = v;
	return 0;
}

char *dirty_track__format_uuid(const uint8_t *uuid, char *buf)
{
	unsigned int i;

	for (i = 0; i < DIRTY_TRACK_UUID_SIZE; i++)
		sprintf(buf + 2 * i, "%02x", uuid[i]);
	return buf;
}

char *dirty_track__format_id(uint64_t id, char *buf)
{
	sprintf(buf, "%016" PRIx64, id);
	return buf;
}
