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

/* True when the process holds no effective or permitted capability. */
int caps__none_held(void);

#endif
