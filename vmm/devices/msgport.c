// SPDX-License-Identifier: GPL-2.0
/*
 * The message port: how ring-3 guest code reaches the VMM, since port I/O
 * from ring 3 is not reliable on every host. Every guest address it is given
 * goes through mem__gpa_to_host(); a bad one ends the guest, never the VMM.
 */
#include "devices/msgport.h"

#include <string.h>

#include "devices/console.h"
#include "devices/debug-exit.h"
#include "guest-abi.h"
#include "kvm.h"
#include "util/util.h"

#define MSGPORT_STR_MAX 256

/* Copy a NUL-terminated guest string of at most MSGPORT_STR_MAX - 1 bytes. */
static int msgport__read_str(struct kvm *kvm, uint64_t gpa, char *out)
{
	size_t i;

	for (i = 0; i < MSGPORT_STR_MAX - 1; i++) {
		const char *c = mem__gpa_to_host(&kvm->mem, gpa + i, 1);

		if (!c)
			return -1;
		out[i] = *c;
		if (!*c)
			return (int)i;
	}
	out[i] = '\0';
	return (int)i;
}

static void msgport__fault(struct kvm_cpu *cpu, uint64_t gpa)
{
	struct kvmsnap_fault f;
	const void *p = mem__gpa_to_host(&cpu->kvm->mem, gpa, sizeof(f));

	if (!p) {
		kvm__request_exit(
		    cpu->kvm, EXIT_GUEST_CRASH,
		    "vCPU %u: guest reported a fault with a bad record address 0x%llx", cpu->id,
		    (unsigned long long)gpa);
		return;
	}
	memcpy(&f, p, sizeof(f));
	kvm__request_exit(cpu->kvm, EXIT_GUEST_CRASH,
			  "vCPU %u: guest exception %llu (error 0x%llx) at rip 0x%llx cs 0x%llx "
			  "rsp 0x%llx cr2 0x%llx",
			  cpu->id, (unsigned long long)f.vector, (unsigned long long)f.error_code,
			  (unsigned long long)f.rip, (unsigned long long)f.cs,
			  (unsigned long long)f.rsp, (unsigned long long)f.cr2);
}

static void msgport__write(struct kvm_cpu *cpu, uint64_t reg, uint64_t v)
{
	struct kvm *kvm = cpu->kvm;
	char buf[MSGPORT_STR_MAX];
	uint8_t c;
	int n;

	switch (reg) {
	case MSGPORT_PUTC:
		c = (uint8_t)v;
		if (kvm->console)
			console__write(kvm->console, &c, 1);
		break;
	case MSGPORT_PUTS:
		n = msgport__read_str(kvm, v, buf);
		if (n < 0)
			kvm__request_exit(kvm, EXIT_GUEST_CRASH,
					  "vCPU %u: guest string at bad address 0x%llx", cpu->id,
					  (unsigned long long)v);
		else if (kvm->console)
			console__write(kvm->console, buf, n);
		break;
	case MSGPORT_EXIT:
		kvm__request_exit(kvm, debug_exit__status(v), "guest exit with code %llu",
				  (unsigned long long)v);
		break;
	case MSGPORT_PROGRESS:
		__atomic_store_n(&cpu->progress.pages, v, __ATOMIC_RELAXED);
		break;
	case MSGPORT_PASS:
		__atomic_store_n(&cpu->progress.passes, v, __ATOMIC_RELAXED);
		break;
	case MSGPORT_READY:
		__atomic_store_n(&cpu->progress.ready, true, __ATOMIC_RELAXED);
		break;
	case MSGPORT_FAIL:
		kvm__request_exit(kvm, EXIT_GUEST_CHECK,
				  "vCPU %u: guest self-check failed at guest address 0x%llx",
				  cpu->id, (unsigned long long)v);
		break;
	case MSGPORT_FAULT:
		msgport__fault(cpu, v);
		break;
	default:
		pr_debug("msgport: write to unknown register 0x%llx", (unsigned long long)reg);
	}
}

static void msgport__io(struct kvm_cpu *cpu, uint64_t addr, uint8_t *data, uint32_t size,
			bool is_write, void *opaque)
{
	uint64_t base = (uint64_t)(uintptr_t)opaque, reg = addr - base, v = 0;

	/* Registers are 8 bytes; narrower stores write the low bytes. */
	if (is_write) {
		memcpy(&v, data, size > 8 ? 8 : size);
		msgport__write(cpu, reg, v);
		return;
	}
	if (reg == MSGPORT_ID)
		v = KVMSNAP_MSGPORT_ID;
	else if (reg == MSGPORT_CPU)
		v = cpu->id;
	memset(data, 0, size);
	memcpy(data, &v, size > 8 ? 8 : size);
}

int msgport__init(struct kvm *kvm, uint64_t gpa)
{
	return kvm__register_mmio(kvm, gpa, PAGE_SIZE, msgport__io, (void *)(uintptr_t)gpa);
}
