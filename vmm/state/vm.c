// SPDX-License-Identifier: GPL-2.0
/*
 * The whole VM state: which records make it up, and the restore order.
 * Restore decodes and checks every record before the first KVM call, then
 * loads in the order of Documentation/state-records.md:
 *
 *   1. PICs, IOAPIC, PIT  (VM-wide; QEMU loads them before the vCPUs too)
 *   2. TSC frequency, if this host's differs from the saved one
 *   3. each vCPU: SREGS, REGS, XSAVE/FPU, XCRS, MSRS but TSC_DEADLINE,
 *      LAPIC, TSC_DEADLINE, EVENTS, MP_STATE, DEBUGREGS, PROGRESS
 *   4. devices (the UART may re-assert its line: the irqchip must be loaded)
 *   5. the clock, last, as QEMU sets kvmclock when the VM starts, advanced
 *      by what vCPU 0's TSC ran since it was written; with catch-up, the
 *      TSCs (in 3) and kvmclock also by the host time since the save, and
 *      then KVM_KVMCLOCK_CTRL (vmm/state/clock.c)
 */
#include "state/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/rtc.h"
#include "devices/uart.h"
#include "kvm.h"

/* The VM-wide and device records, decoded. */
/* A device's record, checked by the device, loaded after the vCPUs. */
struct device_record {
	bool seen;
	const uint8_t *payload;
	uint32_t len;
};

struct vm_records {
	uint32_t seen; /* bit (type & 0x1f) of each 0x02xx record */
	struct irqchip_state irq;
	struct vm_clock clock;
	struct device_record uart, rtc;
};

static uint32_t type_bit(uint32_t type)
{
	return 1u << (type & 0x1f);
}

int vm_state__save(struct kvm *kvm, const struct vm_state_devices *devs, uint8_t *buf, size_t cap,
		   size_t *used, struct error *err)
{
	struct snap_state_writer w;
	struct kvm_cpu *cpu;
	uint64_t tsc = 0;
	unsigned int i;
	uint8_t *p;
	int ret = 0;

	snap_state_init(&w, buf, cap);
	kvm__for_each_cpu (kvm, cpu, i) {
		ret = cpu_state__save(cpu, &w, i ? NULL : &tsc, err);
		if (ret)
			break;
	}
	if (!ret)
		ret = irqchip_state__save(kvm, &w, err);
	if (!ret && devs && devs->com1) {
		p = snap_state_add(&w, VM_STATE_UART, 0, UART_STATE_SIZE);
		if (p)
			uart__save(devs->com1, p);
	}
	if (!ret && devs && devs->rtc) {
		p = snap_state_add(&w, VM_STATE_RTC, 0, RTC_STATE_SIZE);
		if (p)
			rtc__save(devs->rtc, p);
	}
	if (!ret)
		ret = clock_state__save(kvm, &w, tsc, err);
	if (!ret)
		ret = snap_state_finish(&w, used, err);
	return ret;
}

/* At most one, for a device this VM has (what: "a UART"), checked by the device. */
static int take_device_record(struct device_record *d, const struct snap_state_record *rec,
			      const void *device, const char *what,
			      int (*check)(const uint8_t *, uint32_t, struct error *),
			      struct error *err)
{
	const char *dev = strchr(what, ' ') + 1;
	int ret;

	if (d->seen)
		return err_set(err, -EINVAL, "two %s records", dev);
	if (!device)
		return err_set(err, -EINVAL, "%s record, but this VM has no %s", what, dev);
	ret = check(rec->payload, rec->len, err);
	d->payload = rec->payload;
	d->len = rec->len;
	d->seen = !ret;
	return ret;
}

static int decode_vm_record(struct vm_records *vm, const struct vm_state_devices *devs,
			    const struct snap_state_record *rec, struct error *err)
{
	const char *name = vm_state__type_name(rec->type);
	int ret;

	if (rec->instance != 0)
		return err_set(err, -EINVAL, "%s record with instance %u, only 0 exists", name,
			       rec->instance);
	if (rec->type == VM_STATE_UART)
		return take_device_record(&vm->uart, rec, devs->com1, "a UART", uart__check_state,
					  err);
	if (rec->type == VM_STATE_RTC)
		return take_device_record(&vm->rtc, rec, devs->rtc, "an RTC", rtc__check_state,
					  err);
	if (vm->seen & type_bit(rec->type))
		return err_set(err, -EINVAL, "two %s records", name);
	switch (rec->type) {
	case VM_STATE_PIC_MASTER:
		ret = vm_state__decode_pic(rec->type, rec->payload, rec->len, &vm->irq.pic[0], err);
		break;
	case VM_STATE_PIC_SLAVE:
		ret = vm_state__decode_pic(rec->type, rec->payload, rec->len, &vm->irq.pic[1], err);
		break;
	case VM_STATE_IOAPIC:
		ret = vm_state__decode_ioapic(rec->payload, rec->len, &vm->irq.ioapic, err);
		break;
	case VM_STATE_PIT:
		ret = vm_state__decode_pit(rec->payload, rec->len, &vm->irq.pit, err);
		break;
	case VM_STATE_CLOCK:
		ret = vm_state__decode_clock(rec->payload, rec->len, &vm->clock, err);
		break;
	default:
		return err_set(err, -EINVAL, "unknown record type 0x%04x", rec->type);
	}
	if (!ret)
		vm->seen |= type_bit(rec->type);
	return ret;
}

