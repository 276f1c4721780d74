// SPDX-License-Identifier: GPL-2.0
/*
 * One vCPU's state: read it from KVM into records, and load decoded records
 * back in the order that KVM needs (Documentation/state-records.md,
 * "Restore order"). Runs only while the vCPU is outside KVM_RUN.
 */
#include "state/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm.h"

/* KVM refuses KVM_GET_MSRS / KVM_SET_MSRS batches of 256 or more. */
#define MSR_BATCH 128

static int cpu_ioctl(struct kvm_cpu *cpu, unsigned long req, void *arg, const char *name,
		     struct error *err)
{
	int e;

	if (ioctl(cpu->fd, req, arg) >= 0)
		return 0;
	e = errno;
	return err_set(err, -e, "vCPU %u: %s: %s", cpu->id, name, strerror(e));
}

#define CPU_IOCTL(cpu, req, arg, err) cpu_ioctl((cpu), (req), (arg), #req, (err))

static int vm_cap(struct kvm *kvm, int cap)
{
	int r = ioctl(kvm->vm_fd, KVM_CHECK_EXTENSION, cap);

	return r > 0 ? r : 0;
}

/* Bytes of the XSAVE area KVM reads and writes; 0 when KVM has no XSAVE. */
static uint32_t xsave_size(struct kvm *kvm)
{
	int size = vm_cap(kvm, KVM_CAP_XSAVE2);

	if (size >= (int)sizeof(struct kvm_xsave))
		return (uint32_t)size;
	return vm_cap(kvm, KVM_CAP_XSAVE) ? sizeof(struct kvm_xsave) : 0;
}

static uint8_t *add(struct snap_state_writer *w, uint32_t type, struct kvm_cpu *cpu, uint32_t len)
{
	return snap_state_add(w, type, cpu->id, len);
}

static int save_sregs(struct kvm_cpu *cpu, struct snap_state_writer *w, struct error *err)
{
	struct cpu_sregs cs;
	struct kvm_sregs old;
	uint8_t *p;
	int ret;

	memset(&cs, 0, sizeof(cs));
	/* SREGS2 adds the PAE PDPTRs; the pending interrupt is in EVENTS either way. */
	if (vm_cap(cpu->kvm, KVM_CAP_SREGS2)) {
		ret = CPU_IOCTL(cpu, KVM_GET_SREGS2, &cs.s, err);
	} else {
		ret = CPU_IOCTL(cpu, KVM_GET_SREGS, &old, err);
		if (!ret) {
			cs.s.cs = old.cs, cs.s.ds = old.ds, cs.s.es = old.es, cs.s.fs = old.fs;
			cs.s.gs = old.gs, cs.s.ss = old.ss, cs.s.tr = old.tr, cs.s.ldt = old.ldt;
			cs.s.gdt = old.gdt, cs.s.idt = old.idt;
			cs.s.cr0 = old.cr0, cs.s.cr2 = old.cr2, cs.s.cr3 = old.cr3;
			cs.s.cr4 = old.cr4, cs.s.cr8 = old.cr8;
			cs.s.efer = old.efer, cs.s.apic_base = old.apic_base;
			memcpy(cs.interrupt_bitmap, old.interrupt_bitmap,
			       sizeof(cs.interrupt_bitmap));
		}
	}
	if (ret)
		return ret;
	p = add(w, VM_STATE_SREGS, cpu, VM_STATE_SREGS_SIZE);
	if (p)
		cpu_state__encode_sregs(&cs, p);
	return 0;
}

