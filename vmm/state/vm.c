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
 *      by what vCPU 0's TSC ran since it was written
 */
#include "state/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "devices/uart.h"
#include "kvm.h"

/* The VM-wide and device records, decoded. */
struct vm_records {
	uint32_t seen; /* bit (type & 0x1f) of each 0x02xx record */
	bool seen_uart;
	struct irqchip_state irq;
	struct vm_clock clock;
	const uint8_t *uart;
	uint32_t uart_len;
};

static uint32_t type_bit(uint32_t type)
{
	return 1u << (type & 0x1f);
}

/* Nanoseconds in delta TSC cycles at khz; 0 past a minute (not a gap, a bad value). */
static uint64_t tsc_delta_ns(uint64_t from, uint64_t to, uint32_t khz)
{
	uint64_t d = to - from;

	if (!khz || to <= from || d / khz > 60000)
		return 0;
	return d * 1000000 / khz;
}

/*
 * kvmclock as it was when vCPU 0's TSC was saved (tsc): the vCPU, irqchip
 * and UART records read in between take milliseconds on a slow host, and a
 * clock read that much later than the TSC would, once restored, run that
 * much ahead of it: a Linux guest's clocksource watchdog then marks its TSC
 * unstable (1.8 ms seen in the nested VM). The guest's own TSC, read just
 * before the clock, measures the gap.
 */
static int save_clock(struct kvm *kvm, struct snap_state_writer *w, uint64_t tsc, struct error *err)
{
	struct vm_clock c;
	uint64_t now_tsc = 0, gap;
	uint8_t *p;
	int e, ret;

	memset(&c, 0, sizeof(c));
	if (tsc && kvm->nr_cpus) {
		ret = cpu_state__read_tsc(kvm->cpus[0], &now_tsc, err);
		if (ret)
			return ret;
	}
	if (ioctl(kvm->vm_fd, KVM_GET_CLOCK, &c.data) < 0) {
		e = errno;
		return err_set(err, -e, "KVM_GET_CLOCK: %s", strerror(e));
	}
	gap = tsc ? tsc_delta_ns(tsc, now_tsc, kvm->tsc_khz) : 0;
	if (gap < c.data.clock)
		c.data.clock -= gap;
	c.tsc_khz = kvm->tsc_khz;
	p = snap_state_add(w, VM_STATE_CLOCK, 0, VM_STATE_CLOCK_SIZE);
	if (p)
		vm_state__encode_clock(&c, p);
	return 0;
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
	if (!ret)
		ret = save_clock(kvm, &w, tsc, err);
	if (!ret)
		ret = snap_state_finish(&w, used, err);
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
	if (rec->type == VM_STATE_UART) {
		if (vm->seen_uart)
			return err_set(err, -EINVAL, "two UART records");
		if (!devs->com1)
			return err_set(err, -EINVAL, "a UART record, but this VM has no UART");
		ret = uart__check_state(rec->payload, rec->len, err);
		vm->uart = rec->payload;
		vm->uart_len = rec->len;
		vm->seen_uart = !ret;
		return ret;
	}
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
	if (devs->com1 && !vm->seen_uart)
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

/*
 * The clock goes on from the pause, not from now (no KVM_CLOCK_REALTIME),
 * but from where vCPU 0's TSC went on since it was written: the vCPU
 * restore takes time (a lazy restore faults the kvmclock and steal-time
 * pages in from the image), and a clock set that much later would lag the
 * TSC by it. The TSC, read just before KVM_SET_CLOCK, measures the gap.
 */
static int load_clock(struct kvm *kvm, const struct vm_clock *c, uint64_t saved_tsc,
		      struct error *err)
{
	struct kvm_clock_data d = {.clock = c->data.clock};
	uint32_t khz = c->tsc_khz ? c->tsc_khz : kvm->tsc_khz;
	uint64_t now_tsc;
	int e, ret;

	if (saved_tsc && kvm->nr_cpus) {
		ret = cpu_state__read_tsc(kvm->cpus[0], &now_tsc, err);
		if (ret)
			return ret;
		d.clock += tsc_delta_ns(saved_tsc, now_tsc, khz);
	}
	if (ioctl(kvm->vm_fd, KVM_SET_CLOCK, &d) < 0) {
		e = errno;
		return err_set(err, -e, "KVM_SET_CLOCK: %s", strerror(e));
	}
	return 0;
}

static int load_all(struct kvm *kvm, const struct vm_state_devices *devs,
		    const struct cpu_state *cpus, const struct vm_records *vm, struct error *err)
{
	unsigned int i;
	int ret;

	ret = irqchip_state__restore(kvm, &vm->irq, err);
	if (!ret && vm->clock.tsc_khz && vm->clock.tsc_khz != kvm->tsc_khz)
		for (i = 0; !ret && i < kvm->nr_cpus; i++)
			ret = cpu_state__set_tsc_khz(kvm->cpus[i], vm->clock.tsc_khz, err);
	for (i = 0; !ret && i < kvm->nr_cpus; i++)
		ret = cpu_state__restore(kvm->cpus[i], &cpus[i], err);
	if (!ret && vm->seen_uart)
		ret = uart__restore(devs->com1, vm->uart, vm->uart_len, err);
	if (!ret)
		ret = load_clock(kvm, &vm->clock, kvm->nr_cpus ? cpu_state__saved_tsc(&cpus[0]) : 0,
				 err);
	return ret;
}

int vm_state__restore(struct kvm *kvm, const struct vm_state_devices *devs, const uint8_t *buf,
		      size_t len, struct error *err)
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
		ret = load_all(kvm, devs, cpus, &vm, err);
	for (i = 0; i < kvm->nr_cpus; i++)
		cpu_state__free(&cpus[i]);
	free(cpus);
	return ret;
}

int vm_state__check(const uint8_t *buf, size_t len, unsigned int nr_cpus, bool uart,
		    struct error *err)
{
	struct uart present; /* only tells decode_all that the VM has one */
	struct vm_state_devices devs = {.com1 = uart ? &present : NULL};
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
