// SPDX-License-Identifier: GPL-2.0
/* TEMPORARY placeholder while the ACPI builder is written; replaced wholesale. */
#include "acpi/acpi.h"

int acpi__build(void *buf, const struct acpi_config *cfg)
{
	(void)buf;
	(void)cfg;
	return 0;
}

uint8_t acpi__checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return (uint8_t)-sum;
}
