// SPDX-License-Identifier: GPL-2.0
/*
 * Per-vCPU payload codecs: every field at the offset that
 * Documentation/state-records.md gives, little-endian, never a C struct
 * copied with its padding. The XSAVE area and the LAPIC page are
 * architectural byte formats and are stored as bytes.
 */
#include "state/state.h"

#include <errno.h>
#include <string.h>

#include "lib/le.h"

#define SEG_SIZE    24
#define DTABLE_SIZE 16

/* Reject a reserved field that is not zero. */
static int check_zero(uint32_t type, const char *field, uint64_t v, struct error *err)
{
	return vm_state__check_max(type, field, v, 0, err);
}

void cpu_state__encode_regs(const struct kvm_regs *r, uint8_t *p)
{
	put_le64(p + 0x00, r->rax);
	put_le64(p + 0x08, r->rbx);
	put_le64(p + 0x10, r->rcx);
	put_le64(p + 0x18, r->rdx);
	put_le64(p + 0x20, r->rsi);
	put_le64(p + 0x28, r->rdi);
	put_le64(p + 0x30, r->rsp);
	put_le64(p + 0x38, r->rbp);
	put_le64(p + 0x40, r->r8);
	put_le64(p + 0x48, r->r9);
	put_le64(p + 0x50, r->r10);
	put_le64(p + 0x58, r->r11);
	put_le64(p + 0x60, r->r12);
	put_le64(p + 0x68, r->r13);
	put_le64(p + 0x70, r->r14);
	put_le64(p + 0x78, r->r15);
	put_le64(p + 0x80, r->rip);
	put_le64(p + 0x88, r->rflags);
}

int cpu_state__decode_regs(const uint8_t *p, uint32_t len, struct kvm_regs *r,
			   struct error *err)
{
	int ret = vm_state__check_len(VM_STATE_REGS, len, VM_STATE_REGS_SIZE, err);

	if (ret)
		return ret;
	memset(r, 0, sizeof(*r));
	r->rax = get_le64(p + 0x00);
	r->rbx = get_le64(p + 0x08);
	r->rcx = get_le64(p + 0x10);
	r->rdx = get_le64(p + 0x18);
	r->rsi = get_le64(p + 0x20);
	r->rdi = get_le64(p + 0x28);
	r->rsp = get_le64(p + 0x30);
	r->rbp = get_le64(p + 0x38);
	r->r8 = get_le64(p + 0x40);
	r->r9 = get_le64(p + 0x48);
	r->r10 = get_le64(p + 0x50);
	r->r11 = get_le64(p + 0x58);
	r->r12 = get_le64(p + 0x60);
	r->r13 = get_le64(p + 0x68);
	r->r14 = get_le64(p + 0x70);
	r->r15 = get_le64(p + 0x78);
	r->rip = get_le64(p + 0x80);
	r->rflags = get_le64(p + 0x88);
	return 0;
}

static void encode_seg(const struct kvm_segment *s, uint8_t *p)
{
	put_le64(p + 0x00, s->base);
	put_le32(p + 0x08, s->limit);
	put_le16(p + 0x0c, s->selector);
	p[0x0e] = s->type;
	p[0x0f] = s->present;
	p[0x10] = s->dpl;
	p[0x11] = s->db;
	p[0x12] = s->s;
	p[0x13] = s->l;
	p[0x14] = s->g;
	p[0x15] = s->avl;
	p[0x16] = s->unusable;
	p[0x17] = 0;
}

static int decode_seg(const uint8_t *p, struct kvm_segment *s, struct error *err)
{
	const struct {
		const char *name;
		uint8_t off, max;
	} f[] = {
	    {"segment type", 0x0e, 15},	   {"segment present", 0x0f, 1},
	    {"segment dpl", 0x10, 3},	   {"segment db", 0x11, 1},
	    {"segment s", 0x12, 1},	   {"segment l", 0x13, 1},
	    {"segment g", 0x14, 1},	   {"segment avl", 0x15, 1},
	    {"segment unusable", 0x16, 1}, {"segment reserved", 0x17, 0},
	};
	unsigned int i;
	int ret;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		ret = vm_state__check_max(VM_STATE_SREGS, f[i].name, p[f[i].off], f[i].max, err);
		if (ret)
			return ret;
	}
	memset(s, 0, sizeof(*s));
	s->base = get_le64(p + 0x00);
	s->limit = get_le32(p + 0x08);
	s->selector = get_le16(p + 0x0c);
	s->type = p[0x0e];
	s->present = p[0x0f];
	s->dpl = p[0x10];
	s->db = p[0x11];
	s->s = p[0x12];
	s->l = p[0x13];
	s->g = p[0x14];
	s->avl = p[0x15];
	s->unusable = p[0x16];
	return 0;
}

