// SPDX-License-Identifier: GPL-2.0
/* The memory-region registry; see mem.h for the contracts. */
#include "mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "snapshot/bitmap.h"
#include "util/memfd.h"
#include "util/util.h"

_Static_assert(DIRTY_TRACK_MAX_REGIONS >= MEM_MAX_REGIONS, "a tracker has too few bitmaps");

void mem__init(struct mem_registry *reg)
{
	memset(reg, 0, sizeof(*reg));
	reg->vm_fd = -1;
	dirty_track__init(&reg->track);
}

struct mem_region *mem__find_region(struct mem_registry *reg, const char *name)
{
	struct mem_region *r;

	mem__for_each_region (reg, r)
		if (!strcmp(r->name, name))
			return r;
	return NULL;
}

int mem__add_region(struct mem_registry *reg, const char *name, uint64_t size, uint32_t flags,
		    struct mem_region **out, struct error *err)
{
	struct mem_region *r;
	void *host;
	int fd, ret;

	if (reg->nr_regions >= MEM_MAX_REGIONS)
		return err_set(err, -ENOSPC, "memory region %s: too many regions (max %d)", name,
			       MEM_MAX_REGIONS);
	if (!*name || strlen(name) >= MEM_REGION_NAME_MAX || mem__find_region(reg, name))
		return err_set(err, -EINVAL,
			       "memory region '%s': name empty, too long or already used", name);
	if (!size || size > MEM_REGION_SIZE_MAX)
		return err_set(err, -EINVAL, "memory region %s: size %llu out of range", name,
			       (unsigned long long)size);
	size = ALIGN_UP(size, PAGE_SIZE);
	/* Sealed: a process it is handed to cannot resize it under the guest. */
	fd = memfd__create_sealed(name, size, err);
	if (fd < 0)
		return err_prefix(err, "memory region %s: cannot create %llu bytes of memory", name,
				  (unsigned long long)size);
	host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (host == MAP_FAILED) {
		ret = err_errno(err, errno, "memory region %s: cannot map %llu bytes", name,
				(unsigned long long)size);
		close(fd);
		return ret;
	}
	/*
	 * Huge pages where the host allows them for shmem (shmem_enabled
	 * "advise" or better): a guest then takes one fault per 2 MiB rather
	 * than per 4 KiB, as QEMU's anonymous RAM does with THP. Advice only:
	 * a kernel without shmem THP refuses it, and 4 KiB pages work too.
	 */
	madvise(host, size, MADV_HUGEPAGE);
	r = &reg->regions[reg->nr_regions++];
	memset(r, 0, sizeof(*r));
	strcpy(r->name, name);
	r->size = size;
	r->flags = flags;
	r->host = host;
	r->fd = fd;
	if (out)
		*out = r;
	return 0;
}

static bool spans_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int mem__add_range(struct mem_registry *reg, struct mem_region *region, uint64_t gpa, uint64_t size,
		   uint64_t offset, struct error *err)
{
	struct mem_region *r;
	struct mem_range *rg;

	if (!IS_ALIGNED(gpa | size | offset, PAGE_SIZE) || !size || offset > region->size ||
	    size > region->size - offset || gpa + size < gpa)
		return err_set(err, -EINVAL,
			       "memory region %s: bad range gpa 0x%llx size 0x%llx offset 0x%llx",
			       region->name, (unsigned long long)gpa, (unsigned long long)size,
			       (unsigned long long)offset);
	if (region->nr_ranges >= MEM_MAX_RANGES)
		return err_set(err, -ENOSPC, "memory region %s: too many ranges", region->name);
	mem__for_each_region (reg, r) {
		mem__for_each_range (r, rg) {
			if (spans_overlap(gpa, size, rg->gpa, rg->size))
				return err_set(err, -EEXIST,
					       "memory region %s: range at 0x%llx overlaps %s at "
					       "0x%llx",
					       region->name, (unsigned long long)gpa, r->name,
					       (unsigned long long)rg->gpa);
		}
	}
	rg = &region->ranges[region->nr_ranges++];
	rg->gpa = gpa;
	rg->size = size;
	rg->offset = offset;
	rg->slot = reg->next_slot++;
	return 0;
}

struct mem_range *mem__find_range(struct mem_registry *reg, uint64_t gpa,
				  struct mem_region **region)
{
	struct mem_region *r;
	struct mem_range *rg;

