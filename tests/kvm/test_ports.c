// SPDX-License-Identifier: GPL-2.0
/*
 * A hostile guest: porthammer (tests/guests/porthammer) makes thousands of
 * random port accesses of every size and direction, string I/O, and random
 * MMIO to unbacked addresses. kvmsnap must survive all of it: the guest
 * reports on COM1 and exits through debug-exit with its own status, unbacked
 * MMIO reads float high, and kvmsnap prints no error. One round also asks
 * the control socket for status while the guest hammers.
 */
#include "../lib/vmproc.h"

#define RUN_TIMEOUT_MS 30000 /* a round takes well under a second */
#define PH_OK	       67    /* debug-exit code 0x21: (0x21 << 1) | 1 */
#define PH_SURVIVED    "porthammer: survived 3216 accesses\n"
#define PH_MMIO_OK     "porthammer: unbacked MMIO reads not all ones: 0\n"
#define PH_SEED	       "porthammer: seed %s\n"
#define PH_SEED_DEF    "625341585" /* the kernel's constant 0x2545f491 */

FIXTURE(ph)
{
	char dir[64];
	char kernel[4096];
	char sock[96];
	struct run run;
};

static void ph_setup(struct _fixture_ph *self, struct th_result *_r)
{
	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened: %s", strerror(errno));
	ASSERT_TRUE(test_kernel("porthammer", self->kernel, sizeof(self->kernel)));
	strcpy(self->dir, "/tmp/kvmsnap-ph-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->sock, sizeof(self->sock), "%s/ctl.sock", self->dir);
}

static void ph_teardown(struct _fixture_ph *self)
{
	if (!self->dir[0])
		return;
	unlink(self->sock);
	rmdir(self->dir);
}

FIXTURE_SETUP(ph)
{
	ph_setup(self, _r);
}

FIXTURE_TEARDOWN(ph)
{
	ph_teardown(self);
}

/* The guest survived: its status, its report, and no error from kvmsnap. */
static void expect_survived(struct th_result *_r, const struct run *run, const char *seed)
{
	char line[128];

	snprintf(line, sizeof(line), PH_SEED, seed);
	if (run->status != PH_OK || !strstr(run->serial, PH_SURVIVED) || run->err[0])
		TH_LOG("exit status %d\nstderr:\n%sserial:\n%s", run->status, run->err,
		       run->serial);
	EXPECT_EQ(run->status, PH_OK);
	EXPECT_NOT_NULL(strstr(run->serial, line));
	EXPECT_NOT_NULL(strstr(run->serial, PH_MMIO_OK));
	EXPECT_NOT_NULL(strstr(run->serial, PH_SURVIVED));
	EXPECT_NULL(strstr(run->err, "kvmsnap: error"));
	EXPECT_NULL(strstr(run->err, "Sanitizer"));
	EXPECT_NULL(strstr(run->err, "runtime error"));
}

/* One round on vcpus vCPUs, with --append seed unless seed is NULL. */
static void hammer(struct _fixture_ph *self, struct th_result *_r, const char *vcpus,
		   const char *seed)
{
	const char *args[] = {
	    "--kernel", self->kernel, "--mem", "64M", "--vcpus", vcpus, seed ? "--append" : NULL,
	    seed,	NULL};
	uint64_t t0 = ms_now();
	pid_t pid = run_spawn(self->dir, args);

	ASSERT_GT(pid, 0);
	run_finish(&self->run, self->dir, pid, RUN_TIMEOUT_MS);
	TH_LOG("vcpus %s seed %s: %" PRIu64 " ms", vcpus, seed ? seed : "default", ms_now() - t0);
	expect_survived(_r, &self->run, seed ? seed : PH_SEED_DEF);
}

/* One round with the default seed on each number of vCPUs. */
FIXTURE(vcpus)
{
	struct _fixture_ph ph;
};

FIXTURE_VARIANT(vcpus)
{
	const char *vcpus;
};

FIXTURE_VARIANT_ADD(vcpus, one){.vcpus = "1"};
FIXTURE_VARIANT_ADD(vcpus, two){.vcpus = "2"};

FIXTURE_SETUP(vcpus)
{
	ph_setup(&self->ph, _r);
}

FIXTURE_TEARDOWN(vcpus)
{
	ph_teardown(&self->ph);
}

TEST_F(vcpus, hammer)
{
	hammer(&self->ph, _r, variant->vcpus, NULL);
}

TEST_F(ph, three_seeds)
{
	static const char *const seeds[] = {"1", "4242", "3735928559"};
	unsigned int i;

	for (i = 0; i < 3; i++)
		hammer(self, _r, i == 1 ? "2" : "1", seeds[i]);
}

/* Send one request line; 1 if a reply line with "ok":true came back, 0 if not. */
static int ask_status(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	static const char req[] = "{\"cmd\":\"status\"}\n";
	char buf[OUT_MAX];
	size_t used = 0;
	int fd, ok = 0;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != sizeof(req) - 1)
		goto out;
	while (used < sizeof(buf) - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 2000) != 1)
			break;
		n = recv(fd, buf + used, sizeof(buf) - 1 - used, 0);
		if (n <= 0)
			break;
		used += n;
		buf[used] = '\0';
		if (strchr(buf, '\n')) {
			ok = strncmp(buf, "{\"ok\":true", 10) == 0;
			if (!ok)
				TH_LOG("status reply: %s", buf);
			break;
		}
	}
out:
	close(fd);
	return ok;
}

/* Whether pid has not exited yet; it is left to be reaped. */
static bool still_running(pid_t pid)
{
	siginfo_t si = {0};

	return !waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) && si.si_pid == 0;
}

/* The control socket answers while the guest hammers, and goes away after. */
TEST_F(ph, with_control_socket)
{
	const char *args[] = {"--kernel", self->kernel, "--mem",    "64M", "--append",
			      "99",	  "--control",	self->sock, NULL};
	uint64_t t0 = ms_now(), now;
	unsigned int asked = 0, answered = 0;
	struct stat st;
	pid_t pid = run_spawn(self->dir, args);

	ASSERT_GT(pid, 0);
	/* The guest runs for a fraction of a second: ask as often as we can. */
	while (ms_now() < t0 + RUN_TIMEOUT_MS && still_running(pid)) {
		if (stat(self->sock, &st)) {
			usleep(1000);
			continue;
		}
		asked++;
		answered += ask_status(self->sock);
		usleep(1000);
	}
	now = ms_now();
	run_finish(&self->run, self->dir, pid,
		   now < t0 + RUN_TIMEOUT_MS ? (unsigned int)(t0 + RUN_TIMEOUT_MS - now) : 0);
	TH_LOG("%u of %u status requests answered while the guest ran", answered, asked);
	expect_survived(_r, &self->run, "99");
	EXPECT_GT(answered, 0);
	EXPECT_NE(stat(self->sock, &st), 0);
}

TEST_HARNESS_MAIN
