// SPDX-License-Identifier: GPL-2.0
/*
 * The built-in guests, run by the real binary: hello's output and exit code,
 * the dirtier's self-check in each pattern on one and two vCPUs, its pacing,
 * and the errors for bad --guest specifications.
 */
#include "../lib/vmproc.h"

#define RUN_TIMEOUT_MS	 45000		     /* a kvmsnap run may take */
#define GUEST_EXIT(code) (((code) << 1) | 1) /* status for MSGPORT_EXIT code */
#define STATUS_BAD_INPUT 2

/*
 * Run `kvmsnap run ARGS... --serial FILE` in a new temporary folder; kill it
 * after RUN_TIMEOUT_MS. Returns 0, or -1 if it could not be started.
 */
static int run_kvmsnap(struct run *r, const char *const *args)
{
	char dir[] = "/tmp/kvmsnap-test-XXXXXX";
	int ret;

	memset(r, 0, sizeof(*r));
	if (!mkdtemp(dir))
		return -1;
	ret = run_guest(r, dir, args, RUN_TIMEOUT_MS);
	rmdir(dir);
	return ret;
}

#define REQUIRE_KVM() TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened: %s", strerror(errno))

/* A run that must end with exit code `code` from the guest. */
#define RUN_OK(r, code, ...)                                                                       \
	do {                                                                                       \
		const char *_args[] = {__VA_ARGS__, NULL};                                         \
		ASSERT_EQ(run_kvmsnap(r, _args), 0);                                               \
		if ((r)->status != GUEST_EXIT(code))                                               \
			TH_LOG("exit status %d after %.1f s\nstderr:\n%sserial:\n%s", (r)->status, \
			       (r)->secs, (r)->err, (r)->serial);                                  \
		ASSERT_EQ((r)->status, GUEST_EXIT(code));                                          \
	} while (0)

/* A run that kvmsnap must refuse with one "kvmsnap: error:" line. */
#define RUN_BAD(r, ...)                                                            \
	do {                                                                       \
		const char *_args[] = {__VA_ARGS__, NULL};                         \
		ASSERT_EQ(run_kvmsnap(r, _args), 0);                               \
		if ((r)->status != STATUS_BAD_INPUT || count_lines((r)->err) != 1) \
			TH_LOG("stderr: %s", (r)->err);                            \
		EXPECT_EQ((r)->status, STATUS_BAD_INPUT);                          \
		EXPECT_EQ(strncmp((r)->err, "kvmsnap: error:", 15), 0);            \
		EXPECT_EQ(count_lines((r)->err), 1);                               \
	} while (0)

static struct run run_buf;

TEST(hello_exits_1)
{
	struct run *r = &run_buf;

	REQUIRE_KVM();
	RUN_OK(r, 0, "--guest", "hello");
	EXPECT_NOT_NULL(strstr(r->serial, "kvmsnap hello from ring 3\n"));
	EXPECT_NOT_NULL(strstr(r->serial, "kvmsnap hello: 1 vCPU\n"));
}

TEST(hello_code_5_exits_11)
{
	struct run *r = &run_buf;

	REQUIRE_KVM();
	RUN_OK(r, 5, "--guest", "hello:code=5");
	EXPECT_EQ(r->status, 11);
	EXPECT_NOT_NULL(strstr(r->serial, "kvmsnap hello from ring 3\n"));
}

TEST(hello_two_vcpus)
{
	struct run *r = &run_buf;

	REQUIRE_KVM();
	RUN_OK(r, 0, "--vcpus", "2", "--guest", "hello");
	EXPECT_NOT_NULL(strstr(r->serial, "kvmsnap hello: 2 vCPUs\n"));
}

/* The dirtier's self-check passes in every pattern, on one and more vCPUs. */
FIXTURE(dirtier)
{
	struct run r;
};

FIXTURE_VARIANT(dirtier)
{
	const char *mem, *vcpus, *spec;
	const char *want;    /* on the serial output besides "self-check ok" */
	unsigned int passes; /* as in spec */
};

FIXTURE_VARIANT_ADD(dirtier, seq){.mem = "64M",
				  .vcpus = "1",
				  .spec = "dirtier:ws=8M,passes=3",
				  .want = "pattern seq",
				  .passes = 3};
FIXTURE_VARIANT_ADD(dirtier, seq_two_vcpus){
    .mem = "64M", .vcpus = "2", .spec = "dirtier:ws=8M,passes=3", .want = "2 vCPUs", .passes = 3};
FIXTURE_VARIANT_ADD(dirtier, random){.mem = "64M",
				     .vcpus = "1",
				     .spec = "dirtier:ws=8M,passes=3,pattern=random,seed=7",
				     .want = "pattern random",
				     .passes = 3};
FIXTURE_VARIANT_ADD(dirtier, hot_two_vcpus){.mem = "64M",
					    .vcpus = "2",
					    .spec = "dirtier:ws=8M,passes=3,pattern=hot",
					    .want = "pattern hot",
					    .passes = 3};
/* ws=0 means all free RAM; an odd page count leaves a remainder slice. */
FIXTURE_VARIANT_ADD(dirtier, whole_ram_three_vcpus){.mem = "16M",
						    .vcpus = "3",
						    .spec = "dirtier:passes=2,pattern=random",
						    .want = "3 vCPUs",
						    .passes = 2};

FIXTURE_SETUP(dirtier)
{
	REQUIRE_KVM();
}

FIXTURE_TEARDOWN(dirtier)
{
}

TEST_F(dirtier, self_check)
{
	struct run *r = &self->r;
	char done[64];

	RUN_OK(r, 0, "--mem", variant->mem, "--vcpus", variant->vcpus, "--guest", variant->spec);
	EXPECT_NOT_NULL(strstr(r->serial, variant->want));
	snprintf(done, sizeof(done), "dirtier: %u passes done, self-check ok\n", variant->passes);
	EXPECT_NOT_NULL(strstr(r->serial, done));
}

/* 1024 pages x 2 passes at 2 pages/ms cannot take less than about a second. */
TEST(dirtier_rate_is_paced)
{
	struct run *r = &run_buf;

	REQUIRE_KVM();
	RUN_OK(r, 0, "--mem", "64M", "--guest", "dirtier:ws=4M,passes=2,rate=2");
	EXPECT_NOT_NULL(strstr(r->serial, "rate 2 pages/ms"));
	EXPECT_GE(r->secs, 0.9);
}

/* Bad --guest specifications: refused with one error line. */
FIXTURE(bad_spec)
{
	struct run r;
};

FIXTURE_VARIANT(bad_spec)
{
	const char *mem, *spec;
};

FIXTURE_VARIANT_ADD(bad_spec, unknown_parameter){.mem = "64M", .spec = "dirtier:bogus=1"};
FIXTURE_VARIANT_ADD(bad_spec, no_such_guest){.mem = "64M", .spec = "nosuchguest"};
FIXTURE_VARIANT_ADD(bad_spec, ws_larger_than_ram){.mem = "64M", .spec = "dirtier:ws=128M"};

FIXTURE_SETUP(bad_spec)
{
	REQUIRE_KVM();
}

FIXTURE_TEARDOWN(bad_spec)
{
}

TEST_F(bad_spec, refused)
{
	RUN_BAD(&self->r, "--mem", variant->mem, "--guest", variant->spec);
}

TEST_HARNESS_MAIN
