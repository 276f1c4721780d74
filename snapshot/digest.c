// SPDX-License-Identifier: GPL-2.0
/*
 * Region digests, "XXH3 page tree": XXH3-64 over the little-endian XXH3-64 of
 * each page. Hashing pages one by one lets the writer keep them current as it
 * writes, so only the last batch is hashed during the final pause.
 */
#include <errno.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "lib/le.h"
#include "snapshot/snapshot.h"

/* Page hashes are batched into buf so that XXH3 sees large updates. */
static void tree_put(XXH3_state_t *st, uint8_t *buf, unsigned int *fill, uint64_t page_hash)
{
	put_le64(buf + *fill, page_hash);
	*fill += 8;
	if (*fill == SNAP_PAGE_SIZE) {
		XXH3_64bits_update(st, buf, *fill);
		*fill = 0;
	}
}

static uint64_t tree_end(XXH3_state_t *st, const uint8_t *buf, unsigned int fill)
{
	XXH3_64bits_update(st, buf, fill);
	return XXH3_64bits_digest(st);
}

static uint64_t page_hash(const uint8_t *page)
{
	return XXH3_64bits(page, SNAP_PAGE_SIZE);
}

uint64_t snap_digest_tree(const uint64_t *page_hashes, uint64_t pages)
{
	uint8_t buf[SNAP_PAGE_SIZE];
	unsigned int fill = 0;
	XXH3_state_t st;
	uint64_t i;

	XXH3_64bits_reset(&st);
	for (i = 0; i < pages; i++)
		tree_put(&st, buf, &fill, page_hashes[i]);
	return tree_end(&st, buf, fill);
}

uint64_t snap_digest_pages(const void *mem, uint64_t pages, uint64_t *page_hashes)
{
	const uint8_t *p = mem;
	uint8_t buf[SNAP_PAGE_SIZE];
	unsigned int fill = 0;
	XXH3_state_t st;
	uint64_t i, h;

	XXH3_64bits_reset(&st);
	for (i = 0; i < pages; i++) {
		h = page_hash(p + i * SNAP_PAGE_SIZE);
		if (page_hashes)
			page_hashes[i] = h;
		tree_put(&st, buf, &fill, h);
	}
	return tree_end(&st, buf, fill);
}

int snap_digest_begin(struct snap_digest_stream *s)
{
	s->fill = 0;
	s->state = XXH3_createState();
	if (!s->state)
		return -ENOMEM;
	XXH3_64bits_reset(s->state);
	return 0;
}

void snap_digest_add(struct snap_digest_stream *s, const void *mem, uint64_t pages)
{
	const uint8_t *p = mem;
	uint64_t i;

	for (i = 0; i < pages; i++)
		tree_put(s->state, s->buf, &s->fill, page_hash(p + i * SNAP_PAGE_SIZE));
}

uint64_t snap_digest_end(struct snap_digest_stream *s)
{
	uint64_t d = tree_end(s->state, s->buf, s->fill);

	XXH3_freeState(s->state);
	s->state = NULL;
	return d;
}
