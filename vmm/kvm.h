/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VM: /dev/kvm, the vCPUs and their threads, pause and resume, and how
 * the VM ends. Devices, loaders and the control socket use this header.
 *
 * Threads: each vCPU has its own thread running KVM_RUN. The main thread
 * owns everything else (the control socket, snapshots) and is the only one
 * that pauses, resumes or tears down. Device handlers run on vCPU threads
 * and take their device's own lock.
 */
#ifndef KVMSNAP_KVM_H
#define KVMSNAP_KVM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "exit-status.h" /* EXIT_*: how the VM ends */
#include "lib/error.h"
#include "mem.h"

struct kvm;
struct kvm_cpu;
struct console;
struct dirty_ring;
struct rtc;
struct uart;

/* What a loader leaves for the vCPUs: how to enter the guest. */
enum boot_mode {
	BOOT_LONG64,	 /* 64-bit mode, host page tables at BOOT_PGTABLE_GPA */
	BOOT_MULTIBOOT1, /* 32-bit protected mode, paging off, as Multiboot v1 */
	BOOT_LINUX64,	 /* BOOT_LONG64 with Linux's GDT selectors and RSI = the zero page */
};

struct boot_state {
	enum boot_mode mode;
	uint64_t entry;
	uint64_t rsp;	    /* 0: leave it to the guest */
	uint64_t rdi;	    /* BOOT_LONG64: first argument */
	uint64_t rsi;	    /* BOOT_LINUX64: the zero page */
	uint64_t eax, ebx;  /* BOOT_MULTIBOOT1 */
	bool all_cpus;	    /* every vCPU enters at entry (RSI = index); else APs wait for SIPI */
	uint64_t image_end; /* first GPA above everything the loader placed */
};

/* An I/O port or MMIO handler. data is size bytes, little-endian. */
typedef void (*io_handler_fn)(struct kvm_cpu *cpu, uint64_t addr, uint8_t *data, uint32_t size,
			      bool is_write, void *opaque);

struct io_handler {
	uint64_t base, len;
	io_handler_fn fn;
	void *opaque;
};

#define KVM_MAX_IO_HANDLERS 16

/* Guest progress that the message port collects per vCPU. */
struct guest_progress {
	uint64_t pages;	 /* MSGPORT_PROGRESS */
	uint64_t passes; /* MSGPORT_PASS */
	bool ready;	 /* MSGPORT_READY seen */
};

struct kvm_cpu {
	struct kvm *kvm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	struct guest_progress progress;
	uint64_t nr_exits;
	bool throttle_due; /* set by the throttle ticker; atomic */
	bool no_pvclock;   /* KVM_KVMCLOCK_CTRL said the guest has no kvmclock */
};

enum kvm_state { KVM_STATE_RUNNING, KVM_STATE_PAUSED, KVM_STATE_EXITING };

struct kvm {
	int sys_fd;
	int vm_fd;
	int run_size;
	uint32_t tsc_khz;
	struct kvm_cpuid2 *cpuid;

	unsigned int nr_cpus;
	struct kvm_cpu **cpus;

	struct mem_registry mem;
	uint64_t ram_size;

	unsigned int nr_pio, nr_mmio;
	struct io_handler pio[KVM_MAX_IO_HANDLERS];
	struct io_handler mmio[KVM_MAX_IO_HANDLERS];

	struct boot_state boot;
	struct console *console; /* the serial sink, shared by the UART and msgport */
	struct uart *com1;	 /* device models with state to save */
	struct rtc *rtc;

	/* Pause/ack protocol: see kvm-cpu.c. Guarded by lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum kvm_state state;
	bool pause_requested;
	unsigned int nr_paused;
	uint64_t parked_ns;   /* when the last vCPU parked: the start of a pause */
	uint64_t unparked_ns; /* when a vCPU last left its park: the end of a pause */

	/* Throttling (vmm/throttle.c). Guarded by lock. */
	unsigned int throttle_pct;
	bool throttle_started, throttle_stop;
	bool throttle_rose; /* the ticker starts a slice at once (vmm/throttle.c) */
	pthread_t throttle_thread;
	pthread_cond_t throttle_cond; /* the ticker sleeps on it while pct is 0 */

	/* How the VM ended: guarded by lock; exit_efd becomes readable. */
	int exit_efd;
	bool exited;
	int exit_status;
	char exit_reason[128];

	uint64_t start_ns;
	struct dirty_ring *ring; /* NULL unless an evaluation turned it on (dirty-ring.h) */
	char guest_desc[320];	 /* for status: "dirtier:ws=256M" or the kernel path */
};

#define kvm__for_each_cpu(kvm, cpu, i) \
	for ((i) = 0; (i) < (kvm)->nr_cpus && ((cpu) = (kvm)->cpus[(i)]); (i)++)

/* The guests' progress counters (MSGPORT_PROGRESS) summed over the vCPUs. */
uint64_t kvm__progress_pages(struct kvm *kvm);

/* Zero kvm and mark every descriptor closed, so kvm__exit() is always safe. */
void kvm__init(struct kvm *kvm);