static void encode_dtable(const struct kvm_dtable *d, uint8_t *p)
{
	put_le64(p, d->base);
	put_le16(p + 8, d->limit);
	memset(p + 10, 0, 6);
}

static int decode_dtable(const uint8_t *p, struct kvm_dtable *d, struct error *err)
{
	int ret = check_zero(VM_STATE_SREGS, "descriptor table reserved",
			     get_le16(p + 10) | get_le32(p + 12), err);

	if (ret)
		return ret;
	memset(d, 0, sizeof(*d));
	d->base = get_le64(p);
	d->limit = get_le16(p + 8);
	return 0;
}

/* The segment registers in record order. */
#define SREGS_SEGS(s)                                                                           \
	{                                                                                       \
		&(s)->cs, &(s)->ds, &(s)->es, &(s)->fs, &(s)->gs, &(s)->ss, &(s)->tr, &(s)->ldt \
	}

void cpu_state__encode_sregs(const struct cpu_sregs *cs, uint8_t *p)
{
	const struct kvm_sregs2 *s = &cs->s;
	const struct kvm_segment *segs[] = SREGS_SEGS(s);
	unsigned int i;

	for (i = 0; i < 8; i++)
		encode_seg(segs[i], p + i * SEG_SIZE);
	encode_dtable(&s->gdt, p + 0xc0);
	encode_dtable(&s->idt, p + 0xd0);
	put_le64(p + 0xe0, s->cr0);
	put_le64(p + 0xe8, s->cr2);
	put_le64(p + 0xf0, s->cr3);
	put_le64(p + 0xf8, s->cr4);
	put_le64(p + 0x100, s->cr8);
	put_le64(p + 0x108, s->efer);
	put_le64(p + 0x110, s->apic_base);
	put_le64(p + 0x118, s->flags);
	for (i = 0; i < 4; i++)
		put_le64(p + 0x120 + 8 * i, s->pdptrs[i]);
	for (i = 0; i < 4; i++)
		put_le64(p + 0x140 + 8 * i, cs->interrupt_bitmap[i]);
}

int cpu_state__decode_sregs(const uint8_t *p, uint32_t len, struct cpu_sregs *cs,
			    struct error *err)
{
	struct kvm_sregs2 *s = &cs->s;
	struct kvm_segment *segs[] = SREGS_SEGS(s);
	unsigned int i, bits = 0;
	int ret;

	ret = vm_state__check_len(VM_STATE_SREGS, len, VM_STATE_SREGS_SIZE, err);
	if (ret)
		return ret;
	memset(cs, 0, sizeof(*cs));
	for (i = 0; i < 8 && !ret; i++)
		ret = decode_seg(p + i * SEG_SIZE, segs[i], err);
	if (!ret)
		ret = decode_dtable(p + 0xc0, &s->gdt, err);
	if (!ret)
		ret = decode_dtable(p + 0xd0, &s->idt, err);
	if (ret)
		return ret;
	s->cr0 = get_le64(p + 0xe0);
	s->cr2 = get_le64(p + 0xe8);
	s->cr3 = get_le64(p + 0xf0);
	s->cr4 = get_le64(p + 0xf8);
	s->cr8 = get_le64(p + 0x100);
	s->efer = get_le64(p + 0x108);
	s->apic_base = get_le64(p + 0x110);
	s->flags = get_le64(p + 0x118);
	ret = vm_state__check_max(VM_STATE_SREGS, "flags", s->flags, KVM_SREGS2_FLAGS_PDPTRS_VALID,
				  err);
	if (ret)
		return ret;
	for (i = 0; i < 4; i++) {
		s->pdptrs[i] = get_le64(p + 0x120 + 8 * i);
		/* Without the flag the PDPTRs are reserved. */
		if (!(s->flags & KVM_SREGS2_FLAGS_PDPTRS_VALID)) {
			ret = check_zero(VM_STATE_SREGS, "pdptr (flags say invalid)", s->pdptrs[i],
					 err);
			if (ret)
				return ret;
		}
	}
	for (i = 0; i < 4; i++) {
		cs->interrupt_bitmap[i] = get_le64(p + 0x140 + 8 * i);
		bits += __builtin_popcountll(cs->interrupt_bitmap[i]);
	}
	/* KVM reports at most one injected interrupt. */
	return vm_state__check_max(VM_STATE_SREGS, "interrupt bitmap bits set", bits, 1, err);
}

