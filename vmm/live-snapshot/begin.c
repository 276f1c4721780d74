// SPDX-License-Identifier: GPL-2.0
/* The manager's check of the snapshot-begin reply; see begin.h. */
#include "live-snapshot/begin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lib/align.h"

#define BAD(err, ...) err_set((err), -EPROTO, "snapshot-begin: " __VA_ARGS__)

static int get_u64(struct json_object *o, const char *key, uint64_t *v, struct error *err)
{
	struct json_object *j;

	if (!json_object_object_get_ex(o, key, &j) || !json_object_is_type(j, json_type_int))
		return BAD(err, "the reply has no number \"%s\"", key);
	if (json_object_get_int64(j) < 0) /* a uint64 above INT64_MAX reads as INT64_MAX */
		return BAD(err, "\"%s\" is negative", key);
	*v = json_object_get_uint64(j);
	return 0;
}

/* A string member of at most max bytes, copied NUL-terminated into buf (max + 1 bytes). */
static int get_str(struct json_object *o, const char *key, char *buf, size_t max, struct error *err)
{
	struct json_object *j;
	size_t len;

	if (!json_object_object_get_ex(o, key, &j) || !json_object_is_type(j, json_type_string))
		return BAD(err, "the reply has no string \"%s\"", key);
	len = (size_t)json_object_get_string_len(j);
	if (len > max || memchr(json_object_get_string(j), '\0', len))
		return BAD(err, "\"%s\" is longer than %zu bytes or holds a NUL", key, max);
	memcpy(buf, json_object_get_string(j), len);
	buf[len] = '\0';
	return 0;
}

static int check_fd(const struct snapshot_fd_info *fd, const char *what, uint64_t need,
		    struct error *err)
{
	if (!fd->regular)
		return BAD(err, "the descriptor of %s is not a memfd or file", what);
	if (fd->size < need)
		return BAD(err, "the memfd of %s has %" PRIu64 " bytes, %" PRIu64 " announced",
			   what, fd->size, need);
	if (!fd->size_sealed)
		return BAD(err, "the memfd of %s is not sealed against shrinking and growing",
			   what);
	if (fd->writable)
		return BAD(err,
			   "the descriptor of %s is writable; the manager takes read-only ones",
			   what);
	return 0;
}

/* Region i's id and size. */
static int parse_region(struct json_object *o, unsigned int i, struct snapshot_begin *b,
			struct error *err)
{
	struct snap_region_desc *d = &b->cfg.regions[i];
	int ret;

	if (!json_object_is_type(o, json_type_object))
		return BAD(err, "region %u is not an object", i);
	ret = get_str(o, "id", d->id, SNAP_REGION_ID_MAX, err);
	if (!ret)
		ret = get_u64(o, "size", &d->size, err);
	if (ret)
		return err_prefix(err, "region %u", i);
	if (!d->size || d->size > SNAP_REGION_SIZE_MAX || !IS_ALIGNED(d->size, SNAP_PAGE_SIZE))
		return BAD(err,
			   "region %s: size %" PRIu64 " is not a whole number of pages up to 2^48",
			   d->id, d->size);
	return 0;
}

/* Region i's dirty bitmap: after the one before, all before the state area. */
static int check_bitmap(struct json_object *o, unsigned int i, struct snapshot_begin *b,
			uint64_t *next_bitmap, struct error *err)
{
	const struct snap_region_desc *d = &b->cfg.regions[i];
	uint64_t bytes = ALIGN_UP(d->size / SNAP_PAGE_SIZE, 64) / 8;
	int ret = get_u64(o, "bitmap_off", &b->bitmap_off[i], err);

	if (ret)
		return err_prefix(err, "region %s", d->id);
	if (!IS_ALIGNED(b->bitmap_off[i], 8) || b->bitmap_off[i] < *next_bitmap ||
	    b->bitmap_off[i] > b->state_off || bytes > b->state_off - b->bitmap_off[i])
		return BAD(err,
			   "region %s: its dirty bitmap (%" PRIu64 " bytes at %" PRIu64
			   ") is not inside the shared area before the state",
			   d->id, bytes, b->bitmap_off[i]);
	*next_bitmap = b->bitmap_off[i] + bytes;
	return 0;
}

