// SPDX-License-Identifier: GPL-2.0
/*
 * Per-vCPU payload codecs: one field table per payload (vmm/state/field.h)
 * with the offsets of Documentation/state-records.md, little-endian, never a
 * C struct copied with its padding. The XSAVE area and the LAPIC page are
 * architectural byte formats and are stored as bytes.
 */
#include "state/state.h"
#include "state/field.h"

#include <errno.h>
#include <string.h>

#define SEG_SIZE	  24
#define DTABLE_SIZE	  16
#define SREGS_VALID_FLAGS KVM_SREGS2_FLAGS_PDPTRS_VALID
#define EVENTS_VALID_FLAGS                                                                    \
	(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |                  \
	 KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_PAYLOAD | \
	 KVM_VCPUEVENT_VALID_TRIPLE_FAULT)

/* Reject a reserved field that is not zero. */
static int check_zero(uint32_t type, const char *field, uint64_t v, struct error *err)
{
	return vm_state__check_max(type, field, v, 0, err);
}

/* The head of a variable-size record: a count of bytes or of entries. */
struct count_head {
	uint32_t n;
};

/* Decode the head of a variable-size record of len bytes into s (size bytes). */
static int decode_head(uint32_t type, const struct state_table *t, const uint8_t *p, uint32_t len,
		       void *s, size_t size, struct error *err)
{
	if (len < t->size)
		return vm_state__check_len(type, len, t->size, err);
	return state_decode(type, t, p, t->size, s, size, err);
}

#define REG(o, m) SF_U(struct kvm_regs, #m, o, 8, m)
static const struct state_field regs_fields[] = {
    REG(0x00, rax), REG(0x08, rbx), REG(0x10, rcx),    REG(0x18, rdx), REG(0x20, rsi),
    REG(0x28, rdi), REG(0x30, rsp), REG(0x38, rbp),    REG(0x40, r8),  REG(0x48, r9),
    REG(0x50, r10), REG(0x58, r11), REG(0x60, r12),    REG(0x68, r13), REG(0x70, r14),
    REG(0x78, r15), REG(0x80, rip), REG(0x88, rflags),
};
const struct state_table regs_layout = SF_TABLE_OF(NULL, VM_STATE_REGS_SIZE, regs_fields);

#define SEG(o, w, m)	  SF_U(struct kvm_segment, #m, o, w, m)
#define SEG_MAX(o, m, mx) SF_MAX(struct kvm_segment, #m, o, 1, m, mx)
static const struct state_field seg_fields[] = {
    SEG(0x00, 8, base),	     SEG(0x08, 4, limit),	SEG(0x0c, 2, selector),
    SEG_MAX(0x0e, type, 15), SEG_MAX(0x0f, present, 1), SEG_MAX(0x10, dpl, 3),
    SEG_MAX(0x11, db, 1),    SEG_MAX(0x12, s, 1),	SEG_MAX(0x13, l, 1),
    SEG_MAX(0x14, g, 1),     SEG_MAX(0x15, avl, 1),	SEG_MAX(0x16, unusable, 1),
    SF_RSVD(0x17, 1),
};
static const struct state_table seg_layout = SF_TABLE_OF("segment", SEG_SIZE, seg_fields);

static const struct state_field dtable_fields[] = {
    SF_U(struct kvm_dtable, "base", 0x00, 8, base),
    SF_U(struct kvm_dtable, "limit", 0x08, 2, limit),
    SF_RSVD(0x0a, 6),
};
static const struct state_table dtable_layout =
    SF_TABLE_OF("descriptor table", DTABLE_SIZE, dtable_fields);

/* The segments are one array in the record: cs, ds, es, fs, gs, ss, tr, ldt. */
_Static_assert(offsetof(struct kvm_sregs2, ldt) ==
		   offsetof(struct kvm_sregs2, cs) + 7 * sizeof(struct kvm_segment),
	       "kvm_sregs2 holds cs..ldt in a row");