void cpu_state__encode_fpu(const struct kvm_fpu *f, uint8_t *p)
{
	unsigned int i;

	for (i = 0; i < 8; i++)
		memcpy(p + 16 * i, f->fpr[i], 16);
	put_le16(p + 0x80, f->fcw);
	put_le16(p + 0x82, f->fsw);
	p[0x84] = f->ftwx;
	p[0x85] = 0;
	put_le16(p + 0x86, f->last_opcode);
	put_le64(p + 0x88, f->last_ip);
	put_le64(p + 0x90, f->last_dp);
	for (i = 0; i < 16; i++)
		memcpy(p + 0x98 + 16 * i, f->xmm[i], 16);
	put_le32(p + 0x198, f->mxcsr);
	put_le32(p + 0x19c, 0);
}

int cpu_state__decode_fpu(const uint8_t *p, uint32_t len, struct kvm_fpu *f, struct error *err)
{
	unsigned int i;
	int ret;

	ret = vm_state__check_len(VM_STATE_FPU, len, VM_STATE_FPU_SIZE, err);
	if (!ret)
		ret = check_zero(VM_STATE_FPU, "reserved", p[0x85] | get_le32(p + 0x19c), err);
	if (ret)
		return ret;
	memset(f, 0, sizeof(*f));
	for (i = 0; i < 8; i++)
		memcpy(f->fpr[i], p + 16 * i, 16);
	f->fcw = get_le16(p + 0x80);
	f->fsw = get_le16(p + 0x82);
	f->ftwx = p[0x84];
	f->last_opcode = get_le16(p + 0x86);
	f->last_ip = get_le64(p + 0x88);
	f->last_dp = get_le64(p + 0x90);
	for (i = 0; i < 16; i++)
		memcpy(f->xmm[i], p + 0x98 + 16 * i, 16);
	f->mxcsr = get_le32(p + 0x198);
	return 0;
}

uint32_t cpu_state__xsave_size(uint32_t bytes)
{
	return VM_STATE_XSAVE_HEAD + bytes;
}

void cpu_state__encode_xsave(const void *area, uint32_t bytes, uint8_t *p)
{
	put_le32(p, bytes);
	put_le32(p + 4, 0);
	memcpy(p + VM_STATE_XSAVE_HEAD, area, bytes);
}

int cpu_state__decode_xsave(const uint8_t *p, uint32_t len, const uint8_t **area, uint32_t *bytes,
			    struct error *err)
{
	uint32_t n;
	int ret;

	if (len < VM_STATE_XSAVE_HEAD)
		return vm_state__check_len(VM_STATE_XSAVE, len, VM_STATE_XSAVE_HEAD, err);
	n = get_le32(p);
	ret = check_zero(VM_STATE_XSAVE, "reserved", get_le32(p + 4), err);
	if (!ret && n < VM_STATE_XSAVE_MIN)
		ret =
		    err_set(err, -EINVAL, "XSAVE record: area of %u bytes, at least %u are needed",
			     n, VM_STATE_XSAVE_MIN);
	if (!ret)
		ret = vm_state__check_max(VM_STATE_XSAVE, "area size", n, VM_STATE_XSAVE_MAX, err);
	if (!ret)
		ret = vm_state__check_len(VM_STATE_XSAVE, len, cpu_state__xsave_size(n), err);
	if (ret)
		return ret;
	*area = p + VM_STATE_XSAVE_HEAD;
	*bytes = n;
	return 0;
}

uint32_t cpu_state__xcrs_size(const struct kvm_xcrs *x)
{
	return VM_STATE_XCRS_HEAD + x->nr_xcrs * VM_STATE_XCR_SIZE;
}

