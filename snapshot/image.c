// SPDX-License-Identifier: GPL-2.0
/*
 * Images: create one on a target, open and validate an existing one, and
 * write its header. Nothing read from an image is trusted before its header
 * and VM start section decode cleanly and the header's layout equals the one
 * recomputed from the start section.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib/le.h"
#include "snapshot/image.h"
#include "snapshot/nbd.h"
#include "snapshot/target.h"

#define ZERO_CHUNK (1024 * 1024)

static const struct snap_target_opts default_opts = {.order = SNAP_ORDER_REGISTRY};

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static struct snap_target target_of(const struct snap_image *img)
{
	struct snap_target t = {
	    .fd = img->fd, .nbd = img->nbd, .blockdev = img->blockdev, .size = img->target_size};

	return t;
}

static int set_path(struct snap_image *img, const char *path, struct error *err)
{
	if (strlen(path) >= sizeof(img->path))
		return err_set(err, -ENAMETOOLONG, "image path is too long");
	strcpy(img->path, path);
	return 0;
}

static int random_bytes(uint8_t *p, size_t len, struct error *err)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = getrandom(p + done, len - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(err, -errno, "getrandom: %s", strerror(errno));
		done += (size_t)n;
	}
	return 0;
}

int snap_random_u64(uint64_t *v, struct error *err)
{
	uint8_t b[8];
	int ret;

	do {
		ret = random_bytes(b, sizeof(b), err);
		*v = get_le64(b);
	} while (!ret && !*v); /* 0 means "no write id" */
	return ret;
}

static int random_uuid(uint8_t uuid[16], struct error *err)
{
	int ret = random_bytes(uuid, 16, err);

	if (ret)
		return ret;
	uuid[6] = (uuid[6] & 0x0f) | 0x40; /* RFC 4122 version 4, random */
	uuid[8] = (uuid[8] & 0x3f) | 0x80;
	return 0;
}

static int write_zeros(struct snap_image *img, const uint8_t *zeros, uint64_t off, uint64_t len,
		       struct error *err)
{
	int ret = 0;

	while (len && !ret) {
		size_t n = len < ZERO_CHUNK ? (size_t)len : ZERO_CHUNK;

		ret = snap_image_pwrite(img, zeros, n, off, err);
		off += n;
		len -= n;
	}
	return ret;
}

/*
 * Everything of one slot but its header: a clean state area, each section
 * descriptor with all-zero page header and digest tables, a zero footer. A
 * device may hold an older image, so none of this relies on the target
 * reading as zeros.
 */
static int write_slot_structure(struct snap_image *img, const struct snap_layout *l, uint8_t *buf,
				struct error *err)
{
	unsigned int k;
	int ret;

	memset(buf, 0, ZERO_CHUNK);
	ret = write_zeros(img, buf, l->state_off, l->state_size, err);
	if (!ret)
		ret = write_zeros(img, buf, l->footer_off, l->footer_size, err);
	for (k = 0; k < l->nr_sections && !ret; k++) {
		const struct snap_section *s = &l->sections[k];

		snap_section_desc_encode(s, &img->cfg.regions[s->region], buf);
		ret = snap_image_pwrite(img, buf, SNAP_PAGE_SIZE, s->offset, err);
		memset(buf, 0, SNAP_PAGE_SIZE);
		if (!ret)
			ret = write_zeros(img, buf, s->offset + SNAP_PAGE_SIZE,
					  s->data_off - s->offset - SNAP_PAGE_SIZE, err);
	}
	return ret;
}

/* The start section and every slot's structure; the old headers are wiped first. */
static int write_structure(struct snap_image *img, const struct snap_layout *ls, struct error *err)
{
	uint8_t *buf = aligned_alloc(SNAP_PAGE_SIZE, ZERO_CHUNK);
	uint32_t i;
	int ret = 0;

	if (!buf)
		return err_set(err, -ENOMEM, "out of memory");
	/* An older image's headers must not outlive its start section and tables. */
	memset(buf, 0, ZERO_CHUNK);
	for (i = 0; i < img->nr_slots && !ret; i++)
		ret = snap_image_pwrite(img, buf, SNAP_HEADER_SIZE, ls[i].header_off, err);
	if (!ret)
		ret = snap_image_sync(img, err);
	snap_start_encode(&img->cfg, buf);
	if (!ret)
		ret = snap_image_pwrite(img, buf, SNAP_START_SIZE, ls[0].start_off, err);
	for (i = 0; i < img->nr_slots && !ret; i++)
		ret = write_slot_structure(img, &ls[i], buf, err);
	free(buf);
	return ret;
}

