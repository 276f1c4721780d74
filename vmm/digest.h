/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Region digests: XXH3-64 over a region's whole host mapping, shown as 16
 * lowercase hex digits. Two equal digests of a paused VM mean equal memory.
 */
#ifndef KVMSNAP_DIGEST_H
#define KVMSNAP_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "mem.h"

#define DIGEST_ALGORITHM "xxh3-64"
#define DIGEST_HEX_SIZE	 17 /* 16 hex digits and the NUL */

uint64_t digest__buf(const void *buf, size_t len);
/* The digest of [host, host + size); a region without a mapping hashes as empty. */
uint64_t digest__region(const struct mem_region *r);
/* Render d into buf as 16 lowercase hex digits; returns buf. */
const char *digest__format(uint64_t d, char buf[DIGEST_HEX_SIZE]);

#endif
