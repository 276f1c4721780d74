/* SPDX-License-Identifier: GPL-2.0 */
/* The manager's side of --via-stream; see receive.c and live-snapshot/stream.h. */
#ifndef KVMSNAP_LIVE_SNAPSHOT_RECEIVE_H
#define KVMSNAP_LIVE_SNAPSHOT_RECEIVE_H

#include <stdbool.h>

#include "control/conn.h"
#include "live-snapshot/manager.h"

/*
 * On an open control connection: begin a stream session (*session says
 * whether one is open, for the caller to end), check the VM's configuration,
 * prepare the image, run snapshot-stream and place every page it streams,
 * check the VM state, and complete the image. 0 or -errno with *err set;
 * on failure the image is left `writing` or untouched.
 */
struct sandbox_user;
/* lock_down: once the image is open, switch to this user and the manager's allowlist. */
int manager__receive_stream(struct ctl_conn *conn, const struct manager_opts *o,
			    const struct sandbox_user *lock_down, struct snap_report *rep,
			    struct snap_config *cfg, bool *session, struct error *err);

#endif
