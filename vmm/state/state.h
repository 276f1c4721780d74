/* SPDX-License-Identifier: GPL-2.0 */
/*
 * VM state: every vCPU, the in-kernel irqchip, PIT and clock, and the device
 * models, as typed records in the snapshot image's VM state area
 * (snapshot/state.h is the container). Documentation/state-records.md
 * specifies every record type and payload field, and the restore order.
 *
 * Codecs are pure (no KVM) so that unit tests can run them: encode writes a
 * whole payload of the record's size, decode checks the length and every
 * field's range and fills a struct, or fails with a message that names the
 * record and the field.
 *
 * Save and restore run only while the VM is paused: the caller guarantees
 * that no vCPU is inside KVM_RUN.
 */
#ifndef KVMSNAP_VM_STATE_H
#define KVMSNAP_VM_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot/state.h"

struct kvm;
struct kvm_cpu;
struct rtc;
struct uart;

/* Record types: 0x01xx per vCPU (instance = vCPU index), 0x02xx VM, 0x03xx devices. */
enum vm_state_type {
	VM_STATE_REGS = 0x0101,	     /* KVM_GET_REGS */
	VM_STATE_SREGS = 0x0102,     /* KVM_GET_SREGS2 or KVM_GET_SREGS */
	VM_STATE_XSAVE = 0x0103,     /* KVM_GET_XSAVE2 / KVM_GET_XSAVE: length and bytes */
	VM_STATE_FPU = 0x0104,	     /* KVM_GET_FPU, only when XSAVE is unsupported */
	VM_STATE_XCRS = 0x0105,	     /* KVM_GET_XCRS, when KVM_CAP_XCRS */
	VM_STATE_MSRS = 0x0106,	     /* every readable MSR of KVM_GET_MSR_INDEX_LIST */
	VM_STATE_LAPIC = 0x0107,     /* KVM_GET_LAPIC: the 1024-byte register page */
	VM_STATE_EVENTS = 0x0108,    /* KVM_GET_VCPU_EVENTS */
	VM_STATE_MP_STATE = 0x0109,  /* KVM_GET_MP_STATE */
	VM_STATE_DEBUGREGS = 0x010a, /* KVM_GET_DEBUGREGS */
	VM_STATE_PROGRESS = 0x010b,  /* struct guest_progress (ctl stats) */

	VM_STATE_PIC_MASTER = 0x0201, /* KVM_GET_IRQCHIP KVM_IRQCHIP_PIC_MASTER */
	VM_STATE_PIC_SLAVE = 0x0202,  /* KVM_GET_IRQCHIP KVM_IRQCHIP_PIC_SLAVE */
	VM_STATE_IOAPIC = 0x0203,     /* KVM_GET_IRQCHIP KVM_IRQCHIP_IOAPIC */
	VM_STATE_PIT = 0x0204,	      /* KVM_GET_PIT2 */
	VM_STATE_CLOCK = 0x0205,      /* KVM_GET_CLOCK and the TSC frequency */

	VM_STATE_UART = 0x0301, /* struct uart_regs; instance 0 = COM1 */
	VM_STATE_RTC = 0x0302,	/* the CMOS RTC's index and RAM (struct rtc_state) */
};

/* Payload sizes of the fixed-size records. */
#define VM_STATE_REGS_SIZE	0x90
#define VM_STATE_SREGS_SIZE	0x160
#define VM_STATE_FPU_SIZE	0x1a0
#define VM_STATE_LAPIC_SIZE	0x400
#define VM_STATE_EVENTS_SIZE	0x28
#define VM_STATE_MP_STATE_SIZE	0x08
#define VM_STATE_DEBUGREGS_SIZE 0x38
#define VM_STATE_PROGRESS_SIZE	0x18
#define VM_STATE_PIC_SIZE	0x10
#define VM_STATE_IOAPIC_SIZE	0xd8
#define VM_STATE_PIT_SIZE	0x50
#define VM_STATE_CLOCK_SIZE	0x20
/* Variable-size records: an 8-byte head, then entries. */
#define VM_STATE_XSAVE_HEAD 0x08
#define VM_STATE_XSAVE_MIN  576 /* legacy area and XSAVE header */
#define VM_STATE_XSAVE_MAX  (1u << 20)
#define VM_STATE_XCRS_HEAD  0x08
#define VM_STATE_XCR_SIZE   0x10
#define VM_STATE_MSRS_HEAD  0x08
#define VM_STATE_MSR_SIZE   0x0c
#define VM_STATE_MSRS_MAX   4096

