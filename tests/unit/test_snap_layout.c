// SPDX-License-Identifier: GPL-2.0
/* Image sizing and layout (snapshot/layout.c, snapshot/config.c), without any I/O. */
#include "../harness.h"

#include "lib/version.h"
#include "snapshot/snapshot.h"
#include "vmm/layout.h"
#include "vmm/pc.h"
#include "vmm/snapcfg.h"

#define KiB_ (1ULL << 10)
#define MiB_ (1ULL << 20)

static void add_region(struct snap_config *c, const char *id, uint64_t size)
{
	struct snap_region_desc *r = &c->regions[c->nr_regions++];

	snprintf(r->id, sizeof(r->id), "%s", id);
	r->size = size;
}

/* The default PC: 256M RAM, 16M VRAM, 256K BIOS, 128K ACPI. */
static void pc_config(struct snap_config *c, uint32_t vcpus)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->machine, sizeof(c->machine), "%s", SNAP_MACHINE_PC);
	c->vcpus = vcpus;
	c->ram_size = 256 * MiB_;
	c->vram_size = 16 * MiB_;
	add_region(c, "pc.ram", 256 * MiB_);
	add_region(c, "vga.vram", 16 * MiB_);
	add_region(c, "pc.bios", 256 * KiB_);
	add_region(c, "acpi.tables", 128 * KiB_);
}

/* Descriptor, page headers, page digests and block digests, rounded up to 4096. */
static uint64_t table_area(uint64_t pages)
{
	return (64 + 8 * pages + 8 * pages + 8 * ((pages + 511) / 512) + 4095) / 4096 * 4096;
}

/* Invariants every one-slot layout must satisfy, whatever the order. */
static bool layout_sound(const struct snap_config *c, const struct snap_layout *l)
{
	uint64_t pos = l->state_off + l->state_size, other;
	bool seen[SNAP_MAX_REGIONS] = {false};
	unsigned int k;

	if (l->header_off != 0 || l->start_off != 4096 || l->state_off != 8192 ||
	    l->nr_slots != 1 || l->slot != 0 || l->slot_off[0] != 0 || l->slot_off[1] != 0 ||
	    l->nr_sections != c->nr_regions)
		return false;
	for (k = 0; k < l->nr_sections; k++) {
		const struct snap_section *s = &l->sections[k];

		if (s->offset != pos || s->offset % 4096 || s->data_off % 4096 ||
		    s->table_off != s->offset + 64 || s->hash_off != s->table_off + 8 * s->pages ||
		    s->blocks_off != s->hash_off + 8 * s->pages ||
		    s->data_off != s->offset + table_area(s->pages) ||
		    s->size != s->data_off - s->offset + s->pages * 4096 ||
		    s->id != s->region + 1 || s->pages * 4096 != c->regions[s->region].size ||
		    seen[s->region])
			return false;
		seen[s->region] = true;
		pos += s->size;
	}
	other = l->header_size + l->start_size + l->state_size + l->total_ram + l->digest_tables +
		l->footer_size;
	return pos == l->footer_off && l->image_size == l->footer_off + 4096 &&
	       l->footer_size == 4096 && l->padding == l->image_size - other;
}

