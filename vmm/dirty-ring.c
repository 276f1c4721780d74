// SPDX-License-Identifier: GPL-2.0
/* KVM's dirty ring, for its evaluation against the bitmap; see dirty-ring.h. */
#include "dirty-ring.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/util.h"

int dirty_ring__enable(struct kvm *kvm, uint32_t entries, struct error *err)
{
	uint64_t bytes = (uint64_t)entries * sizeof(struct kvm_dirty_gfn);
	struct kvm_enable_cap cap = {.cap = KVM_CAP_DIRTY_LOG_RING, .args = {bytes}};
	int max = ioctl(kvm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);

	if (kvm->nr_cpus)
		return err_set(err, -EINVAL, "the dirty ring must be on before any vCPU exists");
	if (!entries || (entries & (entries - 1)))
		return err_set(err, -EINVAL, "dirty ring: %u entries is not a power of 2", entries);
	if (bytes < (uint64_t)sysconf(_SC_PAGESIZE))
		return err_set(err, -EINVAL, "dirty ring: %u entries are less than a page",
			       entries);
	if (max <= 0)
		return err_set(err, -EOPNOTSUPP,
			       "KVM offers no dirty ring (KVM_CAP_DIRTY_LOG_RING)");
	if (bytes > (uint64_t)max)
		return err_set(err, -EOPNOTSUPP, "dirty ring: %u entries, KVM offers at most %u",
			       entries, (unsigned int)(max / sizeof(struct kvm_dirty_gfn)));
	kvm->ring = calloc(1, sizeof(*kvm->ring));
	if (!kvm->ring)
		return err_set(err, -ENOMEM, "out of memory");
	if (ioctl(kvm->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
		free(kvm->ring);
		kvm->ring = NULL;
		return err_errno(err, errno, "KVM_ENABLE_CAP KVM_CAP_DIRTY_LOG_RING");
	}
	kvm->ring->entries = entries;
	return 0;
}

int dirty_ring__map(struct kvm *kvm, struct error *err)
{
	struct dirty_ring *dr = kvm->ring;
	size_t len = (size_t)dr->entries * sizeof(struct kvm_dirty_gfn);
	long page = sysconf(_SC_PAGESIZE);
	struct kvm_cpu *cpu;
	unsigned int i;

	dr->rings = calloc(kvm->nr_cpus, sizeof(*dr->rings));
	dr->fetch = calloc(kvm->nr_cpus, sizeof(*dr->fetch));
	if (!dr->rings || !dr->fetch)
		return err_set(err, -ENOMEM, "out of memory");
	kvm__for_each_cpu (kvm, cpu, i) {
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, cpu->fd,
			       (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * page);

		if (p == MAP_FAILED)
			return err_errno(err, errno, "vCPU %u: mmap of its dirty ring", i);
		dr->rings[i] = p;
		dr->nr = i + 1;
	}
	return 0;
}

/* Region page of (slot, offset), or -1 if no range of the registry has that slot. */
static int slot_page(const struct mem_registry *reg, uint32_t slot, uint64_t offset,
		     unsigned int *region, uint64_t *page)
{
	const struct mem_region *r;
	const struct mem_range *rg;

	mem__for_each_region (reg, r)
		mem__for_each_range (r, rg)
			if (rg->slot == slot && offset < rg->size / PAGE_SIZE) {
				*region = (unsigned int)(r - reg->regions);
				*page = rg->offset / PAGE_SIZE + offset;
				return 0;
			}
	return -1;
}

int dirty_ring__harvest(struct kvm *kvm, uint64_t *const *bitmaps, uint64_t *pages,
			struct error *err)
{
	struct dirty_ring *dr = kvm->ring;
	unsigned int i, region;
	uint64_t n = 0, page;

	for (i = 0; i < dr->nr; i++) {
		for (;; dr->fetch[i]++) {
			struct kvm_dirty_gfn *e = &dr->rings[i][dr->fetch[i] & (dr->entries - 1)];
			uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);

			if (!(flags & KVM_DIRTY_GFN_F_DIRTY))
				break;
			if (slot_page(&kvm->mem, e->slot, e->offset, &region, &page))
				return err_set(
				    err, -EIO,
				    "dirty ring of vCPU %u: slot %u page %llu is not guest memory",
				    i, e->slot, (unsigned long long)e->offset);
			bitmaps[region][page / 64] |= 1ULL << (page % 64);
			__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
			n++;
		}
	}
	*pages = n;
	if (ioctl(kvm->vm_fd, KVM_RESET_DIRTY_RINGS, 0) < 0)
		return err_errno(err, errno, "KVM_RESET_DIRTY_RINGS");
	return 0;
}

void dirty_ring__exit(struct kvm *kvm)
{
	struct dirty_ring *dr = kvm->ring;
	unsigned int i;

	if (!dr)
		return;
	for (i = 0; dr->rings && i < dr->nr; i++)
		munmap(dr->rings[i], (size_t)dr->entries * sizeof(struct kvm_dirty_gfn));
	free(dr->rings);
	free(dr->fetch);
	free(dr);
	kvm->ring = NULL;
}