static int check_vm_records(const struct vm_records *vm, const struct vm_state_devices *devs,
			    struct error *err)
{
	static const uint32_t required[] = {
	    VM_STATE_PIC_MASTER, VM_STATE_PIC_SLAVE, VM_STATE_IOAPIC, VM_STATE_PIT, VM_STATE_CLOCK,
	};
	unsigned int i;

	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!(vm->seen & type_bit(required[i])))
			return err_set(err, -EINVAL, "no %s record",
				       vm_state__type_name(required[i]));
	if (devs->com1 && !vm->uart.seen)
		return err_set(err, -EINVAL, "no UART record, but this VM has a UART");
	return 0;
}

/* Read every record, decode and check it, and that nothing is missing. */
static int decode_all(unsigned int nr_cpus, const struct vm_state_devices *devs, const uint8_t *buf,
		      size_t len, struct cpu_state *cpus, struct vm_records *vm, struct error *err)
{
	struct snap_state_reader r;
	struct snap_state_record rec;
	unsigned int i;
	int ret;

	ret = snap_state_open(&r, buf, len, err);
	while (!ret && (ret = snap_state_next(&r, &rec, err)) > 0) {
		if ((rec.type >> 8) == 0x01) {
			if (rec.instance >= nr_cpus)
				return err_set(
				    err, -EINVAL, "%s record for vCPU %u, but the VM has %u vCPUs",
				    vm_state__type_name(rec.type), rec.instance, nr_cpus);
			ret = cpu_state__decode(&cpus[rec.instance], &rec, err);
		} else {
			ret = decode_vm_record(vm, devs, &rec, err);
		}
	}
	for (i = 0; !ret && i < nr_cpus; i++)
		ret = cpu_state__check(&cpus[i], i, err);
	if (!ret)
		ret = check_vm_records(vm, devs, err);
	return ret;
}

/* cpus' saved TSCs move forward with catch-up. */
static int load_all(struct kvm *kvm, const struct vm_state_devices *devs, enum vm_clock_mode clock,
		    struct cpu_state *cpus, const struct vm_records *vm, struct error *err)
{
	bool pv = clock == VM_CLOCK_CATCH_UP && clock_state__uses_kvmclock(cpus, kvm->nr_cpus);
	uint64_t advance = 0;
	unsigned int i;
	int ret;

	ret = irqchip_state__restore(kvm, &vm->irq, err);
	if (!ret && vm->clock.tsc_khz && vm->clock.tsc_khz != kvm->tsc_khz)
		for (i = 0; !ret && i < kvm->nr_cpus; i++)
			ret = cpu_state__set_tsc_khz(kvm->cpus[i], vm->clock.tsc_khz, err);
	/* Just before the TSCs are written: the host time they catch up is measured here. */
	if (!ret && pv)
		advance = clock_state__catch_up(&vm->clock, cpus, kvm->nr_cpus, kvm->tsc_khz);
	for (i = 0; !ret && i < kvm->nr_cpus; i++)
		ret = cpu_state__restore(kvm->cpus[i], &cpus[i], err);
	if (!ret && vm->uart.seen)
		ret = uart__restore(devs->com1, vm->uart.payload, vm->uart.len, err);
	if (!ret && vm->rtc.seen)
		ret = rtc__restore(devs->rtc, vm->rtc.payload, vm->rtc.len, err);
	if (!ret)
		ret = clock_state__load(kvm, &vm->clock,
					kvm->nr_cpus ? cpu_state__saved_tsc(&cpus[0]) : 0, advance,
					err);
	if (!ret && pv)
		ret = clock_state__guest_stopped(kvm, err);
	return ret;
}

int vm_state__restore(struct kvm *kvm, const struct vm_state_devices *devs,
		      enum vm_clock_mode clock, const uint8_t *buf, size_t len, struct error *err)
{
	struct vm_state_devices none = {0};
	struct vm_records vm;
	struct cpu_state *cpus;
	unsigned int i;
	int ret;

	memset(&vm, 0, sizeof(vm));
	if (!devs)
		devs = &none;
	cpus = calloc(kvm->nr_cpus ? kvm->nr_cpus : 1, sizeof(*cpus));
	if (!cpus)
		return err_set(err, -ENOMEM, "out of memory for the vCPU state");
	ret = decode_all(kvm->nr_cpus, devs, buf, len, cpus, &vm, err);
	if (!ret)
		ret = load_all(kvm, devs, clock, cpus, &vm, err);
	for (i = 0; i < kvm->nr_cpus; i++)
		cpu_state__free(&cpus[i]);
	free(cpus);
	return ret;
}

int vm_state__check(const uint8_t *buf, size_t len, unsigned int nr_cpus, bool pc_devices,
		    struct error *err)
{
	/* Only tell decode_all that the VM has them. */
	struct uart uart;
	struct rtc rtc;
	struct vm_state_devices devs = {.com1 = pc_devices ? &uart : NULL,
					.rtc = pc_devices ? &rtc : NULL};
	struct vm_records vm;
	struct cpu_state *cpus;
	unsigned int i;
	int ret;

	memset(&vm, 0, sizeof(vm));
	if (!nr_cpus || nr_cpus > SNAP_MAX_VCPUS)
		return err_set(err, -EINVAL, "a VM state for %u vCPUs", nr_cpus);
	cpus = calloc(nr_cpus, sizeof(*cpus));
	if (!cpus)
		return err_set(err, -ENOMEM, "out of memory for the vCPU state");
	ret = decode_all(nr_cpus, &devs, buf, len, cpus, &vm, err);
	for (i = 0; i < nr_cpus; i++)
		cpu_state__free(&cpus[i]);
	free(cpus);
	return ret;
}
