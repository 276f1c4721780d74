// SPDX-License-Identifier: GPL-2.0
/* The memory-region registry and the PC memory map, without KVM. */
#include "../harness.h"

#include "vmm/layout.h"
#include "vmm/mem.h"
#include "vmm/pc.h"
#include "vmm/util/util.h"

FIXTURE(pc)
{
	struct mem_registry reg;
};

FIXTURE_SETUP(pc)
{
	struct pc_config cfg = {.ram_size = 256 * MiB, .vram_size = 16 * MiB, .nr_cpus = 2};

	mem__init(&self->reg);
	ASSERT_EQ(pc__setup_memory(&self->reg, &cfg, NULL), 0);
}

FIXTURE_TEARDOWN(pc)
{
	mem__exit(&self->reg);
}

TEST_F(pc, regions_in_registry_order)
{
	static const char *const names[] = {"pc.ram", "vga.vram", "pc.bios", "acpi.tables"};
	static const uint64_t sizes[] = {256 * MiB, 16 * MiB, 256 * KiB, 128 * KiB};
	unsigned int i;

	ASSERT_EQ(self->reg.nr_regions, 4);
	for (i = 0; i < 4; i++) {
		EXPECT_STREQ(self->reg.regions[i].name, names[i]);
		EXPECT_EQ(self->reg.regions[i].size, sizes[i]);
		EXPECT_NOT_NULL(self->reg.regions[i].host);
	}
	EXPECT_EQ(mem__total_size(&self->reg), 256 * MiB + 16 * MiB + 384 * KiB);
	EXPECT_TRUE(self->reg.regions[2].flags & MEM_REGION_READONLY);
	EXPECT_TRUE(self->reg.regions[0].flags & MEM_REGION_RAM);
}

TEST_F(pc, ram_is_split_around_the_legacy_hole)
{
	struct mem_region *ram = mem__find_region(&self->reg, "pc.ram");

	ASSERT_NOT_NULL(ram);
	ASSERT_EQ(ram->nr_ranges, 2);
	EXPECT_EQ(ram->ranges[0].gpa, 0);
	EXPECT_EQ(ram->ranges[0].size, 640 * KiB);
	EXPECT_EQ(ram->ranges[1].gpa, 1 * MiB);
	EXPECT_EQ(ram->ranges[1].offset, 1 * MiB);
	EXPECT_EQ(ram->ranges[1].size, 255 * MiB);
	EXPECT_NE(ram->ranges[0].slot, ram->ranges[1].slot);
	/* The hole itself is not RAM; its option-ROM window is the firmware's start. */
	EXPECT_NULL(mem__gpa_to_host(&self->reg, 0xa0000, 1));
	EXPECT_EQ(mem__gpa_to_host(&self->reg, OPTION_ROM_GPA, OPTION_ROM_SIZE),
		  (uint8_t *)mem__find_region(&self->reg, "pc.bios")->host);
	EXPECT_NOT_NULL(mem__gpa_to_host(&self->reg, 0x9f000, 4096));
}

TEST(ram_above_4g)
{
	struct pc_config cfg = {.ram_size = 4 * GiB, .vram_size = 1 * MiB, .nr_cpus = 1};
	struct mem_registry reg;
	struct mem_region *ram;

	mem__init(&reg);
	ASSERT_EQ(pc__setup_memory(&reg, &cfg, NULL), 0);
	ram = mem__find_region(&reg, "pc.ram");
	ASSERT_EQ(ram->nr_ranges, 3);
	EXPECT_EQ(ram->ranges[1].gpa + ram->ranges[1].size, LOW_RAM_LIMIT);
	EXPECT_EQ(ram->ranges[2].gpa, 4 * GiB);
	EXPECT_EQ(ram->ranges[2].offset, LOW_RAM_LIMIT);
	EXPECT_EQ(ram->ranges[2].size, 1 * GiB);
	EXPECT_EQ((char *)mem__gpa_to_host(&reg, 4 * GiB, 8), (char *)ram->host + 3 * GiB);
	mem__exit(&reg);
}

TEST_F(pc, vga_text_window_aliases_the_framebuffer)
{
	struct mem_region *vga = mem__find_region(&self->reg, "vga.vram");
	char *text = mem__gpa_to_host(&self->reg, VGA_TEXT_GPA, 80 * 25 * 2);
	char *lfb = mem__gpa_to_host(&self->reg, VGA_LFB_GPA, 4096);

	ASSERT_NOT_NULL(vga);
	ASSERT_EQ(vga->nr_ranges, 2);
	ASSERT_NOT_NULL(text);
	EXPECT_EQ(text, (char *)vga->host);
	EXPECT_EQ(lfb, (char *)vga->host);
	text[0] = 'K';
	EXPECT_EQ(lfb[0], 'K');
}

