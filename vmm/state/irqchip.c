// SPDX-License-Identifier: GPL-2.0
/* The in-kernel PICs, IOAPIC and PIT: read them into records and load them back. */
#include "state/state.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm.h"

static int vm_ioctl(struct kvm *kvm, unsigned long req, void *arg, const char *what,
		    struct error *err)
{
	int e;

	if (ioctl(kvm->vm_fd, req, arg) >= 0)
		return 0;
	e = errno;
	return err_set(err, -e, "%s: %s", what, strerror(e));
}

static int get_chip(struct kvm *kvm, uint32_t id, struct kvm_irqchip *chip, const char *what,
		    struct error *err)
{
	memset(chip, 0, sizeof(*chip));
	chip->chip_id = id;
	return vm_ioctl(kvm, KVM_GET_IRQCHIP, chip, what, err);
}

int irqchip_state__save(struct kvm *kvm, struct snap_state_writer *w, struct error *err)
{
	struct kvm_irqchip chip;
	struct kvm_pit_state2 pit;
	uint8_t *p;
	int ret;

	ret = get_chip(kvm, KVM_IRQCHIP_PIC_MASTER, &chip, "KVM_GET_IRQCHIP (PIC master)", err);
	p = ret ? NULL : snap_state_add(w, VM_STATE_PIC_MASTER, 0, VM_STATE_PIC_SIZE);
	if (p)
		vm_state__encode_pic(&chip.chip.pic, p);
	if (!ret)
		ret =
		    get_chip(kvm, KVM_IRQCHIP_PIC_SLAVE, &chip, "KVM_GET_IRQCHIP (PIC slave)", err);
	p = ret ? NULL : snap_state_add(w, VM_STATE_PIC_SLAVE, 0, VM_STATE_PIC_SIZE);
	if (p)
		vm_state__encode_pic(&chip.chip.pic, p);
	if (!ret)
		ret = get_chip(kvm, KVM_IRQCHIP_IOAPIC, &chip, "KVM_GET_IRQCHIP (IOAPIC)", err);
	p = ret ? NULL : snap_state_add(w, VM_STATE_IOAPIC, 0, VM_STATE_IOAPIC_SIZE);
	if (p)
		vm_state__encode_ioapic(&chip.chip.ioapic, p);
	if (!ret)
		ret = vm_ioctl(kvm, KVM_GET_PIT2, &pit, "KVM_GET_PIT2", err);
	p = ret ? NULL : snap_state_add(w, VM_STATE_PIT, 0, VM_STATE_PIT_SIZE);
	if (p)
		vm_state__encode_pit(&pit, p);
	return ret;
}

int irqchip_state__restore(struct kvm *kvm, const struct irqchip_state *s, struct error *err)
{
	struct kvm_irqchip chip;
	struct kvm_pit_state2 pit = s->pit;
	int ret;

	memset(&chip, 0, sizeof(chip));
	chip.chip_id = KVM_IRQCHIP_PIC_MASTER;
	chip.chip.pic = s->pic[0];
	ret = vm_ioctl(kvm, KVM_SET_IRQCHIP, &chip, "KVM_SET_IRQCHIP (PIC master)", err);
	if (ret)
		return ret;
	memset(&chip, 0, sizeof(chip));
	chip.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	chip.chip.pic = s->pic[1];
	ret = vm_ioctl(kvm, KVM_SET_IRQCHIP, &chip, "KVM_SET_IRQCHIP (PIC slave)", err);
	if (ret)
		return ret;
	memset(&chip, 0, sizeof(chip));
	chip.chip_id = KVM_IRQCHIP_IOAPIC;
	chip.chip.ioapic = s->ioapic;
	ret = vm_ioctl(kvm, KVM_SET_IRQCHIP, &chip, "KVM_SET_IRQCHIP (IOAPIC)", err);
	if (ret)
		return ret;
	/* KVM restarts channel 0 from its count and the current time, not count_load_time. */
	return vm_ioctl(kvm, KVM_SET_PIT2, &pit, "KVM_SET_PIT2", err);
}
