// SPDX-License-Identifier: GPL-2.0
/*
 * `kvmsnap snapshot FILE --append`, the benchmark baseline, against a real
 * `kvmsnap run` with the dirtier: the stream completes while the guest runs
 * on, the file holds at least the pages it reports, and replaying it
 * (snapshot/append.h, linked in) covers every page of every region with
 * the digests the report gives; of a paused VM, exactly its memory. The
 * options that make no sense for a stream are refused in one line.
 */
#include <inttypes.h>

#include "../lib/vmproc.h"
#include "snapshot/append.h"
#include "snapshot/bitmap.h"

FIXTURE(append)
{
	struct vm vm;
	char dir[64];
	char file[128];
	char err[OUT_MAX];
};

FIXTURE_SETUP(append)
{
	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened");
	ASSERT_EQ(access(kvmsnap_bin(), X_OK), 0);
	snprintf(self->dir, sizeof(self->dir), "/tmp/kvmsnap-append-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->file, sizeof(self->file), "%s/stream", self->dir);
}

FIXTURE_TEARDOWN(append)
{
	/* Exit status 0 after quit: the guest never failed a stamp check. */
	if (self->vm.pid > 0)
		EXPECT_EQ(vm_stop(&self->vm), 0);
	else
		vm_stop(&self->vm);
	rm_tree(self->dir);
}

/* The report's digest of region id, as 16 hex digits, or NULL. */
static const char *report_digest(struct json_object *j, const char *id)
{
	struct json_object *d = get(j, "digests");
	size_t i;

	for (i = 0; i < len_of(d); i++)
		if (!strcmp(str_of(at(d, i), "region") ?: "", id))
			return str_of(at(d, i), "digest");
	return NULL;
}

/*
 * Replay the file: it must decode whole, cover every page of every region,
 * and agree with the report (sizes, counts, digests). live: `ctl digest`
 * of the VM, for a paused one, or NULL.
 */
static void check_replay(struct _fixture_append *self, struct th_result *_r, struct json_object *j,
			 struct json_object *live)
{
	struct snap_append_replay rp;
	struct error err = {0};
	unsigned int i;
	char hex[17];
	int ret = snap_append_replay(self->file, &rp, &err);

	if (ret)
		TH_LOG("replay: %s", err.msg);
	ASSERT_EQ(ret, 0);
	EXPECT_EQ(rp.file_bytes, u64_of(j, "file_bytes"));
	EXPECT_EQ(rp.end.data_pages, u64_of(j, "pages"));
	EXPECT_EQ(rp.end.zero_pages, u64_of(j, "zero_pages"));
	EXPECT_EQ(rp.end.passes, len_of(get(j, "passes")));
	EXPECT_GE(rp.hdr.cfg.nr_regions, 4); /* pc.ram, vga.vram, pc.bios, acpi.tables */
	EXPECT_STREQ(rp.hdr.cfg.regions[0].id, "pc.ram");
	for (i = 0; i < rp.hdr.cfg.nr_regions; i++) {
		const char *id = rp.hdr.cfg.regions[i].id;
		uint64_t pages = rp.hdr.cfg.regions[i].size / 4096;

		EXPECT_EQ(snap_bitmap_count(rp.seen[i], pages), pages);
		snprintf(hex, sizeof(hex), "%016" PRIx64, rp.end.digest[i]);
		EXPECT_STREQ(report_digest(j, id) ?: "", hex);
		if (live)
			EXPECT_STREQ(digest_of(live, id) ?: "", hex);
	}
	snap_append_replay_free(&rp);
}

TEST_F_TIMEOUT(append, live_append_stream_replays_to_every_page, 120)
{
	struct json_object *j;
	struct stat st;
	int status;

	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=16M,rate=20"), 0);
	ASSERT_TRUE(wait_guest_running(self->vm.sock));
	j = CLI_JSON(&status, self->err, "snapshot", self->file, "--control", self->vm.sock,
		     "--append", "--json");
	if (status)
		TH_LOG("snapshot --append: status %d: %s", status, self->err);
	ASSERT_EQ(status, 0);
	EXPECT_EQ(ok_of(j), 1);
	EXPECT_STREQ(str_of(j, "format") ?: "", "append");
	TH_LOG("%" PRIu64 " bytes, %" PRIu64 " pages, %" PRIu64 " zero, %zu passes, direct %d",
	       u64_of(j, "file_bytes"), u64_of(j, "pages"), u64_of(j, "zero_pages"),
	       len_of(get(j, "passes")), bool_of(j, "direct"));
	ASSERT_EQ(stat(self->file, &st), 0);
	EXPECT_EQ((uint64_t)st.st_size, u64_of(j, "file_bytes"));
	EXPECT_GE((uint64_t)st.st_size, u64_of(j, "pages") * 4096);
	/* Page data plus every header: the whole file. */
	EXPECT_EQ(u64_of(j, "bytes_written"), u64_of(j, "file_bytes"));
	EXPECT_GE(len_of(get(j, "passes")), 2);
	check_replay(self, _r, j, NULL);
	json_object_put(j);
	expect_guest_runs(_r, self->vm.sock);

	/* The file exists now: only --force overwrites it. */
	j = CLI_JSON(&status, self->err, "snapshot", self->file, "--control", self->vm.sock,
		     "--append", "--json");
	EXPECT_EQ(status, 1);
	EXPECT_NOT_NULL(strstr(self->err, "--force"));
	json_object_put(j);
	ASSERT_TRUE(wait_session_gone(self->vm.sock, 5000));
	j = CLI_JSON(&status, self->err, "snapshot", self->file, "--control", self->vm.sock,
		     "--append", "--force", "--json");
	EXPECT_EQ(status, 0);
	check_replay(self, _r, j, NULL);
	json_object_put(j);
}

/* Of a paused VM, the replay is its memory: the digests `ctl digest` computes. */
TEST_F(append, append_stream_of_a_paused_vm_is_its_memory)
{
	struct json_object *j, *live;
	int status;

	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=16M", "--mem", "64M"), 0);
	ASSERT_TRUE(wait_guest_running(self->vm.sock));
	ASSERT_TRUE(call_ok(self->vm.sock, "{\"cmd\":\"pause\"}"));
	j = CLI_JSON(&status, self->err, "snapshot", self->file, "--control", self->vm.sock,
		     "--append", "--json");
	if (status)
		TH_LOG("snapshot --append: status %d: %s", status, self->err);
	ASSERT_EQ(status, 0);
	live = call(self->vm.sock, "{\"cmd\":\"digest\"}");
	ASSERT_EQ(ok_of(live), 1);
	check_replay(self, _r, j, live);
	json_object_put(live);
	json_object_put(j);
	ASSERT_TRUE(call_ok(self->vm.sock, "{\"cmd\":\"resume\"}"));
}

TEST(options_that_make_no_sense_are_refused)
{
	static const char *const bad[][2] = {
	    {"--incremental", NULL}, {"--slot", "1"},	     {"--slots", "2"},
	    {"--every", "5"},	     {"--via-stream", NULL}, {"--order", "size"},
	};
	char out[OUT_MAX], err[OUT_MAX];
	unsigned int i;

	ASSERT_EQ(access(kvmsnap_bin(), X_OK), 0);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		int status =
		    RUN_CLI(out, err, "snapshot", "/tmp/kvmsnap-append-never", "--control",
			    "/tmp/kvmsnap-append-no-socket", "--append", bad[i][0], bad[i][1]);

		EXPECT_EQ(status, 2);
		EXPECT_EQ(count_lines(err), 1);
		EXPECT_NOT_NULL(strstr(err, "--append writes a stream"));
		EXPECT_FALSE(exists("/tmp/kvmsnap-append-never"));
	}
}

TEST_HARNESS_MAIN
