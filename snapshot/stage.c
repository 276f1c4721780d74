// SPDX-License-Identifier: GPL-2.0
/* The final batch's staging buffer; see stage.h. */
#include "snapshot/stage.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lib/align.h"
#include "snapshot/snapshot.h"

int snap_stage_alloc(struct snap_stage *st, uint64_t cap, struct error *err)
{
	memset(st, 0, sizeof(*st));
	if (!cap)
		return 0;
	/* Not populated: faulting in all of it at once costs more than a small snapshot. */
	st->buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (st->buf == MAP_FAILED) {
		st->buf = NULL;
		return err_set(err, -ENOMEM, "out of memory for the final-batch buffer");
	}
	st->cap = cap;
	return 0;
}

static void *worker(void *arg)
{
	struct snap_stage *st = arg;
	struct sched_param sp = {0};
	uint64_t off;

	/*
	 * Only at SCHED_IDLE: at the default priority the worker would take
	 * CPU time from the thread that keeps the writes in flight.
	 */
	if (sched_setscheduler(0, SCHED_IDLE, &sp))
		return NULL;
	for (off = st->ready; off < st->bg_target; off += SNAP_PAGE_SIZE) {
		if (__atomic_load_n(&st->stop, __ATOMIC_RELAXED))
			break;
		((volatile uint8_t *)st->buf)[off] = 0;
		/* Progress for whoever watches (tests); the caller reads it after the join. */
		__atomic_store_n(&st->ready, off + SNAP_PAGE_SIZE, __ATOMIC_RELAXED);
	}
	return NULL;
}

void snap_stage_start_background(struct snap_stage *st, uint64_t target)
{
	const char *env = getenv("KVMSNAP_STAGE_WORKER");

	/* KVMSNAP_STAGE_WORKER=0: all on the caller's thread, as before the worker (benchmarks). */
	if (!st->buf || st->worker || (env && !strcmp(env, "0")))
		return;
	st->bg_target = ALIGN_DOWN(MIN(target, st->cap), SNAP_PAGE_SIZE);
	if (st->ready >= st->bg_target)
		return;
	__atomic_store_n(&st->stop, false, __ATOMIC_RELAXED);
	st->worker = !pthread_create(&st->thread, NULL, worker, st);
}

void snap_stage_stop(struct snap_stage *st)
{
	if (!st->worker)
		return;
	__atomic_store_n(&st->stop, true, __ATOMIC_RELAXED);
	pthread_join(st->thread, NULL);
	st->worker = false;
}

void snap_stage_prefault(struct snap_stage *st, uint64_t want)
{
	uint64_t off;

	if (!st->buf)
		return;
	snap_stage_stop(st);
	want = ALIGN_UP(MIN(want, st->cap), SNAP_PAGE_SIZE);
	for (off = st->ready; off < want; off += SNAP_PAGE_SIZE)
		((volatile uint8_t *)st->buf)[off] = 0;
	st->ready = MAX(st->ready, want);
}

void snap_stage_free(struct snap_stage *st)
{
	snap_stage_stop(st);
	if (st->buf)
		munmap(st->buf, st->cap);
	st->buf = NULL;
}
