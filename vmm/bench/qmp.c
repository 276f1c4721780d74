// SPDX-License-Identifier: GPL-2.0
#include "bench/qmp.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/error.h"
#include "util/util.h"

#define QMP_LINE_MAX   (1u << 20) /* a reply longer than this is not QEMU's */
#define QMP_RETRY_MS   20
#define QMP_READ_CHUNK 4096

static uint64_t now_ms(void)
{
	return now_ns() / 1000000;
}

static int qmp_dial(const char *path, struct error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(err, -ENAMETOOLONG, "QMP socket %s: path too long", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_errno(err, errno, "QMP socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return err_errno(err, e, "QMP socket %s: connect", path);
	}
	return fd;
}

/* One message (a line) as JSON into *msg; waits until deadline (ms). */
static int qmp_recv(struct qmp *q, struct json_object **msg, uint64_t deadline, struct error *err)
{
	for (;;) {
		char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;
		struct pollfd pfd = {.fd = q->fd, .events = POLLIN};
		uint64_t now = now_ms();
		ssize_t n;

		if (nl) {
			size_t line = (size_t)(nl - q->buf) + 1;

			*nl = '\0';
			*msg = json_tokener_parse(q->buf);
			memmove(q->buf, q->buf + line, q->len - line);
			q->len -= line;
			if (!*msg || !json_object_is_type(*msg, json_type_object)) {
				json_object_put(*msg);
				return err_set(err, -EPROTO, "QMP: a message is not a JSON object");
			}
			return 0;
		}
		if (q->len >= QMP_LINE_MAX)
			return err_set(err, -EPROTO, "QMP: a message longer than %u bytes",
				       QMP_LINE_MAX);
		if (q->cap - q->len < QMP_READ_CHUNK) {
			size_t cap = q->cap ? 2 * q->cap : 2 * QMP_READ_CHUNK;
			char *b = realloc(q->buf, cap);

			if (!b)
				return err_set(err, -ENOMEM, "QMP: out of memory");
			q->buf = b;
			q->cap = cap;
		}
		if (now >= deadline)
			return err_set(err, -ETIMEDOUT, "QMP: no reply from QEMU in time");
		n = poll(&pfd, 1, (int)MIN(deadline - now, (uint64_t)INT32_MAX));
		if (n < 0 && errno != EINTR)
			return err_errno(err, errno, "QMP: poll");
		if (n <= 0)
			continue;
		n = read(q->fd, q->buf + q->len, q->cap - q->len - 1);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return err_errno(err, errno, "QMP: read");
		if (!n)
			return err_set(err, -ECONNRESET, "QMP: QEMU closed the monitor");
		q->len += (size_t)n;
	}
}

int qmp__connect(struct qmp *q, const char *path, unsigned int timeout_ms, struct error *err)
{
	uint64_t deadline = now_ms() + timeout_ms;
	struct json_object *greeting = NULL;
	int ret;

	memset(q, 0, sizeof(*q));
	q->fd = -1;
	for (;;) {
		/* Only the last attempt's failure is reported. */
		struct error e;

		ret = qmp_dial(path, &e);
		if (ret >= 0)
			break;
		if (now_ms() >= deadline || (ret != -ENOENT && ret != -ECONNREFUSED)) {
			if (err)
				*err = e;
			return ret;
		}
		usleep(QMP_RETRY_MS * 1000);
	}
	q->fd = ret;
	ret = qmp_recv(q, &greeting, deadline, err);
	if (!ret && !json_object_object_get_ex(greeting, "QMP", NULL))
		ret = err_set(err, -EPROTO, "QMP socket %s: no QMP greeting", path);
	json_object_put(greeting);
	if (!ret)
		ret = qmp__call(q, "qmp_capabilities", NULL, NULL, timeout_ms, err);
	if (ret)
		qmp__close(q);
	return ret;
}

int qmp__call(struct qmp *q, const char *cmd, struct json_object *args, struct json_object **ret,
	      unsigned int timeout_ms, struct error *err)
{
	struct json_object *req = json_object_new_object();
	uint64_t deadline = now_ms() + timeout_ms;
	const char *text;
	char *line;
	ssize_t n;
	int r;

	if (ret)
		*ret = NULL;
	if (!req) {
		json_object_put(args);
		return err_set(err, -ENOMEM, "QMP %s: out of memory", cmd);
	}
	json_object_object_add(req, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(req, "arguments", args);
	text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	r = asprintf(&line, "%s\n", text);
	json_object_put(req);
	if (r < 0)
		return err_set(err, -ENOMEM, "QMP %s: out of memory", cmd);
	n = write_in_full_nosig(q->fd, line, strlen(line));
	free(line);
	if (n < 0)
		return err_errno(err, (int)-n, "QMP %s: send", cmd);

	for (;;) {
		struct json_object *msg, *v;

		r = qmp_recv(q, &msg, deadline, err);
		if (r)
			return err_prefix(err, "%s", cmd);
		if (json_object_object_get_ex(msg, "return", &v)) {
			if (ret)
				*ret = json_object_get(v);
			json_object_put(msg);
			return 0;
		}
		if (json_object_object_get_ex(msg, "error", &v)) {
			struct json_object *desc = NULL;

			json_object_object_get_ex(v, "desc", &desc);
			r = err_set(err, -EIO, "QMP %s: %s", cmd,
				    desc ? json_object_get_string(desc) : "error");
			json_object_put(msg);
			return r;
		}
		json_object_put(msg); /* an event */
	}
}

int qmp__read_u64(struct qmp *q, uint64_t addr, uint64_t *val, unsigned int timeout_ms,
		  struct error *err)
{
	struct json_object *args = json_object_new_object(), *ret;
	const char *out, *colon;
	char cmdline[64];
	int r;

	snprintf(cmdline, sizeof(cmdline), "xp /1gx 0x%" PRIx64, addr);
	json_object_object_add(args, "command-line", json_object_new_string(cmdline));
	r = qmp__call(q, "human-monitor-command", args, &ret, timeout_ms, err);
	if (r)
		return r;
	/* "0000000000101010: 0x0000000000009000" */
	out = json_object_get_string(ret);
	colon = out ? strchr(out, ':') : NULL;
	if (!colon || sscanf(colon + 1, " %" SCNx64, val) != 1)
		r = err_set(err, -EPROTO, "QMP %s: unexpected output", cmdline);
	json_object_put(ret);
	return r;
}

void qmp__close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	free(q->buf);
	memset(q, 0, sizeof(*q));
	q->fd = -1;
}