void cpu_state__encode_xcrs(const struct kvm_xcrs *x, uint8_t *p)
{
	uint32_t i;

	put_le32(p, x->nr_xcrs);
	put_le32(p + 4, x->flags);
	for (i = 0; i < x->nr_xcrs; i++) {
		uint8_t *e = p + VM_STATE_XCRS_HEAD + i * VM_STATE_XCR_SIZE;

		put_le32(e, x->xcrs[i].xcr);
		put_le32(e + 4, 0);
		put_le64(e + 8, x->xcrs[i].value);
	}
}

int cpu_state__decode_xcrs(const uint8_t *p, uint32_t len, struct kvm_xcrs *x,
			   struct error *err)
{
	uint32_t i, n;
	int ret;

	if (len < VM_STATE_XCRS_HEAD)
		return vm_state__check_len(VM_STATE_XCRS, len, VM_STATE_XCRS_HEAD, err);
	n = get_le32(p);
	ret = vm_state__check_max(VM_STATE_XCRS, "nr_xcrs", n, KVM_MAX_XCRS, err);
	if (!ret)
		ret = check_zero(VM_STATE_XCRS, "flags", get_le32(p + 4), err);
	if (!ret)
		ret = vm_state__check_len(VM_STATE_XCRS, len,
					  VM_STATE_XCRS_HEAD + n * VM_STATE_XCR_SIZE, err);
	if (ret)
		return ret;
	memset(x, 0, sizeof(*x));
	x->nr_xcrs = n;
	for (i = 0; i < n; i++) {
		const uint8_t *e = p + VM_STATE_XCRS_HEAD + i * VM_STATE_XCR_SIZE;

		ret = check_zero(VM_STATE_XCRS, "xcr reserved", get_le32(e + 4), err);
		if (ret)
			return ret;
		x->xcrs[i].xcr = get_le32(e);
		x->xcrs[i].value = get_le64(e + 8);
	}
	return 0;
}

uint32_t cpu_state__msrs_size(uint32_t nmsrs)
{
	return VM_STATE_MSRS_HEAD + nmsrs * VM_STATE_MSR_SIZE;
}

void cpu_state__encode_msrs(const struct kvm_msr_entry *e, uint32_t nmsrs, uint8_t *p)
{
	uint32_t i;

	put_le32(p, nmsrs);
	put_le32(p + 4, 0);
	for (i = 0; i < nmsrs; i++) {
		put_le32(p + VM_STATE_MSRS_HEAD + i * VM_STATE_MSR_SIZE, e[i].index);
		put_le64(p + VM_STATE_MSRS_HEAD + i * VM_STATE_MSR_SIZE + 4, e[i].data);
	}
}

int cpu_state__decode_msrs(const uint8_t *p, uint32_t len, struct kvm_msr_entry *e, uint32_t *nmsrs,
			   struct error *err)
{
	uint32_t i, j, n;
	int ret;

	if (len < VM_STATE_MSRS_HEAD)
		return vm_state__check_len(VM_STATE_MSRS, len, VM_STATE_MSRS_HEAD, err);
	n = get_le32(p);
	ret = vm_state__check_max(VM_STATE_MSRS, "nmsrs", n, VM_STATE_MSRS_MAX, err);
	if (!ret)
		ret = check_zero(VM_STATE_MSRS, "reserved", get_le32(p + 4), err);
	if (!ret)
		ret = vm_state__check_len(VM_STATE_MSRS, len, cpu_state__msrs_size(n), err);
	if (ret)
		return ret;
	for (i = 0; i < n; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		e[i].index = get_le32(p + VM_STATE_MSRS_HEAD + i * VM_STATE_MSR_SIZE);
		e[i].data = get_le64(p + VM_STATE_MSRS_HEAD + i * VM_STATE_MSR_SIZE + 4);
		/* A second value for one MSR would make the restore order matter. */
		for (j = 0; j < i; j++)
			if (e[j].index == e[i].index)
				return err_set(err, -EINVAL, "MSRS record: MSR 0x%x appears twice",
						e[i].index);
	}
	*nmsrs = n;
	return 0;
}

void cpu_state__encode_lapic(const struct kvm_lapic_state *l, uint8_t *p)
{
	memcpy(p, l->regs, VM_STATE_LAPIC_SIZE);
}

int cpu_state__decode_lapic(const uint8_t *p, uint32_t len, struct kvm_lapic_state *l,
			    struct error *err)
{
	int ret = vm_state__check_len(VM_STATE_LAPIC, len, VM_STATE_LAPIC_SIZE, err);

