// SPDX-License-Identifier: GPL-2.0
/* The VM set-up that run and restore share; see vm-setup.h. */
#include "vm-setup.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/lockdown.h"
#include "control/control.h"
#include "devices/debug-exit.h"
#include "devices/msgport.h"
#include "devices/power.h"
#include "layout.h"
#include "live-snapshot/session.h"
#include "util/util.h"

void vm_setup__init(struct vm_setup *vs)
{
	memset(vs, 0, sizeof(*vs));
	kvm__init(&vs->kvm);
	vs->con.fd = -1;
	vs->listen_fd = -1;
	vs->keeper.fd = -1;
	serial_input__init(&vs->input);
}

static void block_signals(void)
{
	sigset_t set;

	/* Signals go to the signal thread only; every thread inherits this mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int vm_setup__open(struct vm_setup *vs, const struct vm_setup_opts *o, struct error *err)
{
	int ret;

	block_signals();
	ret = console__open(&vs->con, o->serial, err);
	if (ret)
		return ret;
	vs->kvm.console = &vs->con;
	if (!strcmp(o->serial, "stdio")) {
		ret = serial_input__open(&vs->input, err);
		if (ret)
			return ret;
	}
	if (o->control) {
		vs->listen_fd = control__listen(o->control, err);
		if (vs->listen_fd < 0)
			return vs->listen_fd;
		vs->control = o->control;
		/*
		 * The user of the lock-down may not write the socket's folder: a
		 * process that stays root removes it. Forked now, before guest
		 * memory exists, so that it never maps any (nor the image).
		 */
		if (!o->keep_caps)
			return keeper__start(&vs->keeper, vs->control, o->control_dir, err);
	}
	return 0;
}

int vm_setup__create(struct vm_setup *vs, const struct vm_setup_opts *o, struct error *err)
{
	struct kvm *kvm = &vs->kvm;
	int ret;

	ret = kvm__open(kvm, o->kvm_dev, err);
	if (!ret)
		ret = kvm__create_vm(kvm, err);
	if (ret)
		return ret;
	kvm->ram_size = o->pc.ram_size;
	return pc__setup_memory(&kvm->mem, &o->pc, err);
}

int vm_setup__add_cpus(struct vm_setup *vs, const struct vm_setup_opts *o, struct error *err)
{
	struct kvm *kvm = &vs->kvm;
	int ret;

	ret = mem__register_slots(&kvm->mem, kvm->vm_fd, err);
	if (!ret)
		ret = kvm_cpu__create_all(kvm, o->pc.nr_cpus, err);
	return ret;
}

int vm_setup__add_devices(struct vm_setup *vs, struct error *err)
{
	struct kvm *kvm = &vs->kvm;
	int ret;

	/* Explicit order: each device claims its own ports or MMIO range. */
	ret = uart__init(&vs->com1, kvm, PORT_COM1, 4);
	kvm->com1 = &vs->com1;
	if (!ret)
		ret = debug_exit__init(kvm, PORT_DEBUG_EXIT);
	if (!ret)
		ret = msgport__init(kvm, MSGPORT_GPA);
	if (!ret)
		ret = rtc__init(&vs->rtc, kvm, PORT_CMOS);
	kvm->rtc = &vs->rtc;
	if (!ret)
		ret = power__init(kvm);
	if (ret)
		return err_errno(err, ret, "cannot register devices");
	return 0;
}

int vm_setup__lock_down(struct vm_setup *vs, const struct vm_setup_opts *o, struct error *err)
{
	struct sandbox_user u;
	int ret;

	(void)vs;
	if (o->keep_caps)
		return 0;
	ret = user__resolve(o->user, &u, err);
	if (ret)
		return ret;
	ret = lockdown__apply(&u, SECCOMP_VM, err);
	return ret ? err_prefix(err, "cannot lock the VM down") : 0;
}

/* SIGINT/SIGTERM/SIGHUP end the VM cleanly; this thread waits for them. */
static void *signal_thread(void *arg)
{
	struct kvm *kvm = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigwait(&set, &sig) == 0)
		kvm__request_exit(kvm, EXIT_SIGNAL_BASE + sig, "received signal %s",
				  strsignal(sig));
	return NULL;
}

int vm_setup__start(struct vm_setup *vs, bool paused)
{
	if (pthread_create(&vs->sigthr, NULL, signal_thread, &vs->kvm) == 0)
		vs->sigthr_started = true;
	/* Without it the guest still runs and prints: warn, do not stop. */
	if (serial_input__start(&vs->input, &vs->com1))
		pr_warn("serial input: cannot start its thread; the guest gets no input");
	return paused ? kvm_cpu__start_all_paused(&vs->kvm) : kvm_cpu__start_all(&vs->kvm);
}

static void report_exit(struct kvm *kvm)
{
	switch (kvm->exit_status) {
	case EXIT_GUEST_CRASH:
	case EXIT_GUEST_CHECK:
	case EXIT_VMM_ERROR:
		pr_err("%s", kvm->exit_reason);
		break;
	default:
		pr_debug("VM ended: %s (status %d)", kvm->exit_reason, kvm->exit_status);
	}
}

int vm_setup__serve(struct vm_setup *vs)
{
	struct kvm *kvm = &vs->kvm;

	static const struct control_service *const services[] = {&snapshot_session__service, NULL};

	control__serve(kvm, vs->listen_fd, vs->keeper.pid ? NULL : vs->control, services);
	vs->listen_fd = -1; /* control__serve closed it */
	kvm_cpu__stop_all(kvm);
	report_exit(kvm);
	return kvm->exit_status;
}

void vm_setup__teardown(struct vm_setup *vs)
{
	if (vs->sigthr_started) {
		pthread_cancel(vs->sigthr);
		pthread_join(vs->sigthr, NULL);
		vs->sigthr_started = false;
	}
	if (vs->listen_fd >= 0) {
		close(vs->listen_fd);
		if (!vs->keeper.pid)
			unlink(vs->control);
		vs->listen_fd = -1;
	}
	/* Before the VM goes: the reader raises COM1's interrupt through it. */
	serial_input__stop(&vs->input);
	kvm__exit(&vs->kvm);
	console__close(&vs->con);
	keeper__finish(&vs->keeper);
}