#define SREG(o, m) SF_U(struct cpu_sregs, #m, o, 8, s.m)
static const struct state_field sregs_fields[] = {
    SF_SUB(struct cpu_sregs, "segments", 0x00, SEG_SIZE, 8, s.cs, struct kvm_segment, seg_layout),
    SF_SUB(struct cpu_sregs, "gdt", 0xc0, DTABLE_SIZE, 1, s.gdt, struct kvm_dtable, dtable_layout),
    SF_SUB(struct cpu_sregs, "idt", 0xd0, DTABLE_SIZE, 1, s.idt, struct kvm_dtable, dtable_layout),
    SREG(0xe0, cr0),
    SREG(0xe8, cr2),
    SREG(0xf0, cr3),
    SREG(0xf8, cr4),
    SREG(0x100, cr8),
    SREG(0x108, efer),
    SREG(0x110, apic_base),
    SF_MAX(struct cpu_sregs, "flags", 0x118, 8, s.flags, SREGS_VALID_FLAGS),
    SF_ARRAY(struct cpu_sregs, "pdptrs", 0x120, 8, 4, s.pdptrs),
    SF_ARRAY(struct cpu_sregs, "interrupt_bitmap", 0x140, 8, 4, interrupt_bitmap),
};
const struct state_table sregs_layout = SF_TABLE_OF(NULL, VM_STATE_SREGS_SIZE, sregs_fields);

#define FPU(o, w, m) SF_U(struct kvm_fpu, #m, o, w, m)
static const struct state_field fpu_fields[] = {
    SF_BLOBS(struct kvm_fpu, "fpr", 0x00, 16, 8, fpr),
    FPU(0x80, 2, fcw),
    FPU(0x82, 2, fsw),
    FPU(0x84, 1, ftwx),
    SF_RSVD(0x85, 1),
    FPU(0x86, 2, last_opcode),
    FPU(0x88, 8, last_ip),
    FPU(0x90, 8, last_dp),
    SF_BLOBS(struct kvm_fpu, "xmm", 0x98, 16, 16, xmm),
    FPU(0x198, 4, mxcsr),
    SF_RSVD(0x19c, 4),
};
const struct state_table fpu_layout = SF_TABLE_OF(NULL, VM_STATE_FPU_SIZE, fpu_fields);

static const struct state_field xsave_head_fields[] = {
    SF_MAX(struct count_head, "area size", 0x00, 4, n, VM_STATE_XSAVE_MAX),
    SF_RSVD(0x04, 4),
};
const struct state_table xsave_head_layout =
    SF_TABLE_OF(NULL, VM_STATE_XSAVE_HEAD, xsave_head_fields);

static const struct state_field xcrs_head_fields[] = {
    SF_MAX(struct kvm_xcrs, "nr_xcrs", 0x00, 4, nr_xcrs, KVM_MAX_XCRS),
    SF_MAX(struct kvm_xcrs, "flags", 0x04, 4, flags, 0),
};
const struct state_table xcrs_head_layout = SF_TABLE_OF(NULL, VM_STATE_XCRS_HEAD, xcrs_head_fields);

static const struct state_field xcr_fields[] = {
    SF_U(struct kvm_xcr, "xcr", 0x00, 4, xcr),
    SF_RSVD(0x04, 4),
    SF_U(struct kvm_xcr, "value", 0x08, 8, value),
};
const struct state_table xcr_layout = SF_TABLE_OF("xcr", VM_STATE_XCR_SIZE, xcr_fields);

static const struct state_field msrs_head_fields[] = {
    SF_MAX(struct count_head, "nmsrs", 0x00, 4, n, VM_STATE_MSRS_MAX),
    SF_RSVD(0x04, 4),
};
const struct state_table msrs_head_layout = SF_TABLE_OF(NULL, VM_STATE_MSRS_HEAD, msrs_head_fields);

/* Packed, 12 bytes: the value is not 8-aligned. */
static const struct state_field msr_fields[] = {
    SF_U(struct kvm_msr_entry, "index", 0x00, 4, index),
    SF_U(struct kvm_msr_entry, "data", 0x04, 8, data),
};
const struct state_table msr_layout = SF_TABLE_OF("msr", VM_STATE_MSR_SIZE, msr_fields);

static const struct state_field lapic_fields[] = {
    SF_BLOBS(struct kvm_lapic_state, "regs", 0x000, VM_STATE_LAPIC_SIZE, 1, regs),
};
const struct state_table lapic_layout = SF_TABLE_OF(NULL, VM_STATE_LAPIC_SIZE, lapic_fields);

