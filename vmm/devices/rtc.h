/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The CMOS RTC on ports 0x70 (index) and 0x71 (data), as far as a kernel
 * reads the time from it: the date and time are the host's UTC clock at
 * every read, in the format status register B asks for (BCD or binary,
 * 12 or 24 hours). Writes to the time registers are ignored, so the guest
 * never moves the host's clock nor its own offset from it; after a restore
 * the RTC simply reads the current time. No alarm, periodic or update
 * interrupts: the kernel times with kvmclock and the local APIC. The index
 * and the CMOS RAM (status registers A and B, the alarms, NVRAM) are saved
 * in the state area (vmm/devices/rtc-state.c).
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

/*
 * Snapshot state (vmm/devices/rtc-state.c), record RTC of
 * Documentation/state-records.md: RTC_STATE_SIZE bytes.
 */
struct error;

#define RTC_STATE_SIZE 0x88

/* What the record holds, decoded. */
struct rtc_state {
	uint8_t index;
	uint32_t flags; /* none defined yet: must be 0 */
	uint8_t cmos[RTC_CMOS_SIZE];
};

/* Encode the index and CMOS RAM into payload (RTC_STATE_SIZE bytes). */
void rtc__save(struct rtc *rtc, uint8_t *payload);
/* Check a payload without touching any RTC. 0 or -EINVAL with a message. */
int rtc__check_state(const uint8_t *payload, uint32_t len, struct error *err);
/* Check and load a payload. 0 or -EINVAL. */
int rtc__restore(struct rtc *rtc, const uint8_t *payload, uint32_t len, struct error *err);

#endif
