/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The memory-region registry: the single source of truth about guest memory.
 *
 * A region (pc.ram, vga.vram, pc.bios, acpi.tables) is one host mapping of
 * `size` bytes. It is visible to the guest through one or more ranges; each
 * range maps [gpa, gpa + size) to [offset, offset + size) of the region and is
 * its own KVM memory slot, so it can log dirty pages. Ranges of one region may
 * alias (the VGA text window and the linear framebuffer both show the start
 * of vga.vram).
 *
 * The registry can be built and used without KVM (tests, loaders); only
 * mem__register_slots() and the dirty-log calls talk to KVM.
 */
#ifndef KVMSNAP_MEM_H
#define KVMSNAP_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "dirty-track.h"
#include "lib/error.h"

#define MEM_MAX_REGIONS	    8
#define MEM_MAX_RANGES	    4
#define MEM_REGION_NAME_MAX 32
#define MEM_REGION_SIZE_MAX (1ULL << 40)

enum mem_region_flags {
	MEM_REGION_READONLY = 1u << 0, /* the guest cannot write it (KVM_MEM_READONLY) */
	MEM_REGION_RAM = 1u << 1,      /* main RAM, as opposed to device memory */
};

struct mem_range {
	uint64_t gpa;
	uint64_t size;
	uint64_t offset; /* into the region */
	uint32_t slot;	 /* KVM slot id, unique over the registry */
};

struct mem_region {
	char name[MEM_REGION_NAME_MAX];
	uint64_t size; /* a multiple of 4 KiB */
	uint32_t flags;
	void *host; /* page-aligned MAP_SHARED mapping of size bytes of fd */
	int fd;	    /* memfd behind host: a snapshot process maps it read-only */
	unsigned int nr_ranges;
	struct mem_range ranges[MEM_MAX_RANGES];
};

struct mem_registry {
	unsigned int nr_regions;
	struct mem_region regions[MEM_MAX_REGIONS];
	uint32_t next_slot;
	int vm_fd;	/* -1 until mem__register_slots() */
	bool log_dirty; /* slots currently carry KVM_MEM_LOG_DIRTY_PAGES */
	bool log_asked; /* a control client turned it on (`dirty-log`) */
	/*
	 * KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 is on: KVM_GET_DIRTY_LOG leaves
	 * pages writable, and KVM_CLEAR_DIRTY_LOG re-protects them. uncleared:
	 * per region, pages fetched lazily and not cleared yet.
	 */
	bool manual_protect;
	uint64_t *uncleared[MEM_MAX_REGIONS];
	/*
	 * KVM_DIRTY_LOG_INITIALLY_SET is on too: turning logging on marks every
	 * page dirty and protects none, and mem__set_log_dirty() protects them
	 * itself, unless the caller asked for all_dirty.
	 */
	bool initially_set;
	/*
	 * A region may have no memfd (fd -1: restore --lazy maps the image
	 * there). Whoever made it so sets materialize, which gives every such
	 * region a memfd again; see mem__ensure_memfds().
	 */
	int (*materialize)(void *ctx, struct error *err);
	void *materialize_ctx;
	uint64_t *dirty_scratch; /* KVM_GET_DIRTY_LOG buffer of mem__fetch_dirty() */
	uint64_t dirty_scratch_bytes;
	uint64_t *region_scratch; /* one range's fetch in region pages, for the trackers */
	uint64_t region_scratch_bytes;
	struct dirty_track track; /* what changed since each image slot was completed */
};

#define mem__for_each_region(reg, r) \
	for ((r) = (reg)->regions; (r) < (reg)->regions + (reg)->nr_regions; (r)++)
#define mem__for_each_range(region, rg) \
	for ((rg) = (region)->ranges; (rg) < (region)->ranges + (region)->nr_ranges; (rg)++)

void mem__init(struct mem_registry *reg);

/*
 * Add a region and map `size` bytes (rounded up to 4 KiB) of zeroed memory
 * for it, from a memfd so that another process can be handed the region.
 * Names must be unique. 0 or -errno with *err set.
 */
int mem__add_region(struct mem_registry *reg, const char *name, uint64_t size, uint32_t flags,
		    struct mem_region **out, struct error *err);

/*
 * Make [offset, offset + size) of the region visible at gpa. All three must be
 * 4 KiB aligned, the range must lie inside the region and must not overlap
 * another range's guest-physical span. 0 or -errno with *err set.
 */
int mem__add_range(struct mem_registry *reg, struct mem_region *region, uint64_t gpa, uint64_t size,
		   uint64_t offset, struct error *err);

struct mem_region *mem__find_region(struct mem_registry *reg, const char *name);
/* The range that contains gpa, and its region; NULL if no slot backs gpa. */
struct mem_range *mem__find_range(struct mem_registry *reg, uint64_t gpa,
				  struct mem_region **region);

/*
 * The one bounds check for guest-supplied addresses: the host pointer for
 * [gpa, gpa + len), or NULL unless the whole span lies inside one range.
 * len == 0 is treated as 1. Never trust a guest address without it.
 */
void *mem__gpa_to_host(struct mem_registry *reg, uint64_t gpa, uint64_t len);
#define GUEST_PTR(reg, gpa, type) ((type *)mem__gpa_to_host((reg), (gpa), sizeof(type)))

