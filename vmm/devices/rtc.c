// SPDX-License-Identifier: GPL-2.0
/* CMOS RTC: the host's time through the MC146818 registers; see rtc.h. */
#include "devices/rtc.h"

#include <string.h>
#include <time.h>

#include "kvm.h"

enum {
	RTC_SECONDS = 0x00,
	RTC_MINUTES = 0x02,
	RTC_HOURS = 0x04,
	RTC_WEEKDAY = 0x06,
	RTC_MDAY = 0x07,
	RTC_MONTH = 0x08,
	RTC_YEAR = 0x09,
	RTC_REG_A = 0x0a,
	RTC_REG_B = 0x0b,
	RTC_REG_C = 0x0c,
	RTC_REG_D = 0x0d,
	RTC_CENTURY = 0x32, /* the ACPI FADT's default century register */
};

#define REG_A_DIVIDER 0x26 /* 32.768 kHz time base, 1024 Hz rate; UIP (bit 7) never set */
#define REG_B_24H     0x02
#define REG_B_DM      0x04 /* binary, not BCD */
#define REG_B_SET     0x80 /* updates halted */
#define REG_B_MASK    0x7f /* no interrupts (bits 4-6) are ever raised, but they read back */
#define REG_D_VRT     0x80 /* the battery is good */
#define HOUR_PM	      0x80
#define INDEX_MASK    0x7f /* bit 7 of the index port masks NMIs */

static uint8_t to_bcd(unsigned int v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t rtc_field(const struct rtc *rtc, unsigned int v)
{
	return (rtc->cmos[RTC_REG_B] & REG_B_DM) ? (uint8_t)v : to_bcd(v);
}

static uint8_t rtc_hours(const struct rtc *rtc, unsigned int h)
{
	unsigned int h12;

	if (rtc->cmos[RTC_REG_B] & REG_B_24H)
		return rtc_field(rtc, h);
	h12 = h % 12 ? h % 12 : 12;
	return rtc_field(rtc, h12) | (h >= 12 ? HOUR_PM : 0);
}

uint8_t rtc__read_at(struct rtc *rtc, unsigned int index, int64_t now)
{
	time_t t = (time_t)now;
	struct tm tm;

	index &= INDEX_MASK;
	if (index > RTC_YEAR && index != RTC_CENTURY)
		return index == RTC_REG_C ? 0 : rtc->cmos[index];
	if (index & 1 && index < RTC_WEEKDAY)
		return rtc->cmos[index]; /* the alarm registers */
	gmtime_r(&t, &tm);
	switch (index) {
	case RTC_SECONDS:
		return rtc_field(rtc, tm.tm_sec > 59 ? 59 : tm.tm_sec);
	case RTC_MINUTES:
		return rtc_field(rtc, tm.tm_min);
	case RTC_HOURS:
		return rtc_hours(rtc, tm.tm_hour);
	case RTC_WEEKDAY:
		return rtc_field(rtc, tm.tm_wday + 1);
	case RTC_MDAY:
		return rtc_field(rtc, tm.tm_mday);
	case RTC_MONTH:
		return rtc_field(rtc, tm.tm_mon + 1);
	case RTC_YEAR:
		return rtc_field(rtc, (tm.tm_year + 1900) % 100);
	default: /* RTC_CENTURY */
		return rtc_field(rtc, (tm.tm_year + 1900) / 100);
	}
}

void rtc__write_at(struct rtc *rtc, unsigned int index, uint8_t val)
{
	index &= INDEX_MASK;
	switch (index) {
	case RTC_REG_A:
		rtc->cmos[index] = val & 0x7f; /* UIP (bit 7) is read-only */
		break;
	case RTC_REG_B:
		rtc->cmos[index] = val & (REG_B_MASK | REG_B_SET);
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		break; /* read-only */
	default:
		/* The time follows the host; the alarms and CMOS RAM keep what is written. */
		if (index > RTC_YEAR && index != RTC_CENTURY)
			rtc->cmos[index] = val;
		else if (index & 1 && index < RTC_WEEKDAY)
			rtc->cmos[index] = val;
		break;
	}
}

static void rtc__io(struct kvm_cpu *cpu, uint64_t addr, uint8_t *data, uint32_t size, bool is_write,
		    void *opaque)
{
	struct rtc *rtc = opaque;
	unsigned int port = (unsigned int)(addr & 1);

	(void)cpu;
	pthread_mutex_lock(&rtc->lock);
	if (port == 0) {
		if (is_write)
			rtc->index = data[0] & INDEX_MASK;
		else
			memset(data, 0xff, size); /* the index port is write-only */
	} else if (is_write) {
		rtc__write_at(rtc, rtc->index, data[0]);
	} else {
		memset(data, 0, size);
		data[0] = rtc__read_at(rtc, rtc->index, (int64_t)time(NULL));
	}
	pthread_mutex_unlock(&rtc->lock);
}

int rtc__init(struct rtc *rtc, struct kvm *kvm, uint16_t base)
{
	memset(rtc, 0, sizeof(*rtc));
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->cmos[RTC_REG_A] = REG_A_DIVIDER;
	rtc->cmos[RTC_REG_B] = REG_B_24H;
	rtc->cmos[RTC_REG_D] = REG_D_VRT;
	if (!kvm)
		return 0;
	return kvm__register_pio(kvm, base, 2, rtc__io, rtc);
}
