/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Seccomp allowlists, one per kind of process, installed once everything
 * privileged is open. Documentation/security.md lists every syscall and why.
 */
#ifndef KVMSNAP_SANDBOX_SECCOMP_H
#define KVMSNAP_SANDBOX_SECCOMP_H

#include "lib/error.h"

enum seccomp_profile {
	SECCOMP_VM,	 /* kvmsnap run / restore after vm_setup__lock_down() */
	SECCOMP_MANAGER, /* the snapshot manager once the image is open */
	SECCOMP_KEEPER,	 /* the process that removes the control socket */
};

/*
 * Install the allowlist of profile for every thread of the process
 * (SCMP_FLTATR_CTL_TSYNC), with no_new_privs. A syscall outside it fails
 * with EPERM. 0 or -errno with *err set.
 */
int seccomp__install(enum seccomp_profile profile, struct error *err);

#endif
