// SPDX-License-Identifier: GPL-2.0
/*
 * The VM clock in the state: kvmclock saved as of the moment vCPU 0's TSC
 * was read, restored in step with the restored TSC, and, for a guest that
 * uses kvmclock, moved forward by the host time since the save (catch-up).
 * Documentation/state-records.md, CLOCK and "Restore order", step 5.
 */
#include "state/state.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "kvm.h"
#include "util/util.h"

#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01 /* bit 0: the guest's pvclock is on */
#define NS_PER_MS		1000000ull

/* Nanoseconds in delta TSC cycles at khz; 0 past a minute (not a gap, a bad value). */
static uint64_t tsc_delta_ns(uint64_t from, uint64_t to, uint32_t khz)
{
	uint64_t d = to - from;

	if (!khz || to <= from || d / khz > 60000)
		return 0;
	return d * NS_PER_MS / khz;
}

/* TSC cycles in ns at khz, without overflow for any ns a host clock can give. */
static uint64_t ns_to_cycles(uint64_t ns, uint32_t khz)
{
	return ns / NS_PER_MS * khz + ns % NS_PER_MS * khz / NS_PER_MS;
}

/*
 * kvmclock as it was when vCPU 0's TSC was saved (tsc): the vCPU, irqchip
 * and UART records read in between take milliseconds on a slow host, and a
 * clock read that much later than the TSC would, once restored, run that
 * much ahead of it: a Linux guest's clocksource watchdog then marks its TSC
 * unstable (1.8 ms seen in the nested VM). The guest's own TSC, read just
 * before the clock, measures the gap; the host's realtime is taken back by
 * as much, so that catch-up starts from the same moment.
 */
int clock_state__save(struct kvm *kvm, struct snap_state_writer *w, uint64_t tsc, struct error *err)
{
	struct vm_clock c;
	uint64_t now_tsc = 0, gap;
	uint8_t *p;
	int e, ret;

	memset(&c, 0, sizeof(c));
	if (tsc && kvm->nr_cpus) {
		ret = cpu_state__read_tsc(kvm->cpus[0], &now_tsc, err);
		if (ret)
			return ret;
	}
	if (ioctl(kvm->vm_fd, KVM_GET_CLOCK, &c.data) < 0) {
		e = errno;
		return err_set(err, -e, "KVM_GET_CLOCK: %s", strerror(e));
	}
	gap = tsc ? tsc_delta_ns(tsc, now_tsc, kvm->tsc_khz) : 0;
	if (gap < c.data.clock)
		c.data.clock -= gap;
	if ((c.data.flags & KVM_CLOCK_REALTIME) && gap < c.data.realtime)
		c.data.realtime -= gap;
	c.tsc_khz = kvm->tsc_khz;
	p = snap_state_add(w, VM_STATE_CLOCK, 0, VM_STATE_CLOCK_SIZE);
	if (p)
		vm_state__encode_clock(&c, p);
	return 0;
}

bool clock_state__uses_kvmclock(const struct cpu_state *cpus, unsigned int nr_cpus)
{
	uint64_t v;
	unsigned int i;

	for (i = 0; i < nr_cpus; i++)
		if (cpu_state__msr(&cpus[i], MSR_KVM_SYSTEM_TIME_NEW, &v) && (v & 1))
			return true;
	return false;
}

/*
 * KVM_CLOCK_REALTIME in KVM_SET_CLOCK (api.rst) would move kvmclock alone
 * and leave the TSC behind, which the guest's clocksource watchdog reads
 * as skew. So the elapsed host time goes into both here: every vCPU's
 * saved IA32_TSC, before it is written, and kvmclock in
 * clock_state__load(). A saved TSC_DEADLINE is left as it is: it is now in
 * the past and fires at once, as a timer that expired during the pause.
 */
uint64_t clock_state__catch_up(const struct vm_clock *c, struct cpu_state *cpus,
			       unsigned int nr_cpus, uint32_t host_khz)
{
	uint32_t khz = c->tsc_khz ? c->tsc_khz : host_khz;
	struct timespec ts;
	uint64_t now, ns;
	unsigned int i;

	if (!(c->data.flags & KVM_CLOCK_REALTIME)) {
		pr_info("restore: the image has no host time of its save (KVM_GET_CLOCK gave no "
			"KVM_CLOCK_REALTIME): the guest's clock goes on from the pause");
		return 0;
	}
	if (!khz) {
		pr_info("restore: the TSC frequency is unknown: the guest's clock goes on from "
			"the pause");
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (now < c->data.realtime) {
		pr_info("restore: the host's clock is %.3f s before the save's: the guest's clock "
			"goes on from the pause",
			(c->data.realtime - now) / 1e9);
		return 0;
	}
	ns = now - c->data.realtime;
	for (i = 0; i < nr_cpus; i++)
		cpu_state__advance_tsc(&cpus[i], ns_to_cycles(ns, khz));
	pr_debug("restore: the guest's clock catches up %.3f s, the host time since the save",
		 ns / 1e9);
	return ns;
}

/*
 * The clock goes on from the pause plus advance_ns (catch-up), and from
 * where vCPU 0's TSC went on since it was written: the vCPU restore takes
 * time (a lazy restore faults the kvmclock and steal-time pages in from
 * the image), and a clock set that much later would lag the TSC by it. The
 * TSC, read just before KVM_SET_CLOCK, measures the gap.
 */
int clock_state__load(struct kvm *kvm, const struct vm_clock *c, uint64_t saved_tsc,
		      uint64_t advance_ns, struct error *err)
{
	struct kvm_clock_data d = {.clock = c->data.clock + advance_ns};
	uint32_t khz = c->tsc_khz ? c->tsc_khz : kvm->tsc_khz;
	uint64_t now_tsc;
	int e, ret;

	if (saved_tsc && kvm->nr_cpus) {
		ret = cpu_state__read_tsc(kvm->cpus[0], &now_tsc, err);
		if (ret)
			return ret;
		d.clock += tsc_delta_ns(saved_tsc, now_tsc, khz);
	}
	if (ioctl(kvm->vm_fd, KVM_SET_CLOCK, &d) < 0) {
		e = errno;
		return err_set(err, -e, "KVM_SET_CLOCK: %s", strerror(e));
	}
	return 0;
}

/*
 * Tell the guest it was stopped, as QEMU does on every resume
 * (hw/i386/kvm/clock.c, kvmclock_vm_state_change): KVM_KVMCLOCK_CTRL sets
 * PVCLOCK_GUEST_STOPPED in each vCPU's pvclock page, and the guest's next
 * pvclock read resets its soft-lockup, RCU-stall, clocksource and
 * hung-task watchdogs, which would otherwise count the pause. EINVAL means
 * that vCPU has no pvclock (api.rst): nothing to tell it.
 */
int clock_state__guest_stopped(struct kvm *kvm, struct error *err)
{
	unsigned int i;
	int e;

	if (ioctl(kvm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_KVMCLOCK_CTRL) <= 0) {
		pr_debug("restore: KVM has no KVM_CAP_KVMCLOCK_CTRL: the guest's watchdogs are "
			 "not told of the pause");
		return 0;
	}
	for (i = 0; i < kvm->nr_cpus; i++) {
		e = kvm_cpu__tell_stopped(kvm->cpus[i]);
		if (!e)
			continue;
		if (e != -EINVAL)
			return err_set(err, e, "vCPU %u: KVM_KVMCLOCK_CTRL: %s", i, strerror(-e));
		pr_debug("restore: vCPU %u has no kvmclock: KVM_KVMCLOCK_CTRL not needed", i);
	}
	return 0;
}
