// SPDX-License-Identifier: GPL-2.0
#include "caps.h"

#include <errno.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "util/util.h"

void caps__drop_bounding(void)
{
	cap_value_t v;

	if (!CAP_IS_SUPPORTED(CAP_SETFCAP))
		return;
	for (v = 0; v <= CAP_LAST_CAP; v++)
		if (cap_get_bound(v) > 0 && cap_drop_bound(v) < 0 && errno != EPERM)
			pr_debug("cap_drop_bound(%d): %s", v, strerror(errno));
}

int caps__drop_all(struct error *err)
{
	cap_t none;
	int ret = 0;

	/* The bounding set first: it needs CAP_SETPCAP, which the next step removes. */
	caps__drop_bounding();
	if (cap_reset_ambient() < 0)
		pr_debug("cap_reset_ambient: %s", strerror(errno));
	none = cap_init();
	if (!none)
		return err_errno(err, ENOMEM, "cannot drop capabilities");
	if (cap_set_proc(none) < 0)
		ret = err_errno(err, errno, "cannot drop capabilities");
	cap_free(none);
	if (!ret && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		ret = err_errno(err, errno, "cannot set no_new_privs");
	return ret;
}

int caps__none_held(void)
{
	cap_t cur = cap_get_proc(), none = cap_init();
	int same = cur && none && cap_compare(cur, none) == 0;

	cap_free(cur);
	cap_free(none);
	return same;
}
