// SPDX-License-Identifier: GPL-2.0
#include "snapshot/throttle.h"

#include "lib/align.h"

void snap_throttle_init(struct snap_throttle *t, unsigned int max)
{
	t->pct = 0;
	t->initial = SNAP_THROTTLE_INITIAL;
	t->step = SNAP_THROTTLE_STEP;
	t->max = MIN(max, SNAP_THROTTLE_MAX);
}

unsigned int snap_throttle_next(struct snap_throttle *t, uint64_t dirty, uint64_t written)
{
	/* Dirtied at more than half the rate the pass wrote: it will not converge as is. */
	if (t->max && dirty > written / 2)
		t->pct = t->pct ? MIN(t->pct + t->step, t->max) : MIN(t->initial, t->max);
	return t->pct;
}
