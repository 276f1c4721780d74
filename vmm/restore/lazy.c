// SPDX-License-Identifier: GPL-2.0
/*
 * Lazy restore: the image's data areas mapped as guest memory, and later
 * materialized (each region gets a memfd holding its current contents, for
 * a snapshot to hand over); see restore.h.
 */
#include "restore/internal.h"
#include "restore/restore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "snapshot/precopy.h"
#include "util/memfd.h"
#include "util/util.h"

#define COPY_ROUNDS_MAX	  8    /* rounds of dirty pages copied while the guest runs */
#define PAUSED_PAGES_GOAL 2048 /* stop the rounds once this few are left: 8 MiB */
#define COPY_CHUNK	  (8 * MiB)
#define PAGEMAP_BATCH	  4096 /* entries read at a time */

/* ---- mapping ---- */

struct restore_lazy_src restore__lazy_src = {.fd = -1, .pagemap_fd = -1};

void *restore__reserve_aligned(size_t size)
{
	size_t slack = HUGE_ALIGN, head;
	uint8_t *p;

	p = mmap(NULL, size + slack, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	head = ALIGN_UP((uintptr_t)p, HUGE_ALIGN) - (uintptr_t)p;
	if (head)
		munmap(p, head);
	munmap(p + head + size, slack - head);
	return p + head;
}

static int materialize_hook(void *ctx, struct error *err)
{
	return restore__materialize(ctx, err);
}

int restore__map_lazy(struct restore_image *ri, struct kvm *kvm, struct error *err)
{
	struct mem_registry *mem = &kvm->mem;
	const struct snap_layout *l = &ri->img.layout;
	unsigned int i;
	int fd, ret = 0;

	/* A file is mapped through its own fd; a device through the one held exclusively. */
	fd = fcntl(ri->map_fd >= 0 ? ri->map_fd : ri->img.fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return err_errno(err, errno, "image %s", ri->img.path);
	for (i = 0; i < mem->nr_regions; i++) {
		struct mem_region *r = &mem->regions[i];
		const struct snap_section *s = snap_layout_section(l, i);
		void *p = restore__reserve_aligned(r->size);

		/* Private: the guest's writes go to anonymous copies, never to the image. */
		ret = p ? 0 : -errno;
		if (p && mmap(p, r->size, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd,
			      (off_t)s->data_off) == MAP_FAILED) {
			ret = -errno;
			munmap(p, r->size);
		}
		if (ret) {
			err_set(err, ret, "image %s: cannot map the data of %s: %s", ri->img.path,
				r->name, strerror(-ret));
			break;
		}
		/*
		 * The region moves to the image (no KVM slot refers to it yet), and
		 * has no memfd any more: a snapshot materializes a new one.
		 */
		munmap(r->host, r->size);
		close(r->fd);
		r->host = p;
		r->fd = -1;
		restore__lazy_src.data_off[i] = s->data_off;
	}
	if (ret) {
		close(fd);
		return ret;
	}
	restore__lazy_src.fd = fd;
	/*
	 * Now: once the VM runs as another user it is not dumpable, and its
	 * /proc files belong to root. Without it materializing is slower.
	 */
	restore__lazy_src.pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	mem->materialize = materialize_hook;
	mem->materialize_ctx = kvm;
	return 0;
}

/* ---- materializing ---- */

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
	int fd = restore__lazy_src.pagemap_fd, ret = 0;

	if (fd < 0 || !e) {
		ret = fd < 0 ? -EBADF : -ENOMEM;
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
	ret = restore__run_loaders(&ld, "of the lazily restored memory", NULL, NULL);
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

static int lazy_prepare(struct lazy_region *z)
{
	z->fd = memfd__create_sealed(z->r->name, z->r->size, NULL);
	if (z->fd < 0)
		return z->fd;
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

/* ---- the precopy engine's view: the lazy regions as a VM, the memfds as its sink ---- */

struct materialize {
	struct kvm *kvm;
	struct lazy_region z[MEM_MAX_REGIONS];
	unsigned int n;
	bool logged, paused; /* by this materialize */
	struct snap_vm vm;
};

static int vm_fetch_dirty(void *ctx, struct error *err)
{
	struct materialize *m = ctx;
	unsigned int i;
	int ret;

	for (i = 0; i < m->n; i++) {
		memset(m->vm.regions[i].dirty, 0, mem__region_bitmap_bytes(m->z[i].r));
		ret = mem__fetch_dirty(&m->kvm->mem, m->z[i].r, m->vm.regions[i].dirty, err);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Logging may be on already for the dirty trackers: then every page starts
 * clean by a fetch, which feeds them, and logging stays on afterwards.
 */
static int vm_log_start(void *ctx, bool *prefilled, struct error *err)
{
	struct materialize *m = ctx;
	unsigned int i;
	int ret;

	*prefilled = false; /* every page: pass 1 copies them all */
	if (m->kvm->mem.log_dirty) {
		ret = vm_fetch_dirty(m, err);
		for (i = 0; i < m->n; i++)
			memset(m->vm.regions[i].dirty, 0, mem__region_bitmap_bytes(m->z[i].r));
		return ret;
	}
	ret = mem__set_log_dirty(&m->kvm->mem, true, err);
	if (ret)
		return err_prefix(err, "cannot turn dirty logging on");
	m->logged = true;
	return 0;
}

static int vm_pause(void *ctx, uint64_t *latency_us, uint64_t *paused_us, struct error *err)
{
	struct materialize *m = ctx;
	uint64_t paused = 0;
	int ret = kvm__pause(m->kvm, latency_us, &paused);

	*paused_us = paused / 1000;
	/* Paused by someone else: it stays paused afterwards. */
	if (ret && ret != -EALREADY)
		return err_set(err, ret, "cannot pause the VM to finish copying its memory: %s",
			       strerror(-ret));
	m->paused = !ret;
	return 0;
}

static int vm_finish(void *ctx, uint64_t *resumed_us, struct error *err)
{
	struct materialize *m = ctx;
	uint64_t resumed = 0;

	(void)err;
	if (m->paused)
		kvm__resume(m->kvm, &resumed);
	m->paused = false;
	if (resumed_us)
		*resumed_us = (resumed ? resumed : now_ns()) / 1000;
	/* Off would invalidate the dirty trackers; a tracker made meanwhile needs it on. */
	if (m->logged && !mem__log_needed(&m->kvm->mem) &&
	    mem__set_log_dirty(&m->kvm->mem, false, NULL))
		pr_warn("cannot turn dirty logging off again");
	m->logged = false;
	return 0;
}

static const struct snap_vm_ops materialize_vm_ops = {
    .log_start = vm_log_start,
    .fetch_dirty = vm_fetch_dirty,
    .pause = vm_pause,
    .finish = vm_finish,
};

/*
 * Logging already on belongs to someone else (dirty-log on), and a paused
 * guest changes nothing: copy paused. Logging on for the dirty trackers is
 * ours to use: every fetch feeds them.
 */
static const struct snap_vm_ops materialize_paused_ops = {
    .fetch_dirty = vm_fetch_dirty,
    .pause = vm_pause,
    .finish = vm_finish,
};

static int sink_write(void *ctx, unsigned int i, uint64_t first, uint64_t n, const uint8_t *src,
		      struct error *err)
{
	struct materialize *m = ctx;

	(void)err;
	memcpy(m->z[i].copy + first * PAGE_SIZE, src, n * PAGE_SIZE);
	return 0;
}

static int sink_first_pass(void *ctx, struct error *err)
{
	struct materialize *m = ctx;
	int ret = copy_everything(&m->kvm->mem, m->z, m->n);

	return ret ? err_set(err, ret, "cannot copy the lazily restored memory: %s", strerror(-ret))
		   : 0;
}

/* Paused, after the last copy: the memfds take the place of the image. A failed swap ends the VM. */
static int sink_paused(void *ctx, struct error *err)
{
	struct materialize *m = ctx;
	unsigned int i;
	int ret;

	for (i = 0; i < m->n; i++) {
		ret = lazy_swap(&m->z[i]);
		if (ret) {
			/* The old mapping may be gone: the guest cannot go on safely. */
			kvm__request_exit(m->kvm, EXIT_VMM_ERROR, "lost the memory of %s",
					  m->z[i].r->name);
			return err_set(err, ret, "cannot map the copied memory of %s: %s",
				       m->z[i].r->name, strerror(-ret));
		}
	}
	ret = mem__register_slots(&m->kvm->mem, m->kvm->vm_fd, err);
	return ret ? err_prefix(err, "cannot register the copied memory with KVM") : 0;
}

static const struct snap_sink_ops memfd_sink_ops = {
    .write = sink_write,
    .first_pass = sink_first_pass,
    .paused = sink_paused,
};

/* The lazy regions of kvm as the engine's VM; 0 when there are none. */
static int materialize_setup(struct materialize *m, struct error *err)
{
	struct mem_region *r;
	unsigned int i;
	int ret = 0;

	mem__for_each_region (&m->kvm->mem, r) {
		struct snap_vm_region *vr = &m->vm.regions[m->n];

		if (r->fd >= 0)
			continue;
		m->z[m->n] = (struct lazy_region){.r = r, .fd = -1};
		memcpy(m->vm.cfg.regions[m->n].id, r->name,
		       MIN(strlen(r->name), (size_t)SNAP_REGION_ID_MAX));
		m->vm.cfg.regions[m->n].size = r->size;
		vr->mem = r->host;
		vr->memfd = -1;
		vr->size = r->size;
		vr->dirty = calloc(1, mem__region_bitmap_bytes(r));
		if (!vr->dirty)
			ret = -ENOMEM;
		m->n++;
	}
	m->vm.cfg.nr_regions = m->n;
	for (i = 0; !ret && i < m->n; i++)
		ret = lazy_prepare(&m->z[i]);
	if (ret)
		return err_set(err, ret, "cannot create memory for the lazily restored regions: %s",
			       strerror(-ret));
	return 0;
}

static void materialize_release(struct materialize *m)
{
	unsigned int i;

	for (i = 0; i < m->n; i++) {
		lazy_release(&m->z[i]);
		free(m->vm.regions[i].dirty);
	}
}

int restore__materialize(struct kvm *kvm, struct error *err)
{
	struct materialize *m = calloc(1, sizeof(*m));
	struct snap_options limits = {
	    .threshold = PAUSED_PAGES_GOAL * PAGE_SIZE,
	    .max_passes = COPY_ROUNDS_MAX,
	};
	struct snap_precopy_opts po = {.limits = &limits, .stop_if_not_halving = true};
	struct snap_sink sink = {.ops = &memfd_sink_ops};
	struct snap_report *rep = calloc(1, sizeof(*rep));
	uint64_t paused_pages;
	int ret;

	if (!m || !rep) {
		ret = err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	m->kvm = kvm;
	ret = materialize_setup(m, err);
	if (ret || !m->n)
		goto out;
	m->vm.ctx = m;
	m->vm.ops = kvm__is_paused(kvm) || (kvm->mem.log_dirty && !mem__tracking(&kvm->mem))
			? &materialize_paused_ops
			: &materialize_vm_ops;
	sink.ctx = m;
	ret = snap_precopy_run(&m->vm, &sink, &po, rep, err);
	if (ret)
		goto out;
	if (restore__lazy_src.fd >= 0) {
		/* Nothing maps the image any more: a device held is free again. */
		close(restore__lazy_src.fd);
		restore__lazy_src.fd = -1;
	}
	if (restore__lazy_src.pagemap_fd >= 0) {
		close(restore__lazy_src.pagemap_fd);
		restore__lazy_src.pagemap_fd = -1;
	}
	paused_pages = rep->nr_passes ? rep->passes[rep->nr_passes - 1].dirty_pages : 0;
	pr_info("lazily restored memory copied into memfds: %" PRIu64 " MiB in %.1f ms "
		"(%u passes), then %" PRIu64 " pages while paused for %.1f ms",
		rep->bytes_written >> 20, rep->total_us / 1e3, rep->nr_passes, paused_pages,
		rep->downtime_us / 1e3);
out:
	if (m)
		materialize_release(m);
	free(m);
	free(rep);
	return ret;
}