TEST(sizing_default_pc_one_vcpu)
{
	struct snap_config c;
	struct snap_layout l;
	struct error err;

	pc_config(&c, 1);
	ASSERT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), 0);
	/* pages: 65536 + 4096 + 64 + 32 = 69728; bytes: 69728 * 4096 */
	EXPECT_EQ(l.total_ram_bytes, 285605888);
	/* TotalRAM = 285605888 / 4096 * (4096 + 8) = 69728 * 4104 */
	EXPECT_EQ(l.total_ram, 286163712);
	EXPECT_EQ(l.header_size, 4096);
	EXPECT_EQ(l.start_size, 4096);
	/* ALIGN4K(16384 + 1 * 32768) */
	EXPECT_EQ(l.state_size, 49152);
	EXPECT_EQ(l.footer_size, 4096);
	/*
	 * Digest tables, 8 per page + 8 per 512 pages (a block):
	 *   pc.ram      p=65536: 524288 + 8 * 128 = 525312
	 *   vga.vram    p=4096:  32768  + 8 * 8   = 32832
	 *   pc.bios     p=64:    512    + 8 * 1   = 520
	 *   acpi.tables p=32:    256    + 8 * 1   = 264
	 */
	EXPECT_EQ(l.digest_tables, 525312 + 32832 + 520 + 264);
	/*
	 * Per section, the table area ALIGN4K(64 + 8p + 8p + 8b) less the
	 * page headers and digest tables (8p + 8p + 8b):
	 *   pc.ram      ALIGN4K(1049664) = 1052672, - 1049600 = 3072
	 *   vga.vram    ALIGN4K(65664)   = 69632,   - 65600   = 4032
	 *   pc.bios     ALIGN4K(1096)    = 4096,    - 1032    = 3064
	 *   acpi.tables ALIGN4K(584)     = 4096,    - 520     = 3576
	 */
	EXPECT_EQ(l.padding, 3072 + 4032 + 3064 + 3576);
	/* 4096 + 4096 + 49152 + 286163712 + 558928 + 13744 + 4096 */
	EXPECT_EQ(l.image_size, 286797824);
	/* Registry order: the state area ends at 8192 + 49152 = 57344. */
	EXPECT_EQ(l.sections[0].offset, 57344);
	EXPECT_EQ(l.sections[0].table_off, 57344 + 64);
	EXPECT_EQ(l.sections[0].hash_off, 57344 + 64 + 524288);
	EXPECT_EQ(l.sections[0].blocks_off, 57344 + 64 + 524288 + 524288);
	EXPECT_EQ(l.sections[0].data_off, 57344 + 1052672);
	EXPECT_EQ(l.sections[0].size, 1052672 + 268435456);
	/* 57344 + 269488128 */
	EXPECT_EQ(l.sections[1].offset, 269545472);
	/* 269545472 + 69632 + 16777216 */
	EXPECT_EQ(l.sections[2].offset, 286392320);
	/* 286392320 + 4096 + 262144 */
	EXPECT_EQ(l.sections[3].offset, 286658560);
	/* 286658560 + 4096 + 131072 */
	EXPECT_EQ(l.footer_off, 286793728);
	EXPECT_TRUE(layout_sound(&c, &l));
}

TEST(sizing_default_pc_two_vcpus)
{
	struct snap_config c;
	struct snap_layout l;
	struct error err;

	pc_config(&c, 2);
	ASSERT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), 0);
	/* ALIGN4K(16384 + 2 * 32768) */
	EXPECT_EQ(l.state_size, 81920);
	EXPECT_EQ(l.total_ram, 286163712);
	EXPECT_EQ(l.digest_tables, 558928);
	EXPECT_EQ(l.padding, 13744);
	/* 286797824 + 32768 more for the second vCPU */
	EXPECT_EQ(l.image_size, 286830592);
	EXPECT_TRUE(layout_sound(&c, &l));
}

/* The registry gives the same regions as the hand-written config. */
TEST(snapcfg_reads_the_registry)
{
	struct pc_config pc = {.ram_size = 256 * MiB_, .vram_size = 16 * MiB_, .nr_cpus = 2};
	struct snap_config c, want;
	struct snap_layout l;
	struct error err;
	unsigned int i;

	ASSERT_EQ(snapcfg__from_pc(&pc, &c, NULL), 0);
	pc_config(&want, 2);
	EXPECT_STREQ(c.machine, SNAP_MACHINE_PC);
	EXPECT_EQ(c.vcpus, 2);
	EXPECT_EQ(c.ram_size, 256 * MiB_);
	EXPECT_EQ(c.vram_size, 16 * MiB_);
	ASSERT_EQ(c.nr_regions, 4);
	for (i = 0; i < 4; i++) {
		EXPECT_STREQ(c.regions[i].id, want.regions[i].id);
		EXPECT_EQ(c.regions[i].size, want.regions[i].size);
	}
	EXPECT_EQ(snap_config_compare(&c, &want, &err), 0);
	ASSERT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), 0);
	EXPECT_EQ(l.image_size, 286830592);
}

