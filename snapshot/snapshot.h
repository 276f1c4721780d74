/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kvmsnap snapshot library: image layout and sizing, the on-disk format,
 * image targets (file or block device), the precopy writer, verify, and the
 * VM state record container. Documentation/snapshot-format.md is the format.
 *
 * Rules for everything declared here:
 *  - Errors follow lib/error.h: 0 or a negative errno, and one line in *err
 *    that names the cause. Nothing here prints or exits the process.
 *  - Nothing here includes vmm/: the VM is reached only through struct
 *    snap_vm (writer.h), so the library runs on plain memory in tests.
 */
#ifndef KVMSNAP_SNAPSHOT_H
#define KVMSNAP_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/align.h"
#include "lib/error.h"

#define SNAP_PAGE_SIZE	    4096ULL
#define SNAP_PAGE_HDR_SIZE  8ULL
#define SNAP_FORMAT_VERSION 2
#define SNAP_MAX_SLOTS	    2
/* Page hashes per block of the digest table: one 4096-byte block of u64s. */
#define SNAP_HASH_BLOCK_PAGES 512ULL
#define SNAP_MAX_REGIONS      16
#define SNAP_REGION_ID_MAX    31 /* bytes, without NUL */
#define SNAP_HEADER_SIZE      4096ULL
#define SNAP_START_SIZE	      4096ULL
#define SNAP_FOOTER_SIZE      4096ULL
#define SNAP_STATE_FIXED      16384ULL
#define SNAP_STATE_PER_VCPU   32768ULL
#define SNAP_SECTION_DESC     64ULL /* section descriptor before the page header table */
#define SNAP_METADATA_MAX     1024
#define SNAP_MACHINE_PC	      "kvmsnap-pc-1"
/* Sanity bounds that keep every size computation far from 64-bit overflow. */
#define SNAP_MAX_VCPUS	     4096
#define SNAP_REGION_SIZE_MAX (1ULL << 48)

/* Page header flags (low 12 bits). */
#define SNAP_PAGE_PRESENT 0x1ULL

enum snap_state { SNAP_STATE_EMPTY = 0, SNAP_STATE_WRITING = 1, SNAP_STATE_COMPLETE = 2 };

/*
 * Header flags. DATA_ZERO: an empty slot whose every page slot reads as
 * zeros (image create made the target so); a snapshot's `writing` header
 * clears it for good.
 */
#define SNAP_HDR_DATA_ZERO 0x1u
#define SNAP_HDR_FLAGS	   SNAP_HDR_DATA_ZERO
enum snap_order { SNAP_ORDER_REGISTRY = 0, SNAP_ORDER_SIZE = 1 };

const char *snap_state_name(uint32_t state);
const char *snap_order_name(uint32_t order);
/* "64 MiB", "272.9 MiB", "4 KiB", "512 bytes": for messages. Returns buf. */
const char *snap_size_str(uint64_t v, char *buf, size_t len);
/*
 * Two sizes to be compared in one message, as snap_size_str() writes them,
 * each followed by its exact byte count when the rounded figures are equal
 * ("16.5 MiB (17301504 bytes)"). Buffers of SNAP_SIZE_PAIR_LEN bytes.
 */
#define SNAP_SIZE_PAIR_LEN 64
void snap_size_pair_str(uint64_t x, char *xbuf, uint64_t y, char *ybuf);

/* One memory owner, as listed in the RAM start section. */
struct snap_region_desc {
	char id[SNAP_REGION_ID_MAX + 1];
	uint64_t size; /* bytes, a multiple of 4096 */
};

/* What the VM start section records: enough to rebuild the VM. */
struct snap_config {
	char machine[32];
	uint32_t vcpus;
	uint64_t ram_size;
	uint64_t vram_size;
	unsigned int nr_regions;
	struct snap_region_desc regions[SNAP_MAX_REGIONS]; /* registry order */
};

