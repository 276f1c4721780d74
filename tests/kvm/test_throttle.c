// SPDX-License-Identifier: GPL-2.0
/*
 * vCPU throttling on a real VM (vmm/throttle.c), driven by a stand-in
 * manager over the snapshot protocol: `snapshot-throttle` belongs to the
 * session's owner, takes 0 to 99, slows the guest, and is lifted when the
 * session ends, however it ends.
 *
 * "Slows" compares the dirtier's own pages/s over two intervals of the same
 * run, throttled at 90% and not: a ratio on this host, never a speed.
 */
#include "../lib/vmproc.h"

FIXTURE(thr)
{
	struct vm vm;
};

FIXTURE_SETUP(thr)
{
	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened");
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=16M", "--mem", "64M"), 0);
	ASSERT_TRUE(wait_guest_running(self->vm.sock));
}

FIXTURE_TEARDOWN(thr)
{
	if (self->vm.pid > 0)
		EXPECT_EQ(vm_stop(&self->vm), 0);
	else
		vm_stop(&self->vm);
}

/* The dirtier's pages/s over about ms milliseconds (stats counts since the last stats). */
static uint64_t pages_per_sec(const char *sock, unsigned int ms)
{
	struct json_object *r = call(sock, "{\"cmd\":\"stats\"}");
	uint64_t pps;

	json_object_put(r);
	sleep_ms(ms);
	r = call(sock, "{\"cmd\":\"stats\"}");
	pps = u64_of(r, "pages_per_sec");
	json_object_put(r);
	return pps;
}

static uint64_t throttle_of(const char *sock)
{
	struct json_object *r = call(sock, "{\"cmd\":\"status\"}");
	uint64_t pct = u64_of(r, "throttle_pct");

	json_object_put(r);
	return pct;
}

/* A request on fd that must fail with an error containing want. */
static void refused(struct th_result *_r, int fd, const char *req, const char *want)
{
	struct json_object *r = call_fd(fd, req);

	ASSERT_NOT_NULL(r);
	EXPECT_EQ(ok_of(r), 0);
	if (!strstr(str_of(r, "error") ?: "", want))
		TH_LOG("%s: %s", req, str_of(r, "error") ?: "(no error)");
	EXPECT_NOT_NULL(strstr(str_of(r, "error") ?: "", want));
	json_object_put(r);
}

/* A request on fd that must succeed. */
static void ok_call(struct th_result *_r, int fd, const char *req)
{
	struct json_object *r = call_fd(fd, req);

	ASSERT_EQ(ok_of(r), 1);
	json_object_put(r);
}

TEST_F_TIMEOUT(thr, throttle_slows_the_guest_and_ends_with_the_session, 120)
{
	const char *sock = self->vm.sock;
	uint64_t before, during, after, deadline;
	struct json_object *r;
	int fd = ctl_open(sock), other = ctl_open(sock);

	ASSERT_GE(fd, 0);
	ASSERT_GE(other, 0);
	refused(_r, fd, "{\"cmd\":\"snapshot-throttle\",\"percent\":50}", "no snapshot session");
	r = call_fd(fd, "{\"cmd\":\"snapshot-begin\"}");
	ASSERT_EQ(ok_of(r), 1);
	json_object_put(r);
	refused(_r, other, "{\"cmd\":\"snapshot-throttle\",\"percent\":50}", "another connection");
	refused(_r, fd, "{\"cmd\":\"snapshot-throttle\",\"percent\":100}", "from 0 to 99");
	refused(_r, fd, "{\"cmd\":\"snapshot-throttle\",\"percent\":-1}", "non-negative");
	refused(_r, fd, "{\"cmd\":\"snapshot-throttle\"}", "\"percent\"");

	before = pages_per_sec(sock, 1000);
	r = call_fd(fd, "{\"cmd\":\"snapshot-throttle\",\"percent\":90}");
	EXPECT_EQ(ok_of(r), 1);
	EXPECT_EQ(u64_of(r, "percent"), 90);
	json_object_put(r);
	EXPECT_EQ(throttle_of(sock), 90);
	during = pages_per_sec(sock, 1000);
	TH_LOG("dirtier pages/s: %llu unthrottled, %llu at 90%% (ratio %.3f)",
	       (unsigned long long)before, (unsigned long long)during,
	       before ? (double)during / (double)before : 0);
	EXPECT_GT(before, 0);
	EXPECT_LT(during, before);

	/* The manager goes away: the VM lifts the throttle with the session. */
	close(fd);
	deadline = ms_now() + progress_timeout_ms;
	while (throttle_of(sock) && ms_now() < deadline)
		sleep_ms(10);
	EXPECT_EQ(throttle_of(sock), 0);
	after = pages_per_sec(sock, 1000);
	TH_LOG("after the session: %llu pages/s", (unsigned long long)after);
	EXPECT_GT(after, during);
	close(other);
	expect_guest_runs(_r, sock);
}