/* The MSRs with a restore order of their own (Documentation/state-records.md). */
#define MSR_IA32_TSC_NR		 0x10
#define MSR_IA32_TSC_DEADLINE_NR 0x6e0

/* Segment and descriptor-table registers, and the pending-interrupt bitmap of KVM_GET_SREGS. */
struct cpu_sregs {
	struct kvm_sregs2 s; /* flags: KVM_SREGS2_FLAGS_PDPTRS_VALID */
	uint64_t interrupt_bitmap[(KVM_NR_INTERRUPTS + 63) / 64];
};

/* The VM clock as saved: KVM_GET_CLOCK plus the vCPUs' TSC frequency. */
struct vm_clock {
	struct kvm_clock_data data;
	uint32_t tsc_khz; /* 0: unknown */
};

/* One vCPU's progress counters, as struct guest_progress. */
struct cpu_progress {
	uint64_t pages, passes;
	uint8_t ready;
};

/* Codecs for the per-vCPU payloads (vmm/state/cpu-codec.c). */
void cpu_state__encode_regs(const struct kvm_regs *r, uint8_t *p);
int cpu_state__decode_regs(const uint8_t *p, uint32_t len, struct kvm_regs *r, struct error *err);
void cpu_state__encode_sregs(const struct cpu_sregs *s, uint8_t *p);
int cpu_state__decode_sregs(const uint8_t *p, uint32_t len, struct cpu_sregs *s, struct error *err);
void cpu_state__encode_fpu(const struct kvm_fpu *f, uint8_t *p);
int cpu_state__decode_fpu(const uint8_t *p, uint32_t len, struct kvm_fpu *f, struct error *err);
uint32_t cpu_state__xsave_size(uint32_t bytes);
void cpu_state__encode_xsave(const void *area, uint32_t bytes, uint8_t *p);
/* *area points into the payload; *bytes is its length. */
int cpu_state__decode_xsave(const uint8_t *p, uint32_t len, const uint8_t **area, uint32_t *bytes,
			    struct error *err);
uint32_t cpu_state__xcrs_size(const struct kvm_xcrs *x);
void cpu_state__encode_xcrs(const struct kvm_xcrs *x, uint8_t *p);
int cpu_state__decode_xcrs(const uint8_t *p, uint32_t len, struct kvm_xcrs *x, struct error *err);
uint32_t cpu_state__msrs_size(uint32_t nmsrs);
void cpu_state__encode_msrs(const struct kvm_msr_entry *e, uint32_t nmsrs, uint8_t *p);
/* e holds at least VM_STATE_MSRS_MAX entries. */
int cpu_state__decode_msrs(const uint8_t *p, uint32_t len, struct kvm_msr_entry *e, uint32_t *nmsrs,
			   struct error *err);
void cpu_state__encode_lapic(const struct kvm_lapic_state *l, uint8_t *p);
int cpu_state__decode_lapic(const uint8_t *p, uint32_t len, struct kvm_lapic_state *l,
			    struct error *err);
void cpu_state__encode_events(const struct kvm_vcpu_events *e, uint8_t *p);
int cpu_state__decode_events(const uint8_t *p, uint32_t len, struct kvm_vcpu_events *e,
			     struct error *err);
void cpu_state__encode_mp_state(const struct kvm_mp_state *m, uint8_t *p);
int cpu_state__decode_mp_state(const uint8_t *p, uint32_t len, struct kvm_mp_state *m,
			       struct error *err);
