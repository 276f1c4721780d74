// SPDX-License-Identifier: GPL-2.0
#include "snapshot/throttle.h"

#include "lib/align.h"

/* The percent that lets the vCPUs run the share run of the time, rounded up; 0 if run >= 1. */
static unsigned int pct_for_run(double run)
{
	unsigned int need;

	if (run >= 1)
		return 0;
	need = (unsigned int)(100 * (1 - run));
	return need < 100 * (1 - run) ? need + 1 : need;
}

void snap_throttle_init(struct snap_throttle *t, unsigned int max)
{
	t->pct = 0;
	t->initial = SNAP_THROTTLE_INITIAL;
	t->step = SNAP_THROTTLE_STEP;
	t->max = MIN(max, SNAP_THROTTLE_MAX);
}

unsigned int snap_throttle_next_rate(struct snap_throttle *t, uint64_t dirty, uint64_t written,
				     double dirty_rate, double write_rate)
{
	unsigned int before = t->pct, need;
	double full_speed, run;

	if (!snap_throttle_rising(t, dirty, written))
		return t->pct;
	snap_throttle_next(t, dirty, written);
	if (dirty_rate <= 0 || write_rate <= 0)
		return t->pct;
	full_speed = dirty_rate / (1 - before / 100.0);
	/* The share of time the vCPUs may run so that they dirty write_rate / 2. */
	run = write_rate / 2 / full_speed;
	need = pct_for_run(run);
	t->pct = MIN(MAX(t->pct, need), t->max);
	return t->pct;
}

bool snap_throttle_rising(const struct snap_throttle *t, uint64_t dirty, uint64_t written)
{
	/* Dirtied at more than half the rate the pass wrote: it will not converge as is. */
	return t->pct < t->max && dirty > written / 2;
}

unsigned int snap_throttle_next(struct snap_throttle *t, uint64_t dirty, uint64_t written)
{
	if (snap_throttle_rising(t, dirty, written))
		t->pct = t->pct ? MIN(t->pct + t->step, t->max) : MIN(t->initial, t->max);
	return t->pct;
}

unsigned int snap_throttle_limit(struct snap_throttle *t, double dirty_rate, double limit)
{
	double full_speed;

	if (!t->max || dirty_rate <= 0 || limit <= 0)
		return t->pct;
	full_speed = dirty_rate / (1 - t->pct / 100.0);
	t->pct = MIN(MAX(t->pct, pct_for_run(limit / full_speed)), t->max);
	return t->pct;
}

bool snap_throttle_settle_missed(uint64_t dirty, uint64_t before, uint64_t floor, bool aimed)
{
	return dirty > before / 4 * 3 || (aimed && dirty > 2 * floor);
}

unsigned int snap_throttle_settle(struct snap_throttle *t, uint64_t dirty, uint64_t target,
				  double dirty_rate, double write_rate)
{
	double full_speed, seconds;

	if (!t->max || dirty <= target || dirty_rate <= 0 || write_rate <= 0)
		return t->pct;
	full_speed = dirty_rate / (1 - t->pct / 100.0);
	seconds = (double)dirty / write_rate;
	t->pct = MIN(MAX(t->pct, pct_for_run((double)target / (full_speed * seconds))), t->max);
	return t->pct;
}

unsigned int snap_throttle_in_pass(struct snap_throttle *t, uint64_t fresh, uint64_t done,
				   uint64_t total, uint64_t aim)
{
	if (!total || (double)fresh <= 2 * (double)aim * (double)done / (double)total)
		return t->pct;
	if (t->pct) {
		t->pct = t->max;
		return t->pct;
	}
	return snap_throttle_settle(t, total - MIN(done, total), aim > fresh ? aim - fresh : 0,
				    (double)fresh, (double)done);
}
