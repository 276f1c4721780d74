// SPDX-License-Identifier: GPL-2.0
/*
 * The --via-stream records, as the manager reads them (vmm/live-snapshot/
 * receive.c): a run of 32-byte headers, each checked by snap_rec_decode()
 * against a fixed configuration and state area before its payload is
 * skipped, and the END payload decoded. Whatever passes must lie inside its
 * region or the state area.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "snapshot/stream.h"

#define STATE_CAP (64 << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_config cfg;
	struct snap_report rep;
	struct snap_rec r;
	uint64_t payload;

	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.machine, SNAP_MACHINE_PC);
	cfg.vcpus = 1;
	cfg.nr_regions = 2;
	strcpy(cfg.regions[0].id, "pc.ram");
	cfg.regions[0].size = 1 << 20;
	strcpy(cfg.regions[1].id, "vga.vram");
	cfg.regions[1].size = (64 << 10) + (12 << 10);
	memset(&rep, 0, sizeof(rep));
	while (size >= SNAP_REC_SIZE) {
		if (snap_rec_decode(data, &cfg, STATE_CAP, &r, NULL))
			return 0;
		data += SNAP_REC_SIZE;
		size -= SNAP_REC_SIZE;
		if (r.type == SNAP_REC_PAGES &&
		    (r.region >= cfg.nr_regions ||
		     r.first + r.count > cfg.regions[r.region].size / 4096))
			abort();
		if (r.type == SNAP_REC_STATE && r.count > STATE_CAP)
			abort();
		payload = snap_rec_payload(&r);
		if (r.type == SNAP_REC_END) {
			if (size < SNAP_REC_END_SIZE)
				return 0;
			snap_rec_end_decode(data, &rep);
			if (rep.nr_passes > SNAP_MAX_PASSES || !rep.stop_reason)
				abort();
			return 0;
		}
		/* The payload itself is guest memory or state: only its length matters here. */
		if (payload > size)
			return 0;
		data += payload;
		size -= payload;
	}
	return 0;
}
