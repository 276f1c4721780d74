/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The precopy writer: live snapshot of a running VM into an image, passes
 * of dirty pages written over their fixed slots, then a short final pause.
 * The VM is reached only through struct snap_vm.
 */
#ifndef KVMSNAP_WRITER_H
#define KVMSNAP_WRITER_H

#include "snapshot/image.h"

/* One memory owner as the writer sees it. */
struct snap_vm_region {
	const uint8_t *mem; /* readable mapping of the whole region */
	int memfd;	    /* the file behind mem, or -1: lets pass 1 skip holes */
	uint64_t size;
	uint64_t *
	    dirty; /* bitmap, one bit per region page; fetch_dirty fills it, the writer may change it */
};

struct snap_vm_ops {
	/*
	 * Start dirty logging: every page clean from now on, or, with a clear
	 * op, possibly every page dirty until clear() re-arms it (pass 1 copies
	 * every page and re-arms each chunk first, so either is exact). Or, for an
	 * incremental snapshot, set *prefilled and leave in the dirty bitmaps
	 * every page changed since the image slot's last snapshot (the VM
	 * tracked them): pass 1 then copies only those.
	 */
	int (*log_start)(void *ctx, bool *prefilled, struct error *err);
	/* Fill every region's dirty bitmap with the pages dirtied since the last call. */
	int (*fetch_dirty)(void *ctx, struct error *err);
	/*
	 * Stop every vCPU; return when all are out of guest mode. latency_us
	 * gets how long that took; paused_us when the last one stopped,
	 * CLOCK_MONOTONIC in µs, or 0 if unknown: the downtime starts there.
	 */
	int (*pause)(void *ctx, uint64_t *latency_us, uint64_t *paused_us, struct error *err);
	/* Write the VM state area contents (header and records) into buf. */
	int (*save_state)(void *ctx, uint8_t *buf, size_t cap, size_t *used, struct error *err);
	/*
	 * Resume the vCPUs (if paused) and stop dirty logging. Must not fail
	 * silently. resumed_us (may be NULL) gets when the vCPUs were released,
	 * CLOCK_MONOTONIC in µs, or 0 if unknown: the downtime ends there.
	 */
	int (*finish)(void *ctx, uint64_t *resumed_us, struct error *err);
	/*
	 * Optional: hold the vCPUs pct percent of the time (0: full speed), so
	 * that a guest that dirties faster than the sink writes lets precopy
	 * converge. The engine sets 0 again before the VM resumes from the
	 * final pause, and before finish() on failure.
	 */
	int (*throttle)(void *ctx, unsigned int pct, struct error *err);
	/*
	 * Optional: pages [first, first + n) of region r are about to be
	 * copied; re-arm dirty logging for those the last fetch reported
	 * (KVM_CLEAR_DIRTY_LOG), so a write from now on shows in the next
	 * fetch. With it, fetch_dirty may leave reported pages writable until
	 * then. The engine calls it for every chunk of a pass with dirty pages,
	 * before it copies them.
	 */
	int (*clear)(void *ctx, unsigned int r, uint64_t first, uint64_t n, struct error *err);
};

struct snap_vm {
	void *ctx;
	const struct snap_vm_ops *ops;
	struct snap_config cfg;
	struct snap_vm_region regions[SNAP_MAX_REGIONS]; /* cfg.regions order */
	char metadata[SNAP_METADATA_MAX + 1];
};

struct snap_pass {
	uint64_t dirty_pages;
	uint64_t bytes;
	uint64_t duration_us;
	uint64_t start_us;	   /* from the start of the engine: the gaps between passes show */
	uint64_t cpu_us;	   /* the engine thread's CPU time in the pass (0: unknown) */
	unsigned int throttle_pct; /* vCPUs held this percent of the time as the pass began */
	/* Raised within the pass (precopy.c, check_throttle()): to this, so long after its start. */
	unsigned int throttle_end_pct;
	uint64_t throttle_raised_us; /* 0: not raised */
};

#define SNAP_MAX_PASSES 64

struct snap_progress {
	unsigned int pass;
	uint64_t remaining_bytes;
	double rate_mib_s;
};

/*
 * Pages re-armed at once by default: a region in SNAP_CLEAR_CHUNKS parts,
 * none under SNAP_CLEAR_CHUNK_MIN. A page the guest writes between its
 * chunk's re-arm and its copy goes out twice, so the share of pass 1's
 * dirtying that does so falls with the number of chunks, while each chunk
 * costs a fetch of the whole log (precopy.c, copy_region_rearmed()).
 */
#define SNAP_CLEAR_CHUNKS	  32
#define SNAP_CLEAR_CHUNK_MIN	  8192	       /* pages: 32 MiB */
#define SNAP_SETTLE_FLOOR_DEFAULT (1ULL << 20) /* bytes: a memcpy of well under a ms */

struct snap_stage;