/* What every reply says of the VM: machine, metadata, vCPUs, memory, regions. */
static int parse_config(struct json_object *reply, struct json_object **regions,
			struct snapshot_begin *b, struct error *err)
{
	uint64_t v;
	size_t n, i;
	int ret;

	if (!json_object_is_type(reply, json_type_object))
		return BAD(err, "the reply is not an object");
	if (!json_object_object_get_ex(reply, "regions", regions) ||
	    !json_object_is_type(*regions, json_type_array))
		return BAD(err, "the reply lists no regions");
	n = json_object_array_length(*regions);
	if (n < 1 || n > SNAP_MAX_REGIONS)
		return BAD(err, "%zu regions", n);
	ret = get_str(reply, "machine", b->cfg.machine, sizeof(b->cfg.machine) - 1, err);
	if (!ret)
		ret = get_str(reply, "metadata", b->metadata, SNAP_METADATA_MAX, err);
	if (!ret)
		ret = get_u64(reply, "vcpus", &v, err);
	if (ret)
		return ret;
	if (!v || v > SNAP_MAX_VCPUS)
		return BAD(err, "%" PRIu64 " vCPUs", v);
	b->cfg.vcpus = (uint32_t)v;
	ret = get_u64(reply, "mem", &b->cfg.ram_size, err);
	if (!ret)
		ret = get_u64(reply, "vram", &b->cfg.vram_size, err);
	b->cfg.nr_regions = (unsigned int)n;
	for (i = 0; !ret && i < n; i++)
		ret = parse_region(json_object_array_get_idx(*regions, i), (unsigned int)i, b, err);
	if (!ret && snap_config_check(&b->cfg, err))
		ret = err_prefix(err, "snapshot-begin");
	return ret;
}

int snapshot_begin__check_stream(struct json_object *reply, struct snapshot_begin *out,
				 struct error *err)
{
	struct json_object *regions;
	struct snapshot_begin b;
	int ret;

	memset(&b, 0, sizeof(b));
	ret = parse_config(reply, &regions, &b, err);
	if (!ret)
		*out = b;
	return ret;
}

int snapshot_begin__check(struct json_object *reply, const struct snapshot_fd_info *fds,
			  unsigned int nr_fds, struct snapshot_begin *out, struct error *err)
{
	struct snapshot_begin b;
	struct json_object *regions;
	uint64_t next_bitmap = 0;
	unsigned int i;
	int ret;

	memset(&b, 0, sizeof(b));
	ret = parse_config(reply, &regions, &b, err);
	if (ret)
		return ret;
	if (nr_fds != b.cfg.nr_regions + 1)
		return BAD(err, "%u regions but %u descriptors", b.cfg.nr_regions, nr_fds);
	ret = get_u64(reply, "shm_size", &b.shm_size, err);
	if (!ret)
		ret = get_u64(reply, "state_off", &b.state_off, err);
	if (!ret)
		ret = get_u64(reply, "state_cap", &b.state_cap, err);
	if (ret)
		return ret;
	/* The shared area: bitmaps, then exactly the state area of this many vCPUs. */
	if (b.shm_size > SNAPSHOT_SHM_MAX || b.state_off > b.shm_size ||
	    b.state_cap != snap_state_area_size(b.cfg.vcpus) ||
	    b.state_cap > b.shm_size - b.state_off)
		return BAD(err,
			   "a state area of %" PRIu64 " bytes at %" PRIu64
			   " does not fit a shared area of %" PRIu64 " bytes",
			   b.state_cap, b.state_off, b.shm_size);
	ret = check_fd(&fds[0], "the shared area", b.shm_size, err);
	for (i = 0; !ret && i < b.cfg.nr_regions; i++)
		ret = check_bitmap(json_object_array_get_idx(regions, i), i, &b, &next_bitmap, err);
	for (i = 0; !ret && i < b.cfg.nr_regions; i++)
		ret = check_fd(&fds[1 + i], b.cfg.regions[i].id, b.cfg.regions[i].size, err);
	if (ret)
		return ret;
	*out = b;
	return 0;
}