	if (ret)
		return ret;
	memcpy(l->regs, p, VM_STATE_LAPIC_SIZE);
	return 0;
}

#define EVENTS_VALID_FLAGS                                                                    \
	(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |                  \
	 KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_PAYLOAD | \
	 KVM_VCPUEVENT_VALID_TRIPLE_FAULT)

void cpu_state__encode_events(const struct kvm_vcpu_events *e, uint8_t *p)
{
	memset(p, 0, VM_STATE_EVENTS_SIZE);
	p[0x00] = e->exception.injected;
	p[0x01] = e->exception.nr;
	p[0x02] = e->exception.has_error_code;
	p[0x03] = e->exception.pending;
	put_le32(p + 0x04, e->exception.error_code);
	p[0x08] = e->interrupt.injected;
	p[0x09] = e->interrupt.nr;
	p[0x0a] = e->interrupt.soft;
	p[0x0b] = e->interrupt.shadow;
	p[0x0c] = e->nmi.injected;
	p[0x0d] = e->nmi.pending;
	p[0x0e] = e->nmi.masked;
	put_le32(p + 0x10, e->sipi_vector);
	put_le32(p + 0x14, e->flags);
	p[0x18] = e->smi.smm;
	p[0x19] = e->smi.pending;
	p[0x1a] = e->smi.smm_inside_nmi;
	p[0x1b] = e->smi.latched_init;
	p[0x1c] = e->triple_fault.pending;
	p[0x1d] = e->exception_has_payload;
	put_le64(p + 0x20, e->exception_payload);
}

int cpu_state__decode_events(const uint8_t *p, uint32_t len, struct kvm_vcpu_events *e,
			     struct error *err)
{
	const struct {
		const char *name;
		uint8_t off, max;
	} f[] = {
	    {"exception.injected", 0x00, 1},
	    {"exception.nr", 0x01, 31},
	    {"exception.has_error_code", 0x02, 1},
	    {"exception.pending", 0x03, 1},
	    {"interrupt.injected", 0x08, 1},
	    {"interrupt.soft", 0x0a, 1},
	    {"interrupt.shadow", 0x0b, KVM_X86_SHADOW_INT_MOV_SS | KVM_X86_SHADOW_INT_STI},
	    {"nmi.injected", 0x0c, 1},
	    {"nmi.masked", 0x0e, 1},
	    {"reserved", 0x0f, 0},
	    {"smi.smm", 0x18, 1},
	    {"smi.pending", 0x19, 1},
	    {"smi.smm_inside_nmi", 0x1a, 1},
	    {"smi.latched_init", 0x1b, 1},
	    {"triple_fault.pending", 0x1c, 1},
	    {"exception_has_payload", 0x1d, 1},
	    {"reserved", 0x1e, 0},
	    {"reserved", 0x1f, 0},
	};
	unsigned int i;
	int ret;

	ret = vm_state__check_len(VM_STATE_EVENTS, len, VM_STATE_EVENTS_SIZE, err);
	for (i = 0; !ret && i < sizeof(f) / sizeof(f[0]); i++)
		ret = vm_state__check_max(VM_STATE_EVENTS, f[i].name, p[f[i].off], f[i].max, err);
	if (!ret && (get_le32(p + 0x14) & ~(uint32_t)EVENTS_VALID_FLAGS))
		ret = err_set(err, -EINVAL, "EVENTS record: unknown flags 0x%x",
			       get_le32(p + 0x14) & ~(uint32_t)EVENTS_VALID_FLAGS);
	if (ret)
		return ret;
	memset(e, 0, sizeof(*e));
	e->exception.injected = p[0x00];
	e->exception.nr = p[0x01];
	e->exception.has_error_code = p[0x02];
	e->exception.pending = p[0x03];
	e->exception.error_code = get_le32(p + 0x04);
	e->interrupt.injected = p[0x08];
	e->interrupt.nr = p[0x09];
	e->interrupt.soft = p[0x0a];
	e->interrupt.shadow = p[0x0b];
	e->nmi.injected = p[0x0c];
	e->nmi.pending = p[0x0d];
	e->nmi.masked = p[0x0e];
	e->sipi_vector = get_le32(p + 0x10);
	e->flags = get_le32(p + 0x14);
	e->smi.smm = p[0x18];
	e->smi.pending = p[0x19];
	e->smi.smm_inside_nmi = p[0x1a];
	e->smi.latched_init = p[0x1b];
	e->triple_fault.pending = p[0x1c];
	e->exception_has_payload = p[0x1d];
	e->exception_payload = get_le64(p + 0x20);
	return 0;
}