TEST(registry_order)
{
	struct snap_config c;
	struct snap_layout l;
	struct error err;
	unsigned int k;

	pc_config(&c, 1);
	ASSERT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), 0);
	EXPECT_EQ(l.order, SNAP_ORDER_REGISTRY);
	for (k = 0; k < 4; k++) {
		EXPECT_EQ(l.sections[k].region, k);
		EXPECT_EQ(l.sections[k].id, k + 1);
		EXPECT_EQ(snap_layout_section(&l, k), &l.sections[k]);
	}
	EXPECT_NULL(snap_layout_section(&l, 4));
	EXPECT_TRUE(layout_sound(&c, &l));
}

TEST(size_order_largest_first_ties_in_registry_order)
{
	struct snap_config c = {.machine = "test", .vcpus = 1};
	struct snap_layout reg, sz;
	struct error err;

	add_region(&c, "a", 64 * KiB_);
	add_region(&c, "b", 1 * MiB_);
	add_region(&c, "c", 64 * KiB_);
	add_region(&c, "d", 2 * MiB_);
	ASSERT_EQ(snap_layout_compute(&c, SNAP_ORDER_SIZE, &sz, &err), 0);
	EXPECT_EQ(sz.order, SNAP_ORDER_SIZE);
	EXPECT_EQ(sz.sections[0].region, 3); /* d, 2M */
	EXPECT_EQ(sz.sections[1].region, 1); /* b, 1M */
	EXPECT_EQ(sz.sections[2].region, 0); /* a, 64K, before c */
	EXPECT_EQ(sz.sections[3].region, 2);
	EXPECT_EQ(sz.sections[0].id, 4);
	EXPECT_EQ(snap_layout_section(&sz, 3), &sz.sections[0]);
	EXPECT_TRUE(layout_sound(&c, &sz));

	/* The order moves sections, never the size. */
	ASSERT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &reg, &err), 0);
	EXPECT_TRUE(layout_sound(&c, &reg));
	EXPECT_EQ(reg.image_size, sz.image_size);
	EXPECT_EQ(reg.padding, sz.padding);
	EXPECT_NE(reg.sections[0].region, sz.sections[0].region);
}

TEST(padding_is_the_rest)
{
	struct snap_config c = {.machine = "test", .vcpus = 3};
	struct snap_layout l;
	struct error err;

	/* One page: ALIGN4K(64 + 8 + 8 + 8) - 24 = 4072 of padding. */
	add_region(&c, "one", 4096);
	ASSERT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), 0);
	EXPECT_EQ(l.padding, 4072);
	EXPECT_EQ(l.total_ram, 4104);
	EXPECT_EQ(l.digest_tables, 16);
	/* ALIGN4K(16384 + 3 * 32768) = 114688 */
	EXPECT_EQ(l.state_size, 114688);
	EXPECT_EQ(l.image_size, 4096 + 4096 + 114688 + 4104 + 16 + 4072 + 4096);
	EXPECT_EQ(l.padding, l.image_size - l.header_size - l.start_size - l.state_size -
				 l.total_ram - l.digest_tables - l.footer_size);
	EXPECT_TRUE(layout_sound(&c, &l));

	/*
	 * 763 pages (2 blocks) fill the table area exactly, no rounding:
	 * 64 + 8 * 763 + 8 * 763 + 8 * 2 = 12288. Only the descriptor is left.
	 */
	c.regions[0].size = 763 * 4096;
	ASSERT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), 0);
	EXPECT_EQ(l.sections[0].data_off - l.sections[0].offset, 12288);
	EXPECT_EQ(l.digest_tables, 8 * 763 + 8 * 2);
	EXPECT_EQ(l.padding, 64);
	EXPECT_TRUE(layout_sound(&c, &l));

	/* 512 pages are one block, 513 two. */
	c.regions[0].size = 512 * 4096;
	ASSERT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), 0);
	EXPECT_EQ(l.digest_tables, 8 * 512 + 8);
	c.regions[0].size = 513 * 4096;
	ASSERT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), 0);
	EXPECT_EQ(l.digest_tables, 8 * 513 + 16);
	EXPECT_TRUE(layout_sound(&c, &l));
}

