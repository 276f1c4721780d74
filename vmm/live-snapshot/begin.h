/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The manager's check of the VM's snapshot-begin reply. The VM process runs
 * guest code and is not trusted: everything it sends is checked here, before
 * the manager maps or touches anything, with arithmetic that cannot wrap.
 * Pure (no I/O), so that unit tests and a fuzzer can drive it.
 */
#ifndef KVMSNAP_LIVE_SNAPSHOT_BEGIN_H
#define KVMSNAP_LIVE_SNAPSHOT_BEGIN_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "snapshot/snapshot.h"

/* Largest shared area a VM may announce: bitmaps of 64 GiB and the state of 4096 vCPUs fit. */
#define SNAPSHOT_SHM_MAX (1ULL << 30)

/* What fstat() and F_GET_SEALS say of a received descriptor. */
struct snapshot_fd_info {
	bool regular;	  /* S_ISREG: a memfd or a file, not a socket, device or pipe */
	uint64_t size;	  /* st_size */
	bool size_sealed; /* F_SEAL_SHRINK and F_SEAL_GROW: it can never change size */
	bool writable;	  /* opened for writing: the VM gave more than it should */
};

/* The checked layout: every offset and size below is within its file. */
struct snapshot_begin {
	struct snap_config cfg;
	char metadata[SNAP_METADATA_MAX + 1];
	uint64_t shm_size, state_off, state_cap;
	uint64_t bitmap_off[SNAP_MAX_REGIONS]; /* in the shared area, per region */
};

/*
 * Check a snapshot-begin reply and the descriptors that came with it (fds[0]
 * the shared area, then one memfd per region) and fill *out. Refused with
 * -EPROTO and one line naming the cause: a missing or mistyped member, a
 * configuration snap_config_check() refuses, a layout that does not fit the
 * shared area (checked without overflow), a descriptor that is not a regular
 * file, is shorter than announced, can still shrink or grow, or is writable.
 */
int snapshot_begin__check(struct json_object *reply, const struct snapshot_fd_info *fds,
			  unsigned int nr_fds, struct snapshot_begin *out, struct error *err);

/* The same for a --via-stream reply: the configuration only (no area, no descriptors). */
int snapshot_begin__check_stream(struct json_object *reply, struct snapshot_begin *out,
				 struct error *err);

#endif
