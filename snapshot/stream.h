/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The page-record stream of `kvmsnap snapshot --via-stream`
 * (Documentation/snapshot-format.md, "Stream records"): the VM process
 * writes its pages into a pipe the manager gave it, and the manager places
 * each page in its slot, so the manager never maps guest memory.
 *
 * Every record starts with a 32-byte little-endian header:
 *
 *   0x00  8  magic "KSREC001"
 *   0x08  4  type
 *   0x0c  4  region (PAGES), else 0
 *   0x10  8  first page (PAGES), pass number (PASS), else 0
 *   0x18  8  page count (PAGES), dirty pages (PASS), bytes (STATE), else 0
 *
 * followed by count * 4096 bytes of page data (PAGES), count bytes of VM
 * state (STATE), SNAP_REC_END_SIZE bytes of report (END), or nothing.
 * A stream is PASS, PAGES..., PASS, PAGES..., ..., STATE, PAGES..., END.
 */
#ifndef KVMSNAP_STREAM_H
#define KVMSNAP_STREAM_H

#include "snapshot/writer.h"

#define SNAP_REC_SIZE	   32
#define SNAP_REC_MAGIC	   "KSREC001"
#define SNAP_REC_MAX_PAGES 2048 /* 8 MiB: the largest PAGES record */
#define SNAP_REC_END_SIZE  64

enum snap_rec_type {
	SNAP_REC_PASS = 1,  /* a precopy pass begins */
	SNAP_REC_PAGES = 2, /* a run of pages of one region */
	SNAP_REC_STATE = 3, /* the VM state area, taken at the pause */
	SNAP_REC_END = 4,   /* the VM's report; the last record */
};

struct snap_rec {
	uint32_t type;
	uint32_t region;
	uint64_t first;
	uint64_t count;
};

void snap_rec_encode(const struct snap_rec *r, uint8_t buf[SNAP_REC_SIZE]);

/*
 * Decode and check a header against the image's configuration: magic, a
 * known type, a region that exists, a run inside it of at most
 * SNAP_REC_MAX_PAGES pages (no overflow), a state of at most state_cap
 * bytes. Every byte is the VM's and hostile. 0 or -EPROTO with *err set.
 */
int snap_rec_decode(const uint8_t buf[SNAP_REC_SIZE], const struct snap_config *cfg,
		    uint64_t state_cap, struct snap_rec *r, struct error *err);

/* Bytes of payload that follow a checked header. */
uint64_t snap_rec_payload(const struct snap_rec *r);

/* The END payload: what the VM says of its snapshot (informational). */
void snap_rec_end_encode(const struct snap_report *rep, uint8_t buf[SNAP_REC_END_SIZE]);
void snap_rec_end_decode(const uint8_t buf[SNAP_REC_END_SIZE], struct snap_report *rep);

#endif
