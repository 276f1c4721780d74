// SPDX-License-Identifier: GPL-2.0
/* --guest NAME:key=value,... parsing and checking. */
#include "../harness.h"

#include "vmm/guests.h"
#include "vmm/util/util.h"

TEST(defaults)
{
	struct guest_spec s;

	ASSERT_EQ(guests__parse("dirtier", &s), 0);
	EXPECT_STREQ(s.guest->name, "dirtier");
	EXPECT_EQ(s.params[DIRTIER_P_WS], 0);
	EXPECT_EQ(s.params[DIRTIER_P_RATE], 0);
	EXPECT_EQ(s.params[DIRTIER_P_PATTERN], DIRTIER_SEQ);
	EXPECT_EQ(s.params[DIRTIER_P_SEED], 1);
	ASSERT_EQ(guests__parse("hello", &s), 0);
	EXPECT_EQ(s.params[HELLO_P_CODE], 0);
}

TEST(all_keys)
{
	struct guest_spec s;

	ASSERT_EQ(guests__parse("dirtier:ws=256M,rate=50,pattern=hot,passes=3,seed=9", &s), 0);
	EXPECT_EQ(s.params[DIRTIER_P_WS], 256 * MiB);
	EXPECT_EQ(s.params[DIRTIER_P_RATE], 50);
	EXPECT_EQ(s.params[DIRTIER_P_PATTERN], DIRTIER_HOT);
	EXPECT_EQ(s.params[DIRTIER_P_PASSES], 3);
	EXPECT_EQ(s.params[DIRTIER_P_SEED], 9);
	EXPECT_STREQ(s.text, "dirtier:ws=256M,rate=50,pattern=hot,passes=3,seed=9");
	ASSERT_EQ(guests__parse("hello:code=5", &s), 0);
	EXPECT_EQ(s.params[HELLO_P_CODE], 5);
}

TEST(errors)
{
	static const char *const bad[] = {
	    "",
	    "nosuch",
	    "dirtier:bogus=1",
	    "dirtier:ws",
	    "dirtier:=1",
	    "dirtier:ws=12Q",
	    "dirtier:pattern=zigzag",
	    "dirtier:rate=-1",
	    "hello:code=128",
	    "hello:ws=1M",
	    "dirtier:passes=99999999999",
	};
	struct guest_spec s;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		TH_LOG("--guest '%s'", bad[i]);
		EXPECT_EQ(guests__parse(bad[i], &s), -EINVAL);
	}
}

TEST(too_long)
{
	char buf[400];
	struct guest_spec s;

	memset(buf, 'a', sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	memcpy(buf, "dirtier:", 8);
	EXPECT_EQ(guests__parse(buf, &s), -EINVAL);
}

TEST_HARNESS_MAIN
