/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The snapshot manager: the process that writes the image. It drives a
 * snapshot session of a running kvmsnap over its control socket, maps the
 * guest memory read-only from the memfds the VM hands over, and runs the
 * precopy writer of snapshot/. The VM process never holds the image.
 */
#ifndef KVMSNAP_MANAGER_H
#define KVMSNAP_MANAGER_H

#include <stdbool.h>

#include "snapshot/writer.h"

struct manager_opts {
	const char *image;
	const char *control;
	struct snap_options snap;
	struct snap_target_opts target;
	bool json;
	bool progress; /* a progress line on stderr */
	bool stream;   /* --via-stream: the VM streams its pages; nothing is mapped */
	/*
	 * --append: the benchmark baseline, an append stream (snapshot/append.h)
	 * into image instead of an image: every pass appended; not restorable.
	 */
	bool append;
	bool have_slot; /* write slot `slot`; else snap_image_next_slot() */
	uint32_t slot;
	bool incremental;  /* ask the VM for the pages changed since the slot's last snapshot */
	uint64_t every_ms; /* --every: a checkpoint series, until SIGINT/SIGTERM or the VM exits */
	/*
	 * Once connected and the image is open: switch to user (NULL: the
	 * default of user.h), drop every capability and install the manager's
	 * seccomp allowlist. Off for a manager inside another program (tests).
	 */
	bool lock_down;
	const char *user;
};

/*
 * Take one live snapshot of the VM behind o->control into o->image: 0, or
 * -errno with the cause in *err. rep gets the report, cfg (may be NULL) the
 * VM's configuration as checked. The VM is not trusted: its snapshot-begin
 * reply and descriptors are checked before the image is opened (begin.h),
 * its bitmaps copied out of shared memory before use, and its state decoded
 * as restore would before the image may be marked complete.
 */
int manager__take_snapshot(const struct manager_opts *o, struct snap_report *rep,
			   struct snap_config *cfg, struct error *err);

/*
 * Select the slot of img that a snapshot writes: o->slot if given, else
 * snap_image_next_slot(). For this file and receive.c.
 */
int manager__choose_slot(const struct manager_opts *o, struct snap_image *img, struct error *err);

/*
 * `kvmsnap snapshot` and `run --snapshot`: manager__take_snapshot(), then
 * the report (human-readable or JSON) on stdout, or one "kvmsnap: error:"
 * line. Returns the exit status: 0, or 1 when the snapshot failed. With
 * o->every_ms, a checkpoint series on one connection and one open image:
 * one line (or JSON record) per checkpoint, failures reported and the
 * series continued, until SIGINT, SIGTERM or the VM's exit.
 */
int manager__snapshot(const struct manager_opts *o);

#endif