int snap_image_create(const char *path, const struct snap_config *cfg,
		      const struct snap_target_opts *opts, struct snap_image *img,
		      struct error *err)
{
	char metadata[SNAP_METADATA_MAX + 1];
	struct snap_layout ls[SNAP_MAX_SLOTS];
	struct snap_target t = {.fd = -1};
	struct snap_header *h;
	uint32_t i, nr_slots;
	int ret = 0;

	if (!opts)
		opts = &default_opts;
	nr_slots = opts->nr_slots ? opts->nr_slots : 1;
	/* The caller's metadata, if any, survives the reset of img. */
	snprintf(metadata, sizeof(metadata), "%.*s", SNAP_METADATA_MAX, img->hdr.metadata);
	if (!metadata[0])
		snap_metadata_build(cfg, NULL, metadata, sizeof(metadata));
	memset(img, 0, sizeof(*img));
	img->fd = -1;
	img->nr_slots = nr_slots;
	ret = set_path(img, path, err);
	for (i = 0; i < nr_slots && !ret; i++)
		ret = snap_layout_compute_slot(cfg, opts->order, nr_slots, i, &ls[i], err);
	if (!ret && nr_slots > SNAP_MAX_SLOTS)
		ret = err_set(err, -EINVAL, "an image has 1 or %d slots, not %u", SNAP_MAX_SLOTS,
			      nr_slots);
	if (ret)
		return err_prefix(err, "cannot create image %s", path);
	img->cfg = *cfg;
	img->layout = ls[0];

	ret = snap_target_create(path, img->layout.image_size, opts->force, !opts->no_lock_wait, &t,
				 err);
	img->fd = t.fd;
	img->nbd = t.nbd;
	img->blockdev = t.blockdev;
	img->target_size = t.size;
	if (ret)
		goto fail;

	h = &img->hdr;
	h->version = SNAP_FORMAT_VERSION;
	h->state = SNAP_STATE_EMPTY;
	/*
	 * A file this call made (or truncated) and preallocated reads as zeros,
	 * as does a device it zeroed; an NBD export whatever it held.
	 */
	h->flags = t.zeroed ? SNAP_HDR_DATA_ZERO : 0;
	h->created_ns = realtime_ns();
	strcpy(h->metadata, metadata);
	h->metadata_len = (uint32_t)strlen(metadata);
	ret = random_uuid(h->uuid, err);
	/* The headers go last, slot 0's very last: until it is durable, the target is no image. */
	if (!ret)
		ret = write_structure(img, ls, err);
	if (!ret)
		ret = snap_image_sync(img, err);
	for (i = nr_slots; i-- > 0 && !ret;) {
		img->slot = i;
		img->layout = ls[i];
		snap_header_set_layout(h, &ls[i]);
		ret = snap_image_write_header(img, true, err);
	}
	if (ret)
		goto fail;
	if (opts->direct)
		img->direct = snap_target_set_direct(&t);
	return 0;
fail:
	snap_target_close(&t, path, false);
	img->fd = -1;
	img->nbd = NULL;
	return ret;
}

static int check_layout(const struct snap_header *h, const struct snap_layout *l, struct error *err)
{
	unsigned int k;

	if (h->image_size != l->image_size || h->state_off != l->state_off ||
	    h->state_size != l->state_size || h->footer_off != l->footer_off ||
	    h->nr_sections != l->nr_sections || h->nr_slots != l->nr_slots ||
	    memcmp(h->slot_off, l->slot_off, sizeof(h->slot_off)))
		return err_set(err, -EINVAL,
			       "the header's layout does not match its VM start section");
	for (k = 0; k < l->nr_sections; k++)
		if (memcmp(&h->sections[k], &l->sections[k], sizeof(l->sections[k])))
			return err_set(err, -EINVAL,
				       "section table entry %u does not match the VM start section",
				       k);
	return 0;
}

static int check_descriptors(struct snap_image *img, struct error *err)
{
	uint8_t buf[SNAP_SECTION_DESC];
	unsigned int k;
	int ret;

	for (k = 0; k < img->layout.nr_sections; k++) {
		const struct snap_section *s = &img->layout.sections[k];

		ret = snap_image_pread(img, buf, sizeof(buf), s->offset, err);
		if (!ret)
			ret = snap_section_desc_check(buf, s, &img->cfg.regions[s->region], err);
		if (ret)
			return ret;
	}
	return 0;
}

