// SPDX-License-Identifier: GPL-2.0
/*
 * vCPUs: creation, entry state, the run loop, and the pause/ack protocol.
 *
 * Pause/ack: the main thread sets kvm->pause_requested under kvm->lock and
 * sends SIGKICK to every vCPU thread. The signal handler sets the thread's
 * run->immediate_exit, so a kick that lands between the flag check and
 * KVM_RUN still makes KVM_RUN return at once. A vCPU that sees the flag
 * counts itself in nr_paused, signals kvm->cond and sleeps on it until the
 * flag is cleared. kvm__pause() returns when nr_paused == nr_cpus: every vCPU
 * is then outside KVM_RUN and its state is stable.
 */
#include "kvm.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <time.h>

#include "dirty-ring.h"
#include "layout.h"
#include "loader/loader.h"
#include "util/util.h"

#define SIGKICK SIGUSR1

static __thread struct kvm_cpu *current_cpu;

static void kvm_cpu__on_kick(int sig)
{
	(void)sig;
	if (current_cpu)
		__atomic_store_n(&current_cpu->run->immediate_exit, 1, __ATOMIC_RELAXED);
}

/* Give each vCPU its own APIC id in CPUID, as the MADT says, and say it is a guest. */
static int kvm_cpu__set_cpuid(struct kvm_cpu *cpu, struct error *err)
{
	const struct kvm_cpuid2 *src = cpu->kvm->cpuid;
	size_t sz = sizeof(*src) + src->nent * sizeof(src->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	unsigned int i;
	int ret = 0;

	if (!c)
		return err_errno(err, ENOMEM, "vCPU %u: KVM_SET_CPUID2", cpu->id);
	memcpy(c, src, sz);
	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x00ffffff) | (cpu->id << 24);
			/*
			 * The hypervisor bit: without it Linux never reads KVM's
			 * leaves at 0x40000000, so it has no kvmclock and no TSC
			 * frequency, and finds no PIT to calibrate against.
			 */
			e->ecx |= 1u << 31;
			break;
		case 0xb:
		case 0x1f:
			e->edx = cpu->id;
			break;
		case 0xa:
			/* No PMU is virtualized for guests. */
			e->eax = e->ebx = e->ecx = e->edx = 0;
			break;
		}
	}
	if (ioctl(cpu->fd, KVM_SET_CPUID2, c) < 0)
		ret = err_errno(err, errno, "vCPU %u: KVM_SET_CPUID2", cpu->id);
	free(c);
	return ret;
}

static int kvm_cpu__create(struct kvm *kvm, unsigned int id, struct kvm_cpu **out,
			   struct error *err)
{
	struct kvm_cpu *cpu = calloc(1, sizeof(*cpu));
	int ret;

	if (!cpu)
		return err_errno(err, ENOMEM, "vCPU %u", id);
	*out = cpu;
	cpu->kvm = kvm;
	cpu->id = id;
	cpu->fd = ioctl(kvm->vm_fd, KVM_CREATE_VCPU, id);
	if (cpu->fd < 0)
		return err_errno(err, errno, "KVM_CREATE_VCPU %u", id);
	cpu->run = mmap(NULL, kvm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu->fd, 0);
	if (cpu->run == MAP_FAILED) {
		cpu->run = NULL;
		return err_errno(err, errno, "vCPU %u: mmap kvm_run", id);
	}
	ret = kvm_cpu__set_cpuid(cpu, err);
	if (ret)
		return ret;
	if (id == 0) {
		ret = ioctl(cpu->fd, KVM_GET_TSC_KHZ, 0);
		kvm->tsc_khz = ret > 0 ? ret : 0;
	}
	return 0;
}

int kvm_cpu__create_all(struct kvm *kvm, unsigned int nr_cpus, struct error *err)
{
	unsigned int i;
	int ret;

	kvm->cpus = calloc(nr_cpus, sizeof(*kvm->cpus));
	if (!kvm->cpus)
		return err_errno(err, ENOMEM, "%u vCPUs", nr_cpus);
	kvm->nr_cpus = nr_cpus;
	for (i = 0; i < nr_cpus; i++) {
		ret = kvm_cpu__create(kvm, i, &kvm->cpus[i], err);
		if (ret)
			return ret;
	}
	return 0;
}

