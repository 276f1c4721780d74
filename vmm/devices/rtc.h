/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The CMOS RTC on ports 0x70 (index) and 0x71 (data), as far as a kernel
 * reads the time from it: the date and time are the host's UTC clock at
 * every read, in the format status register B asks for (BCD or binary,
 * 12 or 24 hours). Writes to the time registers are ignored, so the guest
 * never moves the host's clock nor its own offset from it; after a restore
 * the RTC simply reads the current time. No alarm, periodic or update
 * interrupts: the kernel times with kvmclock and the local APIC.
 */
#ifndef KVMSNAP_RTC_H
#define KVMSNAP_RTC_H

#include <pthread.h>
#include <stdint.h>

struct kvm;

#define RTC_CMOS_SIZE 128

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[RTC_CMOS_SIZE]; /* status registers and the rest of CMOS RAM */
};

/* Reset and claim ports [base, base + 2). 0 or -errno. kvm may be NULL (tests). */
int rtc__init(struct rtc *rtc, struct kvm *kvm, uint16_t base);

/* One register read or write at index; exposed for unit tests. now is Unix time. */
uint8_t rtc__read_at(struct rtc *rtc, unsigned int index, int64_t now);
void rtc__write_at(struct rtc *rtc, unsigned int index, uint8_t val);

#endif