/* Read and decode the header block at off into h. */
static int read_header(struct snap_image *img, uint8_t *buf, uint64_t off, struct snap_header *h,
		       struct error *err)
{
	int ret = snap_image_pread(img, buf, SNAP_HEADER_SIZE, off, err);

	return ret ? ret : snap_header_decode(buf, h, err);
}

/*
 * Slot 0's header is unreadable: with two slots, slot 1's header may still
 * be good. Its offset follows from the start section and the order, so try
 * both orders.
 */
static int find_other_header(struct snap_image *img, uint8_t *buf, struct snap_header *h)
{
	struct snap_layout l;
	struct error e;
	uint32_t order;

	if (snap_image_pread(img, buf, SNAP_START_SIZE, SNAP_HEADER_SIZE, &e) ||
	    snap_start_decode(buf, &img->cfg, &e))
		return -EINVAL;
	for (order = SNAP_ORDER_REGISTRY; order <= SNAP_ORDER_SIZE; order++) {
		if (snap_layout_compute_slot(&img->cfg, order, 2, 1, &l, &e) ||
		    l.header_off + SNAP_HEADER_SIZE > img->target_size)
			continue;
		if (!read_header(img, buf, l.header_off, h, &e) && h->slot == 1 &&
		    !check_layout(h, &l, &e))
			return 0;
	}
	return -EINVAL;
}

/* Every slot's header against its layout and the first good one. */
static void read_slots(struct snap_image *img, uint8_t *buf, const struct snap_header *first)
{
	uint32_t i;

	for (i = 0; i < img->nr_slots; i++) {
		struct snap_slot_info *si = &img->slots[i];
		struct snap_layout l;
		struct error e = {0};
		int ret;

		if (si->ok || si->why[0])
			continue;
		ret = snap_layout_compute_slot(&img->cfg, first->order, img->nr_slots, i, &l, &e);
		if (!ret)
			ret = read_header(img, buf, l.header_off, &si->hdr, &e);
		if (!ret && (si->hdr.slot != i || memcmp(si->hdr.uuid, first->uuid, 16) ||
			     si->hdr.order != first->order))
			ret = err_set(&e, -EINVAL, "the header belongs to another image or slot");
		if (!ret)
			ret = check_layout(&si->hdr, &l, &e);
		si->ok = !ret;
		if (ret)
			snprintf(si->why, sizeof(si->why), "%s", e.msg);
	}
}

/* Header, start section, layout, target size, the other slots, the default slot. */
static int validate(struct snap_image *img, struct error *err)
{
	uint8_t *buf = aligned_alloc(SNAP_PAGE_SIZE, SNAP_PAGE_SIZE);
	char a[SNAP_SIZE_PAIR_LEN], b[SNAP_SIZE_PAIR_LEN];
	struct snap_header first;
	int ret;

	if (!buf)
		return err_set(err, -ENOMEM, "out of memory");
	if (img->target_size < SNAP_HEADER_SIZE + SNAP_START_SIZE) {
		ret =
		    err_set(err, -EINVAL, "image %s: too small to be a kvmsnap image (%llu bytes)",
			    img->path, (unsigned long long)img->target_size);
		goto out;
	}
	ret = read_header(img, buf, 0, &first, err);
	if (ret && ret != -ENOTSUP && ret != -EIO && !find_other_header(img, buf, &first)) {
		/* Slot 0's header is torn; slot 1 stands. */
		img->slots[0].ok = false;
		snprintf(img->slots[0].why, sizeof(img->slots[0].why), "%s",
			 err ? err->msg : "unreadable header");
		ret = 0;
	} else if (!ret) {
		img->slots[0].ok = true;
		img->slots[0].hdr = first;
	}
	if (!ret)
		ret = snap_image_pread(img, buf, SNAP_START_SIZE, first.start_off, err);
	if (!ret)
		ret = snap_start_decode(buf, &img->cfg, err);
	if (!ret)
		ret = snap_layout_compute_slot(&img->cfg, first.order, first.nr_slots, first.slot,
					       &img->layout, err);
	if (!ret)
		ret = check_layout(&first, &img->layout, err);
	if (ret)
		goto prefix;
	if (img->target_size < first.image_size) {
		snap_size_pair_str(img->target_size, a, first.image_size, b);
		ret = err_set(err, -EINVAL, "image %s: the %s %s is smaller than the %s image",
			      img->path, a, img->blockdev ? "device" : "file (truncated?)", b);
		goto out;
	}
	img->nr_slots = first.nr_slots;
	read_slots(img, buf, &first);
	ret = snap_image_select_slot(img, snap_image_default_slot(img), false, err);
prefix:
	/* I/O errors already name the image. */
	if (ret && err && strncmp(err->msg, "image ", 6))
		err_prefix(err, "image %s", img->path);
out:
	free(buf);
	return ret;
}