struct snap_section {
	uint32_t id;	    /* 1 + region index */
	uint32_t region;    /* index into snap_config.regions */
	uint64_t offset;    /* absolute, 4096-aligned */
	uint64_t size;	    /* page header area + data area */
	uint64_t table_off; /* absolute offset of the page header table */
	uint64_t data_off;  /* absolute, 4096-aligned */
	uint64_t pages;
	uint64_t hash_off;   /* absolute: page digest table, u64 per page */
	uint64_t blocks_off; /* absolute: block digest table, u64 per SNAP_HASH_BLOCK_PAGES */
};

/* Digest table blocks of a section of this many pages. */
static inline uint64_t snap_hash_blocks(uint64_t pages)
{
	return DIV_ROUND_UP(pages, SNAP_HASH_BLOCK_PAGES);
}

/*
 * Where everything of one slot is, and the sizing terms that `image size`
 * prints. Every offset is absolute and belongs to slot `slot`; only the VM
 * start section is shared by the slots.
 */
struct snap_layout {
	uint32_t order;
	uint32_t nr_slots, slot;
	uint64_t slot_off[SNAP_MAX_SLOTS]; /* each slot's header; 0 for slots past nr_slots */
	uint64_t header_off, header_size;
	uint64_t start_off, start_size;
	uint64_t state_off, state_size;
	uint64_t footer_off, footer_size;
	uint64_t image_size;
	unsigned int nr_sections;
	struct snap_section sections[SNAP_MAX_REGIONS]; /* in image order */
	/* Sizing terms, per slot. */
	uint64_t total_ram_bytes; /* sum of region sizes */
	uint64_t total_ram;	  /* Total_ram_bytes / 4096 * (4096 + 8) */
	uint64_t digest_tables;	  /* 8 per page + 8 per SNAP_HASH_BLOCK_PAGES pages, per section */
	uint64_t padding;	  /* a slot's size minus its other terms */
};

/* The VM state area of an image for this many vCPUs: the one formula. */
static inline uint64_t snap_state_area_size(uint64_t vcpus)
{
	return ALIGN_UP(SNAP_STATE_FIXED + vcpus * SNAP_STATE_PER_VCPU, SNAP_PAGE_SIZE);
}

/* Check a configuration (ids, sizes, counts). 0 or -EINVAL. */
int snap_config_check(const struct snap_config *cfg, struct error *err);

/*
 * Compare the configuration an image was made for with a VM's: machine,
 * vCPUs, RAM, VRAM, then each region's id and size. 0 if equal, else -EINVAL
 * and a message naming the first difference ("vcpus: the image has 2, the VM 1").
 */
int snap_config_compare(const struct snap_config *image, const struct snap_config *vm,
			struct error *err);

/*
 * The platform metadata for cfg ("machine=...\nmem=...\n...\nkvmsnap=VERSION\n"),
 * NUL-terminated, with a guest= line when guest is not NULL.
 */
void snap_metadata_build(const struct snap_config *cfg, const char *guest, char *buf, size_t len);

/* Compute the layout of slot `slot` of an image with nr_slots (1 or 2) slots. */
int snap_layout_compute_slot(const struct snap_config *cfg, uint32_t order, uint32_t nr_slots,
			     uint32_t slot, struct snap_layout *out, struct error *err);

/* The layout of a one-slot image. */
static inline int snap_layout_compute(const struct snap_config *cfg, uint32_t order,
				      struct snap_layout *out, struct error *err)
{
	return snap_layout_compute_slot(cfg, order, 1, 0, out, err);
}

/* The section that holds region index r, or NULL. */
const struct snap_section *snap_layout_section(const struct snap_layout *l, unsigned int r);

/* The decoded header block of one slot. */
struct snap_header {
	uint32_t version;
	uint8_t uuid[16];
	uint32_t state;
	uint32_t flags; /* SNAP_HDR_* */
	uint32_t order;
	uint32_t nr_slots, slot;
	uint64_t slot_off[SNAP_MAX_SLOTS];
	uint64_t write_id; /* random, new for each snapshot into this slot */
	uint64_t generation;
	uint64_t created_ns, started_ns, completed_ns; /* CLOCK_REALTIME */
	uint64_t image_size;
	uint64_t start_off, start_size, state_off, state_size, footer_off, footer_size;
	uint32_t nr_sections;
	uint64_t state_used;
	struct snap_section sections[SNAP_MAX_REGIONS];
	uint32_t metadata_len;
	char metadata[SNAP_METADATA_MAX + 1]; /* NUL-terminated */
};

