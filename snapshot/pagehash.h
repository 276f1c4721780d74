/* SPDX-License-Identifier: GPL-2.0 */
/*
 * XXH3 of one page, built twice from xxhash.h: for SSE2 (every x86-64) and
 * for AVX2, chosen once at run time. Debian's libxxhash is built for SSE2
 * only; its header, inlined, hashes pages 1.5x faster, and with AVX2 2.3x
 * (Documentation/benchmarks.md). The result is XXH3_64bits() either way.
 * Private to snapshot/; the callers use snap_page_hash().
 */
#ifndef KVMSNAP_PAGEHASH_H
#define KVMSNAP_PAGEHASH_H

#include <stdint.h>

uint64_t snap_page_hash_sse2(const void *page);
uint64_t snap_page_hash_avx2(const void *page); /* only where the CPU has AVX2 */

#endif
