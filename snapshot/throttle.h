/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The throttle controller: how hard to slow the vCPUs so that precopy
 * converges, after QEMU's auto-converge. After each pass, if the guest
 * dirtied more than half as many bytes as the pass wrote (its dirty rate is
 * above half the write bandwidth, so the dirty set will not shrink fast
 * enough), the throttle goes up: to `initial` the first time, then by
 * `step`, up to `max`. With a measure of how fast the guest dirties now
 * (the engine samples it over a few ms), it goes straight to the throttle
 * at which the guest dirties at most half as fast as the pass wrote, if
 * that is higher; the engine then raises it to what lets the next pass
 * leave no more than the threshold (snap_throttle_settle()). It never goes
 * down during a snapshot: the set it brought down would grow back. Pure
 * logic; the engine applies it through snap_vm_ops.throttle.
 */
#ifndef KVMSNAP_THROTTLE_H
#define KVMSNAP_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

#define SNAP_THROTTLE_INITIAL 20 /* percent of the time the vCPUs are held */
#define SNAP_THROTTLE_STEP    10
#define SNAP_THROTTLE_MAX     99

struct snap_throttle {
	unsigned int pct;     /* in force now: 0 is full speed */
	unsigned int initial; /* the first step */
	unsigned int step;
	unsigned int max; /* 0: never throttle */
};

/* A controller at 0, that goes no higher than max (0: off), with the default steps. */
void snap_throttle_init(struct snap_throttle *t, unsigned int max);

/*
 * The pass that just ended cleaned `written` bytes of dirty pages (the
 * engine passes those, not the clean pages merged into its writes), and the fetch after it
 * found `dirty` bytes dirty: whether the throttle goes up (it is below its
 * max, and the guest dirtied more than half of what was written).
 */
bool snap_throttle_rising(const struct snap_throttle *t, uint64_t dirty, uint64_t written);

/* The same: the new throttle (also in t->pct). */
unsigned int snap_throttle_next(struct snap_throttle *t, uint64_t dirty, uint64_t written);

/*
 * snap_throttle_next(), and if it went up, at least as far as the rates
 * need: the guest dirties dirty_rate bytes/s now, under t->pct, and the pass
 * wrote write_rate bytes/s; so unthrottled it would dirty
 * dirty_rate / (1 - pct/100), and at the new throttle at most write_rate / 2.
 * A rate of 0 means unknown, and the steps alone apply.
 */
unsigned int snap_throttle_next_rate(struct snap_throttle *t, uint64_t dirty, uint64_t written,
				     double dirty_rate, double write_rate);

/*
 * A dirty limit (snap_options.dirty_limit): the throttle at which the guest,
 * dirtying dirty_rate bytes/s under t->pct now, dirties at most limit
 * bytes/s, if higher than the one in force (also in t->pct); capped at max.
 * A rate of 0 means unknown: no change.
 */
unsigned int snap_throttle_limit(struct snap_throttle *t, double dirty_rate, double limit);

/*
 * One more pass, which will take about dirty / write_rate seconds, should
 * leave at most target bytes: for the pause when settling (the dirty set
 * is below the threshold already), or the threshold itself when the
 * throttle rises (a guest that paces itself makes up for any throttle
 * that snap_throttle_next_rate() sizes by its rate). The throttle at which
 * the guest, dirtying dirty_rate bytes/s under t->pct now, dirties no more
 * than that meanwhile, if higher than the one in force (also in t->pct).
 * A rate of 0 means unknown: no change.
 */
unsigned int snap_throttle_settle(struct snap_throttle *t, uint64_t dirty, uint64_t target,
				  double dirty_rate, double write_rate);
/*
 * Settling, the fetch found dirty bytes, the one before before: whether the
 * rates misled, so that the throttle should go to its top at once. Either
 * the set shrank by less than a quarter, or the throttle in force was aimed
 * (snap_throttle_settle()) at leaving floor and left more than twice it.
 * A guest that paces itself makes up for a throttle in the time left to it,
 * and a few ms of sample can catch it idle.
 */
bool snap_throttle_settle_missed(uint64_t dirty, uint64_t before, uint64_t floor, bool aimed);

/*
 * Within a pass that should leave at most aim bytes for the next: it has
 * cleaned done of its total bytes, and the guest dirtied fresh bytes since
 * it began. Within twice its share of the aim (aim x done / total): no
 * change. Beyond it, with a throttle in force, the rates that sized it
 * misled (a guest that paces itself makes up for a throttle): the max.
 * Without one, the throttle at which the rest of the pass, at the rates so
 * far, leaves what the guest has not used of the aim (snap_throttle_settle(),
 * with both rates over the same time). The new throttle (also in t->pct).
 */
unsigned int snap_throttle_in_pass(struct snap_throttle *t, uint64_t fresh, uint64_t done,
				   uint64_t total, uint64_t aim);

#endif
