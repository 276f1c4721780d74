/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Region digests, shown as 16 lowercase hex digits: the two-level page tree
 * of snap_digest_pages (XXH3-64 of the block digests, each the XXH3-64 of
 * the XXH3-64 of 512 pages), the definition a snapshot image's footer
 * uses. Two equal digests of a paused VM mean equal memory.
 */
#ifndef KVMSNAP_DIGEST_H
#define KVMSNAP_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "mem.h"

#define DIGEST_ALGORITHM "xxh3-page-tree"
#define DIGEST_HEX_SIZE	 17 /* 16 hex digits and the NUL */

uint64_t digest__buf(const void *buf, size_t len);
/* The page-tree digest of the region's memory; a region without a mapping hashes as empty. */
uint64_t digest__region(const struct mem_region *r);
/* Render d into buf as 16 lowercase hex digits; returns buf. */
const char *digest__format(uint64_t d, char buf[DIGEST_HEX_SIZE]);

#endif