TEST(region_ids)
{
	struct snap_config c = {.machine = "test", .vcpus = 1};
	struct snap_layout l;
	struct error err;

	add_region(&c, "x", 4096);
	/* 31 bytes: the longest id. */
	memset(c.regions[0].id, 'a', 31);
	c.regions[0].id[31] = '\0';
	EXPECT_EQ(snap_config_check(&c, &err), 0);
	EXPECT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), 0);
	/* 32 bytes leave no room for the NUL. */
	memset(c.regions[0].id, 'a', 32);
	EXPECT_EQ(snap_config_check(&c, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "longer than 31 bytes"));
	EXPECT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), -EINVAL);
	/* Empty, spaces, control characters, duplicates. */
	memset(c.regions[0].id, 0, 32);
	EXPECT_EQ(snap_config_check(&c, &err), -EINVAL);
	snprintf(c.regions[0].id, 32, "a b");
	EXPECT_EQ(snap_config_check(&c, &err), -EINVAL);
	snprintf(c.regions[0].id, 32, "a\033[1m");
	EXPECT_EQ(snap_config_check(&c, &err), -EINVAL);
	snprintf(c.regions[0].id, 32, "ram");
	add_region(&c, "ram", 4096);
	EXPECT_EQ(snap_config_check(&c, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "twice"));
	snprintf(c.regions[1].id, 32, "rom");
	EXPECT_EQ(snap_config_check(&c, &err), 0);
}

TEST(region_sizes)
{
	struct snap_config c = {.machine = "test", .vcpus = 1};
	struct snap_layout l;
	struct error err;

	add_region(&c, "r", 0);
	EXPECT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "region r"));
	c.regions[0].size = 4096 + 512;
	EXPECT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), -EINVAL);
	c.regions[0].size = SNAP_REGION_SIZE_MAX + 4096;
	EXPECT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), -EINVAL);
	c.regions[0].size = ~0ULL & ~4095ULL;
	EXPECT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), -EINVAL);
	/* The largest allowed region, 16 times, does not overflow. */
	c.nr_regions = 0;
	while (c.nr_regions < SNAP_MAX_REGIONS) {
		char id[8];

		snprintf(id, sizeof(id), "r%u", c.nr_regions);
		add_region(&c, id, SNAP_REGION_SIZE_MAX);
	}
	c.vcpus = SNAP_MAX_VCPUS;
	ASSERT_EQ(snap_layout_compute(&c, SNAP_ORDER_SIZE, &l, &err), 0);
	EXPECT_TRUE(layout_sound(&c, &l));
	EXPECT_GT(l.image_size, 16 * SNAP_REGION_SIZE_MAX);
}