static int save_fpu(struct kvm_cpu *cpu, struct snap_state_writer *w, struct error *err)
{
	uint32_t size = xsave_size(cpu->kvm);
	struct kvm_fpu fpu;
	uint8_t *area, *p;
	int ret;

	if (!size) {
		ret = CPU_IOCTL(cpu, KVM_GET_FPU, &fpu, err);
		p = ret ? NULL : add(w, VM_STATE_FPU, cpu, VM_STATE_FPU_SIZE);
		if (p)
			cpu_state__encode_fpu(&fpu, p);
		return ret;
	}
	area = calloc(1, size);
	if (!area)
		return err_set(err, -ENOMEM, "vCPU %u: out of memory for the XSAVE area", cpu->id);
	if (size > sizeof(struct kvm_xsave))
		ret = CPU_IOCTL(cpu, KVM_GET_XSAVE2, area, err);
	else
		ret = CPU_IOCTL(cpu, KVM_GET_XSAVE, area, err);
	p = ret ? NULL : add(w, VM_STATE_XSAVE, cpu, cpu_state__xsave_size(size));
	if (p)
		cpu_state__encode_xsave(area, size, p);
	free(area);
	return ret;
}

static int save_xcrs(struct kvm_cpu *cpu, struct snap_state_writer *w, struct error *err)
{
	struct kvm_xcrs x;
	uint8_t *p;
	int ret;

	if (!vm_cap(cpu->kvm, KVM_CAP_XCRS))
		return 0;
	ret = CPU_IOCTL(cpu, KVM_GET_XCRS, &x, err);
	if (!ret && x.nr_xcrs > KVM_MAX_XCRS)
		ret = err_set(err, -EIO, "vCPU %u: KVM_GET_XCRS returned %u XCRs", cpu->id,
			      x.nr_xcrs);
	p = ret ? NULL : add(w, VM_STATE_XCRS, cpu, cpu_state__xcrs_size(&x));
	if (p)
		cpu_state__encode_xcrs(&x, p);
	return ret;
}

