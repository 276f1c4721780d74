/* SPDX-License-Identifier: GPL-2.0 */
/* Small helpers every kind of test uses: time, files, folders, tools. */
#ifndef KVMSNAP_TEST_UTIL_H
#define KVMSNAP_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* /dev/kvm can be opened read-write. */
bool have_kvm(void);

/* CLOCK_MONOTONIC in ms. */
uint64_t ms_now(void);

void sleep_ms(unsigned int ms);

/* The file's first size - 1 bytes into buf, NUL-terminated ("" if unreadable). */
void read_file(const char *path, char *buf, size_t size);

/* Create or truncate path and write buf to it; 0 or -1. */
int write_file(const char *path, const void *buf, size_t len);

/* Newlines in s. */
size_t count_lines(const char *s);

/* st_size of a file, or -1. */
int64_t file_size(const char *path);

/* Whether path exists (lstat: a dangling link does). */
bool exists(const char *path);

/* Whether the shell finds command name. */
bool have_tool(const char *name);

/* Remove dir and everything in it, staying on its file system. */
void rm_tree(const char *dir);

#endif
