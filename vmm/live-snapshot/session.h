/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VM side of a live snapshot: the snapshot-* control requests, which
 * `kvmsnap snapshot` (manager.c, in another process) sends over one control
 * connection. Documentation/design.md, "Live snapshot", has the sequence.
 *
 *   snapshot-begin  reply: config, regions, tracking; fds: [shared area, region memfds]
 *   snapshot-log    dirty logging on, every page clean from now; with an image
 *                   slot, the pages to write into the shared area (below)
 *   snapshot-dirty  per-region dirty bitmaps into the shared area (fetch and clear)
 *   snapshot-pause  every vCPU out of KVM_RUN
 *   snapshot-state  vCPU and device state records into the shared area
 *   snapshot-end    logging back as it was (or on, for the trackers), vCPUs resumed
 *   snapshot-commit (outside a session) the slot's header is durably complete
 *
 * Incremental snapshots (vmm/dirty-track.h). A uuid is 32 lowercase hex
 * digits, a write id 16 (JSON strings: they are 64-bit).
 *
 *   snapshot-log {"uuid","slot":0|1,"attempt"[,"base"]}: base is the write id
 *     in the slot's header (none if it was never completed), attempt the one
 *     this snapshot writes. After the fetch, if the slot's tracker accepts
 *     base: {"incremental":true,"pages":N}, the shared bitmaps hold the pages
 *     changed since base (then every later fetch as usual), and attempt is
 *     accepted too. Otherwise {"incremental":false,"why":"..."}, the shared
 *     bitmaps are zero (write everything), and the slot's tracker starts
 *     afresh, accepting {attempt} once committed.
 *   snapshot-end (not "abort": true), after a fetch while paused: the tracker
 *     waits for the commit of attempt. Otherwise it keeps every bit.
 *   snapshot-commit {"uuid","slot","write_id"}: the waiting tracker becomes
 *     valid for write_id; anything else is an error and changes nothing. If
 *     no commit comes, the next snapshot-log of the slot accepts both ids.
 *
 * Dirty logging stays on after a session while a tracker is valid or waits
 * for its commit: KVM's log then accumulates until the next fetch.
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
