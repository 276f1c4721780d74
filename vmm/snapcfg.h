/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The snapshot library's view of a PC configuration. The region list comes
 * from the memory registry itself (pc__setup_memory on a scratch registry),
 * so the registry stays the single source of truth about regions.
 */
#ifndef KVMSNAP_SNAPCFG_H
#define KVMSNAP_SNAPCFG_H

#include "pc.h"
#include "snapshot/snapshot.h"

/*
 * Fill out for pc: machine, vCPUs, RAM, VRAM and every region's id and size
 * in registry order. 0 or -errno with *err set.
 */
int snapcfg__from_pc(const struct pc_config *pc, struct snap_config *out, struct error *err);

#endif
