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

int snap_layout_compute(const struct snap_config *cfg, uint32_t order, struct snap_layout *out,
			struct error *err)
{
	unsigned int idx[SNAP_MAX_REGIONS], k;
	struct snap_layout l;
	uint64_t pos, used;
	int ret;

	ret = snap_config_check(cfg, err);
	if (ret)
		return ret;
	if (order != SNAP_ORDER_REGISTRY && order != SNAP_ORDER_SIZE)
		return err_set(err, -EINVAL, "unknown section order %u", order);

	/* snap_config_check bounds every size, so none of the sums below can overflow. */
	memset(&l, 0, sizeof(l));
	l.order = order;
	l.header_off = 0;
	l.header_size = SNAP_HEADER_SIZE;
	l.start_off = l.header_off + l.header_size;
	l.start_size = SNAP_START_SIZE;
	l.state_off = l.start_off + l.start_size;
	l.state_size = snap_state_area_size(cfg->vcpus);
	pos = l.state_off + l.state_size;

	section_order(cfg, order, idx);
	l.nr_sections = cfg->nr_regions;
	for (k = 0; k < l.nr_sections; k++) {
		struct snap_section *s = &l.sections[k];
		uint64_t table_area;

		s->region = idx[k];
		s->id = idx[k] + 1;
		s->pages = cfg->regions[idx[k]].size / SNAP_PAGE_SIZE;
		table_area =
		    ALIGN_UP(SNAP_SECTION_DESC + SNAP_PAGE_HDR_SIZE * s->pages, SNAP_PAGE_SIZE);
		s->offset = pos;
		s->table_off = pos + SNAP_SECTION_DESC;
		s->data_off = pos + table_area;
		s->size = table_area + s->pages * SNAP_PAGE_SIZE;
		pos += s->size;

		l.total_ram_bytes += cfg->regions[idx[k]].size;
		l.total_ram += s->pages * (SNAP_PAGE_SIZE + SNAP_PAGE_HDR_SIZE);
	}
	l.footer_off = pos;
	l.footer_size = SNAP_FOOTER_SIZE;
	l.image_size = l.footer_off + l.footer_size;

	used = l.header_size + l.start_size + l.state_size + l.total_ram + l.footer_size;
	l.padding = l.image_size - used;
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
