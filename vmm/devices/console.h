/* SPDX-License-Identifier: GPL-2.0 */
/* The serial sink: where guest console output goes (--serial stdio|FILE|none). */
#ifndef KVMSNAP_CONSOLE_H
#define KVMSNAP_CONSOLE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

/* What a guest may write to a --serial FILE before the rest is dropped. */
#define CONSOLE_FILE_MAX (64ULL << 20)

struct console {
	int fd; /* -1 for none */
	pthread_mutex_t lock;
	uint64_t written, cap; /* cap 0: none (stdio) */
};

/*
 * spec is "stdio", "none" or a file path: created 0600 or truncated, never
 * through a symbolic link, and capped at CONSOLE_FILE_MAX bytes. 0 or
 * -errno with *err set.
 */
int console__open(struct console *con, const char *spec, struct error *err);
/* Write all of buf; output errors are reported once and then dropped. */
void console__write(struct console *con, const void *buf, size_t len);
void console__close(struct console *con);

#endif
