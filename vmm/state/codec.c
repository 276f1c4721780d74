// SPDX-License-Identifier: GPL-2.0
/* Record type names and the checks that every payload decoder shares. */
#include "state/state.h"

#include <errno.h>

static const struct {
	uint32_t type;
	const char *name;
} vm_state_names[] = {
    {VM_STATE_REGS, "REGS"},
    {VM_STATE_SREGS, "SREGS"},
    {VM_STATE_XSAVE, "XSAVE"},
    {VM_STATE_FPU, "FPU"},
    {VM_STATE_XCRS, "XCRS"},
    {VM_STATE_MSRS, "MSRS"},
    {VM_STATE_LAPIC, "LAPIC"},
    {VM_STATE_EVENTS, "EVENTS"},
    {VM_STATE_MP_STATE, "MP_STATE"},
    {VM_STATE_DEBUGREGS, "DEBUGREGS"},
    {VM_STATE_PROGRESS, "PROGRESS"},
    {VM_STATE_PIC_MASTER, "PIC_MASTER"},
    {VM_STATE_PIC_SLAVE, "PIC_SLAVE"},
    {VM_STATE_IOAPIC, "IOAPIC"},
    {VM_STATE_PIT, "PIT"},
    {VM_STATE_CLOCK, "CLOCK"},
    {VM_STATE_UART, "UART"},
};

const char *vm_state__type_name(uint32_t type)
{
	size_t i;

	for (i = 0; i < sizeof(vm_state_names) / sizeof(vm_state_names[0]); i++)
		if (vm_state_names[i].type == type)
			return vm_state_names[i].name;
	return "?";
}

int vm_state__check_len(uint32_t type, uint32_t len, uint32_t want, struct error *err)
{
	if (len == want)
		return 0;
	return err_set(err, -EINVAL, "%s record: payload is %u bytes, expected %u",
			vm_state__type_name(type), len, want);
}

int vm_state__check_max(uint32_t type, const char *field, uint64_t v, uint64_t max,
			struct error *err)
{
	if (v <= max)
		return 0;
	return err_set(err, -EINVAL, "%s record: %s is %llu, at most %llu is valid",
			vm_state__type_name(type), field, (unsigned long long)v,
			(unsigned long long)max);
}