/*
 * Open the KVM device, check its API version and every capability kvmsnap
 * needs (the message names each one missing). 0 or -errno with *err set.
 */
int kvm__open(struct kvm *kvm, const char *dev_path, struct error *err);

/*
 * Create the VM: the in-kernel irqchip and PIT, TSS and identity map
 * addresses, and the memory registry (empty; see pc__setup_memory()).
 * 0 or -errno with *err set.
 */
int kvm__create_vm(struct kvm *kvm, struct error *err);

/* Register a port or MMIO handler for [base, base + len). 0 or -ENOSPC/-EEXIST. */
int kvm__register_pio(struct kvm *kvm, uint16_t base, uint16_t len, io_handler_fn fn, void *opaque);
int kvm__register_mmio(struct kvm *kvm, uint64_t base, uint64_t len, io_handler_fn fn,
		       void *opaque);

/* Dispatch one access; unclaimed reads return all ones, unclaimed writes are dropped. */
void kvm__emulate_pio(struct kvm_cpu *cpu, uint16_t port, uint8_t *data, uint32_t size,
		      bool is_write);
void kvm__emulate_mmio(struct kvm_cpu *cpu, uint64_t addr, uint8_t *data, uint32_t size,
		       bool is_write);

/*
 * Ask the VM to end with the given process exit status; the first request
 * wins. Safe from any thread, including vCPU threads. This is how code with
 * no caller to return an error to (a vCPU thread, the signal thread) ends
 * the VM: the reason is its one message, which vm_setup__serve() prints.
 */
void kvm__request_exit(struct kvm *kvm, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool kvm__has_exited(struct kvm *kvm);

/*
 * vCPUs: create them, set their entry state from kvm->boot (0 or -errno
 * with *err set), start threads. kvm_cpu__start_all() has no err: a thread
 * that cannot start ends the VM (kvm__request_exit) with the message.
 */
int kvm_cpu__create_all(struct kvm *kvm, unsigned int nr_cpus, struct error *err);
int kvm_cpu__reset_all(struct kvm *kvm, struct error *err);
int kvm_cpu__start_all(struct kvm *kvm);
/* Kick every vCPU out of KVM_RUN, join the threads. Call after the VM exited. */
void kvm_cpu__stop_all(struct kvm *kvm);

/*
 * Pause every vCPU. Returns only when each one is out of KVM_RUN and parked;
 * paused_ns (may be NULL) gets when the last one parked, by its own clock
 * read (the start of the downtime: this thread may be woken later), and
 * latency_us (may be NULL) how long after the call that was. -EALREADY if
 * paused, -ESHUTDOWN if the VM is ending. Main thread only.
 */
int kvm__pause(struct kvm *kvm, uint64_t *latency_us, uint64_t *paused_ns);
/*
 * kvm_cpu__start_all(), but paused from the start: every vCPU thread parks
 * before its first KVM_RUN, so no guest instruction runs until
 * kvm__resume(). Returns when all are parked: 0, the error of
 * kvm_cpu__start_all(), or -ESHUTDOWN if the VM ends first. Main thread only.
 */
int kvm_cpu__start_all_paused(struct kvm *kvm);
/*
 * Let paused vCPUs run again. -EALREADY if not paused. Main thread only.
 * With resumed_ns, wait until every vCPU has left its park and give the
 * time the last one did, by its own clock read: the end of the downtime.
 * A clock read here after the wake-up would not do: a woken vCPU may take
 * this thread's CPU for a whole time slice first (4 ms seen on 2 CPUs),
 * time in which the guest already runs.
 */
int kvm__resume(struct kvm *kvm, uint64_t *resumed_ns);
bool kvm__is_paused(struct kvm *kvm);
/* Send SIGKICK to every started vCPU thread: each leaves KVM_RUN at once. */
void kvm_cpu__kick_all(struct kvm *kvm);

/*
 * Throttling (vmm/throttle.c): hold every vCPU pct percent of the time,
 * 0 to 99 (0: full speed; -EINVAL above). The first nonzero call starts a
 * ticker thread. 0 or -errno.
 */
int kvm__set_throttle(struct kvm *kvm, unsigned int pct);
unsigned int kvm__throttle(struct kvm *kvm);
/*
 * KVM_KVMCLOCK_CTRL: tell the guest on this vCPU that the host stopped it
 * (PVCLOCK_GUEST_STOPPED; its next kvmclock read resets its watchdogs).
 * 0, -EINVAL if the vCPU has no kvmclock, or -errno. Not while in KVM_RUN.
 */
int kvm_cpu__tell_stopped(struct kvm_cpu *cpu);
/* In a vCPU thread, out of KVM_RUN: sleep its share if the ticker says so. */
void kvm_cpu__throttle_if_due(struct kvm_cpu *cpu);
/* Full speed, and the ticker joined. Call before the vCPU threads are joined. */
void kvm__stop_throttle(struct kvm *kvm);

/* Tear everything down; safe on a partly set-up VM. */
void kvm__exit(struct kvm *kvm);

#endif
