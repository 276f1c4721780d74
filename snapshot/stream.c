// SPDX-License-Identifier: GPL-2.0
/* The page-record stream codec; see stream.h. */
#include "snapshot/stream.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "lib/align.h"
#include "lib/le.h"

#define BAD(err, ...) err_set((err), -EPROTO, "stream: " __VA_ARGS__)

void snap_rec_encode(const struct snap_rec *r, uint8_t buf[SNAP_REC_SIZE])
{
	memcpy(buf, SNAP_REC_MAGIC, 8);
	put_le32(buf + 0x08, r->type);
	put_le32(buf + 0x0c, r->region);
	put_le64(buf + 0x10, r->first);
	put_le64(buf + 0x18, r->count);
}

int snap_rec_decode(const uint8_t buf[SNAP_REC_SIZE], const struct snap_config *cfg,
		    uint64_t state_cap, struct snap_rec *out, struct error *err)
{
	struct snap_rec r;
	uint64_t pages;

	if (memcmp(buf, SNAP_REC_MAGIC, 8))
		return BAD(err, "a record without its magic (out of step, or not a kvmsnap VM)");
	r.type = get_le32(buf + 0x08);
	r.region = get_le32(buf + 0x0c);
	r.first = get_le64(buf + 0x10);
	r.count = get_le64(buf + 0x18);
	switch (r.type) {
	case SNAP_REC_PAGES:
		if (r.region >= cfg->nr_regions)
			return BAD(err, "pages of region %u; the VM has %u", r.region,
				   cfg->nr_regions);
		pages = cfg->regions[r.region].size / SNAP_PAGE_SIZE;
		if (!r.count || r.count > SNAP_REC_MAX_PAGES || r.first > pages ||
		    r.count > pages - r.first)
			return BAD(err,
				   "%" PRIu64 " pages from page %" PRIu64
				   " of %s, which has %" PRIu64,
				   r.count, r.first, cfg->regions[r.region].id, pages);
		break;
	case SNAP_REC_STATE:
		if (r.region || r.first || r.count > state_cap)
			return BAD(err, "a VM state of %" PRIu64 " bytes; the area holds %" PRIu64,
				   r.count, state_cap);
		break;
	case SNAP_REC_PASS:
	case SNAP_REC_END:
		if (r.region || (r.type == SNAP_REC_END && (r.first || r.count)))
			return BAD(err, "a malformed %s record",
				   r.type == SNAP_REC_END ? "END" : "PASS");
		break;
	default:
		return BAD(err, "unknown record type %u", r.type);
	}
	*out = r;
	return 0;
}

uint64_t snap_rec_payload(const struct snap_rec *r)
{
	switch (r->type) {
	case SNAP_REC_PAGES:
		return r->count * SNAP_PAGE_SIZE;
	case SNAP_REC_STATE:
		return r->count;
	case SNAP_REC_END:
		return SNAP_REC_END_SIZE;
	default:
		return 0;
	}
}

/* Why precopy ended, as a code in END: the engine's reasons, in this order. */
static const char *const stop_reasons[] = {
    "",
    "dirty set below threshold",
    "pass limit reached",
    "time limit reached",
    "dirty set no longer halving",
    "copied while paused",
};

void snap_rec_end_encode(const struct snap_report *rep, uint8_t buf[SNAP_REC_END_SIZE])
{
	uint32_t i, reason = 0;

	for (i = 1; rep->stop_reason && i < ARRAY_SIZE(stop_reasons); i++)
		if (!strcmp(rep->stop_reason, stop_reasons[i]))
			reason = i;
	memset(buf, 0, SNAP_REC_END_SIZE);
	put_le32(buf + 0x00, rep->nr_passes);
	put_le32(buf + 0x04, rep->converged);
	put_le64(buf + 0x08, rep->downtime_us);
	put_le64(buf + 0x10, rep->pause_latency_us);
	put_le64(buf + 0x18, rep->threshold);
	put_le64(buf + 0x20, rep->pause_realtime_ns);
	put_le64(buf + 0x28, rep->total_us);
	put_le32(buf + 0x30, reason);
}

void snap_rec_end_decode(const uint8_t buf[SNAP_REC_END_SIZE], struct snap_report *rep)
{
	uint32_t passes = get_le32(buf + 0x00), reason;

	/* Only what the manager did not see itself; clamped, never trusted for sizes. */
	rep->converged = get_le32(buf + 0x04) == 1;
	rep->downtime_us = get_le64(buf + 0x08);
	rep->pause_latency_us = get_le64(buf + 0x10);
	rep->threshold = get_le64(buf + 0x18);
	rep->pause_realtime_ns = get_le64(buf + 0x20);
	/* A code, not a string: only the engine's own reasons can come back. */
	reason = get_le32(buf + 0x30);
	rep->stop_reason = reason < ARRAY_SIZE(stop_reasons) ? stop_reasons[reason] : "";
	if (passes > rep->nr_passes && passes <= SNAP_MAX_PASSES)
		rep->nr_passes = passes;
}
