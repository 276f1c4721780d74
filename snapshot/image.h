/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Image targets: a preallocated regular file or a raw block device, opened,
 * checked and sized here. Same error rules as snapshot.h.
 */
#ifndef KVMSNAP_IMAGE_H
#define KVMSNAP_IMAGE_H

#include <limits.h>

#include "snapshot/snapshot.h"

struct snap_image {
	int fd;
	char path[PATH_MAX];
	bool blockdev;
	bool direct;	      /* fd has O_DIRECT: buffers and offsets 4096-aligned */
	uint64_t target_size; /* file size or device size */
	struct snap_header hdr;
	struct snap_config cfg;
	struct snap_layout layout;
};

struct snap_target_opts {
	uint32_t order; /* for a new image */
	bool force;	/* overwrite a device with a foreign signature / an existing file */
	bool direct;	/* try O_DIRECT; fall back silently where unsupported */
	/*
	 * Fail at once on an image in use, instead of waiting up to
	 * SNAP_LOCK_WAIT_MS: a killed writer's queued I/O keeps its lock until it
	 * has landed, which takes a moment after the process is gone.
	 */
	bool no_lock_wait;
};
#define SNAP_LOCK_WAIT_MS 10000

/*
 * Create an image for cfg at path. A regular file is created (refused if it
 * exists, unless force) and preallocated in full with fallocate(), so that no
 * later write can hit ENOSPC. A block device must be large enough, not
 * mounted or held (opened O_EXCL), and carry no recognisable file-system or
 * partition signature unless force. Writes the header (state empty,
 * generation 0), the VM start section and every section descriptor with an
 * all-zero page header table, and makes it durable. img stays open O_RDWR.
 * The platform metadata is img->hdr.metadata if the caller set it (img
 * otherwise zeroed), else snap_metadata_build(cfg, NULL).
 */
int snap_image_create(const char *path, const struct snap_config *cfg,
		      const struct snap_target_opts *opts, struct snap_image *img,
		      struct error *err);

#define SNAP_OPEN_RDONLY 0
#define SNAP_OPEN_RDWR	 1

/*
 * Open an existing image and validate, before anything else: magic, version,
 * header checksum, the section table against the layout recomputed from the
 * VM start section, and that the target is large enough. Any state is
 * accepted here; callers decide what they need.
 */
int snap_image_open(const char *path, int mode, const struct snap_target_opts *opts,
		    struct snap_image *img, struct error *err);

/*
 * For `snapshot`: open the image at path if it exists (it must have been made
 * for this exact configuration, else an error names the difference) or
 * create it when path does not exist.
 */
int snap_image_prepare(const char *path, const struct snap_config *cfg,
		       const struct snap_target_opts *opts, struct snap_image *img,
		       struct error *err);

/*
 * Read and decode the footer, and check it against the header and the
 * configuration (generation, region count and sizes). For complete images.
 */
int snap_image_read_footer(struct snap_image *img, struct snap_footer *f, struct error *err);

/* Encode img->hdr into the header block and write it; sync if asked. */
int snap_image_write_header(struct snap_image *img, bool sync, struct error *err);
/* fdatasync (file) or fsync (block device: flushes the device cache). */
int snap_image_sync(struct snap_image *img, struct error *err);
void snap_image_close(struct snap_image *img);

/*
 * Read/write at absolute offsets, through aligned bounce buffers if direct
 * and the buffer, offset or length is not 4096-aligned. An unaligned direct
 * write reads and rewrites the blocks it only partly covers: callers must not
 * race unaligned writes to the same block.
 */
int snap_image_pread(struct snap_image *img, void *buf, size_t len, uint64_t off,
		     struct error *err);
int snap_image_pwrite(struct snap_image *img, const void *buf, size_t len, uint64_t off,
		      struct error *err);

struct snap_verify_result {
	bool complete;
	uint64_t pages_checked;
	uint64_t bad_page_headers;
	bool state_ok;
	bool footer_ok;
	bool digests_checked; /* deep */
	unsigned int bad_digests;
};

/*
 * Check structure, state, footer (generation must match), the state area
 * checksum and every page header. With deep, recompute each region digest
 * from the data area and compare with the footer. Returns 0 only if all
 * holds; otherwise the first problem is in *err and the counts in *res.
 */
int snap_image_verify(struct snap_image *img, bool deep, struct snap_verify_result *res,
		      struct error *err);

#endif
