// SPDX-License-Identifier: GPL-2.0
/*
 * XXH3 of a page with xxhash.h inlined, built with -mavx2 (the Makefile),
 * so that xxhash picks its AVX2 loop; called only on CPUs that have AVX2
 * (pagehash.h).
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "snapshot/pagehash.h"
#include "snapshot/snapshot.h"

uint64_t snap_page_hash_avx2(const void *page)
{
	return XXH3_64bits(page, SNAP_PAGE_SIZE);
}
