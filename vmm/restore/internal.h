/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What load.c shares with lazy.c: the image's parallel reader, 2 MiB-aligned
 * reservations and where the lazily mapped regions come from. Private to
 * vmm/restore/; the public contracts are in restore.h.
 */
#ifndef KVMSNAP_RESTORE_INTERNAL_H
#define KVMSNAP_RESTORE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"
#include "snapshot/image.h"
#include "util/util.h"

#define LOAD_CHUNK (8 * MiB) /* one read: large enough to reach the device's limit */
#define HUGE_ALIGN (2 * MiB) /* a page table's reach */

/*
 * Where the lazily mapped regions come from, for restore__materialize(): a
 * process restores one VM, once. The fd also keeps a device held;
 * restore__materialize() closes it (-1) once nothing maps the image.
 */
struct restore_lazy_src {
	int fd;
	int pagemap_fd; /* /proc/self/pagemap, opened before the lock-down, or -1 */
	uint64_t data_off[MEM_MAX_REGIONS]; /* by region index */
};
extern struct restore_lazy_src restore__lazy_src;

/*
 * An address range of size bytes, reserved (PROT_NONE) and 2 MiB-aligned:
 * mremap() moves such mappings a page table at a time, which keeps the
 * pause of restore__materialize() short. NULL on failure (errno set).
 */
void *restore__reserve_aligned(size_t size);

/* One read of the loader: len bytes at off in the image into dst. */
struct load_piece {
	uint8_t *dst;
	uint64_t off; /* in the image */
	size_t len;
	uint64_t *hashes; /* of each page of dst, or NULL */
	const char *what; /* the region, for messages */
};

struct loader {
	int fd;
	/*
	 * An NBD export (fd -1): pieces are read through the image, one thread
	 * at a time; the connection is one stream, and hashing still overlaps.
	 */
	struct snap_image *img;
	pthread_mutex_t img_lock;
	struct load_piece *pieces;
	size_t nr_pieces;
	size_t next; /* atomic: the next piece to take */
	int error;   /* atomic: first -errno */
	size_t bad_piece;
};

/* How many pieces [off, off + len) takes: room to make in loader.pieces. */
size_t restore__pieces_for(uint64_t len);
/* [off, off + len) of the image into dst, in LOAD_CHUNK pieces; room was made for them. */
void restore__add_pieces(struct loader *ld, uint8_t *dst, uint64_t off, uint64_t len,
			 uint64_t *hashes, const char *what);
/*
 * Read every piece with a few threads, hashing each page into its hashes
 * if any; O_DIRECT is dropped where the target refuses it. 0 or the first
 * -errno with *err naming path; threads (may be NULL) gets how many ran.
 */
int restore__run_loaders(struct loader *ld, const char *path, unsigned int *threads,
			 struct error *err);

#endif
