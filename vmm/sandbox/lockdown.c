// SPDX-License-Identifier: GPL-2.0
/* The lock-down steps, in the order that makes each possible; see lockdown.h. */
#include "sandbox/lockdown.h"

#include <errno.h>
#include <sys/prctl.h>

#include "caps.h"

int lockdown__apply(const struct sandbox_user *u, enum seccomp_profile profile, struct error *err)
{
	int ret;

	/* Needs CAP_SETPCAP, which leaving uid 0 takes away. */
	caps__drop_bounding();
	ret = user__switch(u, err);
	if (!ret)
		ret = caps__drop_all(err);
#ifdef KVMSNAP_SANITIZE
	/*
	 * Changing the uid made the process non-dumpable; LeakSanitizer then
	 * cannot ptrace its own threads at exit. Sanitizer builds only.
	 */
	if (!ret && u->change && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0))
		ret = err_errno(err, errno, "cannot set dumpable");
#endif
	if (!ret)
		ret = seccomp__install(profile, err);
	return ret;
}
