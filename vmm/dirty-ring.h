/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KVM's dirty ring (KVM_CAP_DIRTY_LOG_RING): each vCPU pushes the pages it
 * dirties onto a ring of its own, which userspace harvests and hands back
 * with KVM_RESET_DIRTY_RINGS, instead of the per-slot bitmap that
 * KVM_GET_DIRTY_LOG copies out. Kept for the evaluation that issue 10 asked
 * for (tools/bench/dirtyring-bench.c, Documentation/benchmarks.md): the
 * snapshot engine uses the bitmap, which measured better here.
 *
 * Order: dirty_ring__enable() after the VM and before any vCPU,
 * dirty_ring__map() after the vCPUs, logging on as usual
 * (mem__set_log_dirty(): the slots still carry KVM_MEM_LOG_DIRTY_PAGES, and
 * KVM_GET_DIRTY_LOG then fails), dirty_ring__harvest() as often as wanted,
 * dirty_ring__exit() at teardown. A vCPU whose ring is full leaves KVM_RUN
 * with KVM_EXIT_DIRTY_RING_FULL and waits (kvm-cpu.c) until a harvest has
 * made room.
 */
#ifndef KVMSNAP_DIRTY_RING_H
#define KVMSNAP_DIRTY_RING_H

#include <stdint.h>

#include "kvm.h"
#include "lib/error.h"

struct dirty_ring {
	uint32_t entries; /* per vCPU, a power of 2 */
	unsigned int nr;  /* vCPUs mapped */
	struct kvm_dirty_gfn **rings;
	uint32_t *fetch;     /* next entry to read, per vCPU */
	uint64_t full_waits; /* times a vCPU found its ring full; atomic */
};

/*
 * Turn the ring on for vm with entries entries per vCPU (a power of 2, at
 * most what KVM offers): -EOPNOTSUPP, with *err naming why, where KVM
 * offers none or fewer.
 */
int dirty_ring__enable(struct kvm *kvm, uint32_t entries, struct error *err);

/* Map every vCPU's ring (kvm->ring must have been enabled). */
int dirty_ring__map(struct kvm *kvm, struct error *err);

/*
 * Read every ring up to its first unfilled entry, set each page's bit in
 * its region's bitmap (bitmaps[i] is region i's, as mem__fetch_dirty()
 * fills it), then KVM_RESET_DIRTY_RINGS so that those pages are logged
 * again. *pages: entries read. An entry naming no slot of the registry is
 * an error (-EIO).
 */
int dirty_ring__harvest(struct kvm *kvm, uint64_t *const *bitmaps, uint64_t *pages,
			struct error *err);

/* Unmap and free; safe when never enabled. */
void dirty_ring__exit(struct kvm *kvm);

#endif
