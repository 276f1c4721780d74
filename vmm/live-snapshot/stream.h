/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VM side of `kvmsnap snapshot --via-stream` (snapshot/stream.h has the
 * record format): the seed's pipe. The manager hands the VM the write end of
 * a socketpair or pipe with snapshot-begin; snapshot-stream then runs the
 * precopy engine here, on the main thread, and streams every page, the VM
 * state and a report. The manager places the pages in their slots and never
 * maps guest memory.
 */
#ifndef KVMSNAP_LIVE_SNAPSHOT_STREAM_H
#define KVMSNAP_LIVE_SNAPSHOT_STREAM_H

#include "kvm.h"
#include "snapshot/writer.h"

/*
 * Run a live snapshot of kvm into fd with the given limits: PASS and PAGES
 * records while precopy runs, then STATE and END. The VM pauses only for the
 * final batch (staged as the image writer does), and is always resumed with
 * dirty logging as it was. A manager that stops reading for 30 s fails the
 * stream. 0 or -errno with *err set.
 */
int stream__run(struct kvm *kvm, int fd, const struct snap_options *limits, struct snap_report *rep,
		struct error *err);

#endif
