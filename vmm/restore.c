// SPDX-License-Identifier: GPL-2.0
/* Restore a VM from a snapshot image; see restore.h. */
#include "restore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "snapshot/le.h"
#include "snapshot/state.h"
#include "state/state.h"
#include "util/util.h"

#define LOAD_CHUNK   (8 * MiB) /* one read: large enough to reach the device's limit */
#define LOAD_THREADS 4	       /* reads in flight; the CPU side (hashing) is light */
#define HUGE_ALIGN   (2 * MiB) /* a page table's reach */

/* ---- validation ---- */

static int state_refused(const struct snap_image *img)
{
	const struct snap_header *h = &img->hdr;

	if (h->state == SNAP_STATE_EMPTY)
		pr_err("image %s: state is 'empty': no snapshot has been written to it", img->path);
	else
		pr_err("image %s: state is 'writing': the snapshot of generation %" PRIu64
		       " was interrupted",
		       img->path, h->generation);
	return -EINVAL;
}

/* The metadata's guest= line, if any (text from the image: printable bytes only). */
static void guest_from_metadata(struct restore_image *ri)
{
	const char *m = ri->img.hdr.metadata, *p;
	size_t i, n;

	snprintf(ri->guest, sizeof(ri->guest), "restored from %.200s", ri->img.path);
	for (p = m; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, "guest=", 6))
			continue;
		p += 6;
		n = strcspn(p, "\n");
		if (!n || n >= sizeof(ri->guest))
			return;
		for (i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
				return;
		memcpy(ri->guest, p, n);
		ri->guest[n] = '\0';
		return;
	}
}

/* The VM start section describes a PC that this kvmsnap builds. */
static int check_machine(struct restore_image *ri)
{
	const struct snap_config *c = &ri->img.cfg;

	if (strcmp(c->machine, SNAP_MACHINE_PC)) {
		pr_err("image %s: machine type '%s' is not one kvmsnap builds (%s)", ri->img.path,
		       c->machine, SNAP_MACHINE_PC);
		return -EINVAL;
	}
	ri->pc.ram_size = c->ram_size;
	ri->pc.vram_size = c->vram_size;
	ri->pc.nr_cpus = c->vcpus;
	/* pc__check_config() speaks of --mem and --vcpus: name the image instead. */
	if (c->ram_size < MEM_MIN || c->ram_size > MEM_MAX || !IS_ALIGNED(c->ram_size, PAGE_SIZE) ||
	    c->vram_size < VRAM_MIN || c->vram_size > VGA_VRAM_MAX ||
	    !IS_ALIGNED(c->vram_size, 64 * KiB) || c->vcpus < 1 || c->vcpus > VCPUS_MAX) {
		pr_err("image %s: its VM (%" PRIu64 " bytes of RAM, %" PRIu64
		       " of VRAM, %u vCPUs) is not one kvmsnap can build",
		       ri->img.path, c->ram_size, c->vram_size, c->vcpus);
		return -EINVAL;
	}
	return pc__check_config(&ri->pc);
}

/* The state area as it will be loaded: read once, checked on these very bytes. */
static int read_state(struct restore_image *ri)
{
	struct snap_image *img = &ri->img;
	struct snap_state_reader r;
	struct snap_error err;
	int ret;

	ri->state_len = img->hdr.state_used;
	ri->state = malloc(ri->state_len ? ri->state_len : 1);
	if (!ri->state) {
		pr_err("out of memory for the VM state");
		return -ENOMEM;
	}
	ret = snap_image_pread(img, ri->state, ri->state_len, img->hdr.state_off, &err);
	if (!ret)
		ret = snap_state_open(&r, ri->state, ri->state_len, &err);
	if (ret)
		pr_err("image %s: %s", img->path, err.msg);
	return ret;
}