/* snapshot-clear: the owner's, inside a region, after snapshot-log; and harmless. */
TEST_F_TIMEOUT(thr, clear_is_checked, 60)
{
	const char *sock = self->vm.sock;
	struct json_object *r;
	int fd = ctl_open(sock);

	ASSERT_GE(fd, 0);
	refused(_r, fd, "{\"cmd\":\"snapshot-clear\",\"region\":0,\"first\":0,\"pages\":64}",
		"no snapshot session");
	ok_call(_r, fd, "{\"cmd\":\"snapshot-begin\"}");
	refused(_r, fd, "{\"cmd\":\"snapshot-clear\",\"region\":0,\"first\":0,\"pages\":64}",
		"dirty logging is off");
	ok_call(_r, fd, "{\"cmd\":\"snapshot-log\"}");
	refused(_r, fd, "{\"cmd\":\"snapshot-clear\",\"region\":0,\"first\":0}",
		"needs \"region\", \"first\" and \"pages\"");
	refused(_r, fd, "{\"cmd\":\"snapshot-clear\",\"region\":9,\"first\":0,\"pages\":1}",
		"no region 9");
	refused(_r, fd, "{\"cmd\":\"snapshot-clear\",\"region\":0,\"first\":16384,\"pages\":1}",
		"are past pc.ram's 16384");
	refused(_r, fd,
		"{\"cmd\":\"snapshot-clear\",\"region\":0,\"first\":1,\"pages\":"
		"18446744073709551615}",
		"are past");
	ok_call(_r, fd, "{\"cmd\":\"snapshot-dirty\"}");
	ok_call(_r, fd, "{\"cmd\":\"snapshot-clear\",\"region\":0,\"first\":3,\"pages\":100}");
	ok_call(_r, fd, "{\"cmd\":\"snapshot-clear\",\"region\":0,\"first\":0,\"pages\":16384}");
	r = call(sock, "{\"cmd\":\"status\"}");
	TH_LOG("dirty_log_mode %s", str_of(r, "dirty_log_mode") ?: "?");
	EXPECT_NOT_NULL(str_of(r, "dirty_log_mode"));
	json_object_put(r);
	close(fd);
	expect_guest_runs(_r, sock);
}

/* Pause and resume while throttled: the pause is not held up by a sleeping vCPU. */
TEST_F_TIMEOUT(thr, pause_while_throttled, 120)
{
	const char *sock = self->vm.sock;
	int fd = ctl_open(sock), i;

	ASSERT_GE(fd, 0);
	ok_call(_r, fd, "{\"cmd\":\"snapshot-begin\"}");
	ok_call(_r, fd, "{\"cmd\":\"snapshot-throttle\",\"percent\":99}");
	for (i = 0; i < 20; i++) {
		ok_call(_r, fd, "{\"cmd\":\"snapshot-pause\"}");
		ok_call(_r, fd, "{\"cmd\":\"snapshot-end\"}");
		EXPECT_EQ(throttle_of(sock), 0);
		ok_call(_r, fd, "{\"cmd\":\"snapshot-begin\"}");
		ok_call(_r, fd, "{\"cmd\":\"snapshot-throttle\",\"percent\":99}");
	}
	close(fd);
	expect_guest_runs(_r, sock);
	EXPECT_EQ(throttle_of(sock), 0);
}

TEST_HARNESS_MAIN