void cpu_state__encode_debugregs(const struct kvm_debugregs *d, uint8_t *p);
int cpu_state__decode_debugregs(const uint8_t *p, uint32_t len, struct kvm_debugregs *d,
				struct error *err);
void cpu_state__encode_progress(const struct cpu_progress *g, uint8_t *p);
int cpu_state__decode_progress(const uint8_t *p, uint32_t len, struct cpu_progress *g,
			       struct error *err);

/* Codecs for the VM-wide payloads (vmm/state/irqchip-codec.c). */
void vm_state__encode_pic(const struct kvm_pic_state *s, uint8_t *p);
/* type (PIC_MASTER or PIC_SLAVE) only names the chip in messages. */
int vm_state__decode_pic(uint32_t type, const uint8_t *p, uint32_t len, struct kvm_pic_state *s,
			 struct error *err);
void vm_state__encode_ioapic(const struct kvm_ioapic_state *s, uint8_t *p);
int vm_state__decode_ioapic(const uint8_t *p, uint32_t len, struct kvm_ioapic_state *s,
			    struct error *err);
void vm_state__encode_pit(const struct kvm_pit_state2 *s, uint8_t *p);
int vm_state__decode_pit(const uint8_t *p, uint32_t len, struct kvm_pit_state2 *s,
			 struct error *err);
void vm_state__encode_clock(const struct vm_clock *c, uint8_t *p);
int vm_state__decode_clock(const uint8_t *p, uint32_t len, struct vm_clock *c, struct error *err);

/* "REGS", "PIT", ...; "?" for an unknown type. */
const char *vm_state__type_name(uint32_t type);

/* Decoder checks shared by the codecs (vmm/state/codec.c); 0 or -EINVAL with a message. */
int vm_state__check_len(uint32_t type, uint32_t len, uint32_t want, struct error *err);
int vm_state__check_max(uint32_t type, const char *field, uint64_t v, uint64_t max,
			struct error *err);

/* One vCPU's decoded records, ready to load (vmm/state/cpu.c). */
struct cpu_state {
	uint32_t seen; /* bit (type & 0x1f) for each record type decoded */
	struct kvm_regs regs;
	struct cpu_sregs sregs;
	const uint8_t *xsave; /* into the state area; NULL: fpu holds the FPU state */
	uint32_t xsave_len;
	struct kvm_fpu fpu;
	struct kvm_xcrs xcrs;
	struct kvm_msr_entry *msrs; /* allocated by cpu_state__decode */
	uint32_t nmsrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs debugregs;
	struct cpu_progress progress;
};

/*
 * Append this vCPU's records; 0 or -errno from KVM (w->overflow is checked
 * at the end). tsc, if not NULL, gets the IA32_TSC value saved (left alone
 * if KVM lists no TSC).
 */
int cpu_state__save(struct kvm_cpu *cpu, struct snap_state_writer *w, uint64_t *tsc,
		    struct error *err);
/* The vCPU's IA32_TSC now, in one KVM_GET_MSRS. */
int cpu_state__read_tsc(struct kvm_cpu *cpu, uint64_t *tsc, struct error *err);
/* Decode one 0x01xx record into cs (zeroed before the first one). */
int cpu_state__decode(struct cpu_state *cs, const struct snap_state_record *rec, struct error *err);
/* Every record a vCPU needs is there. */
int cpu_state__check(const struct cpu_state *cs, unsigned int id, struct error *err);
/* Load cs into the vCPU in the documented order. */
int cpu_state__restore(struct kvm_cpu *cpu, const struct cpu_state *cs, struct error *err);
/* The IA32_TSC value in cs, 0 if it has none. */
uint64_t cpu_state__saved_tsc(const struct cpu_state *cs);
/* Whether cs has MSR index; its value in *val. */
bool cpu_state__msr(const struct cpu_state *cs, uint32_t index, uint64_t *val);
/* Add cycles to the IA32_TSC value in cs (none: nothing). */
void cpu_state__advance_tsc(struct cpu_state *cs, uint64_t cycles);
int cpu_state__set_tsc_khz(struct kvm_cpu *cpu, uint32_t khz, struct error *err);
void cpu_state__free(struct cpu_state *cs);

