/* SPDX-License-Identifier: GPL-2.0 */
/* Small helpers shared by vmm/, snapshot/ and tools/. No process exits here. */
#ifndef KVMSNAP_UTIL_H
#define KVMSNAP_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/align.h"

#define KiB	       (1ULL << 10)
#define MiB	       (1ULL << 20)
#define GiB	       (1ULL << 30)
#define PAGE_SIZE      4096ULL
#define PAGE_SHIFT     12
#define __unused       __attribute__((unused))
#define __printf(a, b) __attribute__((format(printf, a, b)))

/*
 * Messages go to stderr as "kvmsnap: error: ..." and so on. Errors are not
 * printed where they are found: they travel up in a struct error (see
 * lib/error.h) and only the top prints them, once. pr_debug prints only when
 * log_verbose is set.
 */
extern int log_verbose;
void pr_err(const char *fmt, ...) __printf(1, 2);
void pr_warn(const char *fmt, ...) __printf(1, 2);
void pr_info(const char *fmt, ...) __printf(1, 2);
void pr_debug(const char *fmt, ...) __printf(1, 2);

/* Loop over short reads and writes and EINTR. Return count, or -errno. */
ssize_t read_in_full(int fd, void *buf, size_t count);
ssize_t write_in_full(int fd, const void *buf, size_t count);
/* write_in_full for sockets: send(MSG_NOSIGNAL), so a closed peer is -EPIPE, not SIGPIPE. */
ssize_t write_in_full_nosig(int fd, const void *buf, size_t count);
ssize_t pread_in_full(int fd, void *buf, size_t count, off_t offset);
ssize_t pwrite_in_full(int fd, const void *buf, size_t count, off_t offset);

/*
 * Parse "123", "64K", "256M", "2G", "1T" (binary units, case-insensitive,
 * optional trailing "iB"/"B"). Returns 0, -EINVAL for a malformed string or
 * -ERANGE when the value does not fit in 64 bits.
 */
int parse_size(const char *s, uint64_t *out);
/* Parse a decimal unsigned integer in [min, max]; 0, -EINVAL or -ERANGE. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* "256M"-style rendering into buf, exact when the value is a unit multiple. */
const char *format_size(uint64_t v, char *buf, size_t len);

struct msghdr;
/*
 * The descriptors a received message carries (SCM_RIGHTS): up to max of
 * them go to fds[*nr...], counted in *nr; the rest are closed.
 */
void take_fds(struct msghdr *msg, int *fds, unsigned int max, unsigned int *nr);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);

#endif
