// SPDX-License-Identifier: GPL-2.0
/* Size and number parsing, and the full-I/O helpers. */
#include "../harness.h"

#include <fcntl.h>

#include "vmm/util/util.h"

TEST(parse_size_units)
{
	uint64_t v;

	ASSERT_EQ(parse_size("0", &v), 0);
	EXPECT_EQ(v, 0);
	ASSERT_EQ(parse_size("4096", &v), 0);
	EXPECT_EQ(v, 4096);
	ASSERT_EQ(parse_size("64K", &v), 0);
	EXPECT_EQ(v, 65536);
	ASSERT_EQ(parse_size("256m", &v), 0);
	EXPECT_EQ(v, 256ULL << 20);
	ASSERT_EQ(parse_size("2G", &v), 0);
	EXPECT_EQ(v, 2ULL << 30);
	ASSERT_EQ(parse_size("1T", &v), 0);
	EXPECT_EQ(v, 1ULL << 40);
	ASSERT_EQ(parse_size("512MiB", &v), 0);
	EXPECT_EQ(v, 512ULL << 20);
	ASSERT_EQ(parse_size("3gb", &v), 0);
	EXPECT_EQ(v, 3ULL << 30);
}

TEST(parse_size_rejects_garbage)
{
	static const char *const bad[] = {"",	 "M",	 "-1",	 " 1",	"1 ",	"1X",
					  "1KK", "1.5G", "0x10", "1Mi", "1Gbb", "+4"};
	uint64_t v = 7;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(parse_size(bad[i], &v), -EINVAL);
	}
	EXPECT_EQ(parse_size(NULL, &v), -EINVAL);
	EXPECT_EQ(v, 7);
}

TEST(parse_size_overflow)
{
	uint64_t v;

	EXPECT_EQ(parse_size("18446744073709551615", &v), 0);
	EXPECT_EQ(v, UINT64_MAX);
	EXPECT_EQ(parse_size("18446744073709551616", &v), -ERANGE);
	EXPECT_EQ(parse_size("16777216T", &v), -ERANGE);
	EXPECT_EQ(parse_size("17179869184G", &v), -ERANGE);
	EXPECT_EQ(parse_size("17179869183G", &v), 0);
}

TEST(parse_uint_bounds)
{
	uint64_t v;

	EXPECT_EQ(parse_uint("1", 1, 64, &v), 0);
	EXPECT_EQ(parse_uint("64", 1, 64, &v), 0);
	EXPECT_EQ(v, 64);
	EXPECT_EQ(parse_uint("0", 1, 64, &v), -ERANGE);
	EXPECT_EQ(parse_uint("65", 1, 64, &v), -ERANGE);
	EXPECT_EQ(parse_uint("2x", 1, 64, &v), -EINVAL);
	EXPECT_EQ(parse_uint("", 1, 64, &v), -EINVAL);
	EXPECT_EQ(parse_uint("-3", 0, 64, &v), -EINVAL);
}

TEST(format_size_round_trip)
{
	static const uint64_t vals[] = {
	    0, 1, 4095, 4096, 65536, 1ULL << 20, 3ULL << 30, (1ULL << 30) + 4096, 5ULL << 40};
	char buf[32];
	unsigned int i;
	uint64_t v;

	for (i = 0; i < ARRAY_SIZE(vals); i++) {
		ASSERT_EQ(parse_size(format_size(vals[i], buf, sizeof(buf)), &v), 0);
		EXPECT_EQ(v, vals[i]);
	}
	EXPECT_STREQ(format_size(256ULL << 20, buf, sizeof(buf)), "256M");
	EXPECT_STREQ(format_size(4097, buf, sizeof(buf)), "4097");
}

TEST(full_io_over_pipe)
{
	char out[200000], in[200000];
	int fds[2];
	pid_t pid;
	size_t i;

	for (i = 0; i < sizeof(out); i++)
		out[i] = (char)(i * 7);
	ASSERT_EQ(pipe(fds), 0);
	/* More than a pipe buffer: the writer must loop over short writes. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		_exit(write_in_full(fds[1], out, sizeof(out)) == (ssize_t)sizeof(out) ? 0 : 1);
	}
	close(fds[1]);
	ASSERT_EQ(read_in_full(fds[0], in, sizeof(in)), (ssize_t)sizeof(in));
	EXPECT_EQ(memcmp(in, out, sizeof(in)), 0);
	/* End of file: a short count, not an error. */
	EXPECT_EQ(read_in_full(fds[0], in, 10), 0);
	close(fds[0]);
	EXPECT_EQ(read_in_full(-1, in, 1), -EBADF);
}

TEST_HARNESS_MAIN
