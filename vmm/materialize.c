// SPDX-License-Identifier: GPL-2.0
/*
 * Materializing lazily restored regions: each gets a memfd holding its
 * current contents, for a snapshot to hand over; see restore.h.
 */
#include "restore.h"
#include "restore-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/util.h"

#define COPY_ROUNDS_MAX	  8    /* rounds of dirty pages copied while the guest runs */
#define PAUSED_PAGES_GOAL 2048 /* stop the rounds once this few are left: 8 MiB */
#define COPY_CHUNK	  (8 * MiB)
#define PAGEMAP_BATCH	  4096 /* entries read at a time */

struct lazy_region {
	struct mem_region *r;
	int fd;
	uint8_t *copy; /* the new memfd, mapped at a scratch address */
	void *old;     /* reserved, then the old mapping moved out of the way */
};

/*
 * Everything through the private mapping: the fallback of copy_from_image(),
 * slow when the image is not in the page cache (it is then read in small
 * readahead steps). pwrite() fills the memfd without a page fault per
 * destination page, which costs more than the copy under nested KVM.
 */
static int copy_all(struct lazy_region *z)
{
	const uint8_t *src = z->r->host;
	uint64_t off;
	ssize_t n;

	madvise(z->r->host, z->r->size, MADV_SEQUENTIAL);
	for (off = 0; off < z->r->size; off += (uint64_t)n) {
		n = pwrite(z->fd, src + off, (size_t)MIN(COPY_CHUNK, z->r->size - off), (off_t)off);
		if (n < 0 && errno == EINTR)
			n = 0;
		else if (n <= 0)
			return n < 0 ? -errno : -EIO;
	}
	return 0;
}

/*
 * The pages the guest has written since the restore: anonymous (copied on
 * write) in the private mapping, where the others are still the image's
 * page cache or not mapped at all (/proc/self/pagemap bits 63, 62, 61).
 */
static int written_pages(const struct lazy_region *z, uint64_t *bm)
{
	uint64_t pages = z->r->size / PAGE_SIZE, first = (uintptr_t)z->r->host / PAGE_SIZE;
	uint64_t *e = malloc(PAGEMAP_BATCH * sizeof(*e)), i, k, n;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0 || !e) {
		ret = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	for (i = 0; i < pages && !ret; i += n) {
		n = MIN(PAGEMAP_BATCH, pages - i);
		if (pread_in_full(fd, e, n * 8, (off_t)((first + i) * 8)) != (ssize_t)(n * 8)) {
			ret = -EIO;
			break;
		}
		for (k = 0; k < n; k++) {
			bool present = e[k] >> 63 & 1, swapped = e[k] >> 62 & 1,
			     file = e[k] >> 61 & 1;

			if (swapped || (present && !file))
				bm[(i + k) / 64] |= 1ULL << ((i + k) % 64);
		}
	}
out:
	if (fd >= 0)
		close(fd);
	free(e);
	return ret;
}

/*
 * Everything, fast: the data areas straight from the image with the eager
 * loader's large parallel reads, then the pages the guest wrote from memory.
 * The pages written meanwhile are in the dirty log. -EAGAIN: no image fd,
 * or no pagemap: copy_all() then does it the slow way.
 */
static int copy_from_image(struct mem_registry *mem, struct lazy_region *z, unsigned int n)
{
	struct loader ld = {.fd = restore__lazy_src.fd};
	uint64_t *written[MEM_MAX_REGIONS] = {0}, pages, j;
	size_t nr = 0;
	unsigned int i;
	int ret = 0;

	if (ld.fd < 0)
		return -EAGAIN;
	for (i = 0; i < n; i++)
		nr += restore__pieces_for(z[i].r->size);
	ld.pieces = calloc(nr, sizeof(*ld.pieces));
	for (i = 0; !ret && i < n; i++) {
		pages = z[i].r->size / PAGE_SIZE;
		written[i] = calloc((pages + 63) / 64, sizeof(uint64_t));
		ret = written[i] && ld.pieces ? written_pages(&z[i], written[i]) : -ENOMEM;
	}
	if (ret) {
		ret = -EAGAIN;
		goto out;
	}
	for (i = 0; i < n; i++)
		restore__add_pieces(&ld, z[i].copy,
				    restore__lazy_src.data_off[z[i].r - mem->regions], z[i].r->size,
				    NULL, z[i].r->name);
	fcntl(ld.fd, F_SETFL, fcntl(ld.fd, F_GETFL) | O_DIRECT);
	ret = restore__run_loaders(&ld, "of the lazily restored memory", NULL);
	for (i = 0; !ret && i < n; i++) {
		for (j = 0; j < z[i].r->size / PAGE_SIZE; j++)
			if (written[i][j / 64] & (1ULL << (j % 64)))
				memcpy(z[i].copy + j * PAGE_SIZE,
				       (uint8_t *)z[i].r->host + j * PAGE_SIZE, PAGE_SIZE);
	}
out:
	for (i = 0; i < n; i++)
		free(written[i]);
	free(ld.pieces);
	return ret;
}

