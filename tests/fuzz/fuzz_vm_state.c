// SPDX-License-Identifier: GPL-2.0
/*
 * The VM state records: vm_state__check() decodes a whole state area as a
 * restore would, without KVM. The first input byte is the VM: bits 0-1 one
 * to four vCPUs, bit 2 a UART, bit 7 store the right checksum (and, if the
 * header's "used" cannot be right, the whole area as used); the rest is the
 * state area, in a buffer of exactly its size.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "fuzz.h"
#include "state/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct error err;
	unsigned int nr_cpus;
	bool uart, fix;
	uint8_t *buf;

	if (!size)
		return 0;
	nr_cpus = 1 + (data[0] & 3);
	uart = data[0] & 4;
	fix = data[0] & 0x80;
	data++;
	size--;
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (fix)
		fuzz_fix_state_checksum(buf, size);
	vm_state__check(buf, size, nr_cpus, uart, &err);
	free(buf);
	return 0;
}