struct snap_options {
	uint64_t threshold;	  /* bytes; 0 = derive from max_downtime_ms */
	uint64_t max_downtime_ms; /* default 20 */
	unsigned int max_passes;  /* default 30, at most SNAP_MAX_PASSES */
	uint64_t max_time_ms;	  /* precopy time budget, default 60000 */
	unsigned int
	    max_throttle; /* percent, at most 99; 0: never throttle (snapshot/throttle.h) */
	/*
	 * Bytes/s the guest may dirty from pass 1 on: its rate is sampled before
	 * pass 1 and the vCPUs held to bring it under this (up to max_throttle).
	 * 0: none, the throttle starts only when a pass does not converge.
	 */
	uint64_t dirty_limit;
	unsigned int hash_threads; /* page-hashing workers (snapshot/hashq.h); 0: inline */
	unsigned int merge_gap; /* dirty runs this many clean pages apart: one write (precopy.h) */
	/* Pages re-armed at once, just before their copy (vm->ops->clear); 0: SNAP_CLEAR_CHUNKS. */
	uint64_t clear_chunk;
	/*
	 * Settling (threshold 0): more passes, the throttle raised, while the
	 * dirty set is above this many bytes and still shrinks; 0: the default.
	 */
	uint64_t settle_floor;
	void (*progress)(const struct snap_progress *p, void *arg);
	void *progress_arg;
	/*
	 * The caller's stage (snapshot/stage.h), mapped, kept across the
	 * snapshots of a series: what it faulted in stays faulted in. NULL: the
	 * writer maps one of its own for each snapshot.
	 */
	struct snap_stage *stage;
};

struct snap_report {
	unsigned int nr_passes;
	struct snap_pass passes[SNAP_MAX_PASSES];
	uint64_t threshold;
	uint64_t pause_latency_us;
	uint64_t downtime_us;
	uint64_t pause_realtime_ns; /* CLOCK_REALTIME when the final batch was taken */
	uint64_t total_us;
	uint64_t bytes_written;
	uint64_t image_size;
	uint64_t generation;
	uint32_t slot;
	uint64_t write_id;
	bool incremental; /* pass 1 copied only the pages changed since the slot's last snapshot */
	char full_reason[160]; /* why not incremental, when the caller knows */
	bool converged;
	const char *stop_reason;   /* why precopy ended */
	const char *io_engine;	   /* io_uring or pwrite */
	unsigned int hash_threads; /* page-hashing workers that ran */
	uint64_t zero_pages_kept;  /* holes whose slot already held zeros: not written */
	/*
	 * Where total_us went besides the passes and the pause: before the
	 * engine (the `writing` header, durable), turning logging on, the sink's
	 * start (page headers, earlier hashes), and after the resume (state,
	 * digest tables, footer, both syncs and the `complete` header).
	 */
	uint64_t begin_us, log_start_us, sink_start_us, complete_us;
	/*
	 * Where downtime_us went after the final batch (the last pass): the
	 * VM state, the sink's paused() hook, lifting the throttle, and the
	 * resume, until the VM says its vCPUs run again.
	 */
	uint64_t pause_state_us, pause_sink_us, pause_unthrottle_us, pause_resume_us;
	uint64_t digests[SNAP_MAX_REGIONS];
	/* The guest's own progress counter (pages it wrote) per second while the snapshot ran; 0: unknown. */
	uint64_t guest_pages_per_sec;
	/* Bytes/s the guest dirtied before pass 1, sampled for a dirty limit; 0: not sampled. */
	double start_dirty_rate;
};

/*
 * Take a live snapshot of vm into the selected slot of img (opened RDWR,
 * layout for vm->cfg; see snap_image_select_slot() and _next_slot()).
 * On failure, the VM is resumed and logging stopped (finish is always
 * called), the image is left in state `writing` (or with a header that fails
 * its checksum), and the cause is in *err.
 */
int snap_write(struct snap_image *img, struct snap_vm *vm, const struct snap_options *opts,
	       struct snap_report *rep, struct error *err);

/*
 * The image writer without the engine, for `snapshot --via-stream`: the
 * pages come from a record stream the manager reads (stream.h), and land in
 * the same slots with the same digests as with snap_write().
 *
 *   snap_stream_writer_open()    header -> writing, page header tables
 *   snap_stream_writer_pages()   pages [first, first + n) of region r; data
 *                                must stay untouched until the next drain
 *   snap_stream_writer_state()   the buffer (state area size) for the VM state
 *   snap_stream_writer_finish()  state, footer, durable, header -> complete
 *
 * A writer that is closed without finish leaves the image `writing`.
 */
struct snap_stream_writer;
int snap_stream_writer_open(struct snap_stream_writer **w, struct snap_image *img,
			    const struct snap_config *cfg, const char *metadata,
			    struct snap_report *rep, struct error *err);
int snap_stream_writer_pages(struct snap_stream_writer *w, unsigned int r, uint64_t first,
			     uint64_t n, const uint8_t *data, struct error *err);
int snap_stream_writer_drain(struct snap_stream_writer *w, struct error *err);
uint8_t *snap_stream_writer_state(struct snap_stream_writer *w);
int snap_stream_writer_finish(struct snap_stream_writer *w, size_t state_used, struct error *err);
void snap_stream_writer_close(struct snap_stream_writer *w);

#endif