/* The MSRs KVM saves and restores for userspace, from KVM_GET_MSR_INDEX_LIST. */
static int msr_index_list(struct kvm *kvm, struct kvm_msr_list **out, struct error *err)
{
	struct kvm_msr_list probe = {.nmsrs = 0}, *list;
	int e;

	if (ioctl(kvm->sys_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG) {
		e = errno;
		return err_set(err, -e, "KVM_GET_MSR_INDEX_LIST: %s", strerror(e));
	}
	if (probe.nmsrs > VM_STATE_MSRS_MAX)
		return err_set(err, -E2BIG, "KVM lists %u MSRs, kvmsnap saves at most %u",
			       probe.nmsrs, VM_STATE_MSRS_MAX);
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	if (!list)
		return err_set(err, -ENOMEM, "out of memory for the MSR list");
	list->nmsrs = probe.nmsrs;
	if (ioctl(kvm->sys_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		e = errno;
		free(list);
		return err_set(err, -e, "KVM_GET_MSR_INDEX_LIST: %s", strerror(e));
	}
	*out = list;
	return 0;
}

/*
 * Read every listed MSR that KVM_GET_MSRS returns. KVM stops a batch at the
 * first MSR it cannot read (one this CPU model lacks); that one is skipped
 * and the batch goes on after it.
 */
static int read_msrs(struct kvm_cpu *cpu, const struct kvm_msr_list *list,
		     struct kvm_msr_entry *out, uint32_t *nout, struct error *err)
{
	struct kvm_msrs *b = calloc(1, sizeof(*b) + MSR_BATCH * sizeof(b->entries[0]));
	uint32_t i = 0, n = 0, j;
	int r, e;

	if (!b)
		return err_set(err, -ENOMEM, "out of memory for MSRs");
	while (i < list->nmsrs) {
		b->nmsrs = list->nmsrs - i < MSR_BATCH ? list->nmsrs - i : MSR_BATCH;
		for (j = 0; j < b->nmsrs; j++)
			b->entries[j] = (struct kvm_msr_entry){.index = list->indices[i + j]};
		r = ioctl(cpu->fd, KVM_GET_MSRS, b);
		if (r < 0) {
			e = errno;
			free(b);
			return err_set(err, -e, "vCPU %u: KVM_GET_MSRS: %s", cpu->id, strerror(e));
		}
		for (j = 0; j < (uint32_t)r && j < b->nmsrs; j++)
			out[n++] = b->entries[j];
		i += (uint32_t)r;
		if ((uint32_t)r < b->nmsrs)
			i++; /* skip the unreadable one */
	}
	free(b);
	*nout = n;
	return 0;
}

static int save_msrs(struct kvm_cpu *cpu, struct snap_state_writer *w, uint64_t *tsc,
		     struct error *err)
{
	struct kvm_msr_list *list = NULL;
	struct kvm_msr_entry *e;
	uint32_t n = 0;
	uint8_t *p;
	int ret;

	ret = msr_index_list(cpu->kvm, &list, err);
	if (ret)
		return ret;
	e = calloc(list->nmsrs ? list->nmsrs : 1, sizeof(*e));
	if (!e) {
		free(list);
		return err_set(err, -ENOMEM, "out of memory for MSRs");
	}
	ret = read_msrs(cpu, list, e, &n, err);
	for (uint32_t i = 0; !ret && tsc && i < n; i++)
		if (e[i].index == MSR_IA32_TSC_NR)
			*tsc = e[i].data;
	p = ret ? NULL : add(w, VM_STATE_MSRS, cpu, cpu_state__msrs_size(n));
	if (p)
		cpu_state__encode_msrs(e, n, p);
	free(e);
	free(list);
	return ret;
}

int cpu_state__save(struct kvm_cpu *cpu, struct snap_state_writer *w, uint64_t *tsc,
		    struct error *err)
{
	struct kvm_regs regs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs dbg;
	struct cpu_progress prog;
	uint8_t *p;
	int ret;

	ret = CPU_IOCTL(cpu, KVM_GET_REGS, &regs, err);
	p = ret ? NULL : add(w, VM_STATE_REGS, cpu, VM_STATE_REGS_SIZE);
	if (p)
		cpu_state__encode_regs(&regs, p);
	if (!ret)
		ret = save_sregs(cpu, w, err);
	if (!ret)
		ret = save_fpu(cpu, w, err);
	if (!ret)
		ret = save_xcrs(cpu, w, err);
	if (!ret)
		ret = save_msrs(cpu, w, tsc, err);
	if (!ret)
		ret = CPU_IOCTL(cpu, KVM_GET_LAPIC, &lapic, err);
	p = ret ? NULL : add(w, VM_STATE_LAPIC, cpu, VM_STATE_LAPIC_SIZE);
	if (p)
		cpu_state__encode_lapic(&lapic, p);
	if (!ret)
		ret = CPU_IOCTL(cpu, KVM_GET_VCPU_EVENTS, &events, err);
	p = ret ? NULL : add(w, VM_STATE_EVENTS, cpu, VM_STATE_EVENTS_SIZE);
	if (p)
		cpu_state__encode_events(&events, p);
	if (!ret)
		ret = CPU_IOCTL(cpu, KVM_GET_MP_STATE, &mp, err);
	p = ret ? NULL : add(w, VM_STATE_MP_STATE, cpu, VM_STATE_MP_STATE_SIZE);
	if (p)
		cpu_state__encode_mp_state(&mp, p);
	if (!ret)
		ret = CPU_IOCTL(cpu, KVM_GET_DEBUGREGS, &dbg, err);
	p = ret ? NULL : add(w, VM_STATE_DEBUGREGS, cpu, VM_STATE_DEBUGREGS_SIZE);
	if (p)
		cpu_state__encode_debugregs(&dbg, p);
	if (ret)
		return ret;
	prog.pages = __atomic_load_n(&cpu->progress.pages, __ATOMIC_RELAXED);
	prog.passes = __atomic_load_n(&cpu->progress.passes, __ATOMIC_RELAXED);
	prog.ready = __atomic_load_n(&cpu->progress.ready, __ATOMIC_RELAXED);
	p = add(w, VM_STATE_PROGRESS, cpu, VM_STATE_PROGRESS_SIZE);
	if (p)
		cpu_state__encode_progress(&prog, p);
	return 0;
}

static uint32_t type_bit(uint32_t type)
{
	return 1u << (type & 0x1f);
}

int cpu_state__decode(struct cpu_state *cs, const struct snap_state_record *rec, struct error *err)
{
	const uint8_t *p = rec->payload;
	uint32_t len = rec->len;
	int ret;

	if (cs->seen & type_bit(rec->type))
		return err_set(err, -EINVAL, "vCPU %u has two %s records", rec->instance,
			       vm_state__type_name(rec->type));
	switch (rec->type) {
	case VM_STATE_REGS:
		ret = cpu_state__decode_regs(p, len, &cs->regs, err);
		break;
	case VM_STATE_SREGS:
		ret = cpu_state__decode_sregs(p, len, &cs->sregs, err);
		break;
	case VM_STATE_XSAVE:
		ret = cpu_state__decode_xsave(p, len, &cs->xsave, &cs->xsave_len, err);
		break;
	case VM_STATE_FPU:
		ret = cpu_state__decode_fpu(p, len, &cs->fpu, err);
		break;
	case VM_STATE_XCRS:
		ret = cpu_state__decode_xcrs(p, len, &cs->xcrs, err);
		break;
	case VM_STATE_MSRS:
		cs->msrs = calloc(VM_STATE_MSRS_MAX, sizeof(*cs->msrs));
		if (!cs->msrs)
			return err_set(err, -ENOMEM, "out of memory for MSRs");
		ret = cpu_state__decode_msrs(p, len, cs->msrs, &cs->nmsrs, err);
		break;
	case VM_STATE_LAPIC:
		ret = cpu_state__decode_lapic(p, len, &cs->lapic, err);
		break;
	case VM_STATE_EVENTS:
		ret = cpu_state__decode_events(p, len, &cs->events, err);
		break;
	case VM_STATE_MP_STATE:
		ret = cpu_state__decode_mp_state(p, len, &cs->mp, err);
		break;
	case VM_STATE_DEBUGREGS:
		ret = cpu_state__decode_debugregs(p, len, &cs->debugregs, err);
		break;
	case VM_STATE_PROGRESS:
		ret = cpu_state__decode_progress(p, len, &cs->progress, err);
		break;
	default:
		return err_set(err, -EINVAL, "unknown vCPU record type 0x%04x", rec->type);
	}
	if (ret) {
		err_prefix(err, "vCPU %u", rec->instance);
		return ret;
	}
	cs->seen |= type_bit(rec->type);
	return 0;
}

int cpu_state__check(const struct cpu_state *cs, unsigned int id, struct error *err)
{
	static const uint32_t required[] = {
	    VM_STATE_REGS,   VM_STATE_SREGS,	VM_STATE_MSRS,	    VM_STATE_LAPIC,
	    VM_STATE_EVENTS, VM_STATE_MP_STATE, VM_STATE_DEBUGREGS, VM_STATE_PROGRESS,
	};
	bool xsave = cs->seen & type_bit(VM_STATE_XSAVE), fpu = cs->seen & type_bit(VM_STATE_FPU);
	unsigned int i;

	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!(cs->seen & type_bit(required[i])))
			return err_set(err, -EINVAL, "vCPU %u has no %s record", id,
				       vm_state__type_name(required[i]));
	if (xsave == fpu)
		return err_set(err, -EINVAL,
			       "vCPU %u needs exactly one of XSAVE and FPU, it has %s", id,
			       xsave ? "both" : "neither");
	return 0;
}

void cpu_state__free(struct cpu_state *cs)
{
	free(cs->msrs);
	cs->msrs = NULL;
}

static int load_sregs(struct kvm_cpu *cpu, const struct cpu_sregs *cs, struct error *err)
{
	struct kvm_sregs2 s2;
	struct kvm_sregs old;

	if (vm_cap(cpu->kvm, KVM_CAP_SREGS2)) {
		s2 = cs->s;
		return CPU_IOCTL(cpu, KVM_SET_SREGS2, &s2, err);
	}
	/* Without SREGS2 KVM reloads the PDPTRs from CR3, as it always did. */
	memset(&old, 0, sizeof(old));
	old.cs = cs->s.cs, old.ds = cs->s.ds, old.es = cs->s.es, old.fs = cs->s.fs;
	old.gs = cs->s.gs, old.ss = cs->s.ss, old.tr = cs->s.tr, old.ldt = cs->s.ldt;
	old.gdt = cs->s.gdt, old.idt = cs->s.idt;
	old.cr0 = cs->s.cr0, old.cr2 = cs->s.cr2, old.cr3 = cs->s.cr3;
	old.cr4 = cs->s.cr4, old.cr8 = cs->s.cr8;
	old.efer = cs->s.efer, old.apic_base = cs->s.apic_base;
	memcpy(old.interrupt_bitmap, cs->interrupt_bitmap, sizeof(old.interrupt_bitmap));
	return CPU_IOCTL(cpu, KVM_SET_SREGS, &old, err);
}

static int load_fpu(struct kvm_cpu *cpu, const struct cpu_state *cs, struct error *err)
{
	uint32_t size = xsave_size(cpu->kvm), i;
	struct kvm_fpu fpu;
	uint8_t *area;
	int ret;

	if (!cs->xsave) {
		fpu = cs->fpu;
		return CPU_IOCTL(cpu, KVM_SET_FPU, &fpu, err);
	}
	if (!size)
		return err_set(err, -EOPNOTSUPP,
			       "vCPU %u: the state has an XSAVE area but KVM here has no XSAVE",
			       cpu->id);
	/* KVM reads its own size: pad a shorter area, refuse to cut a longer one. */
	for (i = size; i < cs->xsave_len; i++)
		if (cs->xsave[i])
			return err_set(
			    err, -EOPNOTSUPP,
			    "vCPU %u: the XSAVE area has state at byte %u, KVM here takes %u bytes",
			    cpu->id, i, size);
	area = calloc(1, size);
	if (!area)
		return err_set(err, -ENOMEM, "vCPU %u: out of memory for the XSAVE area", cpu->id);
	memcpy(area, cs->xsave, cs->xsave_len < size ? cs->xsave_len : size);
	ret = CPU_IOCTL(cpu, KVM_SET_XSAVE, area, err);
	free(area);
	return ret;
}

static int load_msrs(struct kvm_cpu *cpu, const struct kvm_msr_entry *e, uint32_t n,
		     struct error *err)
{
	struct kvm_msrs *b = calloc(1, sizeof(*b) + MSR_BATCH * sizeof(b->entries[0]));
	uint32_t i = 0;
	int r, ret = 0;

	if (!b)
		return err_set(err, -ENOMEM, "out of memory for MSRs");
	while (!ret && i < n) {
		b->nmsrs = n - i < MSR_BATCH ? n - i : MSR_BATCH;
		memcpy(b->entries, e + i, b->nmsrs * sizeof(b->entries[0]));
		r = ioctl(cpu->fd, KVM_SET_MSRS, b);
		if (r < 0)
			ret = err_set(err, -errno, "vCPU %u: KVM_SET_MSRS: %s", cpu->id,
				      strerror(errno));
		else if ((uint32_t)r < b->nmsrs)
			ret =
			    err_set(err, -EINVAL, "vCPU %u: KVM refused MSR 0x%x = 0x%llx", cpu->id,
				    b->entries[r].index, (unsigned long long)b->entries[r].data);
		i += b->nmsrs;
	}
	free(b);
	return ret;
}

int cpu_state__read_tsc(struct kvm_cpu *cpu, uint64_t *tsc, struct error *err)
{
	union {
		struct kvm_msrs m;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} b;

	memset(&b, 0, sizeof(b));
	b.m.nmsrs = 1;
	b.m.entries[0].index = MSR_IA32_TSC_NR;
	if (ioctl(cpu->fd, KVM_GET_MSRS, &b.m) != 1)
		return err_set(err, -EIO, "vCPU %u: KVM_GET_MSRS IA32_TSC failed", cpu->id);
	*tsc = b.m.entries[0].data;
	return 0;
}

bool cpu_state__msr(const struct cpu_state *cs, uint32_t index, uint64_t *val)
{
	uint32_t i;

	for (i = 0; i < cs->nmsrs; i++)
		if (cs->msrs[i].index == index) {
			*val = cs->msrs[i].data;
			return true;
		}
	return false;
}

uint64_t cpu_state__saved_tsc(const struct cpu_state *cs)
{
	uint64_t tsc;

	return cpu_state__msr(cs, MSR_IA32_TSC_NR, &tsc) ? tsc : 0;
}

void cpu_state__advance_tsc(struct cpu_state *cs, uint64_t cycles)
{
	uint32_t i;

	for (i = 0; i < cs->nmsrs; i++)
		if (cs->msrs[i].index == MSR_IA32_TSC_NR)
			cs->msrs[i].data += cycles;
}

int cpu_state__restore(struct kvm_cpu *cpu, const struct cpu_state *cs, struct error *err)
{
	struct kvm_msr_entry *msrs = NULL, deadline = {0};
	struct kvm_regs regs = cs->regs;
	struct kvm_lapic_state lapic = cs->lapic;
	struct kvm_vcpu_events events = cs->events;
	struct kvm_mp_state mp = cs->mp;
	struct kvm_debugregs dbg = cs->debugregs;
	struct kvm_xcrs xcrs = cs->xcrs;
	uint32_t i, n = 0;
	bool have_deadline = false;
	int ret;

	/* TSC_DEADLINE is written after the LAPIC, which must be in deadline mode first. */
	msrs = calloc(cs->nmsrs ? cs->nmsrs : 1, sizeof(*msrs));
	if (!msrs)
		return err_set(err, -ENOMEM, "out of memory for MSRs");
	for (i = 0; i < cs->nmsrs; i++) {
		if (cs->msrs[i].index == MSR_IA32_TSC_DEADLINE_NR) {
			deadline = cs->msrs[i];
			have_deadline = true;
		} else {
			msrs[n++] = cs->msrs[i];
		}
	}

	ret = load_sregs(cpu, &cs->sregs, err);
	if (!ret)
		ret = CPU_IOCTL(cpu, KVM_SET_REGS, &regs, err);
	if (!ret)
		ret = load_fpu(cpu, cs, err);
	if (!ret && (cs->seen & type_bit(VM_STATE_XCRS))) {
		if (!vm_cap(cpu->kvm, KVM_CAP_XCRS))
			ret =
			    err_set(err, -EOPNOTSUPP,
				    "vCPU %u: the state has XCRs but KVM here has no KVM_CAP_XCRS",
				    cpu->id);
		else
			ret = CPU_IOCTL(cpu, KVM_SET_XCRS, &xcrs, err);
	}
	if (!ret)
		ret = load_msrs(cpu, msrs, n, err);
	if (!ret)
		ret = CPU_IOCTL(cpu, KVM_SET_LAPIC, &lapic, err);
	if (!ret && have_deadline)
		ret = load_msrs(cpu, &deadline, 1, err);
	/* After REGS (which drops a pending exception) and before MP_STATE (INIT latch). */
	events.flags |= KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	if (!ret)
		ret = CPU_IOCTL(cpu, KVM_SET_VCPU_EVENTS, &events, err);
	if (!ret)
		ret = CPU_IOCTL(cpu, KVM_SET_MP_STATE, &mp, err);
	if (!ret)
		ret = CPU_IOCTL(cpu, KVM_SET_DEBUGREGS, &dbg, err);
	free(msrs);
	if (ret)
		return ret;
	__atomic_store_n(&cpu->progress.pages, cs->progress.pages, __ATOMIC_RELAXED);
	__atomic_store_n(&cpu->progress.passes, cs->progress.passes, __ATOMIC_RELAXED);
	__atomic_store_n(&cpu->progress.ready, cs->progress.ready != 0, __ATOMIC_RELAXED);
	return 0;
}

int cpu_state__set_tsc_khz(struct kvm_cpu *cpu, uint32_t khz, struct error *err)
{
	if (ioctl(cpu->fd, KVM_SET_TSC_KHZ, (unsigned long)khz) < 0)
		return err_set(err, -errno,
			       "vCPU %u: the state's TSC runs at %u kHz, this host's at %u kHz, "
			       "and KVM_SET_TSC_KHZ failed: %s",
			       cpu->id, khz, cpu->kvm->tsc_khz, strerror(errno));
	return 0;
}
