// SPDX-License-Identifier: GPL-2.0
/*
 * Image layout and sizing: where every part of the image goes, computed from
 * the configuration alone, so that writer, restore and verify agree and the
 * image never grows.
 */
#include <errno.h>
#include <string.h>

#include "lib/align.h"
#include "snapshot/snapshot.h"

/* Region indexes in section order; size order is a stable sort, largest first. */
static void section_order(const struct snap_config *cfg, uint32_t order, unsigned int *idx)
{
	unsigned int i, j, n = cfg->nr_regions;

	for (i = 0; i < n; i++)
		idx[i] = i;
	if (order != SNAP_ORDER_SIZE)
		return;
	for (i = 1; i < n; i++) {
		unsigned int v = idx[i];

		for (j = i; j > 0 && cfg->regions[idx[j - 1]].size < cfg->regions[v].size; j--)
			idx[j] = idx[j - 1];
		idx[j] = v;
	}
}

/* Descriptor, page headers and the two digest tables, before the data area. */
static uint64_t table_area(uint64_t pages)
{
	return ALIGN_UP(SNAP_SECTION_DESC + SNAP_PAGE_HDR_SIZE * pages + 8 * pages +
			    8 * snap_hash_blocks(pages),
			SNAP_PAGE_SIZE);
}

/* Place one slot's state area, sections and footer from state_off on. */
static void place_slot(const struct snap_config *cfg, const unsigned int *idx, uint64_t state_off,
		       struct snap_layout *l)
{
	uint64_t pos;
	unsigned int k;

	l->state_off = state_off;
	l->state_size = snap_state_area_size(cfg->vcpus);
	pos = l->state_off + l->state_size;
	l->nr_sections = cfg->nr_regions;
	l->total_ram_bytes = l->total_ram = l->digest_tables = 0;
	for (k = 0; k < l->nr_sections; k++) {
		struct snap_section *s = &l->sections[k];
		uint64_t area;

		s->region = idx[k];
		s->id = idx[k] + 1;
		s->pages = cfg->regions[idx[k]].size / SNAP_PAGE_SIZE;
		area = table_area(s->pages);
		s->offset = pos;
		s->table_off = pos + SNAP_SECTION_DESC;
		s->hash_off = s->table_off + SNAP_PAGE_HDR_SIZE * s->pages;
		s->blocks_off = s->hash_off + 8 * s->pages;
		s->data_off = pos + area;
		s->size = area + s->pages * SNAP_PAGE_SIZE;
		pos += s->size;

		l->total_ram_bytes += cfg->regions[idx[k]].size;
		l->total_ram += s->pages * (SNAP_PAGE_SIZE + SNAP_PAGE_HDR_SIZE);
		l->digest_tables += 8 * s->pages + 8 * snap_hash_blocks(s->pages);
	}
	l->footer_off = pos;
	l->footer_size = SNAP_FOOTER_SIZE;
}

int snap_layout_compute_slot(const struct snap_config *cfg, uint32_t order, uint32_t nr_slots,
			     uint32_t slot, struct snap_layout *out, struct error *err)
{
	unsigned int idx[SNAP_MAX_REGIONS], i;
	struct snap_layout l;
	uint64_t slot0_end, slot_span, used;
	int ret;

	ret = snap_config_check(cfg, err);
	if (ret)
		return ret;
	if (order != SNAP_ORDER_REGISTRY && order != SNAP_ORDER_SIZE)
		return err_set(err, -EINVAL, "unknown section order %u", order);
	if (nr_slots < 1 || nr_slots > SNAP_MAX_SLOTS || slot >= nr_slots)
		return err_set(err, -EINVAL, "slot %u of %u (an image has 1 or %d slots)", slot,
			       nr_slots, SNAP_MAX_SLOTS);

	/*
	 * Slot 0 is the header at 0, the shared VM start section, state,
	 * sections, footer. Slot k > 0 is its own header, then the same. The
	 * config is bounded (snap_config_check), so no sum below can overflow.
	 */
	memset(&l, 0, sizeof(l));
	section_order(cfg, order, idx);
	l.order = order;
	l.nr_slots = nr_slots;
	l.header_size = SNAP_HEADER_SIZE;
	l.start_off = SNAP_HEADER_SIZE;
	l.start_size = SNAP_START_SIZE;
	place_slot(cfg, idx, l.start_off + l.start_size, &l);
	slot0_end = l.footer_off + l.footer_size;
	slot_span = slot0_end - l.start_size;
	for (i = 1; i < nr_slots; i++)
		l.slot_off[i] = slot0_end + (i - 1) * slot_span;
	l.image_size = slot0_end + (nr_slots - 1) * slot_span;
	l.slot = slot;
	l.header_off = l.slot_off[slot];
	if (slot)
		place_slot(cfg, idx, l.header_off + l.header_size, &l);

	used = l.header_size + l.state_size + l.total_ram + l.digest_tables + l.footer_size;
	l.padding = slot_span - used;
	*out = l;
	return 0;
}

const struct snap_section *snap_layout_section(const struct snap_layout *l, unsigned int r)
{
	unsigned int k;

	for (k = 0; k < l->nr_sections; k++)
		if (l->sections[k].region == r)
			return &l->sections[k];
	return NULL;
}

void snap_header_set_layout(struct snap_header *h, const struct snap_layout *l)
{
	h->order = l->order;
	h->nr_slots = l->nr_slots;
	h->slot = l->slot;
	memcpy(h->slot_off, l->slot_off, sizeof(h->slot_off));
	h->image_size = l->image_size;
	h->start_off = l->start_off;
	h->start_size = l->start_size;
	h->state_off = l->state_off;
	h->state_size = l->state_size;
	h->footer_off = l->footer_off;
	h->footer_size = l->footer_size;
	h->nr_sections = l->nr_sections;
	memcpy(h->sections, l->sections, sizeof(h->sections));
}
