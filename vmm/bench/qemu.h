/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The QEMU column of `kvmsnap bench`: the same Multiboot dirtier under QEMU,
 * live-saved with QEMU's own migration into a file, and optionally restored
 * from it, timed the way kvmsnap's snapshot and restore are.
 */
#ifndef KVMSNAP_BENCH_QEMU_H
#define KVMSNAP_BENCH_QEMU_H

#include "bench/bench.h" /* struct bench_sample */

struct bench_qemu_opts {
	const char *qemu;	      /* qemu-system-x86_64 path */
	const char *kernel;	      /* the Multiboot dirtier */
	const char *append;	      /* its command line (ws=..,rate=..,... tsc_khz=..) */
	uint64_t ram;		      /* bytes, -m */
	unsigned int vcpus;	      /* -smp; the Multiboot dirtier uses only vCPU 0 */
	const char *dir;	      /* scratch folder: QMP socket, serial log */
	const char *file;	      /* where the saved state goes */
	uint64_t ready_pages;	      /* ...once it has written this many pages */
	unsigned int warm_ms;	      /* run the guest this long before migrating */
	unsigned int max_downtime_ms; /* migrate-set-parameters downtime-limit */
	unsigned int max_time_s;      /* give up (migrate_cancel) after this */
	bool auto_converge;	      /* the auto-converge capability */
	bool restore;		      /* also time an incoming migration from the file */
};

struct bench_qemu_result {
	bool completed;	      /* the migration reached "completed" */
	char status[64];      /* QEMU's last migration status, or why it failed */
	double total_ms;      /* from the migrate command to "completed", plus fsync */
	double fsync_ms;      /* the fsync of the file after completion */
	double downtime_ms;   /* query-migrate "downtime" */
	uint64_t file_bytes;  /* size of the file at the end */
	uint64_t transferred; /* ram "transferred" bytes */
	unsigned int passes;  /* ram "dirty-sync-count" */
	double restore_ms;    /* start of QEMU -incoming to status running; 0 if not asked */
	struct bench_sample *samples; /* file size every ~50 ms during the save; free() */
	size_t nr_samples;
};

/* Run QEMU with the kernel, warm up, live-save into o->file with QMP `migrate`
 * "exec:cat > FILE" (QEMU 7.2 has no file: URI), poll query-migrate, fsync.
 * Set max-bandwidth to unlimited (QEMU's default is 32 MiB/s, which would be an
 * unfair baseline), downtime-limit, and auto-converge as asked. Always kill
 * QEMU and remove the socket. 0 or -errno with *err set (struct error from
 * lib/error.h). */
int bench_qemu__run(const struct bench_qemu_opts *o, struct bench_qemu_result *r,
		    struct error *err);

/* The QEMU binary to use: $KVMSNAP_QEMU or qemu-system-x86_64 in PATH; NULL if none. */
const char *bench_qemu__find(void);

#endif
