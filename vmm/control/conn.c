// SPDX-License-Identifier: GPL-2.0
#include "control/conn.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/util.h"

#define REPLY_MAX (1 << 20)

static int __printf(4, 5) conn_err(char *err, size_t len, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return code;
}

int ctl_conn__open(struct ctl_conn *c, const char *path, int timeout_s, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int ret;

	c->fd = -1;
	c->path = path;
	c->timeout_s = timeout_s;
	if (strlen(path) >= sizeof(sa.sun_path))
		return conn_err(err, errlen, -ENAMETOOLONG,
				"control socket path %s is longer than %zu bytes", path,
				sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, strlen(path));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return conn_err(err, errlen, -errno, "cannot create a socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = -errno;
		close(c->fd);
		c->fd = -1;
		return conn_err(err, errlen, ret, "cannot connect to control socket %s: %s", path,
				strerror(-ret));
	}
	return 0;
}

void ctl_conn__close(struct ctl_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* The request line for cmd and the members of args, with its newline. */
static char *request_line(const char *cmd, struct json_object *args)
{
	struct json_object *req = json_object_new_object();
	const char *s;
	char *line = NULL;

	if (!req)
		return NULL;
	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	if (args) {
		json_object_object_foreach(args, key, val)
		    json_object_object_add(req, key, json_object_get(val));
	}
	s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	if (!s || asprintf(&line, "%s\n", s) < 0)
		line = NULL;
	json_object_put(req);
	return line;
}

/* The first byte of line with fd attached (SCM_RIGHTS); 1, or -errno. */
static ssize_t send_fd(struct ctl_conn *c, const char *line, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = (void *)line, .iov_len = 1};
	struct msghdr msg = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	ssize_t n;

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	do {
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static int send_line(struct ctl_conn *c, const char *line, int fd, char *err, size_t errlen)
{
	size_t len = strlen(line);
	ssize_t n = 0;

	if (fd >= 0 && len) {
		n = send_fd(c, line, fd);
		if (n > 0) {
			line += n;
			len -= (size_t)n;
		}
	}
	if (n >= 0)
		n = write_in_full_nosig(c->fd, line, len);

	if (n >= 0 && (!len || line[len - 1] != '\n'))
		n = write_in_full_nosig(c->fd, "\n", 1);
	if (n < 0)
		return conn_err(err, errlen, (int)n, "cannot send to control socket %s: %s",
				c->path, n == -EAGAIN ? "timed out" : strerror((int)-n));
	return 0;
}

static int recv_line(struct ctl_conn *c, char **out, int *fds, unsigned int max_fds,
		     unsigned int *nr_fds, char *err, size_t errlen)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 32)];
	size_t used = 0, cap = 0;
	char *buf = NULL, *nl = NULL;
	int ret;

	while (!nl) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		struct iovec iov;
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n;

		if (used == cap) {
			char *p = cap < REPLY_MAX ? realloc(buf, cap + 64 * KiB) : NULL;

			if (!p) {
				ret = conn_err(err, errlen, -E2BIG, "reply from %s too long",
					       c->path);
				goto fail;
			}
			buf = p;
			cap += 64 * KiB;
		}
		ret = poll(&pfd, 1, c->timeout_s * 1000);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			ret = conn_err(err, errlen, -ETIMEDOUT,
				       "no reply from control socket %s within %d s", c->path,
				       c->timeout_s);
			goto fail;
		}
		iov.iov_base = buf + used;
		iov.iov_len = cap - used;
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = conn_err(err, errlen, n < 0 ? -errno : -ECONNRESET,
				       "control socket %s: %s", c->path,
				       n < 0 ? strerror(errno) : "the VM closed the connection");
			goto fail;
		}
		take_fds(&msg, fds, max_fds, nr_fds);
		nl = memchr(buf + used, '\n', n);
		used += n;
	}
	*nl = '\0';
	*out = buf;
	return 0;
fail:
	free(buf);
	return ret;
}

int ctl_conn__exchange(struct ctl_conn *c, const char *line, char **reply, int *fds,
		       unsigned int max_fds, unsigned int *nr_fds, char *err, size_t errlen)
{
	unsigned int dummy = 0;
	int ret;

	if (!nr_fds)
		nr_fds = &dummy;
	*nr_fds = 0;
	*reply = NULL;
	ret = send_line(c, line, -1, err, errlen);
	return ret ? ret : recv_line(c, reply, fds, max_fds, nr_fds, err, errlen);
}

/* An {"ok":...} reply line of cmd: the object in *reply, or -errno with the cause. */
static int parse_reply(struct ctl_conn *c, const char *cmd, char *line, struct json_object **reply,
		       char *err, size_t errlen)
{
	struct json_object *r, *ok, *msg;
	int ret;

	r = json_tokener_parse(line);
	free(line);
	if (!r || !json_object_is_type(r, json_type_object) ||
	    !json_object_object_get_ex(r, "ok", &ok)) {
		json_object_put(r);
		return conn_err(err, errlen, -EPROTO, "%s: malformed reply from %s", cmd, c->path);
	}
	if (!json_object_get_boolean(ok)) {
		ret = conn_err(err, errlen, -EREMOTEIO, "%s: %s", cmd,
			       json_object_object_get_ex(r, "error", &msg)
				   ? json_object_get_string(msg)
				   : "the VM refused the request");
		json_object_put(r);
		return ret;
	}
	*reply = r;
	return 0;
}

int ctl_conn__send(struct ctl_conn *c, const char *cmd, struct json_object *args, int fd, char *err,
		   size_t errlen)
{
	char *req = request_line(cmd, args);
	int ret;

	if (!req)
		return conn_err(err, errlen, -ENOMEM, "out of memory");
	ret = send_line(c, req, fd, err, errlen);
	free(req);
	return ret;
}

int ctl_conn__reply(struct ctl_conn *c, const char *cmd, struct json_object **reply, int *fds,
		    unsigned int max_fds, unsigned int *nr_fds, char *err, size_t errlen)
{
	unsigned int dummy = 0;
	char *line = NULL;
	int ret;

	*reply = NULL;
	if (!nr_fds)
		nr_fds = &dummy;
	*nr_fds = 0;
	ret = recv_line(c, &line, fds, max_fds, nr_fds, err, errlen);
	return ret ? ret : parse_reply(c, cmd, line, reply, err, errlen);
}

int ctl_conn__call(struct ctl_conn *c, const char *cmd, struct json_object *args,
		   struct json_object **reply, int *fds, unsigned int max_fds, unsigned int *nr_fds,
		   char *err, size_t errlen)
{
	int ret = ctl_conn__send(c, cmd, args, -1, err, errlen);

	*reply = NULL;
	return ret ? ret : ctl_conn__reply(c, cmd, reply, fds, max_fds, nr_fds, err, errlen);
}
