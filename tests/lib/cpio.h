/* SPDX-License-Identifier: GPL-2.0 */
/*
 * An initramfs written at test time: a cpio "newc" archive (the format the
 * kernel unpacks, Documentation/driver-api/early-userspace/buffer-format.rst),
 * uncompressed, from a list of directories, device nodes and files.
 * Compiled into libtest.a (tests/lib/cpio.c).
 */
#ifndef KVMSNAP_TEST_CPIO_H
#define KVMSNAP_TEST_CPIO_H

#include <stddef.h>
#include <stdint.h>

struct cpio_entry {
	const char *name;    /* in the archive, without a leading '/' */
	uint32_t mode;	     /* S_IFDIR, S_IFCHR or S_IFREG, with permissions */
	uint32_t rdev_major; /* S_IFCHR */
	uint32_t rdev_minor;
	const char *src;  /* S_IFREG: a host file to copy, or NULL for data */
	const void *data; /* S_IFREG without src */
	size_t len;
};

/* Write the archive to path. 0, or -1 with the cause logged. */
int cpio_write(const char *path, const struct cpio_entry *e, unsigned int n);

#endif
