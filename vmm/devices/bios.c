// SPDX-License-Identifier: GPL-2.0
/*
 * kvmsnap enters guests directly, so the firmware region holds no BIOS: an
 * ID string at its start (for people reading an image) and, at the reset
 * vector, "cli; hlt; jmp $-2" so that a guest that resets itself stops.
 */
#include "devices/bios.h"

#include <string.h>

#define BIOS_ID "kvmsnap firmware: direct boot, no BIOS services\n"

void bios__fill(void *host, uint64_t size)
{
	static const uint8_t reset[] = {0xfa, 0xf4, 0xeb, 0xfd};
	uint8_t *p = host;

	memset(p, 0xff, size);
	memcpy(p, BIOS_ID, sizeof(BIOS_ID));
	/* The reset vector is 16 bytes below 4 GiB. */
	memcpy(p + size - 16, reset, sizeof(reset));
}
