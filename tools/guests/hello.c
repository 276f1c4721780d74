// SPDX-License-Identifier: GPL-2.0
/* hello: say hello on the serial sink and the VGA text screen, then exit. */
#include "rt.h"

void guest_main(unsigned int cpu, const struct kvmsnap_bootinfo *bi)
{
	if (cpu != 0) {
		rt_msg_write(MSGPORT_READY, 1);
		rt_halt();
	}
	rt_puts("kvmsnap hello from ring 3\n");
	rt_printf("kvmsnap hello: %u vCPU%s\n", bi->nr_cpus, bi->nr_cpus == 1 ? "" : "s");
	rt_vga_write(0, 0, VGA_ATTR_TITLE, "Hello from kvmsnap (ring 3)");
	rt_msg_write(MSGPORT_READY, 1);
	rt_exit(bi->params[HELLO_P_CODE]);
}
