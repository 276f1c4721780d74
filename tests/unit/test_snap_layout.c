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

/* Invariants every layout must satisfy, whatever the order. */
static bool layout_sound(const struct snap_config *c, const struct snap_layout *l)
{
	uint64_t pos = l->state_off + l->state_size, other;
	bool seen[SNAP_MAX_REGIONS] = {false};
	unsigned int k;

	if (l->header_off != 0 || l->start_off != 4096 || l->state_off != 8192 ||
	    l->nr_sections != c->nr_regions)
		return false;
	for (k = 0; k < l->nr_sections; k++) {
		const struct snap_section *s = &l->sections[k];

		if (s->offset != pos || s->offset % 4096 || s->data_off % 4096 ||
		    s->table_off != s->offset + 64 || s->data_off < s->table_off + 8 * s->pages ||
		    s->data_off - s->table_off - 8 * s->pages >= 4096 ||
		    s->size != s->data_off - s->offset + s->pages * 4096 ||
		    s->id != s->region + 1 || s->pages * 4096 != c->regions[s->region].size ||
		    seen[s->region])
			return false;
		seen[s->region] = true;
		pos += s->size;
	}
	other = l->header_size + l->start_size + l->state_size + l->total_ram + l->footer_size;
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
	 * Per section, ALIGN4K(64 + 8p) - 8p:
	 *   pc.ram      p=65536: ALIGN4K(524352) = 528384, - 524288 = 4096
	 *   vga.vram    p=4096:  ALIGN4K(32832)  = 36864,  - 32768  = 4096
	 *   pc.bios     p=64:    ALIGN4K(576)    = 4096,   - 512    = 3584
	 *   acpi.tables p=32:    ALIGN4K(320)    = 4096,   - 256    = 3840
	 */
	EXPECT_EQ(l.padding, 4096 + 4096 + 3584 + 3840);
	/* 4096 + 4096 + 49152 + 286163712 + 15616 + 4096 */
	EXPECT_EQ(l.image_size, 286240768);
	/* Registry order: the state area ends at 8192 + 49152 = 57344. */
	EXPECT_EQ(l.sections[0].offset, 57344);
	EXPECT_EQ(l.sections[0].data_off, 57344 + 528384);
	EXPECT_EQ(l.sections[0].size, 528384 + 268435456);
	/* 57344 + 268963840 */
	EXPECT_EQ(l.sections[1].offset, 269021184);
	/* 269021184 + 36864 + 16777216 */
	EXPECT_EQ(l.sections[2].offset, 285835264);
	/* 285835264 + 4096 + 262144 */
	EXPECT_EQ(l.sections[3].offset, 286101504);
	/* 286101504 + 4096 + 131072 */
	EXPECT_EQ(l.footer_off, 286236672);
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
	EXPECT_EQ(l.padding, 15616);
	/* 286240768 + 32768 more for the second vCPU */
	EXPECT_EQ(l.image_size, 286273536);
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
	EXPECT_EQ(l.image_size, 286273536);
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

	/* One page: ALIGN4K(64 + 8) - 8 = 4088 of padding. */
	add_region(&c, "one", 4096);
	ASSERT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), 0);
	EXPECT_EQ(l.padding, 4088);
	EXPECT_EQ(l.total_ram, 4104);
	/* ALIGN4K(16384 + 3 * 32768) = 114688 */
	EXPECT_EQ(l.state_size, 114688);
	EXPECT_EQ(l.image_size, 4096 + 4096 + 114688 + 4104 + 4088 + 4096);
	EXPECT_EQ(l.padding, l.image_size - l.header_size - l.start_size - l.state_size -
				 l.total_ram - l.footer_size);
	EXPECT_TRUE(layout_sound(&c, &l));

	/* 504 pages fill the table area exactly: 64 + 8 * 504 = 4096, no rounding. */
	c.regions[0].size = 504 * 4096;
	ASSERT_EQ(snap_layout_compute(&c, SNAP_ORDER_REGISTRY, &l, &err), 0);
	EXPECT_EQ(l.padding, 64);
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
