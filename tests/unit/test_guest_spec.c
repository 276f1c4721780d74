// SPDX-License-Identifier: GPL-2.0
/* --guest NAME:key=value,... parsing and checking. */
#include "../harness.h"

#include "vmm/guests.h"
#include "vmm/util/util.h"

TEST(defaults)
{
	struct guest_spec s;

	ASSERT_EQ(guests__parse("dirtier", &s, NULL), 0);
	EXPECT_STREQ(s.guest->name, "dirtier");
	EXPECT_EQ(s.params[DIRTIER_P_WS], 0);
	EXPECT_EQ(s.params[DIRTIER_P_RATE], 0);
	EXPECT_EQ(s.params[DIRTIER_P_PATTERN], DIRTIER_SEQ);
	EXPECT_EQ(s.params[DIRTIER_P_SEED], 1);
	ASSERT_EQ(guests__parse("hello", &s, NULL), 0);
	EXPECT_EQ(s.params[HELLO_P_CODE], 0);
}

TEST(all_keys)
{
	struct guest_spec s;

	ASSERT_EQ(guests__parse("dirtier:ws=256M,rate=50,pattern=hot,passes=3,seed=9", &s, NULL),
		  0);
	EXPECT_EQ(s.params[DIRTIER_P_WS], 256 * MiB);
	EXPECT_EQ(s.params[DIRTIER_P_RATE], 50);
	EXPECT_EQ(s.params[DIRTIER_P_PATTERN], DIRTIER_HOT);
	EXPECT_EQ(s.params[DIRTIER_P_PASSES], 3);
	EXPECT_EQ(s.params[DIRTIER_P_SEED], 9);
	EXPECT_STREQ(s.text, "dirtier:ws=256M,rate=50,pattern=hot,passes=3,seed=9");
	ASSERT_EQ(guests__parse("hello:code=5", &s, NULL), 0);
	EXPECT_EQ(s.params[HELLO_P_CODE], 5);
}

TEST(errors)
{
	static const char *const bad[][2] = {
	    {"", "--guest : no such built-in guest (see kvmsnap run --help)"},
	    {"nosuch", "--guest nosuch: no such built-in guest (see kvmsnap run --help)"},
	    {"dirtier:bogus=1", "--guest dirtier: unknown parameter 'bogus'"},
	    {"dirtier:ws", "--guest dirtier: 'ws' is not key=value"},
	    {"dirtier:=1", "--guest dirtier: '=1' is not key=value"},
	    {"dirtier:ws=12Q", "--guest dirtier: ws=12Q: not a valid number"},
	    {"dirtier:pattern=zigzag", "--guest dirtier: pattern=zigzag: not one of the allowed "
				       "values (see kvmsnap run --help)"},
	    {"dirtier:rate=-1", "--guest dirtier: rate=-1: not a valid number"},
	    {"hello:code=128", "--guest hello: code=128: out of range"},
	    {"hello:ws=1M", "--guest hello: unknown parameter 'ws'"},
	    {"dirtier:passes=99999999999", "--guest dirtier: passes=99999999999: out of range"},
	};
	struct guest_spec s;
	struct error err;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		TH_LOG("--guest '%s'", bad[i][0]);
		EXPECT_EQ(guests__parse(bad[i][0], &s, &err), -EINVAL);
		EXPECT_STREQ(err.msg, bad[i][1]);
	}
}

TEST(too_long)
{
	char buf[400];
	struct guest_spec s;

	memset(buf, 'a', sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	memcpy(buf, "dirtier:", 8);
	struct error err;

	EXPECT_EQ(guests__parse(buf, &s, &err), -EINVAL);
	EXPECT_STREQ(err.msg, "--guest: specification longer than 255 characters");
}

TEST_HARNESS_MAIN
