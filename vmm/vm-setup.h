/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Building, running and tearing down a VM: the code that `kvmsnap run` and
 * `kvmsnap restore` share, so that a restored VM is built exactly like the
 * one that was saved (same regions, slots, vCPUs with the same CPUID, same
 * devices on the same ports).
 *
 * The steps, in the order callers make them:
 *
 *   vm_setup__open()         signal mask, serial sink, control socket and its
 *                            keeper (sandbox/keeper.h)
 *   vm_setup__create()       /dev/kvm, the VM, the PC's memory regions
 *   vm_setup__add_cpus()     KVM memory slots, the vCPUs
 *   vm_setup__add_devices()  UART, debug-exit, message port, RTC, ACPI
 *                            power registers
 *   vm_setup__lock_down()    unprivileged user, no capabilities, seccomp
 *                            allowlist (unless keep_caps)
 *   vm_setup__start()        signal thread, vCPU threads (optionally parked)
 *   vm_setup__serve()        control socket until the VM ends; exit status
 *   vm_setup__teardown()     always; safe after any step failed
 *
 * Between the steps the caller puts what is its own: run loads a guest after
 * add_cpus, restore maps or reads the image into the regions after create.
 * Each step returns 0, or -errno with *err naming the cause; it prints
 * nothing, and the command prints err.msg. vm_setup__start() has no err: a
 * vCPU thread that cannot start ends the VM with its message as the exit
 * reason, which vm_setup__serve() prints.
 */
#ifndef KVMSNAP_VM_SETUP_H
#define KVMSNAP_VM_SETUP_H

#include <pthread.h>
#include <stdbool.h>

#include "devices/console.h"
#include "devices/rtc.h"
#include "devices/serial-input.h"
#include "sandbox/keeper.h"
#include "devices/uart.h"
#include "kvm.h"
#include "pc.h"

struct vm_setup_opts {
	struct pc_config pc;
	const char *kvm_dev;	 /* "/dev/kvm" */
	const char *control;	 /* socket path, or NULL for none */
	const char *serial;	 /* "stdio", "none" or a file */
	const char *user;	 /* --user, or NULL: the default (user.h) */
	bool keep_caps;		 /* no lock-down at all */
	const char *control_dir; /* a private folder of the socket, removed at the end */
};

struct vm_setup {
	struct kvm kvm;
	struct console con;
	struct uart com1;
	struct rtc rtc;
	struct serial_input input; /* stdin to com1, with --serial stdio */
	int listen_fd;
	const char *control;
	pthread_t sigthr;
	bool sigthr_started;
	struct keeper keeper;
};

/* Make vs safe to tear down. */
void vm_setup__init(struct vm_setup *vs);

/*
 * Block SIGINT/SIGTERM/SIGHUP in every thread to come (the signal thread
 * takes them), ignore SIGPIPE, open the serial sink (and with stdio, the
 * serial input) and listen on the control socket; unless o->keep_caps, start the keeper that removes the
 * socket once this process is gone.
 */
int vm_setup__open(struct vm_setup *vs, const struct vm_setup_opts *o, struct error *err);

/* Open KVM, create the VM (irqchip, PIT) and add the PC's memory regions. */
int vm_setup__create(struct vm_setup *vs, const struct vm_setup_opts *o, struct error *err);

/* Register every region range as a KVM slot, then create the vCPUs. */
int vm_setup__add_cpus(struct vm_setup *vs, const struct vm_setup_opts *o, struct error *err);

/* The devices, each on its own ports or MMIO range. */
int vm_setup__add_devices(struct vm_setup *vs, struct error *err);

/*
 * Unless o->keep_caps: switch to o->user
 * (or the default), drop every capability, set no_new_privs and install
 * the VM's seccomp allowlist for this and every later thread. Call it
 * before any thread starts: nothing privileged is possible afterwards.
 */
int vm_setup__lock_down(struct vm_setup *vs, const struct vm_setup_opts *o, struct error *err);

/*
 * Start the signal thread, the serial input and the vCPU threads. With paused, the vCPUs park
 * before their first KVM_RUN and the VM is paused (`ctl resume` or
 * kvm__resume() lets them go) when this returns.
 */
int vm_setup__start(struct vm_setup *vs, bool paused);

/*
 * Serve the control socket until the VM ends, stop the vCPUs; the exit
 * status. An error exit's reason is printed here, once.
 */
int vm_setup__serve(struct vm_setup *vs);

void vm_setup__teardown(struct vm_setup *vs);

#endif
