/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VM state area container: a header and typed records (see
 * Documentation/snapshot-format.md). The payload of each record type is
 * specified in Documentation/state-records.md and encoded by its owner in
 * vmm/ (each component owns its save/restore pair).
 */
#ifndef KVMSNAP_STATE_H
#define KVMSNAP_STATE_H

#include "snapshot/snapshot.h"

#define SNAP_STATE_HDR_SIZE 0x20

struct snap_state_writer {
	uint8_t *buf;
	size_t cap;
	size_t used;
	uint32_t count;
	bool overflow; /* a record did not fit; finish fails */
};

struct snap_state_record {
	uint32_t type;
	uint32_t instance;
	uint32_t len;
	const uint8_t *payload;
};

struct snap_state_reader {
	const uint8_t *buf;
	size_t used;
	size_t pos;
	uint32_t count;
	uint32_t seen;
};

void snap_state_init(struct snap_state_writer *w, uint8_t *buf, size_t cap);
/* Reserve a zeroed payload of len bytes; NULL (and overflow set) if it does not fit. */
uint8_t *snap_state_add(struct snap_state_writer *w, uint32_t type, uint32_t instance,
			uint32_t len);
/* Write the header and checksum. 0 or -ENOSPC. *used = bytes to store. */
int snap_state_finish(struct snap_state_writer *w, size_t *used, struct error *err);

/* Validate magic, size and checksum of a state area of len bytes. */
int snap_state_open(struct snap_state_reader *r, const uint8_t *buf, size_t len, struct error *err);
/* 1 and the next record, 0 at the end, or -EINVAL for a malformed record. */
int snap_state_next(struct snap_state_reader *r, struct snap_state_record *rec, struct error *err);

#endif
