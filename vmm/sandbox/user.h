/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The unprivileged user a VM or a snapshot manager switches to once
 * everything privileged is open.
 */
#ifndef KVMSNAP_SANDBOX_USER_H
#define KVMSNAP_SANDBOX_USER_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/error.h"

#define USER_DEFAULT_NAME  "nobody"
#define USER_DEFAULT_GROUP "nogroup"

struct sandbox_user {
	bool change; /* false: stay who we are (not root, or --user root) */
	uid_t uid;
	gid_t gid;
};

/*
 * Resolve --user USER|UID[:GROUP|GID] (spec NULL: the default). Started as
 * root, the default is nobody:nogroup; started as anyone else, nothing
 * changes. "root" and "0" keep root. A user's group is its passwd group
 * unless one is given. Reads the user and group databases: call it before
 * anything is locked down.
 */
int user__resolve(const char *spec, struct sandbox_user *u, struct error *err);

/*
 * setgroups(0), setresgid(), setresuid(), in that order (the group calls
 * need the uid's privilege), then check that neither uid 0 nor gid 0 can be
 * regained. Clears the permitted and effective capabilities as a side
 * effect of leaving uid 0.
 */
int user__switch(const struct sandbox_user *u, struct error *err);

#endif
