/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the libFuzzer targets in tests/fuzz/ (Documentation/fuzzing.md).
 * Each target is one file with LLVMFuzzerTestOneInput(): it hands the input
 * to the real decoder or checker, never exits on bad input and frees all it
 * allocated, so that ASan's leak check at the end of a run means something.
 */
#ifndef KVMSNAP_FUZZ_H
#define KVMSNAP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MIN(a, b) ((a) < (b) ? (a) : (b))

static inline uint64_t fuzz_le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static inline void fuzz_put_le64(uint8_t *p, uint64_t v)
{
	unsigned int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Image blocks end with the XXH3 of the rest (snapshot/format.c). A mutated
 * block almost never has a good one, so the targets, when the input asks,
 * store the right checksum: the fuzzer then reaches the field checks.
 */
static inline void fuzz_fix_block_checksum(uint8_t *block)
{
	fuzz_put_le64(block + 0xff8, XXH3_64bits(block, 0xff8));
}

/*
 * The same for a VM state area (snapshot/state.c): the XXH3 at 0x18 covers
 * bytes 0x20 up to "used" (at 0x10). A used that cannot be right is first
 * set to the whole area, rounded down to 8 bytes.
 */
static inline void fuzz_fix_state_checksum(uint8_t *buf, size_t len)
{
	uint64_t used;

	if (len < 0x20)
		return;
	used = fuzz_le64(buf + 0x10);
	if (used < 0x20 || used > len || used % 8) {
		used = len & ~(size_t)7;
		fuzz_put_le64(buf + 0x10, used);
	}
	fuzz_put_le64(buf + 0x18, XXH3_64bits(buf + 0x20, used - 0x20));
}

/* Move up to cap bytes of the input into a zeroed block of cap bytes; the bytes taken. */
static inline size_t fuzz_take(uint8_t *block, size_t cap, const uint8_t **data, size_t *size)
{
	size_t n = FUZZ_MIN(cap, *size);

	memset(block, 0, cap);
	memcpy(block, *data, n);
	*data += n;
	*size -= n;
	return n;
}

#endif
