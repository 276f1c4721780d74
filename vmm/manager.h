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
};

/*
 * Take one live snapshot. Prints the report (human-readable or JSON) on
 * stdout; on failure prints one "kvmsnap: error:" line and returns 1.
 */
int manager__snapshot(const struct manager_opts *o);

#endif