static int copy_everything(struct mem_registry *mem, struct lazy_region *z, unsigned int n)
{
	unsigned int i;
	int ret = copy_from_image(mem, z, n);

	if (ret != -EAGAIN)
		return ret;
	for (i = 0, ret = 0; !ret && i < n; i++)
		ret = copy_all(&z[i]);
	return ret;
}

/* Fetch and clear the dirty log of every range of z, and copy those pages again. */
static int copy_dirty(struct mem_registry *mem, struct lazy_region *z, uint64_t *pages)
{
	struct mem_range *rg;
	struct error err;
	uint64_t *bm, i;
	int ret = 0;

	if (z->r->flags & MEM_REGION_READONLY)
		return 0; /* the guest cannot write it, and KVM logs nothing for it */
	mem__for_each_range (z->r, rg) {
		bm = calloc(1, mem__bitmap_bytes(rg));
		if (!bm)
			return -ENOMEM;
		ret = mem__get_dirty_log(mem, rg, bm, &err);
		if (ret)
			pr_err("%s", err.msg);
		for (i = 0; !ret && i < rg->size / PAGE_SIZE; i++) {
			uint64_t o = rg->offset + i * PAGE_SIZE;

			if (!(bm[i / 64] & (1ULL << (i % 64))))
				continue;
			memcpy(z->copy + o, (uint8_t *)z->r->host + o, PAGE_SIZE);
			(*pages)++;
		}
		free(bm);
		if (ret)
			return ret;
	}
	return 0;
}

static int copy_dirty_all(struct mem_registry *mem, struct lazy_region *z, unsigned int n,
			  uint64_t *pages)
{
	unsigned int i;
	int ret = 0;

	*pages = 0;
	for (i = 0; !ret && i < n; i++)
		ret = copy_dirty(mem, &z[i], pages);
	return ret;
}

/*
 * With dirty logging on and the guest running: everything once, then the
 * pages dirtied meanwhile, round after round, until few are left or their
 * number stops shrinking (a guest that dirties faster than memcpy).
 */
static int precopy(struct mem_registry *mem, struct lazy_region *z, unsigned int n,
		   unsigned int *rounds)
{
	uint64_t left, before = UINT64_MAX;
	int ret;

	ret = copy_everything(mem, z, n);
	if (ret)
		return ret;
	for (*rounds = 1; *rounds < COPY_ROUNDS_MAX; (*rounds)++) {
		ret = copy_dirty_all(mem, z, n, &left);
		if (ret)
			return ret;
		if (left <= PAUSED_PAGES_GOAL || left >= before / 2)
			break;
		before = left;
	}
	return 0;
}

static int lazy_prepare(struct lazy_region *z)
{
	z->fd = memfd_create(z->r->name, MFD_CLOEXEC);
	if (z->fd < 0 || ftruncate(z->fd, (off_t)z->r->size))
		return -errno;
	z->copy = restore__reserve_aligned(z->r->size);
	if (!z->copy)
		return -errno;
	if (mmap(z->copy, z->r->size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED | MAP_NORESERVE, z->fd, 0) == MAP_FAILED) {
		int err = -errno;

		munmap(z->copy, z->r->size);
		z->copy = NULL;
		return err;
	}
	z->old = restore__reserve_aligned(z->r->size);
	return z->old ? 0 : -errno;
}

static void lazy_release(struct lazy_region *z)
{
	if (z->copy)
		munmap(z->copy, z->r->size);
	if (z->old)
		munmap(z->old, z->r->size);
	if (z->fd >= 0)
		close(z->fd);
	z->copy = NULL;
	z->fd = -1;
}

