/* SPDX-License-Identifier: GPL-2.0 */
/* Dropping privileges once everything privileged is open. */
#ifndef KVMSNAP_CAPS_H
#define KVMSNAP_CAPS_H

#include "lib/error.h"

/*
 * Clear every capability (effective, permitted, inheritable, ambient and,
 * where allowed, the bounding set) and set no_new_privs. 0 or -errno with
 * *err set.
 */
int caps__drop_all(struct error *err);

/*
 * Empty the bounding set where CAP_SETPCAP allows it; first, when the uid
 * changes next, since leaving uid 0 takes CAP_SETPCAP away.
 */
void caps__drop_bounding(void);

/* True when the process holds no effective or permitted capability. */
int caps__none_held(void);

#endif
