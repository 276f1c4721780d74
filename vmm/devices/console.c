// SPDX-License-Identifier: GPL-2.0
#include "devices/console.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

int console__open(struct console *con, const char *spec, struct error *err)
{
	pthread_mutex_init(&con->lock, NULL);
	con->written = con->cap = 0;
	if (!strcmp(spec, "none")) {
		con->fd = -1;
		return 0;
	}
	if (!strcmp(spec, "stdio")) {
		con->fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	} else {
		/* The guest decides what goes in: never through a link, owner only, capped. */
		con->fd = open(
		    spec, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
		con->cap = CONSOLE_FILE_MAX;
		if (con->fd < 0 && errno == ELOOP)
			return err_set(
			    err, -ELOOP,
			    "--serial %s: a symbolic link; kvmsnap writes no file through "
			    "a link",
			    spec);
	}
	if (con->fd < 0)
		return err_errno(err, errno, "--serial %s", spec);
	return 0;
}

void console__write(struct console *con, const void *buf, size_t len)
{
	ssize_t ret;

	if (con->fd < 0)
		return;
	pthread_mutex_lock(&con->lock);
	if (con->cap && con->written + len > con->cap) {
		pr_warn("serial output: the file reached its %llu MiB cap; further output dropped",
			(unsigned long long)(con->cap >> 20));
		close(con->fd);
		con->fd = -1;
		pthread_mutex_unlock(&con->lock);
		return;
	}
	con->written += len;
	ret = write_in_full(con->fd, buf, len);
	if (ret < 0) {
		/* A closed pipe or full disk must not stop the guest. */
		pr_warn("serial output: %s; further output dropped", strerror((int)-ret));
		close(con->fd);
		con->fd = -1;
	}
	pthread_mutex_unlock(&con->lock);
}

void console__close(struct console *con)
{
	if (con->fd >= 0)
		close(con->fd);
	con->fd = -1;
}
