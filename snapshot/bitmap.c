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

static void put_bit(uint64_t *bm, uint64_t i, bool set)
{
	if (set)
		bm[i / 64] |= 1ULL << (i % 64);
	else
		bm[i / 64] &= ~(1ULL << (i % 64));
}

static void fill_range(uint64_t *bm, uint64_t first, uint64_t n, bool set)
{
	uint64_t end = first + n;

	/* Bit by bit up to a word boundary, then whole words, then the tail. */
	while (first < end && first % 64)
		put_bit(bm, first++, set);
	for (; first + 64 <= end; first += 64)
		bm[first / 64] = set ? ~0ULL : 0;
	while (first < end)
		put_bit(bm, first++, set);
}

void snap_bitmap_set_range(uint64_t *bm, uint64_t first, uint64_t n)
{
	fill_range(bm, first, n, true);
}

void snap_bitmap_clear_range(uint64_t *bm, uint64_t first, uint64_t n)
{
	fill_range(bm, first, n, false);
}
