// SPDX-License-Identifier: GPL-2.0
/* Region digests: the XXH3-64 page tree of snapshot/digest.c. */
#include "digest.h"

#include <inttypes.h>
#include <stdio.h>
#include <xxhash.h>

#include "snapshot/snapshot.h"
#include "util/util.h"

uint64_t digest__buf(const void *buf, size_t len)
{
	return XXH3_64bits(buf, len);
}

/* The snapshot footer's definition, so a restored VM can be checked against it. */
uint64_t digest__region(const struct mem_region *r)
{
	if (!r->host)
		return snap_digest_tree(NULL, 0);
	return snap_digest_pages(r->host, r->size / PAGE_SIZE, NULL);
}

const char *digest__format(uint64_t d, char buf[DIGEST_HEX_SIZE])
{
	snprintf(buf, DIGEST_HEX_SIZE, "%016" PRIx64, d);
	return buf;
}