void cpu_state__encode_mp_state(const struct kvm_mp_state *m, uint8_t *p)
{
	put_le32(p, m->mp_state);
	put_le32(p + 4, 0);
}

int cpu_state__decode_mp_state(const uint8_t *p, uint32_t len, struct kvm_mp_state *m,
			       struct error *err)
{
	uint32_t v;
	int ret;

	ret = vm_state__check_len(VM_STATE_MP_STATE, len, VM_STATE_MP_STATE_SIZE, err);
	if (!ret)
		ret = check_zero(VM_STATE_MP_STATE, "reserved", get_le32(p + 4), err);
	if (ret)
		return ret;
	v = get_le32(p);
	/* The states KVM_SET_MP_STATE accepts on x86. */
	switch (v) {
	case KVM_MP_STATE_RUNNABLE:
	case KVM_MP_STATE_UNINITIALIZED:
	case KVM_MP_STATE_INIT_RECEIVED:
	case KVM_MP_STATE_HALTED:
	case KVM_MP_STATE_SIPI_RECEIVED:
	case KVM_MP_STATE_AP_RESET_HOLD:
		m->mp_state = v;
		return 0;
	}
	return err_set(err, -EINVAL, "MP_STATE record: %u is not an x86 vCPU state", v);
}

void cpu_state__encode_debugregs(const struct kvm_debugregs *d, uint8_t *p)
{
	unsigned int i;

	for (i = 0; i < 4; i++)
		put_le64(p + 8 * i, d->db[i]);
	put_le64(p + 0x20, d->dr6);
	put_le64(p + 0x28, d->dr7);
	put_le64(p + 0x30, d->flags);
}

int cpu_state__decode_debugregs(const uint8_t *p, uint32_t len, struct kvm_debugregs *d,
				struct error *err)
{
	unsigned int i;
	int ret;

	ret = vm_state__check_len(VM_STATE_DEBUGREGS, len, VM_STATE_DEBUGREGS_SIZE, err);
	/* KVM_SET_DEBUGREGS refuses DR6/DR7 with bits 63:32 set, and any flags. */
	if (!ret)
		ret = vm_state__check_max(VM_STATE_DEBUGREGS, "dr6", get_le64(p + 0x20), UINT32_MAX,
					  err);
	if (!ret)
		ret = vm_state__check_max(VM_STATE_DEBUGREGS, "dr7", get_le64(p + 0x28), UINT32_MAX,
					  err);
	if (!ret)
		ret = check_zero(VM_STATE_DEBUGREGS, "flags", get_le64(p + 0x30), err);
	if (ret)
		return ret;
	memset(d, 0, sizeof(*d));
	for (i = 0; i < 4; i++)
		d->db[i] = get_le64(p + 8 * i);
	d->dr6 = get_le64(p + 0x20);
	d->dr7 = get_le64(p + 0x28);
	return 0;
}

void cpu_state__encode_progress(const struct cpu_progress *g, uint8_t *p)
{
	memset(p, 0, VM_STATE_PROGRESS_SIZE);
	put_le64(p, g->pages);
	put_le64(p + 8, g->passes);
	p[0x10] = g->ready;
}

int cpu_state__decode_progress(const uint8_t *p, uint32_t len, struct cpu_progress *g,
			       struct error *err)
{
	uint64_t rsvd;
	int ret;

	ret = vm_state__check_len(VM_STATE_PROGRESS, len, VM_STATE_PROGRESS_SIZE, err);
	if (!ret)
		ret = vm_state__check_max(VM_STATE_PROGRESS, "ready", p[0x10], 1, err);
	if (ret)
		return ret;
	rsvd = get_le64(p + 0x10) >> 8;
	ret = check_zero(VM_STATE_PROGRESS, "reserved", rsvd, err);
	if (ret)
		return ret;
	g->pages = get_le64(p);
	g->passes = get_le64(p + 8);
	g->ready = p[0x10];
	return 0;
}