/* A vCPU ioctl; on failure, -errno and *err is "vCPU N: REQUEST: strerror". */
#define CPU_IOCTL(cpu, req, arg, err)                                                 \
	({                                                                            \
		int _r = ioctl((cpu)->fd, (req), (arg));                              \
		_r < 0 ? err_errno((err), errno, "vCPU %u: %s", (cpu)->id, #req) : 0; \
	})

static void flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64, bool db)
{
	*s = (struct kvm_segment){
	    .base = 0,
	    .limit = 0xffffffff,
	    .selector = sel,
	    .type = type,
	    .present = 1,
	    .dpl = 0,
	    .db = db,
	    .s = 1,
	    .l = code64,
	    .g = 1,
	};
}

#define CR0_PE	       (1ULL << 0)
#define CR0_MP	       (1ULL << 1)
#define CR0_ET	       (1ULL << 4)
#define CR0_NE	       (1ULL << 5)
#define CR0_WP	       (1ULL << 16)
#define CR0_PG	       (1ULL << 31)
#define CR4_PAE	       (1ULL << 5)
#define CR4_OSFXSR     (1ULL << 9)
#define CR4_OSXMMEXCPT (1ULL << 10)
#define EFER_LME       (1ULL << 8)
#define EFER_LMA       (1ULL << 10)
#define SEG_CODE       0xb /* execute/read, accessed */
#define SEG_DATA       0x3 /* read/write, accessed */

static int kvm_cpu__set_entry(struct kvm_cpu *cpu, struct error *err)
{
	const struct boot_state *b = &cpu->kvm->boot;
	struct kvm_sregs sregs;
	struct kvm_regs regs = {.rflags = 0x2};
	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
	int ret;

	ret = CPU_IOCTL(cpu, KVM_GET_SREGS, &sregs, err);
	if (ret)
		return ret;
	sregs.gdt.base = BOOT_GDT_GPA;
	sregs.gdt.limit = BOOT_GDT_SIZE - 1;
	flat_segment(&sregs.ds, BOOT_DS, SEG_DATA, false, true);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	if (b->mode == BOOT_LINUX64) {
		flat_segment(&sregs.ds, LINUX_BOOT_DS, SEG_DATA, false, true);
		sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	}
	if (b->mode == BOOT_LONG64 || b->mode == BOOT_LINUX64) {
		flat_segment(&sregs.cs, b->mode == BOOT_LINUX64 ? LINUX_BOOT_CS : BOOT_CS64,
			     SEG_CODE, true, false);
		sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
		sregs.cr3 = BOOT_PGTABLE_GPA;
		sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
		sregs.efer = EFER_LME | EFER_LMA;
		regs.rdi = b->rdi;
		regs.rsi = b->mode == BOOT_LINUX64 ? b->rsi : cpu->id;
		regs.rsp = b->rsp;
	} else {
		/* Multiboot: protected mode, paging off, flat 4 GiB segments. */
		flat_segment(&sregs.cs, BOOT_CS32, SEG_CODE, false, true);
		sregs.cr0 = CR0_PE | CR0_ET;
		sregs.cr3 = sregs.cr4 = sregs.efer = 0;
		regs.rax = b->eax;
		regs.rbx = b->ebx;
	}
	regs.rip = b->entry;
	ret = CPU_IOCTL(cpu, KVM_SET_SREGS, &sregs, err);
	if (!ret)
		ret = CPU_IOCTL(cpu, KVM_SET_REGS, &regs, err);
	if (!ret)
		ret = CPU_IOCTL(cpu, KVM_SET_FPU, &fpu, err);
	return ret;
}

/* LINT0 takes the 8259's ExtINT and LINT1 the NMI, as firmware leaves a PC. */
static int kvm_cpu__setup_lapic(struct kvm_cpu *cpu, struct error *err)
{
	struct kvm_lapic_state lapic;
	uint32_t *lint0, *lint1;
	int ret;

	ret = CPU_IOCTL(cpu, KVM_GET_LAPIC, &lapic, err);
	if (ret)
		return ret;
	lint0 = (uint32_t *)(void *)&lapic.regs[0x350];
	lint1 = (uint32_t *)(void *)&lapic.regs[0x360];
	*lint0 = (*lint0 & ~0x700u & ~0x10000u) | 0x700;
	*lint1 = (*lint1 & ~0x700u & ~0x10000u) | 0x400;
	return CPU_IOCTL(cpu, KVM_SET_LAPIC, &lapic, err);
}

