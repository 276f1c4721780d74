/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Image targets, private to snapshot/: the file, block device or NBD export
 * under an image, opened, sized and checked before any byte is written to
 * it. Two backends: a descriptor (file, block device) or an NBD connection
 * (snapshot/nbd.h); exactly one of fd and nbd is set on an open target.
 */
#ifndef KVMSNAP_TARGET_H
#define KVMSNAP_TARGET_H

#include "snapshot/snapshot.h"

struct snap_nbd;

struct snap_target {
	int fd;		      /* a file or block device; -1 for an NBD export */
	struct snap_nbd *nbd; /* an NBD export; NULL for a descriptor */
	bool blockdev;
	/* A regular file this call created or truncated: removed on failure. */
	bool created;
	/*
	 * Reads as zeros over the image (the image's data-zero flag): a file
	 * this call preallocated, or a device it zeroed by a fast device
	 * command. An NBD export, or a device without the command, holds
	 * whatever it held.
	 */
	bool zeroed;
	uint64_t size; /* file, device or export size */
};

/*
 * Make a target of at least size bytes at path: a new regular file (an
 * existing one only with force: it is truncated) preallocated in full, or a
 * block device that is large enough, not in use (held with O_EXCL from here
 * on) and, unless force, free of foreign signatures. Either is locked
 * exclusively (flock); wait: for up to SNAP_LOCK_WAIT_MS if it is in use.
 * An NBD URI: an export that is large enough, writable, with flush, and
 * unless force blank or holding a kvmsnap image (NBD has no locks).
 */
int snap_target_create(const char *path, uint64_t size, bool force, bool wait,
		       struct snap_target *t, struct error *err);

/*
 * Open an existing target; a block device opened rdwr is held with O_EXCL.
 * Locked exclusively (rdwr) or shared, waiting as snap_target_create() does.
 */
int snap_target_open(const char *path, bool rdwr, bool wait, struct snap_target *t,
		     struct error *err);

/* Switch the fd to O_DIRECT; false (and no change) where unsupported. */
bool snap_target_set_direct(struct snap_target *t);

int snap_target_sync(struct snap_target *t, const char *path, struct error *err);

/* Close; remove the file if this process created it and keep is false. */
void snap_target_close(struct snap_target *t, const char *path, bool keep);

/* Is path a block device or NBD export that does not (yet) hold a kvmsnap image? For prepare. */
bool snap_target_is_blank(const char *path);

#endif
