// SPDX-License-Identifier: GPL-2.0
/*
 * Opening an image for restore: everything is validated before the VM is
 * built, and the VM built from it is checked against it; see restore.h.
 */
#include "restore/restore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "lib/le.h"
#include "snapshot/state.h"
#include "state/state.h"
#include "util/util.h"

/* ---- validation ---- */

static int state_refused(const struct snap_image *img, struct error *err)
{
	const struct snap_header *h = &img->hdr;

	if (h->state == SNAP_STATE_EMPTY)
		return err_set(err, -EINVAL,
			       "image %s: %s is 'empty': no snapshot has been written to it",
			       img->path, snap_image_slot_name(img));
	return err_set(err, -EINVAL,
		       "image %s: %s is 'writing': the snapshot of generation %" PRIu64
		       " was interrupted",
		       img->path, snap_image_slot_name(img), h->generation);
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
static int check_machine(struct restore_image *ri, struct error *err)
{
	const struct snap_config *c = &ri->img.cfg;

	if (strcmp(c->machine, SNAP_MACHINE_PC)) {
		return err_set(err, -EINVAL,
			       "image %s: machine type '%s' is not one kvmsnap builds (%s)",
			       ri->img.path, c->machine, SNAP_MACHINE_PC);
	}
	ri->pc.ram_size = c->ram_size;
	ri->pc.vram_size = c->vram_size;
	ri->pc.nr_cpus = c->vcpus;
	/* pc__check_config() speaks of --mem and --vcpus: name the image instead. */
	if (c->ram_size < MEM_MIN || c->ram_size > MEM_MAX || !IS_ALIGNED(c->ram_size, PAGE_SIZE) ||
	    c->vram_size < VRAM_MIN || c->vram_size > VGA_VRAM_MAX ||
	    !IS_ALIGNED(c->vram_size, 64 * KiB) || c->vcpus < 1 || c->vcpus > VCPUS_MAX) {
		return err_set(err, -EINVAL,
			       "image %s: its VM (%" PRIu64 " bytes of RAM, %" PRIu64
			       " of VRAM, %u vCPUs) is not one kvmsnap can build",
			       ri->img.path, c->ram_size, c->vram_size, c->vcpus);
	}
	if (pc__check_config(&ri->pc, err))
		return err_prefix(err, "image %s: its VM is not one kvmsnap can build",
				  ri->img.path);
	return 0;
}

/* The state area as it will be loaded: read once, checked on these very bytes. */
static int read_state(struct restore_image *ri, struct error *err)
{
	struct snap_image *img = &ri->img;
	struct snap_state_reader r;
	int ret;

	ri->state_len = img->hdr.state_used;
	ri->state = malloc(ri->state_len ? ri->state_len : 1);
	if (!ri->state)
		return err_set(err, -ENOMEM, "out of memory for the VM state");
	ret = snap_image_pread(img, ri->state, ri->state_len, img->hdr.state_off, err);
	if (!ret)
		ret = snap_state_open(&r, ri->state, ri->state_len, err);
	return ret ? err_prefix(err, "image %s", img->path) : 0;
}

/* Every page header is (i << 12) | present, and the padding after the table is zero. */
#define HEADER_WINDOW (8 * MiB) /* page-header bytes mapped at a time: bounded memory */

/*
 * Bytes [pos, pos + n) of a section's table area: every page header is
 * (i << 12) | present, and the padding after the table is zero. pos and n
 * are multiples of 8, so no header straddles two windows.
 */
static int check_header_window(const struct snap_image *img, const struct snap_section *s,
			       const uint8_t *win, uint64_t pos, uint64_t n, struct error *err)
{
	const char *id = img->cfg.regions[s->region].id;
	uint64_t table_end = SNAP_SECTION_DESC + s->pages * 8, o, i, got;
	/* The digest tables follow the page headers: not padding (`verify --deep` checks them). */
	uint64_t digests_end = s->blocks_off + 8 * snap_hash_blocks(s->pages) - s->offset;

	for (o = MAX(pos, SNAP_SECTION_DESC); o < pos + n; o += 8) {
		got = get_le64(win + (o - pos));
		if (o >= table_end) {
			if (got && o >= digests_end)
				return err_set(
				    err, -EINVAL,
				    "image %s: section %u (%s): padding after the digest "
				    "tables is set",
				    img->path, s->id, id);
			continue;
		}
		i = (o - SNAP_SECTION_DESC) / 8;
		if (got != snap_page_hdr(i, SNAP_PAGE_PRESENT))
			return err_set(err, -EINVAL,
				       "image %s: section %u (%s): page header %" PRIu64
				       " is 0x%" PRIx64 ", expected 0x%" PRIx64,
				       img->path, s->id, id, i, got,
				       snap_page_hdr(i, SNAP_PAGE_PRESENT));
	}
	return 0;
}

/*
 * The page header tables, as `image verify` checks them, mapped a window at
 * a time: the image is in the page cache often enough that mapping beats
 * reading, and the window bounds what a huge (sparse, hostile) image costs.
 */
static int check_page_headers(struct snap_image *img, struct error *err)
{
	const struct snap_layout *l = &img->layout;
	unsigned int k;
	int ret = 0;

	for (k = 0; !ret && k < l->nr_sections; k++) {
		const struct snap_section *s = &l->sections[k];
		uint64_t len = s->data_off - s->offset, pos, n;

		for (pos = 0; !ret && pos < len; pos += n) {
			void *p;

			n = MIN(HEADER_WINDOW, len - pos);
			if (img->nbd) { /* nothing to map: read the window */
				p = malloc(n);
				if (!p)
					return err_set(err, -ENOMEM, "out of memory");
				ret = snap_image_pread(img, p, n, s->offset + pos, err)
					  ?: check_header_window(img, s, p, pos, n, err);
				free(p);
				continue;
			}
			p = mmap(NULL, n, PROT_READ, MAP_SHARED | MAP_POPULATE, img->fd,
				 (off_t)(s->offset + pos));
			if (p == MAP_FAILED)
				return err_errno(
				    err, errno,
				    "image %s: cannot map the page headers of section %u",
				    img->path, s->id);
			ret = check_header_window(img, s, p, pos, n, err);
			munmap(p, n);
		}
	}
	return ret;
}

/*
 * A device to be mapped is held with O_EXCL from before it is checked until
 * its last mapping goes: kvmsnap's writers open it so too, and fail.
 */
static int hold_device(struct restore_image *ri, const char *path, struct error *err)
{
	struct stat st;

	if (stat(path, &st) || !S_ISBLK(st.st_mode))
		return 0; /* a file, or an error that snap_image_open() reports */
	ri->map_fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC);
	if (ri->map_fd < 0 && errno == EBUSY) {
		return err_set(
		    err, -EBUSY,
		    "image %s: the device is in use (a snapshot may be writing it), and a lazy "
		    "restore must hold it alone",
		    path);
	}
	return 0;
}