static bool newer(const struct snap_slot_info *a, const struct snap_slot_info *b)
{
	return a->hdr.generation > b->hdr.generation;
}

/* The readable slot with the highest generation, among complete ones if complete_only. */
static uint32_t newest_slot(const struct snap_image *img, bool complete_only)
{
	uint32_t i, best = UINT32_MAX;

	for (i = 0; i < img->nr_slots; i++) {
		const struct snap_slot_info *si = &img->slots[i];

		if (!si->ok || (complete_only && si->hdr.state != SNAP_STATE_COMPLETE))
			continue;
		if (best == UINT32_MAX || newer(si, &img->slots[best]))
			best = i;
	}
	return best;
}

uint32_t snap_image_default_slot(const struct snap_image *img)
{
	uint32_t s = newest_slot(img, true);

	if (s == UINT32_MAX)
		s = newest_slot(img, false);
	return s == UINT32_MAX ? 0 : s;
}

uint32_t snap_image_next_slot(const struct snap_image *img)
{
	uint32_t keep, i;

	if (img->nr_slots < 2)
		return 0;
	keep = newest_slot(img, true);
	if (keep != UINT32_MAX)
		return keep == 0 ? 1 : 0;
	/* Nothing complete: a damaged slot, else the older one. */
	for (i = 0; i < img->nr_slots; i++)
		if (!img->slots[i].ok)
			return i;
	return newer(&img->slots[0], &img->slots[1]) ? 1 : 0;
}

const char *snap_image_slot_name(const struct snap_image *img)
{
	static const char *const names[SNAP_MAX_SLOTS] = {"slot 0", "slot 1"};

	return img->nr_slots > 1 && img->slot < SNAP_MAX_SLOTS ? names[img->slot] : "state";
}

uint64_t snap_image_next_generation(const struct snap_image *img)
{
	uint64_t g = img->hdr.generation;
	uint32_t i;

	for (i = 0; i < img->nr_slots; i++)
		if (img->slots[i].ok && img->slots[i].hdr.generation > g)
			g = img->slots[i].hdr.generation;
	return g + 1;
}

int snap_image_select_slot(struct snap_image *img, uint32_t slot, bool for_write, struct error *err)
{
	const struct snap_slot_info *si;
	struct snap_layout l;
	uint32_t other;
	int ret;

	if (slot >= img->nr_slots)
		return err_set(err, -EINVAL, "image %s has %u slot%s; there is no slot %u",
			       img->path, img->nr_slots, img->nr_slots == 1 ? "" : "s", slot);
	si = &img->slots[slot];
	other = img->nr_slots > 1 ? 1 - slot : slot;
	if (!si->ok && (!for_write || !img->slots[other].ok))
		return err_set(err, -EINVAL, "image %s: slot %u is damaged: %s", img->path, slot,
			       si->why);
	ret = snap_layout_compute_slot(&img->cfg,
				       si->ok ? si->hdr.order : img->slots[other].hdr.order,
				       img->nr_slots, slot, &l, err);
	if (ret)
		return ret;
	img->slot = slot;
	img->layout = l;
	if (si->ok) {
		img->hdr = si->hdr;
	} else {
		/* Rebuilt from the good slot, to be overwritten. */
		img->hdr = img->slots[other].hdr;
		snap_header_set_layout(&img->hdr, &l);
		img->hdr.state = SNAP_STATE_EMPTY;
		img->hdr.flags = 0; /* its data is whatever the damage left */
		img->hdr.generation = 0;
		img->hdr.write_id = 0;
		img->hdr.started_ns = img->hdr.completed_ns = 0;
		img->hdr.state_used = 0;
	}
	if (for_write)
		return 0;
	ret = check_descriptors(img, err);
	if (ret)
		err_prefix(err, "image %s: slot %u", img->path, slot);
	return ret;
}

int snap_image_open(const char *path, int mode, const struct snap_target_opts *opts,
		    struct snap_image *img, struct error *err)
{
	struct snap_target t;
	int ret;

	memset(img, 0, sizeof(*img));
	img->fd = -1;
	ret = set_path(img, path, err);
	if (ret)
		return ret;
	ret =
	    snap_target_open(path, mode == SNAP_OPEN_RDWR, !(opts && opts->no_lock_wait), &t, err);
	img->fd = t.fd;
	img->nbd = t.nbd;
	img->blockdev = t.blockdev;
	img->target_size = t.size;
	if (!ret)
		ret = validate(img, err);
	if (ret) {
		snap_target_close(&t, path, true);
		img->fd = -1;
		img->nbd = NULL;
		return ret;
	}
	if (opts && opts->direct)
		img->direct = snap_target_set_direct(&t);
	return 0;
}

