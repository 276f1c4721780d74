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

#include "snapshot/image.h"
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
	struct snap_target t = {.fd = img->fd, .blockdev = img->blockdev, .size = img->target_size};

	return t;
}

static int set_path(struct snap_image *img, const char *path, struct error *err)
{
	if (strlen(path) >= sizeof(img->path))
		return err_set(err, -ENAMETOOLONG, "image path is too long");
	strcpy(img->path, path);
	return 0;
}

static int random_uuid(uint8_t uuid[16], struct error *err)
{
	size_t done = 0;
	ssize_t n;

	while (done < 16) {
		n = getrandom(uuid + done, 16 - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(err, -errno, "getrandom: %s", strerror(errno));
		done += (size_t)n;
	}
	uuid[6] = (uuid[6] & 0x0f) | 0x40; /* RFC 4122 version 4, random */
	uuid[8] = (uuid[8] & 0x3f) | 0x80;
	return 0;
}

/* The header's copy of the layout. */
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
 * Everything but the header: start section, a clean state area, each section
 * descriptor with an all-zero page header table, a zero footer. A device may
 * hold an older image, so none of this relies on the target reading as zeros,
 * and the old header is wiped first.
 */
static int write_structure(struct snap_image *img, struct error *err)
{
	const struct snap_layout *l = &img->layout;
	uint8_t *buf = aligned_alloc(SNAP_PAGE_SIZE, ZERO_CHUNK);
	unsigned int k;
	int ret;

	if (!buf)
		return err_set(err, -ENOMEM, "out of memory");
	/* An older image's header must not outlive its start section and tables. */
	memset(buf, 0, ZERO_CHUNK);
	ret = snap_image_pwrite(img, buf, SNAP_HEADER_SIZE, 0, err);
	if (!ret)
		ret = snap_image_sync(img, err);
	snap_start_encode(&img->cfg, buf);
	if (!ret)
		ret = snap_image_pwrite(img, buf, SNAP_START_SIZE, l->start_off, err);
	memset(buf, 0, ZERO_CHUNK);
	if (!ret)
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
	free(buf);
	return ret;
}

int snap_image_create(const char *path, const struct snap_config *cfg,
		      const struct snap_target_opts *opts, struct snap_image *img,
		      struct error *err)
{
	char metadata[SNAP_METADATA_MAX + 1];
	struct snap_target t = {.fd = -1};
	struct snap_header *h;
	int ret;

	if (!opts)
		opts = &default_opts;
	/* The caller's metadata, if any, survives the reset of img. */
	snprintf(metadata, sizeof(metadata), "%.*s", SNAP_METADATA_MAX, img->hdr.metadata);
	if (!metadata[0])
		snap_metadata_build(cfg, NULL, metadata, sizeof(metadata));
	memset(img, 0, sizeof(*img));
	img->fd = -1;
	ret = set_path(img, path, err);
	if (!ret)
		ret = snap_layout_compute(cfg, opts->order, &img->layout, err);
	if (ret)
		return err_prefix(err, "cannot create image %s", path);
	img->cfg = *cfg;

	ret = snap_target_create(path, img->layout.image_size, opts->force, !opts->no_lock_wait, &t,
				 err);
	img->fd = t.fd;
	img->blockdev = t.blockdev;
	img->target_size = t.size;
	if (ret)
		goto fail;

	h = &img->hdr;
	h->version = SNAP_FORMAT_VERSION;
	h->state = SNAP_STATE_EMPTY;
	h->created_ns = realtime_ns();
	snap_header_set_layout(h, &img->layout);
	strcpy(h->metadata, metadata);
	h->metadata_len = (uint32_t)strlen(metadata);
	ret = random_uuid(h->uuid, err);
	/* The header goes last: until it is durable, the target is no image at all. */
	if (!ret)
		ret = write_structure(img, err);
	if (!ret)
		ret = snap_image_sync(img, err);
	if (!ret)
		ret = snap_image_write_header(img, true, err);
	if (ret)
		goto fail;
	if (opts->direct)
		img->direct = snap_target_set_direct(&t);
	return 0;
fail:
	snap_target_close(&t, path, false);
	img->fd = -1;
	return ret;
}

static int check_layout(const struct snap_image *img, struct error *err)
{
	const struct snap_header *h = &img->hdr;
	const struct snap_layout *l = &img->layout;
	unsigned int k;

	if (h->image_size != l->image_size || h->state_size != l->state_size ||
	    h->footer_off != l->footer_off || h->nr_sections != l->nr_sections)
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

/* Header, start section, layout, target size, section descriptors: in that order. */
static int validate(struct snap_image *img, struct error *err)
{
	uint8_t *buf = aligned_alloc(SNAP_PAGE_SIZE, SNAP_PAGE_SIZE);
	char a[SNAP_SIZE_PAIR_LEN], b[SNAP_SIZE_PAIR_LEN];
	int ret;

	if (!buf)
		return err_set(err, -ENOMEM, "out of memory");
	if (img->target_size < SNAP_HEADER_SIZE + SNAP_START_SIZE) {
		ret =
		    err_set(err, -EINVAL, "image %s: too small to be a kvmsnap image (%llu bytes)",
			    img->path, (unsigned long long)img->target_size);
		goto out;
	}
	ret = snap_image_pread(img, buf, SNAP_HEADER_SIZE, 0, err);
	if (!ret)
		ret = snap_header_decode(buf, &img->hdr, err);
	if (!ret)
		ret = snap_image_pread(img, buf, SNAP_START_SIZE, img->hdr.start_off, err);
	if (!ret)
		ret = snap_start_decode(buf, &img->cfg, err);
	if (!ret)
		ret = snap_layout_compute(&img->cfg, img->hdr.order, &img->layout, err);
	if (!ret)
		ret = check_layout(img, err);
	if (ret)
		goto prefix;
	if (img->target_size < img->hdr.image_size) {
		snap_size_pair_str(img->target_size, a, img->hdr.image_size, b);
		ret = err_set(err, -EINVAL, "image %s: the %s %s is smaller than the %s image",
			      img->path, a, img->blockdev ? "device" : "file (truncated?)", b);
		goto out;
	}
	ret = check_descriptors(img, err);
prefix:
	/* I/O errors already name the image. */
	if (ret && err && strncmp(err->msg, "image ", 6))
		err_prefix(err, "image %s", img->path);
out:
	free(buf);
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
	img->blockdev = t.blockdev;
	img->target_size = t.size;
	if (!ret)
		ret = validate(img, err);
	if (ret) {
		snap_target_close(&t, path, true);
		img->fd = -1;
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

	/* A device always exists: it becomes an image unless it already is one. */
	if ((access(path, F_OK) && errno == ENOENT) || snap_target_is_blank_blockdev(path))
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
	ret = snap_image_pwrite(img, buf, SNAP_HEADER_SIZE, 0, err);
	if (!ret && sync)
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

	if (img->fd >= 0)
		snap_target_close(&t, img->path, true);
	img->fd = -1;
}