	mem__for_each_region (reg, r) {
		mem__for_each_range (r, rg) {
			if (gpa >= rg->gpa && gpa - rg->gpa < rg->size) {
				if (region)
					*region = r;
				return rg;
			}
		}
	}
	return NULL;
}

void *mem__gpa_to_host(struct mem_registry *reg, uint64_t gpa, uint64_t len)
{
	struct mem_region *r;
	struct mem_range *rg = mem__find_range(reg, gpa, &r);

	if (!len)
		len = 1;
	if (!rg || len > rg->size - (gpa - rg->gpa))
		return NULL;
	return (char *)r->host + rg->offset + (gpa - rg->gpa);
}

int mem__write(struct mem_registry *reg, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = mem__gpa_to_host(reg, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

static int set_slot(struct mem_registry *reg, struct mem_region *r, struct mem_range *rg,
		    bool log_dirty, struct error *err)
{
	struct kvm_userspace_memory_region kr = {
	    .slot = rg->slot,
	    .guest_phys_addr = rg->gpa,
	    .memory_size = rg->size,
	    .userspace_addr = (uint64_t)(uintptr_t)((char *)r->host + rg->offset),
	};

	if (r->flags & MEM_REGION_READONLY)
		kr.flags |= KVM_MEM_READONLY;
	else if (log_dirty)
		kr.flags |= KVM_MEM_LOG_DIRTY_PAGES;
	if (ioctl(reg->vm_fd, KVM_SET_USER_MEMORY_REGION, &kr) < 0)
		return err_errno(err, errno, "KVM_SET_USER_MEMORY_REGION %s slot %u at 0x%llx",
				 r->name, rg->slot, (unsigned long long)rg->gpa);
	return 0;
}

int mem__register_slots(struct mem_registry *reg, int vm_fd, struct error *err)
{
	struct mem_region *r;
	struct mem_range *rg;
	int ret;

	reg->vm_fd = vm_fd;
	mem__for_each_region (reg, r) {
		mem__for_each_range (r, rg) {
			ret = set_slot(reg, r, rg, reg->log_dirty, err);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/*
 * The fetch's buffers and the trackers' shape, before the first fetch: the
 * fetch itself never allocates.
 */
static int prepare_fetch(struct mem_registry *reg, struct error *err)
{
	uint64_t words[MEM_MAX_REGIONS], need = 0, need_region = 0;
	const struct mem_region *r;
	const struct mem_range *rg;
	void *p;

	mem__for_each_region (reg, r) {
		words[r - reg->regions] = mem__region_bitmap_bytes(r) / 8;
		need_region = MAX(need_region, mem__region_bitmap_bytes(r));
		mem__for_each_range (r, rg)
			need = MAX(need, mem__bitmap_bytes(rg));
	}
	if (need > reg->dirty_scratch_bytes) {
		p = realloc(reg->dirty_scratch, need);
		if (!p)
			return err_set(err, -ENOMEM, "out of memory for the dirty log");
		reg->dirty_scratch = p;
		reg->dirty_scratch_bytes = need;
	}
	if (need_region > reg->region_scratch_bytes) {
		p = realloc(reg->region_scratch, need_region);
		if (!p)
			return err_set(err, -ENOMEM, "out of memory for the dirty log");
		reg->region_scratch = p;
		reg->region_scratch_bytes = need_region;
	}
	mem__for_each_region (reg, r) {
		unsigned int i = (unsigned int)(r - reg->regions);

		if (!reg->uncleared[i]) {
			reg->uncleared[i] = calloc(1, mem__region_bitmap_bytes(r));
			if (!reg->uncleared[i])
				return err_set(err, -ENOMEM, "out of memory for the dirty log");
		}
	}
	return reg->nr_regions ? dirty_track__set_shape(&reg->track, reg->nr_regions, words, err)
			       : 0;
}

static int clear_slot(struct mem_registry *reg, const struct mem_range *rg, uint64_t first,
		      uint64_t n, uint64_t *bits, struct error *err);

/* A range whose logging INITIALLY_SET just turned on: protect every page now. */
static int protect_range(struct mem_registry *reg, const struct mem_region *r,
			 const struct mem_range *rg, struct error *err)
{
	uint64_t pages = rg->size / PAGE_SIZE;
	int ret;

	memset(reg->dirty_scratch, 0xff, mem__bitmap_bytes(rg));
	ret = clear_slot(reg, rg, 0, pages, reg->dirty_scratch, NULL);
	return ret ? err_set(err, ret, "cannot protect %s (slot %u) for dirty logging: %s", r->name,
			     rg->slot, strerror(-ret))
		   : 0;
}

static int set_log_dirty(struct mem_registry *reg, bool on, bool all_dirty, struct error *err)
{
	bool was_on = reg->log_dirty;
	struct mem_region *r;
	struct mem_range *rg;
	int ret;

	if (reg->vm_fd < 0)
		return err_set(err, -ENODEV, "dirty logging needs a VM with memory slots");
	if (on) {
		ret = prepare_fetch(reg, err);
		if (ret)
			return ret;
	}
	/* Off loses KVM's unfetched bits; on after off starts from nothing known. */
	if (on != reg->log_dirty || !on)
		dirty_track__invalidate(&reg->track, DIRTY_TRACK_LOG_OFF);
	mem__for_each_region (reg, r)
		if (reg->uncleared[r - reg->regions])
			memset(reg->uncleared[r - reg->regions], 0, mem__region_bitmap_bytes(r));
	mem__for_each_region (reg, r) {
		if (r->flags & MEM_REGION_READONLY)
			continue;
		mem__for_each_range (r, rg) {
			ret = set_slot(reg, r, rg, on, err);
			if (!ret && on && !was_on && reg->initially_set && !all_dirty)
				ret = protect_range(reg, r, rg, err);
			if (ret)
				return ret;
		}
	}
	reg->log_dirty = on;
	return 0;
}

int mem__set_log_dirty(struct mem_registry *reg, bool on, struct error *err)
{
	return set_log_dirty(reg, on, false, err);
}

int mem__start_log_all_dirty(struct mem_registry *reg, bool *all_dirty, struct error *err)
{
	*all_dirty = reg->initially_set && !reg->log_dirty;
	return set_log_dirty(reg, true, true, err);
}

uint64_t mem__bitmap_bytes(const struct mem_range *range)
{
	/* KVM writes whole longs. */
	return ALIGN_UP(range->size / PAGE_SIZE, 64) / 8;
}

/* Fetch and clear one range's KVM bitmap; only mem__fetch_dirty() may, for the trackers. */
static int get_dirty_log(struct mem_registry *reg, const struct mem_range *range, uint64_t *bitmap,
			 struct error *err)
{
	struct kvm_dirty_log log = {.slot = range->slot, .dirty_bitmap = bitmap};

	if (reg->vm_fd < 0 || !reg->log_dirty)
		return err_set(err, -ENODEV, "KVM_GET_DIRTY_LOG slot %u: dirty logging is off",
			       range->slot);
	if (ioctl(reg->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return err_errno(err, errno, "KVM_GET_DIRTY_LOG slot %u", range->slot);
	return 0;
}

uint64_t mem__region_bitmap_bytes(const struct mem_region *r)
{
	return ALIGN_UP(r->size / PAGE_SIZE, 64) / 8;
}

void mem__merge_range_bitmap(uint64_t *region_bitmap, const struct mem_range *range,
			     const uint64_t *range_bitmap)
{
	uint64_t pages = range->size / PAGE_SIZE, base = range->offset / PAGE_SIZE;
	uint64_t w, words = ALIGN_UP(pages, 64) / 64;

	for (w = 0; w < words; w++) {
		uint64_t bits = range_bitmap[w];

		/* KVM fills whole words; bits past the range are not pages. */
		if (w == pages / 64)
			bits &= (1ULL << (pages % 64)) - 1;
		while (bits) {
			uint64_t page = base + w * 64 + __builtin_ctzll(bits);

			region_bitmap[page / 64] |= 1ULL << (page % 64);
			bits &= bits - 1;
		}
	}
}

#define CLEAR_CHUNK_PAGES 65536 /* 256 MiB a KVM_CLEAR_DIRTY_LOG: KVM holds mmu_lock per call */

/*
 * Re-protect slot pages [first, first + n) of range rg whose bits are set in
 * bits (bit 0 is page first): KVM_CLEAR_DIRTY_LOG in chunks. first is a
 * multiple of 64, n too unless it reaches the end of the slot.
 */
static int clear_slot(struct mem_registry *reg, const struct mem_range *rg, uint64_t first,
		      uint64_t n, uint64_t *bits, struct error *err)
{
	uint64_t done;

	for (done = 0; done < n; done += CLEAR_CHUNK_PAGES) {
		struct kvm_clear_dirty_log c = {
		    .slot = rg->slot,
		    .num_pages = (uint32_t)MIN(n - done, CLEAR_CHUNK_PAGES),
		    .first_page = first + done,
		    .dirty_bitmap = bits + done / 64,
		};

		if (ioctl(reg->vm_fd, KVM_CLEAR_DIRTY_LOG, &c) < 0)
			return err_errno(err, errno, "KVM_CLEAR_DIRTY_LOG slot %u", rg->slot);
	}
	return 0;
}

static int fetch_dirty(struct mem_registry *reg, const struct mem_region *r, uint64_t *bitmap,
		       bool lazy, struct error *err)
{
	unsigned int idx = (unsigned int)(r - reg->regions);
	const struct mem_range *rg;
	uint64_t first, end, w;
	int ret;

	if (r->flags & MEM_REGION_READONLY)
		return 0; /* the guest cannot write it; KVM logs nothing for it */
	ret = prepare_fetch(reg, err);
	if (ret)
		return ret;
	mem__for_each_range (r, rg) {
		ret = get_dirty_log(reg, rg, reg->dirty_scratch, NULL);
		/* Manual protect: re-arm now what was fetched, or later (lazy) before its copy. */
		if (!ret && reg->manual_protect && !lazy)
			ret =
			    clear_slot(reg, rg, 0, rg->size / PAGE_SIZE, reg->dirty_scratch, NULL);
		if (ret) {
			/* KVM may have cleared bits it could not hand over. */
			if (ret != -ENODEV)
				dirty_track__invalidate(&reg->track, DIRTY_TRACK_FETCH_FAILED);
			return err_set(err, ret, "cannot fetch the dirty log of %s (slot %u): %s",
				       r->name, rg->slot, strerror(-ret));
		}
		/*
		 * Lazy: re-arm these before their copy. At once: everything KVM
		 * still held for the range is re-armed, so nothing in it waits for
		 * a re-arm any more; a stale bit would later clear a newer write.
		 */
		if (reg->manual_protect && lazy)
			mem__merge_range_bitmap(reg->uncleared[idx], rg, reg->dirty_scratch);
		else if (reg->manual_protect)
			snap_bitmap_clear_range(reg->uncleared[idx], rg->offset / PAGE_SIZE,
						rg->size / PAGE_SIZE);
		if (!reg->track.nr) {
			mem__merge_range_bitmap(bitmap, rg, reg->dirty_scratch);
			continue;
		}
		/* In region pages once, then word-wise into the caller's and each tracker's. */
		first = rg->offset / PAGE_SIZE / 64;
		end = ALIGN_UP((rg->offset + rg->size) / PAGE_SIZE, 64) / 64;
		memset(reg->region_scratch + first, 0, (end - first) * 8);
		mem__merge_range_bitmap(reg->region_scratch, rg, reg->dirty_scratch);
		for (w = first; w < end; w++)
			bitmap[w] |= reg->region_scratch[w];
		dirty_track__or_region(&reg->track, idx, reg->region_scratch, first, end - first);
	}
	return 0;
}

int mem__fetch_dirty(struct mem_registry *reg, const struct mem_region *r, uint64_t *bitmap,
		     struct error *err)
{
	return fetch_dirty(reg, r, bitmap, false, err);
}

int mem__fetch_dirty_lazy(struct mem_registry *reg, const struct mem_region *r, uint64_t *bitmap,
			  struct error *err)
{
	return fetch_dirty(reg, r, bitmap, true, err);
}

int mem__clear_dirty(struct mem_registry *reg, const struct mem_region *r, uint64_t first,
		     uint64_t n, struct error *err)
{
	unsigned int idx = (unsigned int)(r - reg->regions);
	uint64_t *unc = reg->uncleared[idx];
	const struct mem_range *rg;
	int ret;

	if (!reg->manual_protect || !reg->log_dirty || !unc || (r->flags & MEM_REGION_READONLY))
		return 0;
	mem__for_each_range (r, rg) {
		uint64_t base = rg->offset / PAGE_SIZE, pages = rg->size / PAGE_SIZE;
		uint64_t o0 = MAX(first, base), o1 = MIN(first + n, base + pages), s0, s1, w;
		bool any = false;

		if (o0 >= o1)
			continue;
		/* In slot pages, widened to whole words of KVM's bitmap. */
		s0 = ALIGN_DOWN(o0 - base, 64);
		s1 = MIN(ALIGN_UP(o1 - base, 64), pages);
		memset(reg->dirty_scratch, 0, ALIGN_UP(s1 - s0, 64) / 8);
		/* Region pages [base + s0, base + s1) move from unc to the slot bitmap. */
		for (w = (base + s0) / 64; w <= (base + s1 - 1) / 64; w++) {
			uint64_t bits = unc[w];

			while (bits) {
				uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(bits);

				bits &= bits - 1;
				if (p < base + s0 || p >= base + s1)
					continue;
				reg->dirty_scratch[(p - base - s0) / 64] |=
				    1ULL << ((p - base - s0) % 64);
				unc[w] &= ~(1ULL << (p % 64));
				any = true;
			}
		}
		if (!any)
			continue;
		ret = clear_slot(reg, rg, s0, s1 - s0, reg->dirty_scratch, NULL);
		if (ret) {
			/* Pages left writable and unlogged: nothing tracked is trustworthy. */
			dirty_track__invalidate(&reg->track, DIRTY_TRACK_FETCH_FAILED);
			return err_set(err, ret, "cannot re-arm the dirty log of %s (slot %u): %s",
				       r->name, rg->slot, strerror(-ret));
		}
	}
	return 0;
}

bool mem__enable_manual_protect(struct mem_registry *reg, int vm_fd)
{
	const char *mode = getenv("KVMSNAP_DIRTY_LOG");
	struct kvm_enable_cap cap = {.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
				     .args = {KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE}};
	int have = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);

	reg->manual_protect = false;
	if (mode && !strcmp(mode, "get"))
		return false;
	/*
	 * INITIALLY_SET: turning logging on then costs nothing, and a snapshot
	 * re-arms each part of memory just before pass 1 copies it; everyone
	 * else gets every page protected at once, as without it.
	 */
	reg->initially_set = false;
	if (have > 0 && (have & KVM_DIRTY_LOG_INITIALLY_SET) &&
	    !(mode && !strcmp(mode, "protect"))) {
		cap.args[0] |= KVM_DIRTY_LOG_INITIALLY_SET;
		if (ioctl(vm_fd, KVM_ENABLE_CAP, &cap) == 0)
			reg->manual_protect = reg->initially_set = true;
		cap.args[0] &= ~(uint64_t)KVM_DIRTY_LOG_INITIALLY_SET;
	}
	if (!reg->manual_protect && have > 0 && (have & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) &&
	    ioctl(vm_fd, KVM_ENABLE_CAP, &cap) == 0)
		reg->manual_protect = true;
	return reg->manual_protect;
}

bool mem__tracking(const struct mem_registry *reg)
{
	return dirty_track__needs_log(&reg->track);
}

bool mem__log_needed(const struct mem_registry *reg)
{
	return reg->log_asked || mem__tracking(reg);
}

int mem__track_restored(struct mem_registry *reg, const uint8_t uuid[16], uint32_t slot,
			uint64_t write_id, struct error *err)
{
	struct dirty_tag tag = {.slot = slot, .write_id = write_id};
	int ret = reg->log_dirty ? 0 : mem__set_log_dirty(reg, true, err);

	if (ret)
		return err_prefix(err, "cannot track the restored memory");
	memcpy(tag.uuid, uuid, sizeof(tag.uuid));
	return dirty_track__start(&reg->track, &tag, err);
}

int mem__ensure_memfds(struct mem_registry *reg, struct error *err)
{
	const struct mem_region *r;

	mem__for_each_region (reg, r) {
		if (r->fd >= 0)
			continue;
		if (!reg->materialize)
			return err_set(err, -ENODEV, "memory region %s has no memfd", r->name);
		return reg->materialize(reg->materialize_ctx, err);
	}
	return 0;
}

uint64_t mem__total_size(const struct mem_registry *reg)
{
	uint64_t total = 0;
	unsigned int i;

	for (i = 0; i < reg->nr_regions; i++)
		total += reg->regions[i].size;
	return total;
}

void mem__exit(struct mem_registry *reg)
{
	struct mem_region *r;

	mem__for_each_region (reg, r) {
		if (r->host)
			munmap(r->host, r->size);
		if (r->fd >= 0)
			close(r->fd);
		r->host = NULL;
		r->fd = -1;
	}
	reg->nr_regions = 0;
	free(reg->dirty_scratch);
	reg->dirty_scratch = NULL;
	reg->dirty_scratch_bytes = 0;
	free(reg->region_scratch);
	reg->region_scratch = NULL;
	reg->region_scratch_bytes = 0;
	dirty_track__exit(&reg->track);
	for (unsigned int i = 0; i < MEM_MAX_REGIONS; i++) {
		free(reg->uncleared[i]);
		reg->uncleared[i] = NULL;
	}
}