/* The in-kernel interrupt controllers and PIT, decoded (vmm/state/irqchip.c). */
struct irqchip_state {
	struct kvm_pic_state pic[2]; /* master, slave */
	struct kvm_ioapic_state ioapic;
	struct kvm_pit_state2 pit;
};

int irqchip_state__save(struct kvm *kvm, struct snap_state_writer *w, struct error *err);
int irqchip_state__restore(struct kvm *kvm, const struct irqchip_state *s, struct error *err);

/*
 * The clock (vmm/state/clock.c). On restore, kvmclock and the TSCs go on
 * from the pause; for a guest that uses kvmclock, catch-up (the default)
 * moves both forward by the host time since the save, so its wall clock is
 * right again, and tells it it was stopped (KVM_KVMCLOCK_CTRL).
 */
enum vm_clock_mode {
	VM_CLOCK_CATCH_UP,
	VM_CLOCK_CONTINUE,
};

int clock_state__save(struct kvm *kvm, struct snap_state_writer *w, uint64_t tsc,
		      struct error *err);
/* The guest turned kvmclock on (MSR_KVM_SYSTEM_TIME_NEW bit 0) on some vCPU. */
bool clock_state__uses_kvmclock(const struct cpu_state *cpus, unsigned int nr_cpus);
/*
 * The host time since the save in ns, added to every vCPU's saved TSC; 0,
 * with an info line, when the state has no host time or it went backwards.
 */
uint64_t clock_state__catch_up(const struct vm_clock *c, struct cpu_state *cpus,
			       unsigned int nr_cpus, uint32_t host_khz);
/* KVM_SET_CLOCK: saved + advance_ns + what vCPU 0's TSC ran since saved_tsc was written. */
int clock_state__load(struct kvm *kvm, const struct vm_clock *c, uint64_t saved_tsc,
		      uint64_t advance_ns, struct error *err);
/* KVM_KVMCLOCK_CTRL on every vCPU; EINVAL (no pvclock) is not an error. */
int clock_state__guest_stopped(struct kvm *kvm, struct error *err);

/*
 * The device models that have state (kvm->com1 and so on). A NULL member
 * has no record. The RTC's record is optional: a state without it (older
 * images) leaves the RTC as rtc__init() set it.
 */
struct vm_state_devices {
	struct uart *com1;
	struct rtc *rtc;
};

/*
 * Write the whole VM state (header and records) into buf: every vCPU, the
 * irqchip, PIT and clock, and the devices in devs (may be NULL). 0, or
 * -ENOSPC when cap is too small, or -errno from KVM; *err names the cause.
 */
int vm_state__save(struct kvm *kvm, const struct vm_state_devices *devs, uint8_t *buf, size_t cap,
		   size_t *used, struct error *err);

/*
 * Check the state area of len bytes and load it into kvm (same vCPU count,
 * CPUID already set by kvm_cpu__create_all) and devs (may be NULL; then the
 * state must have no device record, and each device in devs needs its
 * record). Every record is decoded and checked before KVM is touched, so a
 * malformed or incomplete state changes nothing; a KVM ioctl that fails
 * later leaves the VM part-restored.
 */
int vm_state__restore(struct kvm *kvm, const struct vm_state_devices *devs,
		      enum vm_clock_mode clock, const uint8_t *buf, size_t len, struct error *err);

/*
 * Decode and check a state area of len bytes exactly as vm_state__restore()
 * would, without KVM: for a VM of nr_cpus vCPUs, with the PC's UART and
 * RTC if pc_devices. The manager runs it before it may mark an image
 * complete.
 */
int vm_state__check(const uint8_t *buf, size_t len, unsigned int nr_cpus, bool pc_devices,
		    struct error *err);

#endif
