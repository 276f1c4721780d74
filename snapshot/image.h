/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Image targets: a preallocated regular file or a raw block device, opened,
 * checked and sized here. Same error rules as snapshot.h.
 */
#ifndef KVMSNAP_IMAGE_H
#define KVMSNAP_IMAGE_H

#include <limits.h>

#include "snapshot/snapshot.h"

/* What one slot's header says, or why it cannot be read. */
struct snap_slot_info {
	bool ok;
	char why[ERROR_MSG_MAX]; /* when !ok */
	struct snap_header hdr;
};

/*
 * An open image. hdr and layout are those of the selected slot (`slot`);
 * slots[] keeps every slot's header as read or last written.
 */
struct snap_nbd;

struct snap_image {
	int fd;		      /* a file or block device; -1 when closed or for NBD */
	struct snap_nbd *nbd; /* an NBD export (path is its URI); NULL otherwise */
	char path[PATH_MAX];
	bool blockdev;
	bool direct;	      /* fd has O_DIRECT: buffers and offsets 4096-aligned */
	uint64_t target_size; /* file, device or export size */
	struct snap_header hdr;
	struct snap_config cfg;
	struct snap_layout layout;
	uint32_t nr_slots, slot;
	struct snap_slot_info slots[SNAP_MAX_SLOTS];
};

struct snap_target_opts {
	uint32_t order;	   /* for a new image */
	uint32_t nr_slots; /* for a new image: 1 (0 means 1) or 2 */
	bool force;	   /* overwrite a device with a foreign signature / an existing file */
	bool direct;	   /* try O_DIRECT; fall back silently where unsupported */
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
 * VM start section, and that the target is large enough; then every other
 * slot's header the same way. A slot whose header is damaged is recorded as
 * such (slots[i].why), as long as one slot's header is good: with two
 * slots, a torn write of one header never loses the other. Selects the
 * default slot (snap_image_default_slot()). Any state is accepted here;
 * callers decide what they need.
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

/*
 * The slot readers use unless told otherwise: the complete slot with the
 * highest generation; if none is complete, the readable slot with the
 * highest generation (so that errors say what it holds).
 */
uint32_t snap_image_default_slot(const struct snap_image *img);

/*
 * The slot the next snapshot goes to: never the newest complete one, so that
 * a good snapshot survives any failure of this one. A damaged or empty slot
 * goes first. One-slot images: 0.
 */
uint32_t snap_image_next_slot(const struct snap_image *img);

/* The generation the next snapshot gets: one more than any slot's. */
uint64_t snap_image_next_generation(const struct snap_image *img);

/*
 * Make slot the selected one (img->slot, hdr, layout). For reading, the
 * slot's header must be readable and its section descriptors intact. For
 * writing, a damaged slot is accepted: its header is rebuilt from the
 * layout and the other slot's (state empty), ready to be overwritten.
 */
int snap_image_select_slot(struct snap_image *img, uint32_t slot, bool for_write,
			   struct error *err);

/* How messages name the selected slot's state: "state" (one slot), "slot 1" (two). */
const char *snap_image_slot_name(const struct snap_image *img);

/* A random non-zero u64 (write ids). */
int snap_random_u64(uint64_t *v, struct error *err);

/* Encode img->hdr into the selected slot's header block and write it; sync if asked. */
int snap_image_write_header(struct snap_image *img, bool sync, struct error *err);
/* fdatasync (file) or fsync (block device: flushes the device cache). */
int snap_image_sync(struct snap_image *img, struct error *err);
void snap_image_close(struct snap_image *img);
/* Is img open (a descriptor or an NBD connection)? */
bool snap_image_is_open(const struct snap_image *img);
/* Does path name an NBD export (nbd://, nbd+unix://, nbds://...) rather than a file? */
bool snap_image_path_is_nbd(const char *path);
/* "file", "block device" or "NBD export": what an open image is on. */
const char *snap_image_kind(const struct snap_image *img);

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
/* n little-endian u64s at off (a digest table) into out, in host order. */
int snap_image_read_u64s(struct snap_image *img, uint64_t *out, uint64_t n, uint64_t off,
			 struct error *err);

struct snap_verify_result {
	bool complete;
	uint64_t pages_checked;
	uint64_t bad_page_headers;
	uint64_t bad_page_digests; /* deep: data that does not match its page digest */
	bool state_ok;
	bool footer_ok;
	bool digests_checked; /* deep */
	unsigned int bad_digests;
};

/*
 * Check the selected slot: structure, state, footer (generation and write
 * id must match), the state area checksum and every page header. With deep,
 * recompute every page digest, block digest and region digest from the data
 * area and compare them with the digest tables and the footer. Returns 0 only if all
 * holds; otherwise the first problem is in *err and the counts in *res.
 */
int snap_image_verify(struct snap_image *img, bool deep, struct snap_verify_result *res,
		      struct error *err);

#endif