/* Copy into guest memory through mem__gpa_to_host(); 0 or -EFAULT. */
int mem__write(struct mem_registry *reg, uint64_t gpa, const void *src, uint64_t len);

/* Register every range as a KVM memory slot of vm_fd. 0 or -errno with *err set. */
int mem__register_slots(struct mem_registry *reg, int vm_fd, struct error *err);

/*
 * Turn KVM_MEM_LOG_DIRTY_PAGES on or off for every writable slot. Turning it
 * on starts every page clean. Turning it off drops what KVM has not handed
 * over: every dirty tracker becomes invalid, so a caller that would turn it
 * off asks mem__tracking() first. 0, -ENODEV before mem__register_slots(),
 * or -errno; *err set.
 */
int mem__set_log_dirty(struct mem_registry *reg, bool on, struct error *err);

/*
 * Turn logging on with every page dirty and none write-protected, where
 * KVM offers that (initially_set): for a caller that copies every page
 * anyway and re-arms each part just before its copy (mem__fetch_dirty_lazy,
 * then mem__clear_dirty), so that the guest takes no write fault on a page
 * until then. Elsewhere as mem__set_log_dirty(reg, true). *all_dirty: which.
 */
int mem__start_log_all_dirty(struct mem_registry *reg, bool *all_dirty, struct error *err);

/* Bytes of a KVM dirty bitmap of one range: bit i is page i of the range. */
uint64_t mem__bitmap_bytes(const struct mem_range *range);

/* Bytes of a region bitmap: one bit per region page, in whole 64-bit words. */
uint64_t mem__region_bitmap_bytes(const struct mem_region *r);

/*
 * OR a KVM bitmap of one range (bit i is page i of the range) into a bitmap
 * of its region (bit j is region page j), so that aliasing ranges count each
 * region page once. Bits past the range's end are not pages, and are dropped.
 */
void mem__merge_range_bitmap(uint64_t *region_bitmap, const struct mem_range *range,
			     const uint64_t *range_bitmap);

/*
 * The one dirty-log fetch (nothing else calls KVM_GET_DIRTY_LOG): fetch and
 * clear the log of every range of r and OR it into bitmap
 * (mem__region_bitmap_bytes(r) bytes, not cleared here) and into every dirty
 * tracker's bitmap of r. A read-only region logs nothing and leaves bitmap as
 * it is. A failed fetch may have lost bits: it invalidates every tracker.
 * Main thread only (it uses scratch buffers of the registry, allocated when
 * logging is turned on). 0 or -errno with *err set.
 */
int mem__fetch_dirty(struct mem_registry *reg, const struct mem_region *r, uint64_t *bitmap,
		     struct error *err);

/*
 * mem__fetch_dirty(), but with manual protect the pages it reports stay
 * writable until mem__clear_dirty() re-arms them, so that a page the guest
 * writes again before it is copied costs no second fault and no second
 * copy. Every page it reports must go through mem__clear_dirty() before it
 * is copied. Without manual protect it is mem__fetch_dirty().
 */
int mem__fetch_dirty_lazy(struct mem_registry *reg, const struct mem_region *r, uint64_t *bitmap,
			  struct error *err);

/*
 * Re-arm dirty logging (KVM_CLEAR_DIRTY_LOG) for the lazily fetched pages
 * of region r in [first, first + n), widened to whole 64-page words: a
 * write after this is logged again. Nothing without manual protect. 0 or
 * -errno with *err set (the trackers are then invalid: bits may be lost).
 */
int mem__clear_dirty(struct mem_registry *reg, const struct mem_region *r, uint64_t first,
		     uint64_t n, struct error *err);

/*
 * Turn on manual dirty-log protection if KVM offers it, with
 * KVM_DIRTY_LOG_INITIALLY_SET where offered, before dirty logging is first
 * turned on. KVMSNAP_DIRTY_LOG in the environment, to compare: `get` keeps
 * KVM_GET_DIRTY_LOG alone, `protect` leaves INITIALLY_SET off. Whether
 * manual protection is on.
 */
bool mem__enable_manual_protect(struct mem_registry *reg, int vm_fd);

/*
 * Whether a dirty tracker is valid or pending (vmm/dirty-track.h): dirty
 * logging must then stay on after a snapshot or a materialization.
 */
bool mem__tracking(const struct mem_registry *reg);

/*
 * Whether dirty logging must stay on once a snapshot ends: a client asked
 * for it, or a tracker needs it. Otherwise the one who turned it on, or a
 * snapshot that found it on for a tracker that is now gone, turns it off.
 */
bool mem__log_needed(const struct mem_registry *reg);

/*
 * The VM's memory is now exactly image slot (uuid, slot) written with
 * write_id (a restore from it): dirty logging on, and a valid tracker with
 * nothing dirty. Call it before the vCPUs run. 0 or -errno with *err set.
 */
int mem__track_restored(struct mem_registry *reg, const uint8_t uuid[16], uint32_t slot,
			uint64_t write_id, struct error *err);

/*
 * Make sure every region has a memfd, so that it can be handed to another
 * process: calls reg->materialize if a region lacks one. Main thread only.
 * 0 or -errno with *err set.
 */
int mem__ensure_memfds(struct mem_registry *reg, struct error *err);

/* Total bytes of all regions; unmap everything. */
uint64_t mem__total_size(const struct mem_registry *reg);
void mem__exit(struct mem_registry *reg);

#endif