TEST_F(pc, gpa_to_host_bounds)
{
	uint64_t ram_end = 256 * MiB;

	EXPECT_NOT_NULL(mem__gpa_to_host(&self->reg, ram_end - 8, 8));
	EXPECT_NULL(mem__gpa_to_host(&self->reg, ram_end - 8, 9));
	EXPECT_NULL(mem__gpa_to_host(&self->reg, ram_end, 1));
	/* Crossing from one range into the next is refused, even if both exist. */
	EXPECT_NULL(mem__gpa_to_host(&self->reg, 640 * KiB - 4, 8));
	EXPECT_NULL(mem__gpa_to_host(&self->reg, UINT64_MAX - 2, 8));
	EXPECT_NULL(mem__gpa_to_host(&self->reg, 4096, UINT64_MAX));
	EXPECT_NULL(mem__gpa_to_host(&self->reg, MSGPORT_GPA, 8));
	EXPECT_NOT_NULL(mem__gpa_to_host(&self->reg, BIOS_GPA + BIOS_SIZE - 16, 16));
	EXPECT_NOT_NULL(mem__gpa_to_host(&self->reg, ACPI_GPA, ACPI_SIZE));
	EXPECT_EQ(mem__write(&self->reg, ram_end - 2, "abcd", 4), -EFAULT);
	EXPECT_EQ(mem__write(&self->reg, 0x100000, "abcd", 4), 0);
}

TEST_F(pc, firmware_reset_vector_halts)
{
	const uint8_t *rv = mem__gpa_to_host(&self->reg, 0xfffffff0ULL, 4);

	ASSERT_NOT_NULL(rv);
	EXPECT_EQ(rv[0], 0xfa); /* cli */
	EXPECT_EQ(rv[1], 0xf4); /* hlt */
}

TEST(bad_ranges_are_refused)
{
	struct mem_registry reg;
	struct mem_region *a, *b;
	struct error err;

	mem__init(&reg);
	ASSERT_EQ(mem__add_region(&reg, "a", 64 * KiB, 0, &a, NULL), 0);
	ASSERT_EQ(mem__add_region(&reg, "b", 64 * KiB, 0, &b, NULL), 0);
	EXPECT_EQ(mem__add_region(&reg, "a", 4096, 0, NULL, &err), -EINVAL);
	EXPECT_STREQ(err.msg, "memory region 'a': name empty, too long or already used");
	EXPECT_EQ(mem__add_region(&reg, "", 4096, 0, NULL, NULL), -EINVAL);
	EXPECT_EQ(mem__add_region(&reg, "z", 0, 0, NULL, &err), -EINVAL);
	EXPECT_STREQ(err.msg, "memory region z: size 0 out of range");
	EXPECT_EQ(mem__add_range(&reg, a, 0x10000, 0x1000, 0x123, &err), -EINVAL);
	EXPECT_STREQ(err.msg, "memory region a: bad range gpa 0x10000 size 0x1000 offset 0x123");
	EXPECT_EQ(err.code, -EINVAL);
	EXPECT_EQ(mem__add_range(&reg, a, 0x10000, 0x11000, 0, NULL), -EINVAL);
	EXPECT_EQ(mem__add_range(&reg, a, 0x10000, 0x1000, 0x10000, NULL), -EINVAL);
	EXPECT_EQ(mem__add_range(&reg, a, 0x10000, 0x10000, 0, NULL), 0);
	EXPECT_EQ(mem__add_range(&reg, b, 0x1f000, 0x2000, 0, &err), -EEXIST);
	EXPECT_STREQ(err.msg, "memory region b: range at 0x1f000 overlaps a at 0x10000");
	EXPECT_EQ(err.code, -EEXIST);
	EXPECT_EQ(mem__add_range(&reg, b, 0x20000, 0x2000, 0, NULL), 0);
	EXPECT_EQ(a->ranges[0].slot, 0);
	EXPECT_EQ(b->ranges[0].slot, 1);
	mem__exit(&reg);
}

TEST(bad_configs_are_refused)
{
	struct pc_config ok = {.ram_size = 256 * MiB, .vram_size = 16 * MiB, .nr_cpus = 1}, c;
	struct error err;

	EXPECT_EQ(pc__check_config(&ok, &err), 0);
	c = ok, c.ram_size = 1 * MiB;
	EXPECT_EQ(pc__check_config(&c, &err), -EINVAL);
	c = ok, c.ram_size = 65 * GiB;
	EXPECT_EQ(pc__check_config(&c, &err), -EINVAL);
	EXPECT_STREQ(err.msg, "--mem 65G: must be a multiple of 4K between 2M and 64G");
	c = ok, c.ram_size = 256 * MiB + 1;
	EXPECT_EQ(pc__check_config(&c, &err), -EINVAL);
	c = ok, c.vram_size = 512 * MiB;
	EXPECT_EQ(pc__check_config(&c, &err), -EINVAL);
	c = ok, c.vram_size = 100 * KiB;
	EXPECT_EQ(pc__check_config(&c, &err), -EINVAL);
	EXPECT_STREQ(err.msg, "--vram 100K: must be a multiple of 64K between 64K and 256M");
	c = ok, c.nr_cpus = 0;
	EXPECT_EQ(pc__check_config(&c, &err), -EINVAL);
	c = ok, c.nr_cpus = 65;
	EXPECT_EQ(pc__check_config(&c, &err), -EINVAL);
	EXPECT_STREQ(err.msg, "--vcpus 65: must be between 1 and 64");
}

TEST_HARNESS_MAIN
