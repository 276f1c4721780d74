/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A fake VM for the snapshot library's tests: plain memory (or a memfd with
 * holes), a mutator thread that dirties pages while a snapshot runs, a dirty
 * log it keeps itself (optionally with manual protection, as
 * KVM_CLEAR_DIRTY_LOG does it), and per-slot trackers for incremental
 * snapshots. At the pause it copies its memory into expect[]: whatever a
 * sink wrote must equal that.
 *
 * Built without -Ivmm, for the tests that link the snapshot library alone.
 */
#ifndef KVMSNAP_TEST_FAKEVM_H
#define KVMSNAP_TEST_FAKEVM_H

#include <pthread.h>
#include <stdatomic.h>

#include "snapshot/image.h"
#include "snapshot/writer.h"

#define FAKE_NR_REGIONS 3

struct fake_region {
	const char *id;
	uint64_t size;
};

/* pc.ram 8 MiB, vga.vram 1 MiB, pc.bios 64 KiB (never written by the mutator). */
extern const struct fake_region fake_regions[FAKE_NR_REGIONS];

struct fake_vm {
	struct snap_vm vm;
	uint8_t *mem[FAKE_NR_REGIONS];
	uint64_t *log[FAKE_NR_REGIONS]; /* the "KVM" dirty log */
	uint8_t *expect[FAKE_NR_REGIONS];
	pthread_mutex_t lock;
	pthread_t thread;
	atomic_bool stop, paused, quit;
	atomic_uint acked;
	unsigned int fetches;
	int fail_fetch_at; /* fail the Nth fetch (0: never) */
	int break_fd_at;   /* on the Nth fetch, make the image read-only */
	/* Called on every fetch (with its number, from 1) and at the pause: fault injection. */
	void (*on_fetch)(struct fake_vm *f, unsigned int n);
	void (*on_pause)(struct fake_vm *f);
	void *hook_arg;
	bool always_dirty;	/* every fetch finds a page written: a guest that never rests */
	struct snap_image *img; /* the image written, or NULL: slot 0, no break_fd_at */
	bool logging, finished;
	uint64_t writes;
	/*
	 * Incremental snapshots: per image slot, every page written since that
	 * slot's last snapshot (as the VM's tracker keeps it), and the write id
	 * it counts from. The pages the snapshot in flight has taken wait in
	 * pending until it commits or fails.
	 */
	uint64_t *track[SNAP_MAX_SLOTS][FAKE_NR_REGIONS], *pending[FAKE_NR_REGIONS];
	bool track_valid[SNAP_MAX_SLOTS];
	uint64_t track_id[SNAP_MAX_SLOTS];
	bool want_incremental;
	uint64_t base;	   /* the slot's write id before this snapshot */
	atomic_bool quiet; /* the mutator idles */
	/*
	 * Manual dirty-log protection, as KVM_CLEAR_DIRTY_LOG does it: a write
	 * to an armed page sets its log bit and leaves it writable (unarmed);
	 * a fetch while running reports the log without clearing or arming;
	 * clear() arms the pages of a range that a fetch reported, and clears
	 * their bits (not bits set since: KVM clears only the mask it is given).
	 */
	bool manual;
	uint64_t *armed[FAKE_NR_REGIONS], *fetched[FAKE_NR_REGIONS];
	unsigned int clears;
};

extern const struct snap_vm_ops fake_vm_ops;

uint64_t fake_pages_of(unsigned int r);
size_t fake_bitmap_bytes(unsigned int r);
/* A page was written: the dirty log and every slot's tracker see it. Under f->lock. */
void fake_mark_written(struct fake_vm *f, unsigned int r, uint64_t page);
/* The clear op (manual dirty-log protection), for tests that add it to fake_vm_ops. */
int fake_op_clear(void *ctx, unsigned int r, uint64_t first, uint64_t n, struct error *err);

/*
 * Memory and bitmaps for f (zeroed by the caller), filled with a pattern;
 * holes: pc.ram is a memfd of which only every other MiB was ever touched.
 * 0, or -1 with the cause on stderr.
 */
int fake_vm_init(struct fake_vm *f, bool holes);
/* Start and stop the mutator thread. */
int fake_vm_start(struct fake_vm *f);
void fake_vm_stop(struct fake_vm *f);

#endif
