/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The NBD target backend, private to snapshot/: an export reached through
 * libnbd (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH) in
 * place of a file or block device. Every request goes out asynchronously
 * and is waited for with a deadline, so a server that stops answering
 * fails the request (with one line) instead of hanging the snapshot.
 *
 * Once a request has failed for the connection (lost, timed out) the
 * backend is dead: every later request fails at once, and libnbd is never
 * called again but to close, so it never touches a caller's buffer after
 * the call that failed.
 */
#ifndef KVMSNAP_NBD_H
#define KVMSNAP_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "lib/error.h"

/* Writes in flight at once; writev() copies into one buffer per slot. */
#define SNAP_NBD_DEPTH 8
/* The deadline of one request, unless KVMSNAP_NBD_TIMEOUT_MS says otherwise. */
#define SNAP_NBD_TIMEOUT_MS 30000

struct snap_nbd;

/* Does path name an NBD export rather than a file? */
bool snap_nbd_is_uri(const char *path);

/*
 * Connect to the export at uri. For writing (rdwr), a read-only export and
 * one without flush are refused: nothing written to it could be made
 * durable. *size gets the export's size.
 */
int snap_nbd_open(const char *uri, bool rdwr, struct snap_nbd **out, uint64_t *size,
		  struct error *err);
void snap_nbd_close(struct snap_nbd *n);

/* Synchronous I/O; fua: the write is durable when it returns. */
int snap_nbd_pread(struct snap_nbd *n, void *buf, size_t len, uint64_t off, struct error *err);
int snap_nbd_pwrite(struct snap_nbd *n, const void *buf, size_t len, uint64_t off, bool fua,
		    struct error *err);
/* Every write that has completed is durable (waits for those in flight first). */
int snap_nbd_flush(struct snap_nbd *n, struct error *err);

/*
 * Queue a write; waits for a slot when SNAP_NBD_DEPTH are in flight. buf
 * must stay untouched until snap_nbd_drain(); a vectored write is copied
 * first. 0, or the first error of a write already finished.
 */
int snap_nbd_aio_pwrite(struct snap_nbd *n, const void *buf, size_t len, uint64_t off,
			struct error *err);
int snap_nbd_aio_pwritev(struct snap_nbd *n, const struct iovec *iov, unsigned int nr_iov,
			 uint64_t off, struct error *err);
/* Wait for every queued write. 0, or the first error since the last drain. */
int snap_nbd_drain(struct snap_nbd *n, struct error *err);

#endif