#define EV(o, w, m)	 SF_U(struct kvm_vcpu_events, #m, o, w, m)
#define EV_MAX(o, m, mx) SF_MAX(struct kvm_vcpu_events, #m, o, 1, m, mx)
static const struct state_field events_fields[] = {
    EV_MAX(0x00, exception.injected, 1),
    EV_MAX(0x01, exception.nr, 31),
    EV_MAX(0x02, exception.has_error_code, 1),
    EV_MAX(0x03, exception.pending, 1),
    EV(0x04, 4, exception.error_code),
    EV_MAX(0x08, interrupt.injected, 1),
    EV(0x09, 1, interrupt.nr),
    EV_MAX(0x0a, interrupt.soft, 1),
    EV_MAX(0x0b, interrupt.shadow, KVM_X86_SHADOW_INT_MOV_SS | KVM_X86_SHADOW_INT_STI),
    EV_MAX(0x0c, nmi.injected, 1),
    EV(0x0d, 1, nmi.pending),
    EV_MAX(0x0e, nmi.masked, 1),
    SF_RSVD(0x0f, 1),
    EV(0x10, 4, sipi_vector),
    SF_BITS(struct kvm_vcpu_events, "flags", 0x14, 4, flags, EVENTS_VALID_FLAGS),
    EV_MAX(0x18, smi.smm, 1),
    EV_MAX(0x19, smi.pending, 1),
    EV_MAX(0x1a, smi.smm_inside_nmi, 1),
    EV_MAX(0x1b, smi.latched_init, 1),
    EV_MAX(0x1c, triple_fault.pending, 1),
    EV_MAX(0x1d, exception_has_payload, 1),
    SF_RSVD(0x1e, 2),
    EV(0x20, 8, exception_payload),
};
const struct state_table events_layout = SF_TABLE_OF(NULL, VM_STATE_EVENTS_SIZE, events_fields);

static const struct state_field mp_state_fields[] = {
    SF_U(struct kvm_mp_state, "mp_state", 0x00, 4, mp_state),
    SF_RSVD(0x04, 4),
};
const struct state_table mp_state_layout =
    SF_TABLE_OF(NULL, VM_STATE_MP_STATE_SIZE, mp_state_fields);

/* KVM_SET_DEBUGREGS refuses DR6/DR7 with bits 63:32 set, and any flags. */
static const struct state_field debugregs_fields[] = {
    SF_ARRAY(struct kvm_debugregs, "db", 0x00, 8, 4, db),
    SF_MAX(struct kvm_debugregs, "dr6", 0x20, 8, dr6, UINT32_MAX),
    SF_MAX(struct kvm_debugregs, "dr7", 0x28, 8, dr7, UINT32_MAX),
    SF_MAX(struct kvm_debugregs, "flags", 0x30, 8, flags, 0),
};
const struct state_table debugregs_layout =
    SF_TABLE_OF(NULL, VM_STATE_DEBUGREGS_SIZE, debugregs_fields);

static const struct state_field progress_fields[] = {
    SF_U(struct cpu_progress, "pages", 0x00, 8, pages),
    SF_U(struct cpu_progress, "passes", 0x08, 8, passes),
    SF_MAX(struct cpu_progress, "ready", 0x10, 1, ready, 1),
    SF_RSVD(0x11, 7),
};
const struct state_table progress_layout =
    SF_TABLE_OF(NULL, VM_STATE_PROGRESS_SIZE, progress_fields);

void cpu_state__encode_regs(const struct kvm_regs *r, uint8_t *p)
{
	state_put(&regs_layout, r, p);
}

int cpu_state__decode_regs(const uint8_t *p, uint32_t len, struct kvm_regs *r, struct error *err)
{
	return state_decode(VM_STATE_REGS, &regs_layout, p, len, r, sizeof(*r), err);
}

void cpu_state__encode_sregs(const struct cpu_sregs *cs, uint8_t *p)
{
	state_put(&sregs_layout, cs, p);
}

