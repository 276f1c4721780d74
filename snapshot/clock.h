/* SPDX-License-Identifier: GPL-2.0 */
/* The clocks of snapshot/: private to it. */
#ifndef KVMSNAP_SNAPSHOT_CLOCK_H
#define KVMSNAP_SNAPSHOT_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in µs: durations, and the downtime the VM's resume time ends. */
static inline uint64_t snap_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* This thread's CPU time in µs: whether a pass waited for the target or for this thread. */
static inline uint64_t snap_thread_cpu_us(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* CLOCK_REALTIME in ns: the times an image records. */
static inline uint64_t snap_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

#endif
