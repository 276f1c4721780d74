// SPDX-License-Identifier: GPL-2.0
/*
 * vCPU throttling for snapshots that would not converge (snapshot/throttle.h
 * decides how much). A ticker thread marks every vCPU due and kicks it
 * every THROTTLE_SLICE_MS; a due vCPU, back from KVM_RUN, sleeps pct percent
 * of the slice before it enters the guest again, so the guest runs
 * (100 - pct) percent of the time. The sleep is a wait on kvm->cond, so a
 * pause, the end of the VM or a lower throttle cuts it short. The ticker
 * starts with the first throttle and sleeps on its own condition while the
 * throttle is 0. A throttle that rises starts a slice at once: waiting for
 * the next tick let the guest run up to a slice at the old speed, the
 * first 10 ms of a snapshot pass of 50-70 ms.
 */
#include "kvm.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

#define THROTTLE_SLICE_MS 10

/* ts = now + us, on CLOCK_REALTIME: the clock of both conditions' timed waits. */
static void deadline_in(struct timespec *ts, uint64_t us)
{
	uint64_t ns = us * 1000;

	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(ns / 1000000000ULL);
	ts->tv_nsec += (long)(ns % 1000000000ULL);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *throttle__ticker(void *arg)
{
	struct kvm *kvm = arg;
	struct timespec until;
	struct kvm_cpu *cpu;
	unsigned int i;

	pthread_setname_np(pthread_self(), "kvmsnap-throttle");
	pthread_mutex_lock(&kvm->lock);
	while (!kvm->exited && !kvm->throttle_stop) {
		if (!kvm->throttle_pct) {
			pthread_cond_wait(&kvm->throttle_cond, &kvm->lock);
			continue;
		}
		/* A timed wait, not nanosleep: futex is in the VM's seccomp allowlist. */
		deadline_in(&until, THROTTLE_SLICE_MS * 1000ULL);
		while (kvm->throttle_pct && !kvm->exited && !kvm->throttle_stop &&
		       !kvm->throttle_rose &&
		       pthread_cond_timedwait(&kvm->throttle_cond, &kvm->lock, &until) != ETIMEDOUT)
			;
		kvm->throttle_rose = false;
		if (!kvm->throttle_pct || kvm->exited || kvm->throttle_stop)
			continue;
		kvm__for_each_cpu (kvm, cpu, i)
			__atomic_store_n(&cpu->throttle_due, true, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&kvm->lock);
		kvm_cpu__kick_all(kvm);
		pthread_mutex_lock(&kvm->lock);
	}
	pthread_mutex_unlock(&kvm->lock);
	return NULL;
}

int kvm__set_throttle(struct kvm *kvm, unsigned int pct)
{
	int ret = 0;

	if (pct > 99)
		return -EINVAL;
	pthread_mutex_lock(&kvm->lock);
	if (pct && !kvm->throttle_started && !kvm->exited) {
		ret = -pthread_create(&kvm->throttle_thread, NULL, throttle__ticker, kvm);
		kvm->throttle_started = !ret;
	}
	if (!ret) {
		/* Until the ticker takes it: a repeated or lower pct must not cancel it. */
		if (pct > kvm->throttle_pct)
			kvm->throttle_rose = true;
		kvm->throttle_pct = pct;
		pthread_cond_broadcast(&kvm->throttle_cond);
		/* Sleeping vCPUs look again: a lower throttle ends their sleep sooner. */
		pthread_cond_broadcast(&kvm->cond);
	}
	pthread_mutex_unlock(&kvm->lock);
	return ret;
}

unsigned int kvm__throttle(struct kvm *kvm)
{
	unsigned int pct;

	pthread_mutex_lock(&kvm->lock);
	pct = kvm->throttle_pct;
	pthread_mutex_unlock(&kvm->lock);
	return pct;
}

/*
 * A vCPU held out of the guest tells it so, as QEMU does after a stop: with
 * PVCLOCK_GUEST_STOPPED set, a Linux guest's next kvmclock read resets its
 * soft-lockup, RCU-stall, clocksource and hung-task watchdogs, which would
 * otherwise take a vCPU throttled to 99% for a second for a stall of its
 * own (a saved guest logged "clocksource: Long readout interval" in the
 * nested VM). EINVAL: no kvmclock (the ring-3 and Multiboot guests), so
 * never asked again. Called by the vCPU's own thread, outside KVM_RUN.
 */
static void throttle__tell_guest(struct kvm_cpu *cpu)
{
	int ret = cpu->no_pvclock ? 0 : kvm_cpu__tell_stopped(cpu);

	if (!ret)
		return;
	if (ret != -EINVAL)
		pr_debug("vCPU %u: KVM_KVMCLOCK_CTRL: %s", cpu->id, strerror(-ret));
	cpu->no_pvclock = true;
}

void kvm_cpu__throttle_if_due(struct kvm_cpu *cpu)
{
	struct kvm *kvm = cpu->kvm;
	struct timespec until;
	bool held = false;

	if (!__atomic_exchange_n(&cpu->throttle_due, false, __ATOMIC_SEQ_CST))
		return;
	pthread_mutex_lock(&kvm->lock);
	if (kvm->throttle_pct) {
		held = true;
		deadline_in(&until, THROTTLE_SLICE_MS * 10ULL * kvm->throttle_pct);
		while (kvm->throttle_pct && !kvm->pause_requested && !kvm->exited &&
		       pthread_cond_timedwait(&kvm->cond, &kvm->lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&kvm->lock);
	if (held)
		throttle__tell_guest(cpu);
}

void kvm__stop_throttle(struct kvm *kvm)
{
	bool started;

	pthread_mutex_lock(&kvm->lock);
	kvm->throttle_stop = true;
	kvm->throttle_pct = 0;
	started = kvm->throttle_started;
	kvm->throttle_started = false;
	pthread_cond_broadcast(&kvm->throttle_cond);
	pthread_cond_broadcast(&kvm->cond);
	pthread_mutex_unlock(&kvm->lock);
	if (started)
		pthread_join(kvm->throttle_thread, NULL);
}
