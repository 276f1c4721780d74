// SPDX-License-Identifier: GPL-2.0
/* The CMOS RTC model: a known time in every format register B selects. */
#include "../harness.h"

#include "vmm/devices/rtc.h"

/* 2026-12-01 18:07:09 UTC, a Tuesday. */
#define T0 1796148429LL

FIXTURE(rtc)
{
	struct rtc rtc;
};

FIXTURE_SETUP(rtc)
{
	ASSERT_EQ(rtc__init(&self->rtc, NULL, 0x70), 0);
}

FIXTURE_TEARDOWN(rtc)
{
}

TEST_F(rtc, bcd_24h_by_default)
{
	struct rtc *r = &self->rtc;

	EXPECT_EQ(rtc__read_at(r, 0x00, T0), 0x09);
	EXPECT_EQ(rtc__read_at(r, 0x02, T0), 0x07);
	EXPECT_EQ(rtc__read_at(r, 0x04, T0), 0x18);
	EXPECT_EQ(rtc__read_at(r, 0x06, T0), 0x03); /* Sunday is 1 */
	EXPECT_EQ(rtc__read_at(r, 0x07, T0), 0x01);
	EXPECT_EQ(rtc__read_at(r, 0x08, T0), 0x12);
	EXPECT_EQ(rtc__read_at(r, 0x09, T0), 0x26);
	EXPECT_EQ(rtc__read_at(r, 0x32, T0), 0x20);
	EXPECT_EQ(rtc__read_at(r, 0x0a, T0) & 0x80, 0); /* never in an update */
	EXPECT_EQ(rtc__read_at(r, 0x0d, T0), 0x80);	/* the battery is good */
	/* Bit 7 of the index masks NMIs: the register is the same. */
	EXPECT_EQ(rtc__read_at(r, 0x84, T0), 0x18);
}

TEST_F(rtc, binary_and_12h)
{
	struct rtc *r = &self->rtc;

	rtc__write_at(r, 0x0b, 0x04); /* binary, 12 hours */
	EXPECT_EQ(rtc__read_at(r, 0x0b, T0), 0x04);
	EXPECT_EQ(rtc__read_at(r, 0x04, T0), 0x80 | 6);
	EXPECT_EQ(rtc__read_at(r, 0x09, T0), 26);
	rtc__write_at(r, 0x0b, 0x00); /* BCD, 12 hours */
	EXPECT_EQ(rtc__read_at(r, 0x04, T0), 0x86);
	EXPECT_EQ(rtc__read_at(r, 0x04, T0 - 18 * 3600), 0x12); /* midnight is 12 AM */
}

TEST_F(rtc, time_follows_the_host_and_cmos_ram_keeps_writes)
{
	struct rtc *r = &self->rtc;

	rtc__write_at(r, 0x00, 0x42);
	EXPECT_EQ(rtc__read_at(r, 0x00, T0), 0x09);
	rtc__write_at(r, 0x01, 0x33); /* the seconds alarm */
	EXPECT_EQ(rtc__read_at(r, 0x01, T0), 0x33);
	rtc__write_at(r, 0x40, 0xa5);
	EXPECT_EQ(rtc__read_at(r, 0x40, T0), 0xa5);
	rtc__write_at(r, 0x0d, 0x00); /* read-only */
	EXPECT_EQ(rtc__read_at(r, 0x0d, T0), 0x80);
	rtc__write_at(r, 0x0c, 0xff);
	EXPECT_EQ(rtc__read_at(r, 0x0c, T0), 0x00);
}

TEST_HARNESS_MAIN
