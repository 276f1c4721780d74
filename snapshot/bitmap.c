// SPDX-License-Identifier: GPL-2.0
#include "snapshot/bitmap.h"

/* The first bit at or after i that is set (or clear), or nbits. */
static uint64_t find_next(const uint64_t *bm, uint64_t nbits, uint64_t i, bool set)
{
	while (i < nbits) {
		uint64_t word = set ? bm[i / 64] : ~bm[i / 64];

		word >>= i % 64;
		if (word) {
			i += (uint64_t)__builtin_ctzll(word);
			return i < nbits ? i : nbits;
		}
		i = (i / 64 + 1) * 64;
	}
	return nbits;
}

bool snap_bitmap_next_run(const uint64_t *bm, uint64_t nbits, uint64_t *pos, uint64_t *len)
{
	uint64_t start = find_next(bm, nbits, *pos, true);

	if (start >= nbits)
		return false;
	*pos = start;
	*len = find_next(bm, nbits, start, false) - start;
	return true;
}

uint64_t snap_bitmap_count(const uint64_t *bm, uint64_t nbits)
{
	uint64_t total = 0, i, words = nbits / 64;

	for (i = 0; i < words; i++)
		total += (uint64_t)__builtin_popcountll(bm[i]);
	if (nbits % 64)
		total += (uint64_t)__builtin_popcountll(bm[words] & ((1ULL << (nbits % 64)) - 1));
	return total;
}

void snap_bitmap_set_range(uint64_t *bm, uint64_t first, uint64_t n)
{
	uint64_t end = first + n;

	/* Bit by bit up to a word boundary, then whole words, then the tail. */
	while (first < end && first % 64)
		bm[first / 64] |= 1ULL << (first % 64), first++;
	for (; first + 64 <= end; first += 64)
		bm[first / 64] = ~0ULL;
	for (; first < end; first++)
		bm[first / 64] |= 1ULL << (first % 64);
}
