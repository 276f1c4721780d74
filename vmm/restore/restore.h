/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Restore: put a complete snapshot image back into a VM that vm-setup.h
 * built from the image's own configuration.
 *
 *   restore__open()            validate the image before anything else
 *   restore__check_regions()   the VM's registry equals the RAM start section
 *   restore__map_lazy()        --lazy: the data areas become guest memory
 *   restore__load_eager()      default: read the data areas into guest memory
 *   restore__load_state()      vCPUs, irqchip, PIT, clock and devices
 *
 * Each function returns 0 or -errno with the cause in *err (lib/error.h).
 * open.c validates, load.c loads memory (eager) and state, lazy.c maps the
 * image (lazy) and implements restore__materialize().
 *
 * Eager: each data area is read in 8 MiB pieces by a few threads, with
 * O_DIRECT where the target allows, straight into the region's memfd
 * mapping. Every page is hashed as it arrives, and the region digests must
 * equal the footer's, so an eager restore proves its memory exact.
 *
 * Lazy: each data area is mapped MAP_PRIVATE (2 MiB-aligned) in place of
 * its region's memfd mapping before any KVM slot exists, so a page is read
 * on the guest's first touch and copied on its first write; the image is
 * never written. Such a region has no memfd (fd -1) until
 * restore__materialize() gives it one. Until then its image must not
 * change: a block device is held with O_EXCL (kvmsnap's writers open it so
 * too, and fail); a file is not locked, and a write to it by another
 * program would show through the pages the guest has not written.
 */
#ifndef KVMSNAP_RESTORE_H
#define KVMSNAP_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvm.h"
#include "pc.h"
#include "snapshot/image.h"
#include "state/state.h"

struct restore_image {
	struct snap_image img;
	struct snap_footer footer;
	struct pc_config pc; /* from the VM start section */
	uint8_t *state;	     /* the VM state area, checked */
	size_t state_len;
	int map_fd;	 /* lazy from a device: held with O_EXCL until the mappings go */
	char guest[256]; /* the metadata's guest=, for `ctl status` and later snapshots */
};

/* What the eager load did, for --json and -v. */
struct restore_load_stats {
	uint64_t bytes;
	unsigned int threads;
	bool direct;
	uint64_t read_ns; /* reading and hashing, wall clock */
};

/*
 * Open path read-only and validate it: structure (snap_image_open), state
 * complete, footer, VM state checksum, every page header, a machine type
 * and configuration kvmsnap can build. lazy: for restore__map_lazy() (a
 * device is held exclusively from here on); direct: try O_DIRECT for the
 * eager load. 0 or -errno; ri needs restore__close() either way.
 */
struct restore_open_opts {
	bool lazy;	/* --lazy */
	bool direct;	/* try O_DIRECT for the eager load */
	bool have_slot; /* --slot: this slot, not the newest complete one */
	uint32_t slot;
};
int restore__open(struct restore_image *ri, const char *path, const struct restore_open_opts *o,
		  struct error *err);
void restore__close(struct restore_image *ri);

/* The regions of mem (built by pc__setup_memory) are the image's, in order. */
int restore__check_regions(const struct restore_image *ri, struct mem_registry *mem,
			   struct error *err);

/*
 * Map every region's data area over its memory; before the slots are
 * registered. The registry's materialize hook is set to restore__materialize.
 */
int restore__map_lazy(struct restore_image *ri, struct kvm *kvm, struct error *err);

/* Read every data area into its region and check each digest against the footer. */
int restore__load_eager(struct restore_image *ri, struct mem_registry *mem,
			struct restore_load_stats *st, struct error *err);

/* Load the VM state into the vCPUs, in-kernel devices and devs; clock: catch up or not. */
int restore__load_state(struct restore_image *ri, struct kvm *kvm,
			const struct vm_state_devices *devs, enum vm_clock_mode clock,
			struct error *err);

/*
 * Give every lazily mapped region (fd -1) a memfd holding its current
 * contents, mapped MAP_SHARED at the same host address, so that a snapshot
 * can hand the memfds over; snapshot-begin calls it. Main thread only.
 *
 * With dirty logging on and the guest running, the data areas are read
 * from the image with the eager loader, the pages the guest has written
 * (anonymous in /proc/self/pagemap) are copied from memory on top, and
 * then the pages dirtied meanwhile, in rounds until few are left. The
 * pause covers the last dirty pages and moving the mappings with mremap()
 * (the old one is freed after the resume). 1 GiB: about 1.2 s, 6-11 ms
 * paused, here. When dirty logging is already on (`ctl dirty-log`), or
 * the VM is paused, the whole copy is done paused. 0 when there is nothing
 * to do; on failure before the remapping the VM runs on as before. It is
 * the registry's materialize hook: mem__ensure_memfds() calls it.
 */
int restore__materialize(struct kvm *kvm, struct error *err);

#endif
