/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The control socket's keeper: once the VM runs as an unprivileged user it
 * can no longer remove its socket from a folder only root may write. A
 * small process forked before the switch keeps root's uid (with no
 * capabilities and its own seccomp allowlist), waits until the VM is gone,
 * however it ended, and removes the socket, if it is still the VM's, and a
 * private folder around it.
 */
#ifndef KVMSNAP_SANDBOX_KEEPER_H
#define KVMSNAP_SANDBOX_KEEPER_H

#include <sys/types.h>

#include "lib/error.h"

struct keeper {
	pid_t pid; /* 0: none */
	int fd;	   /* the pipe it waits on; closing it lets the keeper go */
};

/* Start a keeper for path and dir (may be NULL). 0 or -errno with *err set. */
int keeper__start(struct keeper *k, const char *path, const char *dir, struct error *err);

/* Let the keeper remove what it keeps, and wait until it has. Safe without a keeper. */
void keeper__finish(struct keeper *k);

#endif
