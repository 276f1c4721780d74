// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel loaders: loader__load_image() (Multiboot v1 first, then ELF64,
 * as loader__load_kernel() does for a file) loads the input into a fresh
 * PC memory registry of 16 MiB RAM, as tests/unit/test_loader_elf.c and
 * test_loader_multiboot.c set one up. The input is the kernel file, in a
 * buffer of exactly its size; no modules.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "fuzz.h"
#include "loader/loader.h"
#include "pc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pc_config cfg = {.ram_size = 16 << 20, .vram_size = 64 << 10, .nr_cpus = 1};
	struct kernel_args args = {.path = "fuzz.elf", .append = "console=ttyS0 fuzz"};
	static struct mem_registry reg;
	static bool ready;
	struct boot_state boot;
	struct error err;
	uint8_t *buf;

	if (size > KERNEL_FILE_MAX)
		return 0;
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (!ready) {
		mem__init(&reg);
		if (pc__setup_memory(&reg, &cfg, NULL))
			abort(); /* the set-up, not the input */
		ready = true;
	}
	loader__load_image(&reg, &args, buf, size, &boot, &err);
	free(buf);
	return 0;
}
