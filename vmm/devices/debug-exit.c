// SPDX-License-Identifier: GPL-2.0
#include "devices/debug-exit.h"

#include <string.h>

#include "kvm.h"

int debug_exit__status(uint64_t value)
{
	return (int)(((value << 1) | 1) & 0xff);
}

static void debug_exit__io(struct kvm_cpu *cpu, uint64_t addr, uint8_t *data, uint32_t size,
			   bool is_write, void *opaque)
{
	uint32_t v = 0;

	(void)addr;
	(void)opaque;
	if (!is_write) {
		memset(data, 0xff, size);
		return;
	}
	memcpy(&v, data, size > 4 ? 4 : size);
	kvm__request_exit(cpu->kvm, debug_exit__status(v),
			  "guest wrote 0x%x to the debug-exit port", v);
}

int debug_exit__init(struct kvm *kvm, uint16_t port)
{
	return kvm__register_pio(kvm, port, 1, debug_exit__io, NULL);
}
