// SPDX-License-Identifier: GPL-2.0
/* Resolving --user and switching to it; see user.h. */
#include "sandbox/user.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A decimal id, or -1. */
static long parse_id(const char *s)
{
	char *end;
	long v;

	if (!*s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v >= (long)UINT_MAX)
		return -1;
	return v;
}

static int resolve_user(const char *name, struct sandbox_user *u, struct error *err)
{
	struct passwd *pw;
	long id = parse_id(name);

	errno = 0;
	pw = id >= 0 ? getpwuid((uid_t)id) : getpwnam(name);
	if (pw) {
		u->uid = pw->pw_uid;
		u->gid = pw->pw_gid;
		return 0;
	}
	if (id < 0)
		return err_set(err, -EINVAL, "--user %s: no such user", name);
	/* A bare uid need not be in the database: its group is then the same number. */
	u->uid = (uid_t)id;
	u->gid = (gid_t)id;
	return 0;
}

static int resolve_group(const char *name, gid_t *gid, struct error *err)
{
	struct group *gr;
	long id = parse_id(name);

	if (id >= 0) {
		*gid = (gid_t)id;
		return 0;
	}
	gr = getgrnam(name);
	if (!gr)
		return err_set(err, -EINVAL, "--user: no such group %s", name);
	*gid = gr->gr_gid;
	return 0;
}

int user__resolve(const char *spec, struct sandbox_user *u, struct error *err)
{
	char buf[256], *colon;
	int ret;

	memset(u, 0, sizeof(*u));
	if (!spec) {
		if (geteuid() != 0)
			return 0; /* nothing to give up that the kernel would let us */
		if (resolve_user(USER_DEFAULT_NAME, u, err))
			u->uid = u->gid = 65534; /* the kernel's overflow id */
		resolve_group(USER_DEFAULT_GROUP, &u->gid, NULL);
		u->change = true;
		return 0;
	}
	if (strlen(spec) >= sizeof(buf) || !*spec)
		return err_set(err, -EINVAL, "--user: give USER or UID, optionally :GROUP or :GID");
	strcpy(buf, spec);
	colon = strchr(buf, ':');
	if (colon)
		*colon++ = '\0';
	ret = resolve_user(buf, u, err);
	if (!ret && colon)
		ret = resolve_group(colon, &u->gid, err);
	if (ret)
		return ret;
	/* root stays root; anyone else is a change, even to one's own uid (it drops groups). */
	u->change = u->uid != 0 || u->gid != 0;
	return 0;
}

int user__switch(const struct sandbox_user *u, struct error *err)
{
	if (!u->change)
		return 0;
	/* Supplementary groups first: after setresuid() the call would be refused. */
	if (geteuid() == 0 && setgroups(0, NULL))
		return err_errno(err, errno, "setgroups");
	if (setresgid(u->gid, u->gid, u->gid))
		return err_errno(err, errno, "cannot switch to gid %u", (unsigned int)u->gid);
	if (setresuid(u->uid, u->uid, u->uid))
		return err_errno(err, errno, "cannot switch to uid %u", (unsigned int)u->uid);
	/* No way back: real, effective and saved ids are all the new ones. */
	if (u->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return err_set(err, -EPERM, "uid 0 could be regained after the switch");
	if (u->gid != 0 && u->uid != 0 && (setgid(0) == 0 || setegid(0) == 0))
		return err_set(err, -EPERM, "gid 0 could be regained after the switch");
	return 0;
}