int kvm_cpu__reset_all(struct kvm *kvm, struct error *err)
{
	struct kvm_mp_state runnable = {.mp_state = KVM_MP_STATE_RUNNABLE};
	unsigned int i;
	int ret;

	for (i = 0; i < kvm->nr_cpus; i++) {
		struct kvm_cpu *cpu = kvm->cpus[i];

		ret = kvm_cpu__setup_lapic(cpu, err);
		if (ret)
			return ret;
		/* Without all_cpus, APs stay in wait-for-SIPI as on real hardware. */
		if (i > 0 && !kvm->boot.all_cpus)
			continue;
		ret = kvm_cpu__set_entry(cpu, err);
		if (!ret && i > 0)
			ret = CPU_IOCTL(cpu, KVM_SET_MP_STATE, &runnable, err);
		if (ret)
			return ret;
	}
	return 0;
}

static void kvm_cpu__report_crash(struct kvm_cpu *cpu, const char *what)
{
	struct kvm_regs regs;

	if (ioctl(cpu->fd, KVM_GET_REGS, &regs) < 0)
		memset(&regs, 0, sizeof(regs));
	kvm__request_exit(cpu->kvm, EXIT_GUEST_CRASH, "vCPU %u: %s at rip 0x%llx", cpu->id, what,
			  (unsigned long long)regs.rip);
}

static void kvm_cpu__handle_io(struct kvm_cpu *cpu)
{
	struct kvm_run *run = cpu->run;
	uint64_t bytes = (uint64_t)run->io.size * run->io.count;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint32_t i;

	/* The kernel fills these, but a bad offset would corrupt our memory. */
	if (run->io.size == 0 || run->io.size > 4 ||
	    run->io.data_offset > (uint64_t)cpu->kvm->run_size ||
	    bytes > cpu->kvm->run_size - run->io.data_offset) {
		kvm_cpu__report_crash(cpu, "malformed KVM_EXIT_IO");
		return;
	}
	for (i = 0; i < run->io.count; i++)
		kvm__emulate_pio(cpu, run->io.port, data + i * run->io.size, run->io.size,
				 run->io.direction == KVM_EXIT_IO_OUT);
}

/* Handle one exit. Returns false when the thread should stop. */
static bool kvm_cpu__handle_exit(struct kvm_cpu *cpu)
{
	struct kvm_run *run = cpu->run;
	char what[96];

	cpu->nr_exits++;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		kvm_cpu__handle_io(cpu);
		return true;
	case KVM_EXIT_MMIO:
		if (run->mmio.len > sizeof(run->mmio.data)) {
			kvm_cpu__report_crash(cpu, "malformed KVM_EXIT_MMIO");
			return false;
		}
		kvm__emulate_mmio(cpu, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
				  run->mmio.is_write);
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_HLT:
		return true;
	case KVM_EXIT_DIRTY_RING_FULL:
		if (!cpu->kvm->ring)
			break;
		/* The harvester makes room (dirty-ring.h); KVM_RUN says again until it has. */
		__atomic_add_fetch(&cpu->kvm->ring->full_waits, 1, __ATOMIC_RELAXED);
		nanosleep(&(struct timespec){.tv_nsec = 50000}, NULL);
		return true;
	case KVM_EXIT_SHUTDOWN:
		kvm_cpu__report_crash(
		    cpu, "triple fault (shutdown): an exception had no working handler");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		kvm__request_exit(
		    cpu->kvm,
		    run->system_event.type == KVM_SYSTEM_EVENT_RESET ? EXIT_GUEST_RESET : EXIT_OK,
		    "vCPU %u: guest system event %u (shutdown or reset)", cpu->id,
		    run->system_event.type);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "VM entry failed, hardware reason 0x%llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		kvm_cpu__report_crash(cpu, what);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM internal error, suberror %u",
			 run->internal.suberror);
		kvm_cpu__report_crash(cpu, what);
		return false;
	default:
		break;
	}
	snprintf(what, sizeof(what), "unhandled KVM exit reason %u", run->exit_reason);
	kvm_cpu__report_crash(cpu, what);
	return false;
}