/*
 * The memfd takes the place of the private mapping at the same address, so
 * the KVM slots stay valid: KVM follows the change through its MMU notifier
 * (KVM_CAP_SYNC_MMU), and the slots are registered again anyway. Both
 * mappings are moved (mremap moves page tables), not unmapped: freeing the
 * old one's pages would take tens of ms per GiB, and happens after the
 * resume instead (lazy_release).
 */
static int lazy_swap(struct lazy_region *z)
{
	size_t size = z->r->size;

	if (mremap(z->r->host, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, z->old) == MAP_FAILED)
		return -errno;
	if (mremap(z->copy, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, z->r->host) == MAP_FAILED)
		return -errno;
	z->copy = NULL;
	z->r->fd = z->fd;
	z->fd = -1;
	return 0;
}

/* Paused: the last copy, then the swap. A failed swap ends the VM. */
static int finish_paused(struct kvm *kvm, struct lazy_region *z, unsigned int n, bool logged,
			 uint64_t *pages)
{
	struct error err;
	unsigned int i;
	int ret = 0;

	*pages = 0;
	if (logged)
		ret = copy_dirty_all(&kvm->mem, z, n, pages);
	else
		ret = copy_everything(&kvm->mem, z, n);
	if (ret) {
		pr_err("cannot copy the lazily restored memory: %s", strerror(-ret));
		return ret;
	}
	for (i = 0; i < n; i++) {
		ret = lazy_swap(&z[i]);
		if (ret) {
			/* The old mapping may be gone: the guest cannot go on safely. */
			pr_err("cannot map the copied memory of %s: %s", z[i].r->name,
			       strerror(-ret));
			kvm__request_exit(kvm, EXIT_VMM_ERROR, "lost the memory of %s",
					  z[i].r->name);
			return ret;
		}
	}
	ret = mem__register_slots(&kvm->mem, kvm->vm_fd, &err);
	if (ret)
		pr_err("%s", err.msg);
	return ret;
}

int restore__materialize(struct kvm *kvm)
{
	struct mem_registry *mem = &kvm->mem;
	struct lazy_region z[MEM_MAX_REGIONS];
	uint64_t t0 = now_ns(), t_pause, t_resume, paused_pages = 0, bytes = 0;
	unsigned int n = 0, i, rounds = 0;
	bool logged = false, paused;
	struct mem_region *r;
	int ret = 0;

	mem__for_each_region (mem, r) {
		if (r->fd >= 0)
			continue;
		z[n] = (struct lazy_region){.r = r, .fd = -1};
		bytes += r->size;
		n++;
	}
	if (!n)
		return 0;
	for (i = 0; !ret && i < n; i++)
		ret = lazy_prepare(&z[i]);
	if (ret) {
		pr_err("cannot create memory for the lazily restored regions: %s", strerror(-ret));
		goto out;
	}
	/* Logging already on belongs to someone else; a paused guest changes nothing. */
	if (!mem->log_dirty && !kvm__is_paused(kvm) && !mem__set_log_dirty(mem, true, NULL)) {
		logged = true;
		ret = precopy(mem, z, n, &rounds);
		if (ret) {
			pr_err("cannot copy the lazily restored memory: %s", strerror(-ret));
			goto out;
		}
	}
	ret = kvm__pause(kvm, NULL);
	if (ret && ret != -EALREADY) {
		pr_err("cannot pause the VM to finish copying its memory: %s", strerror(-ret));
		goto out;
	}
	paused = !ret;
	t_pause = now_ns();
	ret = finish_paused(kvm, z, n, logged, &paused_pages);
	if (paused)
		kvm__resume(kvm);
	t_resume = now_ns();
	if (!ret && restore__lazy_src.fd >= 0) {
		/* Nothing maps the image any more: a device held is free again. */
		close(restore__lazy_src.fd);
		restore__lazy_src.fd = -1;
	}
	if (!ret)
		pr_info("lazily restored memory copied into memfds: %" PRIu64 " MiB in %.1f ms "
			"(%u rounds), then %" PRIu64 " pages while paused for %.1f ms",
			bytes >> 20, (t_pause - t0) / 1e6, rounds, paused_pages,
			(t_resume - t_pause) / 1e6);
out:
	if (logged && mem__set_log_dirty(mem, false, NULL))
		pr_warn("cannot turn dirty logging off again");
	for (i = 0; i < n; i++)
		lazy_release(&z[i]);
	return ret;
}
