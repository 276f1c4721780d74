/* SPDX-License-Identifier: GPL-2.0 */
/* The pc.bios firmware region: an ID block and a reset vector that halts. */
#ifndef KVMSNAP_BIOS_H
#define KVMSNAP_BIOS_H

#include <stdint.h>

void bios__fill(void *host, uint64_t size);

#endif
