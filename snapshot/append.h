/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The append stream: the benchmark baseline for kvmsnap's fixed image. It is
 * what classic save streams do (QEMU's migrate-to-file): every precopy pass
 * appends its dirty pages as records to a growing file, so a guest that
 * keeps writing makes the file grow past its RAM size. The same precopy
 * engine (precopy.h) runs it as a second sink, so the two differ only in
 * where the pages go. kvmsnap cannot restore it; snap_append_replay() reads
 * it back for tests and for checking that a run was complete.
 *
 * Documentation/snapshot-format.md, "Append stream (benchmark baseline)",
 * is the format:
 *
 *   file header (4096)   magic, version, page size, the VM configuration
 *   chunk...             a 4096-byte chunk header, then its payload
 *                        (page-aligned): PAGES (up to SNAP_APPEND_MAX_RUNS
 *                        runs, each a region, first page, count, and a
 *                        zero flag for runs without data), STATE (the VM
 *                        state taken at the pause), END (last: totals,
 *                        passes, region digests), after which the file is
 *                        made durable
 */
#ifndef KVMSNAP_APPEND_H
#define KVMSNAP_APPEND_H

#include "snapshot/image.h"
#include "snapshot/writer.h"

#define SNAP_APPEND_MAGIC	"KSAPPEND"
#define SNAP_APPEND_CHUNK_MAGIC "KSACHUNK"
#define SNAP_APPEND_VERSION	1
#define SNAP_APPEND_HDR_SIZE	4096ULL
#define SNAP_APPEND_RUNS_OFF	0x40
#define SNAP_APPEND_RUN_SIZE	16
/* Runs in one chunk header: as many as fit before its checksum. */
#define SNAP_APPEND_MAX_RUNS ((0xff8 - SNAP_APPEND_RUNS_OFF) / SNAP_APPEND_RUN_SIZE)
/* Page data in one chunk: one write, as large as the image writer's largest. */
#define SNAP_APPEND_CHUNK_DATA (8ULL << 20)
/* The largest STATE payload a reader takes: the state area of SNAP_MAX_VCPUS vCPUs. */
#define SNAP_APPEND_STATE_MAX (SNAP_STATE_FIXED + SNAP_MAX_VCPUS * SNAP_STATE_PER_VCPU)

enum snap_append_type {
	SNAP_APPEND_PAGES = 1,
	SNAP_APPEND_STATE = 2,
	SNAP_APPEND_END = 3,
};

#define SNAP_APPEND_RUN_ZERO 0x1 /* run flag: the pages are zero; no data follows */

struct snap_append_run {
	uint64_t first;
	uint32_t count;
	uint16_t region;
	uint16_t flags;
};

/* The file header: what the stream is a snapshot of. */
struct snap_append_header {
	uint32_t version;
	uint64_t started_ns; /* CLOCK_REALTIME */
	struct snap_config cfg;
};

/* END: what a reader checks the replay against. */
struct snap_append_end {
	uint64_t data_pages; /* pages with data, in every PAGES chunk */
	uint64_t zero_pages; /* pages of zero runs */
	uint64_t end_off;    /* where END begins: the bytes before it */
	uint32_t passes;
	uint32_t flags; /* bit 0 converged */
	uint64_t downtime_us;
	uint64_t pause_ns;
	uint32_t digest_algo; /* SNAP_DIGEST_XXH3_TREE */
	uint64_t digest[SNAP_MAX_REGIONS];
};

/* One decoded chunk header. */
struct snap_append_chunk {
	uint32_t type;
	uint32_t nr_runs;    /* PAGES */
	uint64_t seq;	     /* 0 for the first chunk, then +1 */
	uint64_t payload;    /* bytes after the header, a multiple of 4096 */
	uint32_t pass;	     /* PAGES: the precopy pass, from 1 */
	uint64_t state_used; /* STATE */
	struct snap_append_run runs[SNAP_APPEND_MAX_RUNS];
	struct snap_append_end end; /* END */
};

/*
 * Codecs: encode writes a whole 4096-byte block, checksum included. Decode
 * takes every byte as hostile and checks magic, version, checksum, reserved
 * bytes and every count and bound against the configuration (chunks: cfg
 * from the file header) before it fills *out. 0 or -EPROTO with *err set.
 */
void snap_append_header_encode(const struct snap_append_header *h,
			       uint8_t buf[SNAP_APPEND_HDR_SIZE]);
int snap_append_header_decode(const uint8_t buf[SNAP_APPEND_HDR_SIZE], struct snap_append_header *h,
			      struct error *err);
void snap_append_chunk_encode(const struct snap_append_chunk *c, unsigned int nr_regions,
			      uint8_t buf[SNAP_APPEND_HDR_SIZE]);
int snap_append_chunk_decode(const uint8_t buf[SNAP_APPEND_HDR_SIZE], const struct snap_config *cfg,
			     struct snap_append_chunk *c, struct error *err);

/* An append file open for writing, and what went into it. */
struct snap_append_file {
	struct snap_image io; /* fd, path, direct: what io.c and ioq.c use; no image layout */
	char direct_why[128]; /* why buffered, when not direct */
	uint64_t file_bytes;  /* bytes appended: headers and page data */
	uint64_t data_pages, zero_pages, chunks;
};

/*
 * Create path (mode 0600, never through a symbolic link; an existing file
 * only with force, then truncated; regular files only), with O_DIRECT where
 * the file system has it (else buffered, and direct_why says why), and
 * lock it. For the caller to do before it locks itself down.
 */
int snap_append_open(struct snap_append_file *f, const char *path, bool direct, bool force,
		     struct error *err);
void snap_append_close(struct snap_append_file *f);

/*
 * Take a live snapshot of vm into the open file f with the precopy engine:
 * the file header, a PAGES chunk per batch of runs of each pass, the STATE
 * chunk, the END chunk, fdatasync. rep as snap_write() fills it, except
 * that bytes_written counts every byte appended (page data and headers; zero
 * runs carry no data) and image_size is the file's size. On failure the VM
 * has been resumed and logging stopped, and the file has no END.
 */
int snap_append_write(struct snap_append_file *f, struct snap_vm *vm,
		      const struct snap_options *opts, struct snap_report *rep, struct error *err);

/* A replayed append file: memory as of its END, each page's last record winning. */
struct snap_append_replay {
	struct snap_append_header hdr;
	struct snap_append_end end;
	uint8_t *mem[SNAP_MAX_REGIONS];	  /* region contents */
	uint64_t *seen[SNAP_MAX_REGIONS]; /* bitmap: pages some record covered */
	uint8_t *state;			  /* the STATE payload */
	size_t state_used;
	uint64_t chunks, file_bytes;
	uint32_t max_pass;
};

/*
 * Read the append file at path into r: every header decoded and checked
 * before use, chunks in sequence, payloads within the file, exactly one
 * STATE, END last and at the file's end, its totals equal to what was read,
 * every page of every region covered, and each region's digest equal to
 * END's. A file cut short says so. 0, or -EPROTO/-errno with *err set; free
 * r with snap_append_replay_free() either way.
 */
int snap_append_replay(const char *path, struct snap_append_replay *r, struct error *err);
void snap_append_replay_free(struct snap_append_replay *r);

#endif