/* Every page header is (i << 12) | present, and the padding after the table is zero. */
static int check_section_headers(const struct snap_image *img, const struct snap_section *s,
				 const uint8_t *area, size_t len)
{
	const char *id = img->cfg.regions[s->region].id;
	uint64_t i, got;
	size_t o;

	for (i = 0; i < s->pages; i++) {
		got = get_le64(area + SNAP_SECTION_DESC + i * 8);
		if (got != snap_page_hdr(i, SNAP_PAGE_PRESENT)) {
			pr_err("image %s: section %u (%s): page header %" PRIu64 " is 0x%" PRIx64
			       ", expected 0x%" PRIx64,
			       img->path, s->id, id, i, got, snap_page_hdr(i, SNAP_PAGE_PRESENT));
			return -EINVAL;
		}
	}
	for (o = SNAP_SECTION_DESC + s->pages * 8; o < len; o++) {
		if (area[o]) {
			pr_err(
			    "image %s: section %u (%s): padding after the page header table is set",
			    img->path, s->id, id);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * The page header tables, as `image verify` checks them. They are mapped
 * rather than read into a buffer: 2 MiB per GiB of guest that is often in
 * the page cache already, so this stays a small part of a lazy start.
 */
static int check_page_headers(const struct snap_image *img)
{
	const struct snap_layout *l = &img->layout;
	unsigned int k;
	int ret;

	/* Cold: ask for every table at once, rather than one after the other. */
	for (k = 0; k < l->nr_sections; k++)
		posix_fadvise(img->fd, (off_t)l->sections[k].offset,
			      (off_t)(l->sections[k].data_off - l->sections[k].offset),
			      POSIX_FADV_WILLNEED);
	for (k = 0; k < l->nr_sections; k++) {
		const struct snap_section *s = &l->sections[k];
		size_t len = s->data_off - s->offset;
		void *p;

		p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, img->fd,
			 (off_t)s->offset);
		if (p == MAP_FAILED) {
			ret = -errno;
			pr_err("image %s: cannot map the page headers of section %u: %s", img->path,
			       s->id, strerror(-ret));
			return ret;
		}
		ret = check_section_headers(img, s, p, len);
		munmap(p, len);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * A device to be mapped is held with O_EXCL from before it is checked until
 * its last mapping goes: kvmsnap's writers open it so too, and fail.
 */
static int hold_device(struct restore_image *ri, const char *path)
{
	struct stat st;

	if (stat(path, &st) || !S_ISBLK(st.st_mode))
		return 0; /* a file, or an error that snap_image_open() reports */
	ri->map_fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC);
	if (ri->map_fd < 0 && errno == EBUSY) {
		pr_err("image %s: the device is in use (a snapshot may be writing it), and a lazy "
		       "restore must hold it alone",
		       path);
		return -EBUSY;
	}
	return 0;
}

/* The device held is the one checked. */
static int check_held(const struct restore_image *ri)
{
	struct stat a, b;

	if (ri->map_fd < 0 && !ri->img.blockdev)
		return 0;
	if (ri->map_fd < 0 || fstat(ri->map_fd, &a) || fstat(ri->img.fd, &b) ||
	    a.st_rdev != b.st_rdev) {
		pr_err("image %s: the device changed while it was opened", ri->img.path);
		return -EIO;
	}
	return 0;
}

int restore__open(struct restore_image *ri, const char *path, bool lazy, bool direct)
{
	struct snap_target_opts topts = {.direct = direct && !lazy};
	struct snap_error err;
	int ret;

	memset(ri, 0, sizeof(*ri));
	ri->img.fd = -1;
	ri->map_fd = -1;
	if (lazy) {
		ret = hold_device(ri, path);
		if (ret)
			return ret;
	}
	/* Magic, version, header checksum, section table, target size. */
	ret = snap_image_open(path, SNAP_OPEN_RDONLY, &topts, &ri->img, &err);
	if (ret) {
		pr_err("%s", err.msg);
		return ret;
	}
	if (lazy) {
		ret = check_held(ri);
		if (ret)
			return ret;
	}
	if (ri->img.hdr.state != SNAP_STATE_COMPLETE)
		return state_refused(&ri->img);
	ret = snap_image_read_footer(&ri->img, &ri->footer, &err);
	if (ret) {
		pr_err("%s", err.msg);
		return ret;
	}
	ret = read_state(ri);
	if (ret)
		return ret;
	ret = check_page_headers(&ri->img);
	if (!ret)
		ret = check_machine(ri);
	if (!ret)
		guest_from_metadata(ri);
	return ret;
}

void restore__close(struct restore_image *ri)
{
	snap_image_close(&ri->img);
	if (ri->map_fd >= 0)
		close(ri->map_fd);
	ri->map_fd = -1;
	free(ri->state);
	ri->state = NULL;
}

int restore__check_regions(const struct restore_image *ri, struct mem_registry *mem)
{
	struct snap_config vm;
	struct mem_region *r;
	struct snap_error err;

	memset(&vm, 0, sizeof(vm));
	snprintf(vm.machine, sizeof(vm.machine), "%s", SNAP_MACHINE_PC);
	vm.vcpus = ri->pc.nr_cpus;
	vm.ram_size = ri->pc.ram_size;
	vm.vram_size = ri->pc.vram_size;
	if (mem->nr_regions > SNAP_MAX_REGIONS) {
		pr_err("the VM has %u memory regions, an image at most %d", mem->nr_regions,
		       SNAP_MAX_REGIONS);
		return -EINVAL;
	}
	mem__for_each_region (mem, r) {
		struct snap_region_desc *d = &vm.regions[vm.nr_regions++];

		/* An over-long name stays unterminated, and the comparison fails on it. */
		memcpy(d->id, r->name, strnlen(r->name, sizeof(d->id)));
		d->size = r->size;
	}
	if (snap_config_compare(&ri->img.cfg, &vm, &err)) {
		pr_err("image %s: the VM built from it does not match its RAM start section: %s",
		       ri->img.path, err.msg);
		return -EINVAL;
	}
	return 0;
}

/* ---- lazy ---- */

/*
 * Where the lazily mapped regions come from, for restore__materialize(): a
 * process restores one VM, once. The fd also keeps a device held.
 */
static struct {
	int fd;
	uint64_t data_off[MEM_MAX_REGIONS]; /* by region index */
} lazy_src = {.fd = -1};

/*
 * An address range of size bytes, reserved (PROT_NONE) and 2 MiB-aligned:
 * mremap() moves such mappings a page table at a time, which keeps the
 * pause of restore__materialize() short. NULL on failure (errno set).
 */
static void *reserve_aligned(size_t size)
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

int restore__map_lazy(struct restore_image *ri, struct mem_registry *mem)
{
	const struct snap_layout *l = &ri->img.layout;
	unsigned int i;
	int fd, ret = 0;

	/* A file is mapped through its own fd; a device through the one held exclusively. */
	fd = fcntl(ri->map_fd >= 0 ? ri->map_fd : ri->img.fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		pr_err("image %s: %s", ri->img.path, strerror(-ret));
		return ret;
	}
	for (i = 0; i < mem->nr_regions; i++) {
		struct mem_region *r = &mem->regions[i];
		const struct snap_section *s = snap_layout_section(l, i);
		void *p = reserve_aligned(r->size);

		/* Private: the guest's writes go to anonymous copies, never to the image. */
		ret = p ? 0 : -errno;
		if (p && mmap(p, r->size, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd,
			      (off_t)s->data_off) == MAP_FAILED) {
			ret = -errno;
			munmap(p, r->size);
		}
		if (ret) {
			pr_err("image %s: cannot map the data of %s: %s", ri->img.path, r->name,
			       strerror(-ret));
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
		lazy_src.data_off[i] = s->data_off;
	}
	if (ret)
		close(fd);
	else
		lazy_src.fd = fd;
	return ret;
}

/* ---- reading data areas: eager restore, and materializing lazy regions ---- */

struct load_piece {
	uint8_t *dst;
	uint64_t off; /* in the image */
	size_t len;
	uint64_t *hashes; /* of each page of dst, or NULL */
	const char *what; /* the region, for messages */
};

struct loader {
	int fd;
	struct load_piece *pieces;
	size_t nr_pieces;
	size_t next; /* atomic: the next piece to take */
	int error;   /* atomic: first -errno */
	size_t bad_piece;
};

static size_t pieces_for(uint64_t len)
{
	return (size_t)((len + LOAD_CHUNK - 1) / LOAD_CHUNK);
}

/* [off, off + len) of the image into dst, in LOAD_CHUNK pieces; room was made for them. */
static void add_pieces(struct loader *ld, uint8_t *dst, uint64_t off, uint64_t len,
		       uint64_t *hashes, const char *what)
{
	uint64_t o;

	for (o = 0; o < len; o += LOAD_CHUNK) {
		struct load_piece *p = &ld->pieces[ld->nr_pieces++];

		p->dst = dst + o;
		p->off = off + o;
		p->len = (size_t)MIN(LOAD_CHUNK, len - o);
		p->hashes = hashes ? hashes + o / PAGE_SIZE : NULL;
		p->what = what;
	}
}

/* Read one piece in full; drop O_DIRECT if the target refuses it here. */
static int read_piece(struct loader *ld, const struct load_piece *p)
{
	int fd = ld->fd;
	size_t done = 0;
	ssize_t n;

	while (done < p->len) {
		n = pread(fd, p->dst + done, p->len - done, (off_t)(p->off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && (fcntl(fd, F_GETFL) & O_DIRECT)) {
			/* Racing threads may both clear it: harmless. */
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_DIRECT);
			continue;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		done += (size_t)n;
	}
	return 0;
}

static void *load_thread(void *arg)
{
	struct loader *ld = arg;
	const struct load_piece *p;
	size_t i;
	int ret;

	while (!__atomic_load_n(&ld->error, __ATOMIC_RELAXED)) {
		i = __atomic_fetch_add(&ld->next, 1, __ATOMIC_RELAXED);
		if (i >= ld->nr_pieces)
			break;
		p = &ld->pieces[i];
		ret = read_piece(ld, p);
		if (ret) {
			int zero = 0;

			if (__atomic_compare_exchange_n(&ld->error, &zero, ret, false,
							__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
				ld->bad_piece = i;
			break;
		}
		/* Hash while the data is hot in the cache; the tree is built at the end. */
		if (p->hashes)
			snap_digest_pages(p->dst, p->len / PAGE_SIZE, p->hashes);
	}
	return NULL;
}

/* Read every piece with LOAD_THREADS threads. 0 or the first -errno (reported). */
static int run_loaders(struct loader *ld, const char *path, unsigned int *threads)
{
	pthread_t t[LOAD_THREADS];
	const struct load_piece *p;
	unsigned int n = 0, i;

	for (i = 0; i < LOAD_THREADS && i < ld->nr_pieces; i++) {
		if (pthread_create(&t[n], NULL, load_thread, ld))
			break;
		n++;
	}
	if (!n)
		load_thread(ld); /* no thread at all: read here */
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	if (threads)
		*threads = n ? n : 1;
	if (ld->error) {
		p = &ld->pieces[ld->bad_piece];
		pr_err("image %s: cannot read %zu bytes at offset %" PRIu64 " (%s): %s", path,
		       p->len, p->off, p->what,
		       ld->error == -ENODATA ? "unexpected end of the image"
					     : strerror(-ld->error));
	}
	return ld->error;
}

/* ---- eager ---- */

static int check_digests(const struct restore_image *ri, uint64_t *const *hashes,
			 struct mem_registry *mem)
{
	unsigned int i;

	for (i = 0; i < mem->nr_regions; i++) {
		uint64_t d = snap_digest_tree(hashes[i], mem->regions[i].size / PAGE_SIZE);

		if (d != ri->footer.digest[i]) {
			pr_err("image %s: region %s: the memory read back has digest %016" PRIx64
			       ", the footer %016" PRIx64
			       ": the image is corrupted or was changed during the restore",
			       ri->img.path, mem->regions[i].name, d, ri->footer.digest[i]);
			return -EBADMSG;
		}
	}
	return 0;
}

int restore__load_eager(struct restore_image *ri, struct mem_registry *mem,
			struct restore_load_stats *st)
{
	struct loader ld = {.fd = ri->img.fd};
	uint64_t *hashes[MEM_MAX_REGIONS] = {0};
	uint64_t t0 = now_ns();
	size_t n = 0;
	unsigned int i;
	int ret = 0;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < mem->nr_regions; i++)
		n += pieces_for(mem->regions[i].size);
	ld.pieces = calloc(n, sizeof(*ld.pieces));
	for (i = 0; ld.pieces && i < mem->nr_regions; i++) {
		struct mem_region *r = &mem->regions[i];

		hashes[i] = malloc(r->size / PAGE_SIZE * sizeof(uint64_t));
		if (!hashes[i])
			break;
		add_pieces(&ld, r->host, snap_layout_section(&ri->img.layout, i)->data_off, r->size,
			   hashes[i], r->name);
	}
	if (!ld.pieces || i < mem->nr_regions) {
		pr_err("out of memory for restoring %u regions", mem->nr_regions);
		ret = -ENOMEM;
		goto out;
	}
	st->direct = fcntl(ld.fd, F_GETFL) & O_DIRECT;
	ret = run_loaders(&ld, ri->img.path, &st->threads);
	st->read_ns = now_ns() - t0;
	st->direct = st->direct && (fcntl(ld.fd, F_GETFL) & O_DIRECT);
	if (ret)
		goto out;
	st->bytes = mem__total_size(mem);
	ret = check_digests(ri, hashes, mem);
out:
	for (i = 0; i < MEM_MAX_REGIONS; i++)
		free(hashes[i]);
	free(ld.pieces);
	return ret;
}

/* ---- state ---- */

int restore__load_state(struct restore_image *ri, struct kvm *kvm,
			const struct vm_state_devices *devs)
{
	struct snap_error err;
	int ret;

	ret = vm_state__restore(kvm, devs, ri->state, ri->state_len, &err);
	if (ret)
		pr_err("image %s: cannot restore the VM state: %s", ri->img.path, err.msg);
	return ret;
}

/* ---- materializing lazily restored regions ---- */

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
	struct loader ld = {.fd = lazy_src.fd};
	uint64_t *written[MEM_MAX_REGIONS] = {0}, pages, j;
	size_t nr = 0;
	unsigned int i;
	int ret = 0;

	if (ld.fd < 0)
		return -EAGAIN;
	for (i = 0; i < n; i++)
		nr += pieces_for(z[i].r->size);
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
		add_pieces(&ld, z[i].copy, lazy_src.data_off[z[i].r - mem->regions], z[i].r->size,
			   NULL, z[i].r->name);
	fcntl(ld.fd, F_SETFL, fcntl(ld.fd, F_GETFL) | O_DIRECT);
	ret = run_loaders(&ld, "of the lazily restored memory", NULL);
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
	uint64_t *bm, i;
	int ret = 0;

	if (z->r->flags & MEM_REGION_READONLY)
		return 0; /* the guest cannot write it, and KVM logs nothing for it */
	mem__for_each_range (z->r, rg) {
		bm = calloc(1, mem__bitmap_bytes(rg));
		if (!bm)
			return -ENOMEM;
		ret = mem__get_dirty_log(mem, rg, bm);
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
	z->copy = reserve_aligned(z->r->size);
	if (!z->copy)
		return -errno;
	if (mmap(z->copy, z->r->size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED | MAP_NORESERVE, z->fd, 0) == MAP_FAILED) {
		int err = -errno;

		munmap(z->copy, z->r->size);
		z->copy = NULL;
		return err;
	}
	z->old = reserve_aligned(z->r->size);
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
	return mem__register_slots(&kvm->mem, kvm->vm_fd);
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
	if (!mem->log_dirty && !kvm__is_paused(kvm) && !mem__set_log_dirty(mem, true)) {
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
	if (!ret && lazy_src.fd >= 0) {
		/* Nothing maps the image any more: a device held is free again. */
		close(lazy_src.fd);
		lazy_src.fd = -1;
	}
	if (!ret)
		pr_info("lazily restored memory copied into memfds: %" PRIu64 " MiB in %.1f ms "
			"(%u rounds), then %" PRIu64 " pages while paused for %.1f ms",
			bytes >> 20, (t_pause - t0) / 1e6, rounds, paused_pages,
			(t_resume - t_pause) / 1e6);
out:
	if (logged && mem__set_log_dirty(mem, false))
		pr_warn("cannot turn dirty logging off again");
	for (i = 0; i < n; i++)
		lazy_release(&z[i]);
	return ret;
}
