/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The lock-down of a process once everything privileged is open: no
 * capabilities, an unprivileged user, no_new_privs, a seccomp allowlist.
 * Documentation/security.md says what each step keeps out.
 */
#ifndef KVMSNAP_SANDBOX_LOCKDOWN_H
#define KVMSNAP_SANDBOX_LOCKDOWN_H

#include <stdbool.h>

#include "sandbox/seccomp.h"
#include "sandbox/user.h"

/*
 * Empty the bounding set, switch to u, clear every capability, set
 * no_new_privs and install the profile's allowlist for every thread.
 * 0 or -errno with *err set.
 */
int lockdown__apply(const struct sandbox_user *u, enum seccomp_profile profile, struct error *err);

#endif