int cpu_state__decode_sregs(const uint8_t *p, uint32_t len, struct cpu_sregs *cs, struct error *err)
{
	unsigned int i, bits = 0;
	int ret;

	ret = state_decode(VM_STATE_SREGS, &sregs_layout, p, len, cs, sizeof(*cs), err);
	/* Without the flag the PDPTRs are reserved. */
	for (i = 0; i < 4 && !ret && !(cs->s.flags & KVM_SREGS2_FLAGS_PDPTRS_VALID); i++)
		ret = check_zero(VM_STATE_SREGS, "pdptr (flags say invalid)", cs->s.pdptrs[i], err);
	if (ret)
		return ret;
	for (i = 0; i < 4; i++)
		bits += __builtin_popcountll(cs->interrupt_bitmap[i]);
	/* KVM reports at most one injected interrupt. */
	return vm_state__check_max(VM_STATE_SREGS, "interrupt bitmap bits set", bits, 1, err);
}

void cpu_state__encode_fpu(const struct kvm_fpu *f, uint8_t *p)
{
	state_put(&fpu_layout, f, p);
}

int cpu_state__decode_fpu(const uint8_t *p, uint32_t len, struct kvm_fpu *f, struct error *err)
{
	return state_decode(VM_STATE_FPU, &fpu_layout, p, len, f, sizeof(*f), err);
}

uint32_t cpu_state__xsave_size(uint32_t bytes)
{
	return VM_STATE_XSAVE_HEAD + bytes;
}

void cpu_state__encode_xsave(const void *area, uint32_t bytes, uint8_t *p)
{
	struct count_head h = {.n = bytes};

	state_put(&xsave_head_layout, &h, p);
	memcpy(p + VM_STATE_XSAVE_HEAD, area, bytes);
}

int cpu_state__decode_xsave(const uint8_t *p, uint32_t len, const uint8_t **area, uint32_t *bytes,
			    struct error *err)
{
	struct count_head h;
	int ret;

	ret = decode_head(VM_STATE_XSAVE, &xsave_head_layout, p, len, &h, sizeof(h), err);
	if (!ret && h.n < VM_STATE_XSAVE_MIN)
		ret =
		    err_set(err, -EINVAL, "XSAVE record: area of %u bytes, at least %u are needed",
			    h.n, VM_STATE_XSAVE_MIN);
	if (!ret)
		ret = vm_state__check_len(VM_STATE_XSAVE, len, cpu_state__xsave_size(h.n), err);
	if (ret)
		return ret;
	*area = p + VM_STATE_XSAVE_HEAD;
	*bytes = h.n;
	return 0;
}

uint32_t cpu_state__xcrs_size(const struct kvm_xcrs *x)
{
	return VM_STATE_XCRS_HEAD + x->nr_xcrs * VM_STATE_XCR_SIZE;
}

void cpu_state__encode_xcrs(const struct kvm_xcrs *x, uint8_t *p)
{
	uint32_t i;

	state_put(&xcrs_head_layout, x, p);
	for (i = 0; i < x->nr_xcrs; i++)
		state_put(&xcr_layout, &x->xcrs[i], p + VM_STATE_XCRS_HEAD + i * VM_STATE_XCR_SIZE);
}

int cpu_state__decode_xcrs(const uint8_t *p, uint32_t len, struct kvm_xcrs *x, struct error *err)
{
	uint32_t i;
	int ret;

	ret = decode_head(VM_STATE_XCRS, &xcrs_head_layout, p, len, x, sizeof(*x), err);
	if (!ret)
		ret = vm_state__check_len(VM_STATE_XCRS, len, cpu_state__xcrs_size(x), err);
	for (i = 0; !ret && i < x->nr_xcrs; i++)
		ret = state_decode(VM_STATE_XCRS, &xcr_layout,
				   p + VM_STATE_XCRS_HEAD + i * VM_STATE_XCR_SIZE,
				   VM_STATE_XCR_SIZE, &x->xcrs[i], sizeof(x->xcrs[i]), err);
	return ret;
}

uint32_t cpu_state__msrs_size(uint32_t nmsrs)
{
	return VM_STATE_MSRS_HEAD + nmsrs * VM_STATE_MSR_SIZE;
}

