/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The buffer that the final batch of a live snapshot is copied into while
 * the vCPUs are paused, so that the downtime is a memcpy. A page of it that
 * is first touched during that memcpy costs a page fault inside the pause,
 * so it is faulted in beforehand:
 *
 * - in the background, by a thread at SCHED_IDLE that runs only while the
 *   CPUs would otherwise idle (the engine waiting for its writes, for the
 *   VM's replies); faulting 64 MiB takes about 30 ms of CPU, which done
 *   between two passes lengthened every snapshot by as much;
 * - and on demand, by snap_stage_prefault(), for what the background has
 *   not reached (no idle CPU, or the scheduler refused SCHED_IDLE).
 *
 * Not thread-safe: one caller drives it; only the worker runs beside it.
 */
#ifndef KVMSNAP_STAGE_H
#define KVMSNAP_STAGE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/error.h"

/*
 * The stage every writer uses: 64 MiB. The threshold is at most half of it
 * (the rest is room for what the guest dirties until the pause).
 */
#define SNAP_STAGE_BYTES (64ULL << 20)

struct snap_stage {
	uint8_t *buf;	    /* NULL: no stage (cap 0) */
	uint64_t cap;	    /* bytes mapped */
	uint64_t ready;	    /* bytes faulted in, from the start; the worker's while it runs */
	uint64_t bg_target; /* what the worker faults in at most */
	bool worker;	    /* a worker thread runs (until snap_stage_stop()) */
	bool stop;	    /* tells the worker to return; __atomic access */
	pthread_t thread;
};

/* Map cap bytes, not faulted in (cap 0: no stage). 0 or -ENOMEM with *err set. */
int snap_stage_alloc(struct snap_stage *st, uint64_t cap, struct error *err);

/*
 * Start faulting in the first MIN(target, cap) bytes on a SCHED_IDLE thread.
 * Best effort: without a thread, or SCHED_IDLE, nothing happens in the
 * background and snap_stage_prefault() does it all. KVMSNAP_STAGE_WORKER=0
 * turns the worker off, for comparisons.
 */
void snap_stage_start_background(struct snap_stage *st, uint64_t target);

/* Stop the worker and wait for it; what it faulted in stays (st->ready). */
void snap_stage_stop(struct snap_stage *st);

/*
 * Fault in the first MIN(want, cap) bytes on this thread, after stopping
 * the worker. Touching needs no syscall: it works under every seccomp
 * filter the engine runs under.
 */
void snap_stage_prefault(struct snap_stage *st, uint64_t want);

/* Stop the worker and unmap. The struct may be freed after. */
void snap_stage_free(struct snap_stage *st);

#endif
