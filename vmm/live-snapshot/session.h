/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VM side of a live snapshot: the snapshot-* control requests, which
 * `kvmsnap snapshot` (manager.c, in another process) sends over one control
 * connection. Documentation/design.md, "Live snapshot", has the sequence.
 *
 *   snapshot-begin  reply: config, regions; fds: [shared area, region memfds]
 *   snapshot-log    dirty logging on, every page clean from now
 *   snapshot-dirty  per-region dirty bitmaps into the shared area (fetch and clear)
 *   snapshot-pause  every vCPU out of KVM_RUN
 *   snapshot-state  vCPU and device state records into the shared area
 *   snapshot-end    logging back as it was, vCPUs resumed
 *
 * Each handler follows control/request.h: 0, or -errno with rq->err set.
 */
#ifndef KVMSNAP_LIVE_SNAPSHOT_SESSION_H
#define KVMSNAP_LIVE_SNAPSHOT_SESSION_H

#include "control/control.h"

/*
 * The snapshot-* commands, for control__serve(). A session holds the VM's
 * pause state and dirty log (control_state.claimed_by) from snapshot-begin
 * to its end; a connection that goes away mid-session aborts it (the VM
 * resumes and dirty logging stops), so a killed manager never leaves the
 * guest paused.
 */
extern const struct control_service snapshot_session__service;

#endif
