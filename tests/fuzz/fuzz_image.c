// SPDX-License-Identifier: GPL-2.0
/*
 * The image decoders (snapshot/snapshot.h, snapshot/state.h). The first
 * input byte picks what the rest is, and whether the target stores the
 * right checksum (bit 7) so that the field checks are reached:
 *
 *   0  a header block          snap_header_decode()
 *   1  a VM start block        snap_start_decode()
 *   2  a footer block          snap_footer_decode()
 *   3  header block, start block, then section descriptors: decode both, lay
 *      the header's slot out as opening it does (snap_layout_compute_slot())
 *      and check each section's descriptor (snap_section_desc_check())
 *   4  a VM state area         snap_state_open(), then snap_state_next()
 *                              until the end or an error
 */
#include <errno.h>
#include <stdlib.h>

#include "fuzz.h"
#include "snapshot/snapshot.h"
#include "snapshot/state.h"

static uint8_t hdr_block[SNAP_HEADER_SIZE], start_block[SNAP_START_SIZE];

static void sections(const uint8_t *data, size_t size, bool fix)
{
	struct snap_header h;
	struct snap_config cfg;
	struct snap_layout l;
	uint8_t desc[SNAP_SECTION_DESC];
	struct error err;
	unsigned int k;

	fuzz_take(hdr_block, sizeof(hdr_block), &data, &size);
	fuzz_take(start_block, sizeof(start_block), &data, &size);
	if (fix) {
		fuzz_fix_block_checksum(hdr_block);
		fuzz_fix_block_checksum(start_block);
	}
	if (snap_header_decode(hdr_block, &h, &err) || snap_start_decode(start_block, &cfg, &err) ||
	    snap_layout_compute_slot(&cfg, h.order, h.nr_slots, h.slot, &l, &err))
		return;
	for (k = 0; k < l.nr_sections && size; k++) {
		const struct snap_section *s = &l.sections[k];

		fuzz_take(desc, sizeof(desc), &data, &size);
		if (snap_section_desc_check(desc, s, &cfg.regions[s->region], &err))
			return;
	}
}

static void state_area(const uint8_t *data, size_t size, bool fix)
{
	struct snap_state_reader r;
	struct snap_state_record rec;
	struct error err;
	uint8_t *buf;
	int ret;

	/* Exactly the input's size, so that ASan sees any read past it. */
	buf = malloc(size ? size : 1);
	if (!buf)
		return;
	memcpy(buf, data, size);
	if (fix)
		fuzz_fix_state_checksum(buf, size);
	if (!snap_state_open(&r, buf, size, &err)) {
		while ((ret = snap_state_next(&r, &rec, &err)) > 0) {
			/* Touch the whole payload: it must lie inside the area. */
			volatile uint8_t sink = 0;
			uint32_t i;

			for (i = 0; i < rec.len; i++)
				sink ^= rec.payload[i];
			(void)sink;
		}
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t block[SNAP_HEADER_SIZE];
	struct snap_header h;
	struct snap_config cfg;
	struct snap_footer f;
	struct error err;
	uint8_t mode;
	bool fix;

	if (!size)
		return 0;
	mode = data[0] & 0x7f;
	fix = data[0] & 0x80;
	data++;
	size--;
	switch (mode % 5) {
	case 0:
	case 1:
	case 2:
		fuzz_take(block, sizeof(block), &data, &size);
		if (fix)
			fuzz_fix_block_checksum(block);
		if (mode % 5 == 0)
			snap_header_decode(block, &h, &err);
		else if (mode % 5 == 1)
			snap_start_decode(block, &cfg, &err);
		else
			snap_footer_decode(block, &f, &err);
		break;
	case 3:
		sections(data, size, fix);
		break;
	default:
		state_area(data, size, fix);
		break;
	}
	return 0;
}
