// SPDX-License-Identifier: GPL-2.0
/* A snap_config from a PC configuration, read off a scratch memory registry. */
#include "snapcfg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"
#include "util/util.h"

int snapcfg__from_pc(const struct pc_config *pc, struct snap_config *out, struct error *err)
{
	struct mem_registry reg;
	struct mem_region *r;
	int ret;

	memset(out, 0, sizeof(*out));
	/* The mappings are MAP_NORESERVE: building a 64G registry costs nothing. */
	mem__init(&reg);
	ret = pc__setup_memory(&reg, pc, err);
	if (ret)
		goto out;
	if (reg.nr_regions > SNAP_MAX_REGIONS) {
		ret = err_set(err, -EINVAL, "%u memory regions; a snapshot image holds at most %d",
			      reg.nr_regions, SNAP_MAX_REGIONS);
		goto out;
	}
	snprintf(out->machine, sizeof(out->machine), "%s", SNAP_MACHINE_PC);
	out->vcpus = pc->nr_cpus;
	out->ram_size = pc->ram_size;
	out->vram_size = pc->vram_size;
	mem__for_each_region (&reg, r) {
		struct snap_region_desc *d = &out->regions[out->nr_regions++];

		/* An over-long name stays unterminated, and snap_config_check refuses it. */
		memcpy(d->id, r->name, strnlen(r->name, sizeof(d->id)));
		d->size = r->size;
	}
	ret = snap_config_check(out, err);
out:
	mem__exit(&reg);
	return ret;
}
