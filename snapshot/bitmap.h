/* SPDX-License-Identifier: GPL-2.0 */
/* Dirty bitmaps: bit i of word i / 64 is page i. Bits past nbits are ignored. */
#ifndef KVMSNAP_BITMAP_H
#define KVMSNAP_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

#define SNAP_BITMAP_WORDS(nbits) (((nbits) + 63) / 64)

/*
 * The next run of set bits at or after *pos: its first bit in *pos and its
 * length in *len. false when there is none. Runs are what the writer turns
 * into single large writes.
 */
bool snap_bitmap_next_run(const uint64_t *bm, uint64_t nbits, uint64_t *pos, uint64_t *len);

/* Set bits [first, first + n). */
void snap_bitmap_set_range(uint64_t *bm, uint64_t first, uint64_t n);
/* Clear bits [first, first + n). */
void snap_bitmap_clear_range(uint64_t *bm, uint64_t first, uint64_t n);

static inline bool snap_bitmap_test(const uint64_t *bm, uint64_t i)
{
	return (bm[i / 64] >> (i % 64)) & 1;
}

/* Set bits among the first nbits. */
uint64_t snap_bitmap_count(const uint64_t *bm, uint64_t nbits);

#endif
