/* SPDX-License-Identifier: GPL-2.0 */
/* The client end of the control protocol: one request, one reply, maybe fds. */
#ifndef KVMSNAP_CONTROL_CONN_H
#define KVMSNAP_CONTROL_CONN_H

#include <json-c/json.h>
#include <stddef.h>

struct ctl_conn {
	int fd;
	const char *path;
	int timeout_s;
};

/* Connect to the control socket at path. 0, or -errno with the cause in err. */
int ctl_conn__open(struct ctl_conn *c, const char *path, int timeout_s, char *err, size_t errlen);

/*
 * Send {"cmd":cmd} plus the members of args (may be NULL; not consumed),
 * and read the reply. On {"ok":true} return 0 and the reply in *reply (the
 * caller puts it). Descriptors sent with the reply land in fds (up to
 * max_fds; *nr_fds says how many; the caller closes them). On an error reply
 * or a transport failure return -errno with one sentence in err.
 */
int ctl_conn__call(struct ctl_conn *c, const char *cmd, struct json_object *args,
		   struct json_object **reply, int *fds, unsigned int max_fds, unsigned int *nr_fds,
		   char *err, size_t errlen);

/*
 * The raw exchange under ctl_conn__call: send line (a JSON object, with or
 * without its newline) and return the reply line in *reply (malloc'd,
 * NUL-terminated, no newline), with any descriptors as above.
 */
int ctl_conn__exchange(struct ctl_conn *c, const char *line, char **reply, int *fds,
		       unsigned int max_fds, unsigned int *nr_fds, char *err, size_t errlen);

/*
 * ctl_conn__call in two halves, for a request whose reply comes only after
 * something else (a stream) has been read: send {"cmd":cmd} plus args, with
 * fd attached (SCM_RIGHTS) unless it is -1; then read and check its reply.
 */
int ctl_conn__send(struct ctl_conn *c, const char *cmd, struct json_object *args, int fd, char *err,
		   size_t errlen);
int ctl_conn__reply(struct ctl_conn *c, const char *cmd, struct json_object **reply, int *fds,
		    unsigned int max_fds, unsigned int *nr_fds, char *err, size_t errlen);

void ctl_conn__close(struct ctl_conn *c);

#endif
