// SPDX-License-Identifier: GPL-2.0
/* Region digests with XXH3-64 (libxxhash). */
#include "digest.h"

#include <inttypes.h>
#include <stdio.h>
#include <xxhash.h>

uint64_t digest__buf(const void *buf, size_t len)
{
	return XXH3_64bits(buf, len);
}

uint64_t digest__region(const struct mem_region *r)
{
	if (!r->host)
		return digest__buf(NULL, 0);
	return digest__buf(r->host, r->size);
}

const char *digest__format(uint64_t d, char buf[DIGEST_HEX_SIZE])
{
	snprintf(buf, DIGEST_HEX_SIZE, "%016" PRIx64, d);
	return buf;
}
