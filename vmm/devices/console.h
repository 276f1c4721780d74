/* SPDX-License-Identifier: GPL-2.0 */
/* The serial sink: where guest console output goes (--serial stdio|FILE|none). */
#ifndef KVMSNAP_CONSOLE_H
#define KVMSNAP_CONSOLE_H

#include <pthread.h>
#include <stddef.h>

#include "lib/error.h"

struct console {
	int fd; /* -1 for none */
	pthread_mutex_t lock;
};

/*
 * spec is "stdio", "none" or a file path (created or truncated). 0 or -errno
 * with *err set.
 */
int console__open(struct console *con, const char *spec, struct error *err);
/* Write all of buf; output errors are reported once and then dropped. */
void console__write(struct console *con, const void *buf, size_t len);
void console__close(struct console *con);

#endif