void cpu_state__encode_msrs(const struct kvm_msr_entry *e, uint32_t nmsrs, uint8_t *p)
{
	struct count_head h = {.n = nmsrs};
	uint32_t i;

	state_put(&msrs_head_layout, &h, p);
	for (i = 0; i < nmsrs; i++)
		state_put(&msr_layout, &e[i], p + VM_STATE_MSRS_HEAD + i * VM_STATE_MSR_SIZE);
}

int cpu_state__decode_msrs(const uint8_t *p, uint32_t len, struct kvm_msr_entry *e, uint32_t *nmsrs,
			   struct error *err)
{
	struct count_head h;
	uint32_t i, j;
	int ret;

	ret = decode_head(VM_STATE_MSRS, &msrs_head_layout, p, len, &h, sizeof(h), err);
	if (!ret)
		ret = vm_state__check_len(VM_STATE_MSRS, len, cpu_state__msrs_size(h.n), err);
	for (i = 0; !ret && i < h.n; i++) {
		ret = state_decode(VM_STATE_MSRS, &msr_layout,
				   p + VM_STATE_MSRS_HEAD + i * VM_STATE_MSR_SIZE,
				   VM_STATE_MSR_SIZE, &e[i], sizeof(e[i]), err);
		/* A second value for one MSR would make the restore order matter. */
		for (j = 0; !ret && j < i; j++)
			if (e[j].index == e[i].index)
				return err_set(err, -EINVAL, "MSRS record: MSR 0x%x appears twice",
					       e[i].index);
	}
	if (!ret)
		*nmsrs = h.n;
	return ret;
}

void cpu_state__encode_lapic(const struct kvm_lapic_state *l, uint8_t *p)
{
	state_put(&lapic_layout, l, p);
}

int cpu_state__decode_lapic(const uint8_t *p, uint32_t len, struct kvm_lapic_state *l,
			    struct error *err)
{
	return state_decode(VM_STATE_LAPIC, &lapic_layout, p, len, l, sizeof(*l), err);
}

void cpu_state__encode_events(const struct kvm_vcpu_events *e, uint8_t *p)
{
	state_put(&events_layout, e, p);
}

int cpu_state__decode_events(const uint8_t *p, uint32_t len, struct kvm_vcpu_events *e,
			     struct error *err)
{
	return state_decode(VM_STATE_EVENTS, &events_layout, p, len, e, sizeof(*e), err);
}

void cpu_state__encode_mp_state(const struct kvm_mp_state *m, uint8_t *p)
{
	state_put(&mp_state_layout, m, p);
}

int cpu_state__decode_mp_state(const uint8_t *p, uint32_t len, struct kvm_mp_state *m,
			       struct error *err)
{
	int ret = state_decode(VM_STATE_MP_STATE, &mp_state_layout, p, len, m, sizeof(*m), err);

	if (ret)
		return ret;
	/* The states KVM_SET_MP_STATE accepts on x86. */
	switch (m->mp_state) {
	case KVM_MP_STATE_RUNNABLE:
	case KVM_MP_STATE_UNINITIALIZED:
	case KVM_MP_STATE_INIT_RECEIVED:
	case KVM_MP_STATE_HALTED:
	case KVM_MP_STATE_SIPI_RECEIVED:
	case KVM_MP_STATE_AP_RESET_HOLD:
		return 0;
	}
	return err_set(err, -EINVAL, "MP_STATE record: %u is not an x86 vCPU state", m->mp_state);
}

void cpu_state__encode_debugregs(const struct kvm_debugregs *d, uint8_t *p)
{
	state_put(&debugregs_layout, d, p);
}

int cpu_state__decode_debugregs(const uint8_t *p, uint32_t len, struct kvm_debugregs *d,
				struct error *err)
{
	return state_decode(VM_STATE_DEBUGREGS, &debugregs_layout, p, len, d, sizeof(*d), err);
}

void cpu_state__encode_progress(const struct cpu_progress *g, uint8_t *p)
{
	state_put(&progress_layout, g, p);
}

int cpu_state__decode_progress(const uint8_t *p, uint32_t len, struct cpu_progress *g,
			       struct error *err)
{
	return state_decode(VM_STATE_PROGRESS, &progress_layout, p, len, g, sizeof(*g), err);
}