TEST(counts_and_machine)
{
	struct snap_config c = {.machine = "test", .vcpus = 1};
	struct snap_layout l;
	struct error err;

	/* No regions. */
	EXPECT_EQ(snap_config_check(&c, &err), -EINVAL);
	add_region(&c, "r", 4096);
	EXPECT_EQ(snap_config_check(&c, &err), 0);
	c.nr_regions = SNAP_MAX_REGIONS + 1;
	EXPECT_EQ(snap_config_check(&c, &err), -EINVAL);
	c.nr_regions = 1;
	c.vcpus = 0;
	EXPECT_EQ(snap_config_check(&c, &err), -EINVAL);
	c.vcpus = SNAP_MAX_VCPUS + 1;
	EXPECT_EQ(snap_config_check(&c, &err), -EINVAL);
	c.vcpus = 1;
	c.machine[0] = '\0';
	EXPECT_EQ(snap_config_check(&c, &err), -EINVAL);
	memset(c.machine, 'm', sizeof(c.machine));
	EXPECT_EQ(snap_config_check(&c, &err), -EINVAL);
	snprintf(c.machine, sizeof(c.machine), "test");
	EXPECT_EQ(snap_layout_compute(&c, 2, &l, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "order"));
}

TEST(config_compare_names_the_first_difference)
{
	struct snap_config a, b;
	struct error err;

	pc_config(&a, 1);
	pc_config(&b, 1);
	EXPECT_EQ(snap_config_compare(&a, &b, &err), 0);
	b.vcpus = 2;
	EXPECT_EQ(snap_config_compare(&a, &b, &err), -EINVAL);
	EXPECT_STREQ(err.msg, "vcpus: the image has 1, the VM 2");
	b.vcpus = 1;
	b.ram_size = 512 * MiB_;
	b.regions[0].size = 512 * MiB_;
	EXPECT_EQ(snap_config_compare(&a, &b, &err), -EINVAL);
	EXPECT_STREQ(
	    err.msg,
	    "mem: the image has 256 MiB (268435456 bytes), the VM 512 MiB (536870912 bytes)");
	b.ram_size = a.ram_size;
	EXPECT_EQ(snap_config_compare(&a, &b, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "region pc.ram"));
	b.regions[0].size = a.regions[0].size;
	snprintf(b.regions[3].id, 32, "acpi.other");
	EXPECT_EQ(snap_config_compare(&a, &b, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "acpi.other"));
	snprintf(b.machine, 32, "other");
	EXPECT_EQ(snap_config_compare(&a, &b, &err), -EINVAL);
	EXPECT_NOT_NULL(strstr(err.msg, "machine"));
}

TEST(default_metadata)
{
	struct snap_config c;
	char buf[SNAP_METADATA_MAX + 1];

	pc_config(&c, 2);
	snap_metadata_build(&c, NULL, buf, sizeof(buf));
	EXPECT_STREQ(buf,
		     "machine=kvmsnap-pc-1\nmem=256M\nvcpus=2\nvram=16M\nkvmsnap=" KVMSNAP_VERSION
		     "\n");
	snap_metadata_build(&c, "dirtier:ws=64M", buf, sizeof(buf));
	EXPECT_STREQ(buf,
		     "machine=kvmsnap-pc-1\nmem=256M\nvcpus=2\nvram=16M\nguest=dirtier:ws=64M\n"
		     "kvmsnap=" KVMSNAP_VERSION "\n");
}

TEST(size_strings)
{
	char b[32];

	EXPECT_STREQ(snap_size_str(64 * MiB_, b, sizeof(b)), "64 MiB");
	EXPECT_STREQ(snap_size_str(286240768, b, sizeof(b)), "273.0 MiB");
	EXPECT_STREQ(snap_size_str(4096, b, sizeof(b)), "4 KiB");
	EXPECT_STREQ(snap_size_str(100, b, sizeof(b)), "100 bytes");
	EXPECT_STREQ(snap_size_str(3ULL << 30, b, sizeof(b)), "3 GiB");
	EXPECT_STREQ(snap_size_str(1090912256, b, sizeof(b)), "1.02 GiB");
	EXPECT_STREQ(snap_size_str(2637824, b, sizeof(b)), "2.52 MiB");
}

TEST_HARNESS_MAIN
