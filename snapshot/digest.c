// SPDX-License-Identifier: GPL-2.0
/*
 * Region digests, "XXH3 page tree" (snapshot.h): page hashes, block digests
 * over runs of SNAP_HASH_BLOCK_PAGES page hashes, a region digest over the
 * block digests. The image keeps the first two levels in each section's
 * digest tables, so a writer that changes some pages rehashes only their
 * blocks, and verify can name the page that does not match.
 */
#include <errno.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "lib/le.h"
#include "snapshot/pagehash.h"
#include "snapshot/snapshot.h"

#define BLOCK_BYTES (SNAP_HASH_BLOCK_PAGES * 8)

static uint64_t (*page_hash)(const void *page);

/* Once, before main(): which build of XXH3 this CPU runs (pagehash.h). */
__attribute__((constructor)) static void page_hash_pick(void)
{
	__builtin_cpu_init();
	page_hash = __builtin_cpu_supports("avx2") ? snap_page_hash_avx2 : snap_page_hash_sse2;
}

uint64_t snap_page_hash(const void *page)
{
	return page_hash(page);
}

uint64_t snap_digest_u64s(const uint64_t *v, uint64_t n)
{
	uint8_t buf[BLOCK_BYTES];
	XXH3_state_t st;
	uint64_t i, k;

	XXH3_64bits_reset(&st);
	for (i = 0; i < n; i += k) {
		for (k = 0; k < SNAP_HASH_BLOCK_PAGES && i + k < n; k++)
			put_le64(buf + k * 8, v[i + k]);
		XXH3_64bits_update(&st, buf, k * 8);
	}
	return XXH3_64bits_digest(&st);
}

/* A full block of page hashes closes: its digest feeds the region's. */
static void close_block(struct snap_digest_stream *s)
{
	uint8_t le[8];

	put_le64(le, XXH3_64bits(s->buf, s->fill));
	XXH3_64bits_update(s->state, le, 8);
	s->fill = 0;
}

static void put_hash(struct snap_digest_stream *s, uint64_t h)
{
	put_le64(s->buf + s->fill, h);
	s->fill += 8;
	if (s->fill == BLOCK_BYTES)
		close_block(s);
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
		put_hash(s, snap_page_hash(p + i * SNAP_PAGE_SIZE));
}

void snap_digest_add_hashes(struct snap_digest_stream *s, const uint64_t *page_hashes,
			    uint64_t pages)
{
	uint64_t i;

	for (i = 0; i < pages; i++)
		put_hash(s, page_hashes[i]);
}

uint64_t snap_digest_end(struct snap_digest_stream *s)
{
	uint64_t d;

	if (s->fill)
		close_block(s);
	d = XXH3_64bits_digest(s->state);
	XXH3_freeState(s->state);
	s->state = NULL;
	return d;
}

/* The two calls below on a stack state: no allocation, cannot fail. */
struct stack_stream {
	struct snap_digest_stream s;
	XXH3_state_t st;
};

static void stack_begin(struct stack_stream *ss)
{
	ss->s.fill = 0;
	ss->s.state = &ss->st;
	XXH3_64bits_reset(&ss->st);
}

static uint64_t stack_end(struct stack_stream *ss)
{
	if (ss->s.fill)
		close_block(&ss->s);
	return XXH3_64bits_digest(&ss->st);
}

uint64_t snap_digest_tree(const uint64_t *page_hashes, uint64_t pages)
{
	struct stack_stream ss;

	stack_begin(&ss);
	snap_digest_add_hashes(&ss.s, page_hashes, pages);
	return stack_end(&ss);
}

uint64_t snap_digest_pages(const void *mem, uint64_t pages, uint64_t *page_hashes)
{
	const uint8_t *p = mem;
	struct stack_stream ss;
	uint64_t i, h;

	stack_begin(&ss);
	for (i = 0; i < pages; i++) {
		h = snap_page_hash(p + i * SNAP_PAGE_SIZE);
		if (page_hashes)
			page_hashes[i] = h;
		put_hash(&ss.s, h);
	}
	return stack_end(&ss);
}
