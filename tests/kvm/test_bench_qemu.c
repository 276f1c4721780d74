// SPDX-License-Identifier: GPL-2.0
/*
 * The QEMU column of `kvmsnap bench` (vmm/bench/qemu.c), end to end: QEMU
 * runs the Multiboot dirtier, saves it live into a file through its own
 * migration, and restores it from there. Skipped without QEMU. Nothing here
 * depends on the host's speed but the deadlines inside bench_qemu__run().
 */
#include "../lib/vmproc.h"

#include "bench/qemu.h"

#define MB_DIRTIER "guests/dirtier-mb.elf"

FIXTURE(bq)
{
	char dir[64];
	char kernel[4096];
	char file[128];
	const char *qemu;
};

FIXTURE_SETUP(bq)
{
	struct stat st;

	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened: %s", strerror(errno));
	self->qemu = bench_qemu__find();
	TEST_REQUIRE(self->qemu, "no qemu-system-x86_64 in PATH (or $KVMSNAP_QEMU)");
	snprintf(self->kernel, sizeof(self->kernel), "%s/%s", build_dir(), MB_DIRTIER);
	ASSERT_EQ(stat(self->kernel, &st), 0);
	strcpy(self->dir, "/tmp/kvmsnap-bq-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->file, sizeof(self->file), "%s/saved", self->dir);
}

FIXTURE_TEARDOWN(bq)
{
	if (self->dir[0])
		rm_tree(self->dir);
}

TEST_F_TIMEOUT(bq, save_and_restore, 300)
{
	struct bench_qemu_opts o = {
	    .qemu = self->qemu,
	    .kernel = self->kernel,
	    .append = "ws=16M rate=10",
	    .ram = 256ULL << 20,
	    .vcpus = 1,
	    .dir = self->dir,
	    .file = self->file,
	    .warm_ms = 500,
	    .max_downtime_ms = 300,
	    .max_time_s = 120,
	    .restore = true,
	};
	struct bench_qemu_result r;
	struct error err = {0};
	struct stat st;
	int ret;

	ret = bench_qemu__run(&o, &r, &err);
	if (ret)
		TH_LOG("bench_qemu__run: %s", err.msg);
	ASSERT_EQ(ret, 0);
	TH_LOG("status %s, total %.1f ms (fsync %.1f), downtime %.1f ms, %" PRIu64
	       " bytes in the file, %" PRIu64
	       " transferred, %u passes, %zu samples, restore %.1f ms",
	       r.status, r.total_ms, r.fsync_ms, r.downtime_ms, r.file_bytes, r.transferred,
	       r.passes, r.nr_samples, r.restore_ms);
	EXPECT_TRUE(r.completed);
	EXPECT_STREQ(r.status, "completed");
	EXPECT_GT(r.file_bytes, 0);
	ASSERT_EQ(stat(self->file, &st), 0);
	EXPECT_EQ((uint64_t)st.st_size, r.file_bytes);
	EXPECT_GE(r.downtime_ms, 0);
	EXPECT_GT(r.total_ms, 0);
	EXPECT_GE(r.total_ms, r.fsync_ms);
	EXPECT_GT(r.transferred, 0);
	EXPECT_GT(r.passes, 0);
	ASSERT_GT(r.nr_samples, 0);
	/* The last sample is the file once complete. */
	EXPECT_EQ(r.samples[r.nr_samples - 1].bytes, r.file_bytes);
	EXPECT_GT(r.restore_ms, 0);
	free(r.samples);
}

/* A bad kernel ends in an error that names the cause, and QEMU is gone. */
TEST_F_TIMEOUT(bq, missing_kernel_is_an_error, 120)
{
	struct bench_qemu_opts o = {
	    .qemu = self->qemu,
	    .kernel = "/nonexistent/kernel",
	    .append = "",
	    .ram = 64ULL << 20,
	    .vcpus = 1,
	    .dir = self->dir,
	    .file = self->file,
	    .max_time_s = 10,
	};
	struct bench_qemu_result r;
	struct error err = {0};

	EXPECT_LT(bench_qemu__run(&o, &r, &err), 0);
	TH_LOG("error: %s", err.msg);
	EXPECT_NOT_NULL(strstr(err.msg, "QEMU"));
	EXPECT_FALSE(r.completed);
	EXPECT_GT(strlen(r.status), 0);
	free(r.samples);
}

TEST_HARNESS_MAIN
