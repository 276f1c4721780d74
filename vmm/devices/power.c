// SPDX-License-Identifier: GPL-2.0
/* ACPI sleep control, sleep status and reset registers; see power.h. */
#include "devices/power.h"

#include <string.h>

#include "kvm.h"
#include "layout.h"

#define SLP_EN	       0x20 /* sleep control: SLP_EN */
#define SLP_TYP(v)     (((v) >> 2) & 0x7)
#define WAK_STS	       0x80 /* sleep status: the guest waits for it after S1-S4 */
#define NR_POWER_PORTS (PORT_ACPI_RESET - PORT_ACPI_SLEEP_CONTROL + 1)

static void power__io(struct kvm_cpu *cpu, uint64_t addr, uint8_t *data, uint32_t size,
		      bool is_write, void *opaque)
{
	uint8_t v = data[0];

	(void)opaque;
	if (!is_write) {
		/*
		 * Only S5 is offered (\_S5 is the DSDT's one sleep object), so a
		 * guest never waits for a wake-up: WAK_STS reads set.
		 */
		memset(data, 0, size);
		if (addr == PORT_ACPI_SLEEP_STATUS)
			data[0] = WAK_STS;
		return;
	}
	if (addr == PORT_ACPI_SLEEP_CONTROL && (v & SLP_EN) && SLP_TYP(v) == ACPI_SLP_TYP_S5)
		kvm__request_exit(cpu->kvm, EXIT_OK, "the guest powered off (ACPI S5)");
	else if (addr == PORT_ACPI_RESET && v == ACPI_RESET_VALUE)
		kvm__request_exit(cpu->kvm, EXIT_GUEST_RESET,
				  "the guest asked for a reset (ACPI reset register)");
}

int power__init(struct kvm *kvm)
{
	return kvm__register_pio(kvm, PORT_ACPI_SLEEP_CONTROL, NR_POWER_PORTS, power__io, NULL);
}
