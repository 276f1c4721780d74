/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel cache: a bzImage's payload unpacked once (vmm/loader/unpack.h)
 * and kept in a folder of the user's, so the next boot of the same kernel
 * maps the vmlinux instead of decoding it again.
 *
 * One file per payload, named vmlinux-<XXH3-128 of the compressed payload>:
 *
 *   0   magic "KVMSNAP-VMLINUX\n" (16 bytes)
 *   16  le32 version (1)
 *   20  le32 zero
 *   24  le64 size: the unpacked bytes
 *   32  XXH3-128 of the compressed payload, big-endian (16 bytes): the name
 *   48  XXH3-128 of the unpacked bytes, big-endian (16 bytes)
 *   64  zeros up to KCACHE_DATA_OFF, then the unpacked bytes
 *
 * A file is only trusted in a folder and as a file owned by the user and
 * writable by no one else, and only when every field and both digests
 * match; anything else is a miss. Files are written whole under a
 * temporary name and renamed, so a crash leaves no half file under a
 * good name. The folder keeps the KCACHE_KEEP kernels used last (a hit
 * touches its file's mtime); a store removes the others.
 */
#ifndef KVMSNAP_LOADER_KCACHE_H
#define KVMSNAP_LOADER_KCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/error.h"

#define KCACHE_DATA_OFF 4096
#define KCACHE_KEEP	4  /* kernels kept: about 65 MiB each for Debian's */
#define KCACHE_NAME_MAX 48 /* "vmlinux-" and 32 hex digits */

/* A cache file mapped for reading. */
struct kcache_hit {
	void *map;
	size_t map_len;
	const uint8_t *data; /* the unpacked bytes */
	size_t len;
};

/*
 * The default folder: $XDG_CACHE_HOME/kvmsnap, else $HOME/.cache/kvmsnap.
 * 0, or -ENOENT when neither variable is set (or the path is too long).
 */
int kcache__default_dir(char *buf, size_t len);

/*
 * Look up the unpacked form of payload, expected to be size bytes. 0 and
 * *hit (release it with kcache__release()); -ENOENT for no usable file;
 * another negative errno, with *err, when the folder cannot be trusted.
 */
int kcache__lookup(const char *dir, const void *payload, size_t payload_len, uint64_t size,
		   struct kcache_hit *hit, struct error *err);

void kcache__release(struct kcache_hit *hit);

/*
 * Store data (the unpacked payload) in dir, which is created (mode 0700,
 * parents too) when missing. 0, or a negative errno with *err naming the
 * cause; nothing is left behind on failure.
 */
int kcache__store(const char *dir, const void *payload, size_t payload_len, const void *data,
		  size_t len, struct error *err);

#endif