/* Decoded footer. */
struct snap_footer {
	uint64_t generation;
	uint64_t write_id;
	uint32_t nr_regions;
	uint32_t digest_algo; /* 1 = XXH3 page tree */
	uint64_t pause_ns;
	uint32_t passes;
	uint32_t flags; /* bit 0: converged */
	uint64_t downtime_us, total_us, bytes_written;
	uint64_t digest[SNAP_MAX_REGIONS];
	uint64_t region_size[SNAP_MAX_REGIONS];
};
#define SNAP_FOOTER_CONVERGED 0x1u
#define SNAP_DIGEST_XXH3_TREE 2u

/* Copy where everything is (order, slots, sizes, offsets, the section table) from l into h. */
void snap_header_set_layout(struct snap_header *h, const struct snap_layout *l);

/* Block codecs: encode writes a whole block, checksum included. Decode checks
 * magic, version, checksum and internal consistency before filling *out. */
void snap_header_encode(const struct snap_header *h, uint8_t buf[SNAP_HEADER_SIZE]);
int snap_header_decode(const uint8_t buf[SNAP_HEADER_SIZE], struct snap_header *h,
		       struct error *err);
void snap_start_encode(const struct snap_config *cfg, uint8_t buf[SNAP_START_SIZE]);
int snap_start_decode(const uint8_t buf[SNAP_START_SIZE], struct snap_config *cfg,
		      struct error *err);
void snap_footer_encode(const struct snap_footer *f, uint8_t buf[SNAP_FOOTER_SIZE]);
int snap_footer_decode(const uint8_t buf[SNAP_FOOTER_SIZE], struct snap_footer *f,
		       struct error *err);
/* The 64-byte descriptor at the start of a section. */
void snap_section_desc_encode(const struct snap_section *s, const struct snap_region_desc *r,
			      uint8_t buf[SNAP_SECTION_DESC]);
int snap_section_desc_check(const uint8_t buf[SNAP_SECTION_DESC], const struct snap_section *s,
			    const struct snap_region_desc *r, struct error *err);

static inline uint64_t snap_page_hdr(uint64_t index, uint64_t flags)
{
	return (index << 12) | (flags & 0xfff);
}

/*
 * The region digest ("XXH3 page tree", Documentation/snapshot-format.md):
 * each page's XXH3-64; each run of SNAP_HASH_BLOCK_PAGES page hashes (the
 * last one shorter) hashed as little-endian u64s into a block digest; the
 * block digests hashed the same way into the region digest. Two levels, so
 * that an incremental snapshot rehashes only the blocks it changed.
 */
uint64_t snap_page_hash(const void *page);
/* The digest of n (1..SNAP_HASH_BLOCK_PAGES) page hashes, or of n block digests. */
uint64_t snap_digest_u64s(const uint64_t *v, uint64_t n);
/* page_hashes (may be NULL) receives the per-page values. */
uint64_t snap_digest_pages(const void *mem, uint64_t pages, uint64_t *page_hashes);
uint64_t snap_digest_tree(const uint64_t *page_hashes, uint64_t pages);

/* The same digest, fed a run of pages at a time (verify --deep reads in chunks). */
struct snap_digest_stream {
	void *state; /* XXH3 streaming state over the block digests */
	unsigned int fill;
	uint8_t buf[SNAP_HASH_BLOCK_PAGES * 8]; /* little-endian page hashes of the open block */
};
int snap_digest_begin(struct snap_digest_stream *s); /* 0 or -ENOMEM */
void snap_digest_add(struct snap_digest_stream *s, const void *mem, uint64_t pages);
/* Add pages whose hashes are known. */
void snap_digest_add_hashes(struct snap_digest_stream *s, const uint64_t *page_hashes,
			    uint64_t pages);
/* The digest of every page added; frees the state. */
uint64_t snap_digest_end(struct snap_digest_stream *s);

#endif
