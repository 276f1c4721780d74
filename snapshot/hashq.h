/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Page hashing on worker threads, off the thread that drives the writes:
 * the writer hands each run of pages it has queued for writing to the
 * queue, and waits for every hash where it waits for the writes (the end
 * of a pass), so the digests stay those of exactly the bytes written.
 *
 * With no workers (one CPU, or KVMSNAP_HASH_THREADS=0) submit() hashes on
 * the caller's thread, as before.
 */
#ifndef KVMSNAP_HASHQ_H
#define KVMSNAP_HASHQ_H

#include <stdint.h>

#include "lib/error.h"

#define SNAP_HASHQ_MAX_THREADS 8

struct snap_hashq;

/*
 * Start threads workers (SNAP_HASHQ_MAX_THREADS at most; 0: hash inline).
 * A worker that cannot start leaves fewer (snap_hashq_threads() says how
 * many). 0, or -ENOMEM with *err set.
 */
int snap_hashq_init(struct snap_hashq **q, unsigned int threads, struct error *err);

/* Workers to use by default: KVMSNAP_HASH_THREADS, else online CPUs - 2, at most 2. */
unsigned int snap_hashq_default_threads(void);

/*
 * out[i] = snap_page_hash(src + i * 4096) for i < n, now or on a worker.
 * src and out stay the caller's to keep untouched until snap_hashq_wait().
 * Never fails: a full queue makes the caller wait for room.
 */
void snap_hashq_submit(struct snap_hashq *q, const uint8_t *src, uint64_t n, uint64_t *out);

/* Every submitted hash is in place. */
void snap_hashq_wait(struct snap_hashq *q);

/* Wait, stop the workers and free q (NULL is fine). */
void snap_hashq_exit(struct snap_hashq *q);

unsigned int snap_hashq_threads(const struct snap_hashq *q);

#endif
