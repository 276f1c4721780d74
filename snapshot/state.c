// SPDX-License-Identifier: GPL-2.0
/*
 * The VM state area container (Documentation/snapshot-format.md, "VM state
 * area"): a 32-byte header, then records of {type, instance, len, reserved}
 * and a payload padded with zeros to a multiple of 8.
 *
 * The reader trusts nothing: it reads the header only after checking the
 * length, never looks past `used`, and checks every record against the bytes
 * that are left before handing out a pointer to its payload.
 */
#include "snapshot/state.h"

#include <errno.h>
#include <string.h>
#include <xxhash.h>

#include "lib/le.h"

#define STATE_MAGIC	"KSSTATE1"
#define STATE_MAGIC_LEN 8
#define STATE_REC_HDR	16
#define STATE_OFF_COUNT 0x08
#define STATE_OFF_RSVD	0x0c
#define STATE_OFF_USED	0x10
#define STATE_OFF_XXH	0x18

static uint64_t align8(uint64_t v)
{
	return (v + 7) & ~7ULL;
}

static uint64_t state_hash(const uint8_t *buf, size_t used)
{
	return XXH3_64bits(buf + SNAP_STATE_HDR_SIZE, used - SNAP_STATE_HDR_SIZE);
}

void snap_state_init(struct snap_state_writer *w, uint8_t *buf, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
	if (cap < SNAP_STATE_HDR_SIZE) {
		w->overflow = true;
		return;
	}
	memset(buf, 0, SNAP_STATE_HDR_SIZE);
	w->used = SNAP_STATE_HDR_SIZE;
}

uint8_t *snap_state_add(struct snap_state_writer *w, uint32_t type, uint32_t instance, uint32_t len)
{
	uint64_t need = STATE_REC_HDR + align8(len);
	uint8_t *rec;

	if (w->overflow || w->count == UINT32_MAX || need > w->cap - w->used) {
		w->overflow = true;
		return NULL;
	}
	rec = w->buf + w->used;
	put_le32(rec, type);
	put_le32(rec + 4, instance);
	put_le32(rec + 8, len);
	put_le32(rec + 12, 0);
	memset(rec + STATE_REC_HDR, 0, need - STATE_REC_HDR);
	w->used += need;
	w->count++;
	return rec + STATE_REC_HDR;
}

int snap_state_finish(struct snap_state_writer *w, size_t *used, struct error *err)
{
	if (w->overflow)
		return err_set(
		    err, -ENOSPC,
		    "the VM state does not fit in the %zu-byte state area (%u records written)",
		    w->cap, w->count);
	memcpy(w->buf, STATE_MAGIC, STATE_MAGIC_LEN);
	put_le32(w->buf + STATE_OFF_COUNT, w->count);
	put_le32(w->buf + STATE_OFF_RSVD, 0);
	put_le64(w->buf + STATE_OFF_USED, w->used);
	put_le64(w->buf + STATE_OFF_XXH, state_hash(w->buf, w->used));
	*used = w->used;
	return 0;
}

int snap_state_open(struct snap_state_reader *r, const uint8_t *buf, size_t len, struct error *err)
{
	uint64_t used, want, got;
	uint32_t count;

	memset(r, 0, sizeof(*r));
	if (len < SNAP_STATE_HDR_SIZE)
		return err_set(err, -EINVAL,
			       "VM state area: %zu bytes, shorter than its %d-byte header", len,
			       SNAP_STATE_HDR_SIZE);
	if (memcmp(buf, STATE_MAGIC, STATE_MAGIC_LEN))
		return err_set(err, -EINVAL, "VM state area: bad magic (not a KSSTATE1 area)");
	if (get_le32(buf + STATE_OFF_RSVD))
		return err_set(err, -EINVAL, "VM state area: reserved header field is not zero");
	used = get_le64(buf + STATE_OFF_USED);
	if (used < SNAP_STATE_HDR_SIZE || used > len || used % 8)
		return err_set(
		    err, -EINVAL,
		    "VM state area: bytes used %llu is outside [%d, %zu] or not a multiple of 8",
		    (unsigned long long)used, SNAP_STATE_HDR_SIZE, len);
	want = get_le64(buf + STATE_OFF_XXH);
	got = state_hash(buf, used);
	if (want != got)
		return err_set(
		    err, -EINVAL,
		    "VM state area: checksum mismatch (stored %016llx, computed %016llx)",
		    (unsigned long long)want, (unsigned long long)got);
	count = get_le32(buf + STATE_OFF_COUNT);
	/* Every record takes at least its 16-byte header. */
	if (count > (used - SNAP_STATE_HDR_SIZE) / STATE_REC_HDR)
		return err_set(err, -EINVAL, "VM state area: %u records cannot fit in %llu bytes",
			       count, (unsigned long long)used);
	r->buf = buf;
	r->used = used;
	r->pos = SNAP_STATE_HDR_SIZE;
	r->count = count;
	return 0;
}

int snap_state_next(struct snap_state_reader *r, struct snap_state_record *rec, struct error *err)
{
	const uint8_t *p, *pad;
	uint64_t left, body;
	uint32_t len;

	if (r->pos > r->used)
		return err_set(err, -EINVAL, "VM state area: reader past the end");
	left = r->used - r->pos;
	if (r->seen == r->count) {
		if (left)
			return err_set(err, -EINVAL,
				       "VM state area: %llu bytes after the last of %u records",
				       (unsigned long long)left, r->count);
		return 0;
	}
	if (left < STATE_REC_HDR)
		return err_set(
		    err, -EINVAL,
		    "VM state area: record %u of %u is truncated (%llu bytes left for its header)",
		    r->seen, r->count, (unsigned long long)left);
	p = r->buf + r->pos;
	len = get_le32(p + 8);
	if (get_le32(p + 12))
		return err_set(
		    err, -EINVAL,
		    "VM state area: record %u (type 0x%04x) has a nonzero reserved field", r->seen,
		    get_le32(p));
	body = align8(len);
	if (body > left - STATE_REC_HDR)
		return err_set(
		    err, -EINVAL,
		    "VM state area: record %u (type 0x%04x) claims %u bytes, only %llu are left",
		    r->seen, get_le32(p), len, (unsigned long long)(left - STATE_REC_HDR));
	for (pad = p + STATE_REC_HDR + len; pad < p + STATE_REC_HDR + body; pad++)
		if (*pad)
			return err_set(err, -EINVAL,
				       "VM state area: record %u (type 0x%04x) has nonzero padding",
				       r->seen, get_le32(p));
	rec->type = get_le32(p);
	rec->instance = get_le32(p + 4);
	rec->len = len;
	rec->payload = p + STATE_REC_HDR;
	r->pos += STATE_REC_HDR + body;
	r->seen++;
	return 1;
}