/*
 * An I/O or MMIO exit is finished by the next KVM_RUN (a read's value goes
 * into the register, RIP moves past the instruction). Do that now, with
 * immediate_exit so the guest runs no further: a vCPU parked in between
 * would otherwise be saved mid-instruction and repeat the access on restore.
 */
static void kvm_cpu__complete_io(struct kvm_cpu *cpu)
{
	__atomic_store_n(&cpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (ioctl(cpu->fd, KVM_RUN, 0) == 0)
		pr_debug("vCPU %u: completing I/O ran the guest", cpu->id);
	__atomic_store_n(&cpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

/* Park while a pause is requested. Returns false if the VM is ending. */
static bool kvm_cpu__park_if_requested(struct kvm_cpu *cpu)
{
	struct kvm *kvm = cpu->kvm;
	bool go_on;

	pthread_mutex_lock(&kvm->lock);
	if (kvm->pause_requested && !kvm->exited) {
		if (++kvm->nr_paused == kvm->nr_cpus)
			kvm->parked_ns = now_ns();
		pthread_cond_broadcast(&kvm->cond);
		while (kvm->pause_requested && !kvm->exited)
			pthread_cond_wait(&kvm->cond, &kvm->lock);
		kvm->nr_paused--;
		kvm->unparked_ns = now_ns();
		if (!kvm->nr_paused) /* kvm__resume() may wait for the last one */
			pthread_cond_broadcast(&kvm->cond);
	}
	go_on = !kvm->exited;
	pthread_mutex_unlock(&kvm->lock);
	return go_on;
}

static void *kvm_cpu__thread(void *arg)
{
	struct kvm_cpu *cpu = arg;
	bool pending_io = false;
	sigset_t kick;
	char name[16];

	current_cpu = cpu;
	snprintf(name, sizeof(name), "kvmsnap-vcpu%u", cpu->id);
	pthread_setname_np(pthread_self(), name);
	sigemptyset(&kick);
	sigaddset(&kick, SIGKICK);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	for (;;) {
		/* Clear before the check: a kick after this point is seen by KVM_RUN. */
		__atomic_store_n(&cpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		if (pending_io && __atomic_load_n(&cpu->kvm->pause_requested, __ATOMIC_SEQ_CST)) {
			kvm_cpu__complete_io(cpu);
			pending_io = false;
		}
		/* Before the park check: a pause that cuts the sleep short parks at once. */
		kvm_cpu__throttle_if_due(cpu);
		if (!kvm_cpu__park_if_requested(cpu))
			break;
		if (ioctl(cpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				pending_io = false; /* KVM_RUN finished it before returning */
				continue;
			}
			kvm__request_exit(cpu->kvm, EXIT_VMM_ERROR, "vCPU %u: KVM_RUN: %s", cpu->id,
					  strerror(errno));
			break;
		}
		pending_io =
		    cpu->run->exit_reason == KVM_EXIT_IO || cpu->run->exit_reason == KVM_EXIT_MMIO;
		if (!kvm_cpu__handle_exit(cpu))
			break;
	}
	return NULL;
}

int kvm_cpu__start_all(struct kvm *kvm)
{
	struct sigaction sa = {.sa_handler = kvm_cpu__on_kick};
	unsigned int i;
	sigset_t kick;
	int ret;

	/* No SA_RESTART: the kick must interrupt KVM_RUN. */
	sigaction(SIGKICK, &sa, NULL);
	/* Threads inherit the mask; each vCPU thread unblocks SIGKICK itself. */
	sigemptyset(&kick);
	sigaddset(&kick, SIGKICK);
	pthread_sigmask(SIG_BLOCK, &kick, NULL);
	for (i = 0; i < kvm->nr_cpus; i++) {
		ret = pthread_create(&kvm->cpus[i]->thread, NULL, kvm_cpu__thread, kvm->cpus[i]);
		if (ret) {
			/* The threads already started must not run on: end the VM. */
			kvm__request_exit(kvm, EXIT_VMM_ERROR, "vCPU %u: pthread_create: %s", i,
					  strerror(ret));
			return -ret;
		}
		kvm->cpus[i]->thread_started = true;
	}
	return 0;
}

int kvm_cpu__tell_stopped(struct kvm_cpu *cpu)
{
	return ioctl(cpu->fd, KVM_KVMCLOCK_CTRL, 0) ? -errno : 0;
}

void kvm_cpu__kick_all(struct kvm *kvm)
{
	unsigned int i;

	for (i = 0; i < kvm->nr_cpus; i++)
		if (kvm->cpus[i]->thread_started)
			pthread_kill(kvm->cpus[i]->thread, SIGKICK);
}

void kvm_cpu__stop_all(struct kvm *kvm)
{
	unsigned int i;

	kvm__request_exit(kvm, EXIT_OK, "stopped");
	kvm__stop_throttle(kvm);
	kvm_cpu__kick_all(kvm);
	for (i = 0; i < kvm->nr_cpus; i++) {
		if (!kvm->cpus[i]->thread_started)
			continue;
		pthread_join(kvm->cpus[i]->thread, NULL);
		kvm->cpus[i]->thread_started = false;
	}
}

/*
 * With pause_requested set: wait until every vCPU is parked, then mark the
 * VM paused. -ESHUTDOWN, with the request withdrawn, if the VM ends first.
 */
static int kvm_cpu__wait_parked(struct kvm *kvm)
{
	int ret = 0;

	pthread_mutex_lock(&kvm->lock);
	while (kvm->nr_paused < kvm->nr_cpus && !kvm->exited)
		pthread_cond_wait(&kvm->cond, &kvm->lock);
	if (kvm->exited) {
		kvm->pause_requested = false;
		ret = -ESHUTDOWN;
	} else {
		kvm->state = KVM_STATE_PAUSED;
	}
	pthread_mutex_unlock(&kvm->lock);
	return ret;
}

int kvm_cpu__start_all_paused(struct kvm *kvm)
{
	int ret;

	/* Set before any thread exists: each one parks before its first KVM_RUN. */
	pthread_mutex_lock(&kvm->lock);
	kvm->pause_requested = true;
	pthread_mutex_unlock(&kvm->lock);
	ret = kvm_cpu__start_all(kvm);
	return ret ? ret : kvm_cpu__wait_parked(kvm);
}

int kvm__pause(struct kvm *kvm, uint64_t *latency_us, uint64_t *paused_ns)
{
	uint64_t t0 = now_ns();
	int ret = 0;

	pthread_mutex_lock(&kvm->lock);
	if (kvm->exited) {
		ret = -ESHUTDOWN;
	} else if (kvm->pause_requested) {
		ret = -EALREADY;
	} else {
		kvm->pause_requested = true;
		/* A throttled vCPU sleeps on cond: wake it to park. */
		pthread_cond_broadcast(&kvm->cond);
	}
	pthread_mutex_unlock(&kvm->lock);
	if (ret)
		return ret;

	kvm_cpu__kick_all(kvm);
	ret = kvm_cpu__wait_parked(kvm);
	if (ret)
		return ret;
	pthread_mutex_lock(&kvm->lock);
	if (kvm->parked_ns < t0) /* never before the request: a guard against a stale time */
		kvm->parked_ns = t0;
	if (paused_ns)
		*paused_ns = kvm->parked_ns;
	if (latency_us)
		*latency_us = (kvm->parked_ns - t0) / 1000;
	pthread_mutex_unlock(&kvm->lock);
	return ret;
}

int kvm__resume(struct kvm *kvm, uint64_t *resumed_ns)
{
	int ret = 0;

	pthread_mutex_lock(&kvm->lock);
	if (!kvm->pause_requested || kvm->state != KVM_STATE_PAUSED) {
		ret = kvm->exited ? -ESHUTDOWN : -EALREADY;
	} else {
		kvm->pause_requested = false;
		kvm->state = KVM_STATE_RUNNING;
		pthread_cond_broadcast(&kvm->cond);
		while (resumed_ns && kvm->nr_paused && !kvm->exited)
			pthread_cond_wait(&kvm->cond, &kvm->lock);
		if (resumed_ns)
			*resumed_ns = kvm->exited ? now_ns() : kvm->unparked_ns;
	}
	pthread_mutex_unlock(&kvm->lock);
	return ret;
}

bool kvm__is_paused(struct kvm *kvm)
{
	bool ret;

	pthread_mutex_lock(&kvm->lock);
	ret = kvm->state == KVM_STATE_PAUSED;
	pthread_mutex_unlock(&kvm->lock);
	return ret;
}