/* The device held is the one checked. */
static int check_held(const struct restore_image *ri, struct error *err)
{
	struct stat a, b;

	if (ri->map_fd < 0 && !ri->img.blockdev)
		return 0;
	if (ri->map_fd < 0 || fstat(ri->map_fd, &a) || fstat(ri->img.fd, &b) ||
	    a.st_rdev != b.st_rdev) {
		return err_set(err, -EIO, "image %s: the device changed while it was opened",
			       ri->img.path);
	}
	return 0;
}

int restore__open(struct restore_image *ri, const char *path, const struct restore_open_opts *o,
		  struct error *err)
{
	struct snap_target_opts topts = {.direct = o->direct && !o->lazy};
	bool lazy = o->lazy;
	int ret;

	memset(ri, 0, sizeof(*ri));
	ri->img.fd = -1;
	ri->map_fd = -1;
	if (lazy && snap_image_path_is_nbd(path))
		return err_set(err, -EOPNOTSUPP,
			       "image %s: a lazy restore maps the image into guest memory, and an "
			       "NBD export cannot be mapped; restore it without --lazy",
			       path);
	if (lazy) {
		ret = hold_device(ri, path, err);
		if (ret)
			return ret;
	}
	/* Magic, version, header checksum, section table, target size. */
	ret = snap_image_open(path, SNAP_OPEN_RDONLY, &topts, &ri->img, err);
	if (!ret && o->have_slot)
		ret = snap_image_select_slot(&ri->img, o->slot, false, err);
	if (ret)
		return ret;
	if (lazy) {
		ret = check_held(ri, err);
		if (ret)
			return ret;
	}
	if (ri->img.hdr.state != SNAP_STATE_COMPLETE)
		return state_refused(&ri->img, err);
	ret = snap_image_read_footer(&ri->img, &ri->footer, err);
	if (ret)
		return ret;
	/* The machine first: it bounds the state and the tables, whatever the image claims. */
	ret = check_machine(ri, err);
	if (!ret)
		ret = read_state(ri, err);
	if (!ret)
		ret = check_page_headers(&ri->img, err);
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

int restore__check_regions(const struct restore_image *ri, struct mem_registry *mem,
			   struct error *err)
{
	struct snap_config vm;
	struct mem_region *r;

	memset(&vm, 0, sizeof(vm));
	snprintf(vm.machine, sizeof(vm.machine), "%s", SNAP_MACHINE_PC);
	vm.vcpus = ri->pc.nr_cpus;
	vm.ram_size = ri->pc.ram_size;
	vm.vram_size = ri->pc.vram_size;
	if (mem->nr_regions > SNAP_MAX_REGIONS)
		return err_set(err, -EINVAL, "the VM has %u memory regions, an image at most %d",
			       mem->nr_regions, SNAP_MAX_REGIONS);
	mem__for_each_region (mem, r) {
		struct snap_region_desc *d = &vm.regions[vm.nr_regions++];

		/* An over-long name stays unterminated, and the comparison fails on it. */
		memcpy(d->id, r->name, strnlen(r->name, sizeof(d->id)));
		d->size = r->size;
	}
	if (snap_config_compare(&ri->img.cfg, &vm, err))
		return err_prefix(
		    err, "image %s: the VM built from it does not match its RAM start section",
		    ri->img.path);
	return 0;
}
