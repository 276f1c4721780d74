/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The precopy engine: the one loop that copies a running VM's memory
 * somewhere while the guest keeps writing it.
 *
 *  1. dirty logging on; pass 1 hands every page to the sink
 *  2. passes: fetch the dirty log, hand each dirty run to the sink, until
 *     the dirty bytes fit the threshold or a limit is hit
 *  3. pause; fetch the last dirty log; copy the last batch out of guest
 *     memory into a staging buffer (or, if it is too big, hand it to the
 *     sink while paused); save the VM state; the sink's paused hook; resume
 *  4. hand the staged batch to the sink
 *
 * The image writer (writer.c) runs it with a sink that writes fixed image
 * slots; vmm/restore/lazy.c runs it with a sink that copies into new
 * memfds. The VM is reached only through struct snap_vm (writer.h). Any
 * failure calls the VM's finish(): the guest always runs on.
 */
#ifndef KVMSNAP_PRECOPY_H
#define KVMSNAP_PRECOPY_H

#include "snapshot/stage.h"
#include "snapshot/writer.h"

/* Where the pages go. Every function returns 0 or -errno with *err set. */
struct snap_sink_ops {
	/*
	 * Pages [first, first + n) of region r, read from src. src is guest
	 * memory or the staging buffer and stays untouched until drain().
	 */
	int (*write)(void *ctx, unsigned int r, uint64_t first, uint64_t n, const uint8_t *src,
		     struct error *err);
	/*
	 * Optional: a merged run (snap_sink.merge_gap), as write(), of which
	 * only the pages set in dirty (region r's bitmap) changed since their
	 * last write(). The others hold what that write took, or were written
	 * since by the guest, which the next fetch reports: they are written
	 * again as they are. Without it, write() gets the whole run.
	 */
	int (*write_merged)(void *ctx, unsigned int r, uint64_t first, uint64_t n,
			    const uint8_t *src, const uint64_t *dirty, struct error *err);
	/* Optional: pages [first, first + n) of region r are known to be zero (memfd holes). */
	int (*zeros)(void *ctx, unsigned int r, uint64_t first, uint64_t n, struct error *err);
	/*
	 * Optional: logging is on and pass 1 is next; incremental: pass 1
	 * hands over only the pages the VM tracked since the last snapshot.
	 */
	int (*start)(void *ctx, bool incremental, struct error *err);
	/* Optional: do pass 1 a faster way than reading every page of every region. */
	int (*first_pass)(void *ctx, struct error *err);
	/* Optional: everything handed over so far has landed (a pass ends here). */
	int (*drain)(void *ctx, struct error *err);
	/* Optional: called paused, after the final batch, before the VM resumes. */
	int (*paused)(void *ctx, struct error *err);
};

struct snap_sink {
	void *ctx;
	const struct snap_sink_ops *ops;
	const unsigned int *order; /* regions in the order pass 1 visits them; NULL: 0, 1, ... */
	/*
	 * Dirty runs at most this many clean pages apart go to write() as one
	 * run, clean pages included (0: never). Not for pass 1 (everything)
	 * nor for a staged final batch (a memcpy while paused, page by page).
	 */
	unsigned int merge_gap;
};

struct snap_precopy_opts {
	const struct snap_options *limits; /* threshold, downtime, passes, time; progress */
	/*
	 * Where the final batch is staged (snap_stage_alloc()), or NULL: never
	 * stage. The caller's to free, after the run: unmapping 64 MiB of it
	 * took 10 ms, which need not delay the end of a snapshot.
	 */
	struct snap_stage *stage;
	bool stop_if_not_halving; /* end precopy once a pass leaves over half as much */
	/* VM state: save_state() fills it while paused (NULL: no state). */
	uint8_t *state;
	size_t state_cap, *state_used;
};

/*
 * Run the engine. With vm->ops->log_start NULL (no dirty logging to be
 * had), everything is copied while paused. rep gets the passes, threshold,
 * pause latency, downtime and why precopy ended; rep->bytes_written counts
 * the bytes handed to the sink. On return, success or not, finish() has
 * been called exactly once (the VM runs, logging is off), nothing refers
 * to guest memory any more, and the stage's worker has stopped.
 */
int snap_precopy_run(struct snap_vm *vm, const struct snap_sink *sink,
		     const struct snap_precopy_opts *o, struct snap_report *rep, struct error *err);

#endif
