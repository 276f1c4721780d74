// SPDX-License-Identifier: GPL-2.0
/*
 * The VM configuration an image is made for (what the VM start section
 * records): its checks, its comparison with a VM's, and the default platform
 * metadata derived from it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/version.h"
#include "snapshot/snapshot.h"

/* Ids and machine types appear in one-line messages: no spaces or control bytes. */
static bool name_ok(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] == 0x7f)
			return false;
	return true;
}

static int check_region(const struct snap_config *cfg, unsigned int i, struct error *err)
{
	const struct snap_region_desc *r = &cfg->regions[i];
	size_t len = strnlen(r->id, sizeof(r->id));
	unsigned int j;

	if (len == 0)
		return err_set(err, -EINVAL, "region %u has an empty id", i);
	if (len > SNAP_REGION_ID_MAX)
		return err_set(err, -EINVAL, "region %u: id '%.*s' is longer than %d bytes", i,
			       (int)sizeof(r->id), r->id, SNAP_REGION_ID_MAX);
	if (!name_ok(r->id, len))
		return err_set(err, -EINVAL, "region %u: id has spaces or control characters", i);
	if (r->size == 0 || r->size % SNAP_PAGE_SIZE)
		return err_set(err, -EINVAL,
			       "region %s: size %llu is not a non-zero multiple of 4096", r->id,
			       (unsigned long long)r->size);
	if (r->size > SNAP_REGION_SIZE_MAX)
		return err_set(err, -EINVAL, "region %s: size %llu exceeds %llu", r->id,
			       (unsigned long long)r->size, SNAP_REGION_SIZE_MAX);
	for (j = 0; j < i; j++)
		if (!strcmp(cfg->regions[j].id, r->id))
			return err_set(err, -EINVAL, "region id %s appears twice", r->id);
	return 0;
}

int snap_config_check(const struct snap_config *cfg, struct error *err)
{
	size_t mlen = strnlen(cfg->machine, sizeof(cfg->machine));
	unsigned int i;
	int ret;

	if (mlen == 0 || mlen == sizeof(cfg->machine) || !name_ok(cfg->machine, mlen))
		return err_set(err, -EINVAL, "bad machine type (1 to %zu printable bytes)",
			       sizeof(cfg->machine) - 1);
	if (cfg->vcpus < 1 || cfg->vcpus > SNAP_MAX_VCPUS)
		return err_set(err, -EINVAL, "%u vCPUs (must be 1 to %d)", cfg->vcpus,
			       SNAP_MAX_VCPUS);
	if (cfg->nr_regions < 1 || cfg->nr_regions > SNAP_MAX_REGIONS)
		return err_set(err, -EINVAL, "%u memory regions (must be 1 to %d)", cfg->nr_regions,
			       SNAP_MAX_REGIONS);
	for (i = 0; i < cfg->nr_regions; i++) {
		ret = check_region(cfg, i, err);
		if (ret)
			return ret;
	}
	return 0;
}

static int differ_size(struct error *err, const char *what, uint64_t img, uint64_t vm)
{
	char a[32], b[32];

	return err_set(err, -EINVAL, "%s: the image has %s (%llu bytes), the VM %s (%llu bytes)",
		       what, snap_size_str(img, a, sizeof(a)), (unsigned long long)img,
		       snap_size_str(vm, b, sizeof(b)), (unsigned long long)vm);
}

int snap_config_compare(const struct snap_config *img, const struct snap_config *vm,
			struct error *err)
{
	unsigned int i;
	char what[64];

	if (strncmp(img->machine, vm->machine, sizeof(img->machine)))
		return err_set(err, -EINVAL, "machine: the image has %.31s, the VM %.31s",
			       img->machine, vm->machine);
	if (img->vcpus != vm->vcpus)
		return err_set(err, -EINVAL, "vcpus: the image has %u, the VM %u", img->vcpus,
			       vm->vcpus);
	if (img->ram_size != vm->ram_size)
		return differ_size(err, "mem", img->ram_size, vm->ram_size);
	if (img->vram_size != vm->vram_size)
		return differ_size(err, "vram", img->vram_size, vm->vram_size);
	if (img->nr_regions != vm->nr_regions)
		return err_set(err, -EINVAL, "regions: the image has %u, the VM %u",
			       img->nr_regions, vm->nr_regions);
	for (i = 0; i < img->nr_regions; i++) {
		if (strncmp(img->regions[i].id, vm->regions[i].id, sizeof(img->regions[i].id)))
			return err_set(err, -EINVAL, "region %u: the image has %.31s, the VM %.31s",
				       i, img->regions[i].id, vm->regions[i].id);
		snprintf(what, sizeof(what), "region %.31s", img->regions[i].id);
		if (img->regions[i].size != vm->regions[i].size)
			return differ_size(err, what, img->regions[i].size, vm->regions[i].size);
	}
	return 0;
}

/* "256M"-style, as --mem accepts it back. */
static void size_arg(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int i;

	for (i = 3; i >= 0; i--) {
		uint64_t unit = 1ULL << (10 * (i + 1));

		if (v >= unit && v % unit == 0) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(v / unit), units[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

void snap_metadata_build(const struct snap_config *cfg, const char *guest, char *buf, size_t len)
{
	char mem[32], vram[32], guest_line[224] = "";

	size_arg(cfg->ram_size, mem, sizeof(mem));
	size_arg(cfg->vram_size, vram, sizeof(vram));
	if (guest)
		snprintf(guest_line, sizeof(guest_line), "guest=%.200s\n", guest);
	snprintf(buf, len, "machine=%.31s\nmem=%s\nvcpus=%u\nvram=%s\n%skvmsnap=%s\n", cfg->machine,
		 mem, cfg->vcpus, vram, guest_line, KVMSNAP_VERSION);
}