int snap_image_prepare(const char *path, const struct snap_config *cfg,
		       const struct snap_target_opts *opts, struct snap_image *img,
		       struct error *err)
{
	int ret;

	/* A device or export always exists: it becomes an image unless it already is one. */
	if ((!snap_image_path_is_nbd(path) && access(path, F_OK) && errno == ENOENT) ||
	    snap_target_is_blank(path))
		return snap_image_create(path, cfg, opts, img, err);
	ret = snap_image_open(path, SNAP_OPEN_RDWR, opts, img, err);
	if (ret)
		return ret;
	ret = snap_config_compare(&img->cfg, cfg, err);
	if (ret) {
		err_prefix(err, "image %s was made for another VM configuration", path);
		snap_image_close(img);
	}
	return ret;
}

int snap_image_read_footer(struct snap_image *img, struct snap_footer *f, struct error *err)
{
	uint8_t *buf = aligned_alloc(SNAP_PAGE_SIZE, SNAP_FOOTER_SIZE);
	unsigned int i;
	int ret;

	if (!buf)
		return err_set(err, -ENOMEM, "out of memory");
	ret = snap_image_pread(img, buf, SNAP_FOOTER_SIZE, img->layout.footer_off, err);
	if (ret)
		goto out;
	ret = snap_footer_decode(buf, f, err);
	if (!ret && f->write_id != img->hdr.write_id)
		ret = err_set(
		    err, -EINVAL, "footer write id %016llx does not match the header's %016llx",
		    (unsigned long long)f->write_id, (unsigned long long)img->hdr.write_id);
	if (!ret && f->generation != img->hdr.generation)
		ret = err_set(
		    err, -EINVAL, "footer generation %llu does not match the header's %llu",
		    (unsigned long long)f->generation, (unsigned long long)img->hdr.generation);
	if (!ret && f->nr_regions != img->cfg.nr_regions)
		ret = err_set(err, -EINVAL, "footer lists %u regions, the VM start section %u",
			      f->nr_regions, img->cfg.nr_regions);
	for (i = 0; !ret && i < f->nr_regions; i++)
		if (f->region_size[i] != img->cfg.regions[i].size)
			ret = err_set(err, -EINVAL, "footer: region %s has the wrong size",
				      img->cfg.regions[i].id);
	if (ret)
		err_prefix(err, "image %s", img->path);
out:
	free(buf);
	return ret;
}

int snap_image_write_header(struct snap_image *img, bool sync, struct error *err)
{
	uint8_t *buf = aligned_alloc(SNAP_PAGE_SIZE, SNAP_HEADER_SIZE);
	int ret;

	if (!buf)
		return err_set(err, -ENOMEM, "out of memory");
	snap_header_encode(&img->hdr, buf);
	/* NBD: FUA makes this one write durable, after the flush that ordered what came before. */
	if (img->nbd && sync)
		ret = snap_nbd_drain(img->nbd, err)
			  ?: snap_nbd_pwrite(img->nbd, buf, SNAP_HEADER_SIZE,
					     img->layout.header_off, true, err);
	else
		ret = snap_image_pwrite(img, buf, SNAP_HEADER_SIZE, img->layout.header_off, err);
	/* Written, if not yet durable: from now on it is what the slot says. */
	img->slots[img->slot].ok = !ret;
	img->slots[img->slot].hdr = img->hdr;
	if (ret)
		snprintf(img->slots[img->slot].why, sizeof(img->slots[img->slot].why),
			 "its header could not be written");
	if (!ret && sync && !img->nbd)
		ret = snap_image_sync(img, err);
	free(buf);
	return ret;
}

int snap_image_sync(struct snap_image *img, struct error *err)
{
	struct snap_target t = target_of(img);

	return snap_target_sync(&t, img->path, err);
}

void snap_image_close(struct snap_image *img)
{
	struct snap_target t = target_of(img);

	if (snap_image_is_open(img))
		snap_target_close(&t, img->path, true);
	img->fd = -1;
	img->nbd = NULL;
}

bool snap_image_is_open(const struct snap_image *img)
{
	return img->fd >= 0 || img->nbd;
}

const char *snap_image_kind(const struct snap_image *img)
{
	return img->nbd ? "NBD export" : img->blockdev ? "block device" : "file";
}
