// SPDX-License-Identifier: GPL-2.0
/*
 * Live snapshots of a real VM into NBD exports served by nbdkit (started on
 * a Unix socket by each test, always killed in the teardown), driving the
 * binary as a user would:
 *  - a good snapshot, `image verify --deep`, `info`, `size --from-image`, `screen`,
 *    and an eager restore with the snapshot's digests; lazy restore and
 *    --append refuse NBD with one line; two slots and an incremental one;
 *  - faults at exact moments, from a server of shell scripts (tests/lib/
 *    nbdkit.h): EIO and ENOSPC for writes into the second half of pc.ram
 *    (mid pass 1), a stall there past the request deadline, the server
 *    killed there, the server killed at the flush
 *    after the last data (before the `complete` header); and a slow server
 *    (delay filter). After a fault the guest runs on as if nothing had been
 *    tried, `kvmsnap snapshot` exits 1 with one line naming the cause, and
 *    the image, read again through a new server over the same file, is
 *    refused by `image verify` and by `restore`;
 *  - short, read-only, flushless and unreachable exports: one line, before
 *    anything is written, and the guest runs on.
 */
#include "../lib/nbdkit.h"
#include "../lib/vmproc.h"

#define MEM	"128M"
#define GUEST	"dirtier:ws=64M,rate=5000"
#define EXPORT	(256ULL << 20)
#define EXPORTS "256M"

FIXTURE(nbdvm)
{
	struct vm vm, vm2;
	struct nbdkit k;
	char out[OUT_MAX];
	char err[OUT_MAX];
};

FIXTURE_SETUP(nbdvm)
{
	const char *why = "";

	TEST_REQUIRE(nbdkit_available(&why), "%s", why);
	ASSERT_EQ(access(kvmsnap_bin(), X_OK), 0);
	ASSERT_EQ(nbdkit_init(&self->k), 0);
}

FIXTURE_TEARDOWN(nbdvm)
{
	/* Exit status 0 after quit: the guest never failed a stamp check. */
	if (self->vm.pid > 0)
		EXPECT_EQ(vm_stop(&self->vm), 0);
	if (self->vm2.pid > 0)
		vm_stop(&self->vm2);
	nbdkit_cleanup(&self->k);
}

#define CLI(...) RUN_CLI(self->out, self->err, __VA_ARGS__)
#define LINE1(s) (int)strcspn((s), "\n"), (s)

static void expect_one_error_line(struct th_result *_r, const char *err)
{
	EXPECT_EQ(count_lines(err), 1);
	EXPECT_EQ(strncmp(err, "kvmsnap: error: ", 16), 0);
}

static void start_vm(struct _fixture_nbdvm *self, struct th_result *_r)
{
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", GUEST, "--mem", MEM), 0);
	ASSERT_TRUE(wait_guest_running(self->vm.sock));
}

/* pc.ram's data area in an image for MEM: [*from, *to). */
static void pc_ram_data(struct th_result *_r, uint64_t *from, uint64_t *to)
{
	static const char *const prefix[] = {"image", "size", "--json", NULL};
	static const char *const args[] = {"--mem", MEM, NULL};
	static char err[OUT_MAX];
	struct json_object *l = cli_json_ok(prefix, args, err), *s;

	ASSERT_NOT_NULL(l);
	s = at(get(l, "sections"), 0);
	EXPECT_STREQ(str_of(s, "region"), "pc.ram");
	*from = u64_of(s, "data_offset");
	*to = *from + (128ULL << 20);
	json_object_put(l);
}

/* The image on the server's file, read through a new server: refused as interrupted. */
static void expect_interrupted(struct _fixture_nbdvm *self, struct th_result *_r)
{
	char disk[160], sock[200];

	nbdkit_kill(&self->k);
	ASSERT_EQ(NBDKIT_START(&self->k, "file", nbdkit_file(&self->k, "disk", disk, sizeof(disk))),
		  0);
	EXPECT_EQ(CLI("image", "verify", self->k.uri), 1);
	expect_one_error_line(_r, self->err);
	EXPECT_NOT_NULL(strstr(self->err, "is 'writing'"));
	TH_LOG("verify: %.*s", LINE1(self->err));
	snprintf(sock, sizeof(sock), "%s/restored.sock", self->k.dir);
	EXPECT_EQ(CLI("restore", self->k.uri, "--paused", "--control", sock, "--serial", "none"),
		  2);
	expect_one_error_line(_r, self->err);
	EXPECT_NOT_NULL(strstr(self->err, "interrupted"));
	TH_LOG("restore: %.*s", LINE1(self->err));
}

TEST_F_TIMEOUT(nbdvm, snapshot_and_eager_restore_through_nbd, 120)
{
	struct json_object *snap, *r;
	const char *want;
	char uri[200];
	int status;

	ASSERT_EQ(NBDKIT_START(&self->k, "memory", EXPORTS), 0);
	start_vm(self, _r);
	snap = CLI_JSON(&status, self->err, "snapshot", self->k.uri, "--control", self->vm.sock,
			"--json");
	ASSERT_EQ(status, 0);
	ASSERT_NOT_NULL(snap);
	EXPECT_STREQ(str_of(snap, "io_engine"), "libnbd");
	EXPECT_EQ(u64_of(snap, "generation"), 1);
	json_object_put(snap);
	/* The export now holds the image: the next snapshot goes over it, not a new one. */
	snap = CLI_JSON(&status, self->err, "snapshot", self->k.uri, "--control", self->vm.sock,
			"--json");
	ASSERT_EQ(status, 0);
	ASSERT_NOT_NULL(snap);
	EXPECT_EQ(u64_of(snap, "generation"), 2);
	EXPECT_EQ(CLI("image", "verify", "--deep", self->k.uri), 0);
	EXPECT_NOT_NULL(strstr(self->out, "digests match"));
	EXPECT_EQ(CLI("image", "info", self->k.uri), 0);
	EXPECT_NOT_NULL(strstr(self->out, "NBD export"));
	EXPECT_EQ(CLI("image", "size", "--from-image", self->k.uri), 0);
	EXPECT_EQ(CLI("image", "screen", self->k.uri), 0);
	EXPECT_NOT_NULL(strstr(self->out, "dirtier"));
	expect_guest_runs(_r, self->vm.sock);
	EXPECT_EQ(vm_stop(&self->vm), 0);

	/* Lazy restore maps the image: not an export. Nor is an append stream's growing file. */
	EXPECT_EQ(CLI("restore", self->k.uri, "--lazy", "--paused", "--control",
		      "/tmp/nowhere.sock", "--serial", "none"),
		  2);
	expect_one_error_line(_r, self->err);
	EXPECT_NOT_NULL(strstr(self->err, "cannot be mapped"));
	EXPECT_EQ(CLI("snapshot", self->k.uri, "--control", "/nonexistent", "--append"), 2);
	expect_one_error_line(_r, self->err);

	snprintf(uri, sizeof(uri), "%s", self->k.uri);
	ASSERT_EQ(VM_SPAWN_CMD(&self->vm2, "restore", uri, "--paused"), 0);
	r = call(self->vm2.sock, "{\"cmd\":\"digest\"}");
	ASSERT_NOT_NULL(r);
	want = str_of(at(get(snap, "digests"), 0), "digest");
	EXPECT_STREQ(str_of(at(get(snap, "digests"), 0), "region"), "pc.ram");
	EXPECT_STREQ(digest_of(r, "pc.ram"), want);
	TH_LOG("pc.ram %s restored from %s", want, uri);
	json_object_put(r);
	json_object_put(snap);
}

/* Checkpoint series over NBD: two slots alternate, the third snapshot is incremental. */
TEST_F_TIMEOUT(nbdvm, two_slots_and_incremental_through_nbd, 120)
{
	struct json_object *snap;
	int status, i;

	ASSERT_EQ(NBDKIT_START(&self->k, "memory", "512M"), 0);
	ASSERT_EQ(CLI("image", "create", self->k.uri, "--mem", MEM, "--slots", "2"), 0);
	start_vm(self, _r);
	for (i = 0; i < 3; i++) {
		snap = CLI_JSON(&status, self->err, "snapshot", self->k.uri, "--control",
				self->vm.sock, "--incremental", "--json");
		ASSERT_EQ(status, 0);
		ASSERT_NOT_NULL(snap);
		TH_LOG("snapshot %d: slot %" PRIu64 ", generation %" PRIu64 ", %s, %" PRIu64
		       " bytes",
		       i + 1, u64_of(snap, "slot"), u64_of(snap, "generation"),
		       str_of(snap, "mode"), u64_of(snap, "bytes_written"));
		EXPECT_EQ(u64_of(snap, "slot"), (uint64_t)(i % 2));
		EXPECT_EQ(u64_of(snap, "generation"), (uint64_t)(i + 1));
		/* Slot 0 again: only what changed since its first snapshot. */
		EXPECT_STREQ(str_of(snap, "mode"), i == 2 ? "incremental" : "full");
		json_object_put(snap);
	}
	EXPECT_EQ(CLI("image", "verify", "--deep", self->k.uri), 0);
	EXPECT_NOT_NULL(strstr(self->out, "digests match"));
	EXPECT_EQ(CLI("image", "verify", "--deep", "--slot", "1", self->k.uri), 0);
	expect_guest_runs(_r, self->vm.sock);
}

/* A fault for writes into the second half of pc.ram's data: mid pass 1. */
static void fault_mid_pass(struct _fixture_nbdvm *self, struct th_result *_r, const char *what,
			   const char *msg)
{
	uint64_t from, to;

	pc_ram_data(_r, &from, &to);
	ASSERT_EQ(nbdkit_start_scripted(&self->k, EXPORT, true), 0);
	ASSERT_EQ(CLI("image", "create", self->k.uri, "--mem", MEM), 0);
	start_vm(self, _r);
	ASSERT_EQ(nbdkit_fail_writes(&self->k, from + (64ULL << 20), to, what), 0);
	EXPECT_EQ(CLI("snapshot", self->k.uri, "--control", self->vm.sock), 1);
	expect_one_error_line(_r, self->err);
	EXPECT_NOT_NULL(strstr(self->err, msg));
	TH_LOG("%.*s", LINE1(self->err));
	expect_guest_runs(_r, self->vm.sock);
	expect_interrupted(self, _r);
}

TEST_F_TIMEOUT(nbdvm, eio_mid_pass, 120)
{
	fault_mid_pass(self, _r, "EIO", "Input/output error");
}

TEST_F_TIMEOUT(nbdvm, enospc_mid_pass, 120)
{
	fault_mid_pass(self, _r, "ENOSPC", "No space left on device");
}

TEST_F_TIMEOUT(nbdvm, server_killed_mid_pass, 120)
{
	fault_mid_pass(self, _r, "KILL", "connection was lost");
}

/* Writes into the second half of pc.ram stall: the request deadline (2 s here) ends it. */
TEST_F_TIMEOUT(nbdvm, stalled_server_times_out, 120)
{
	setenv("KVMSNAP_NBD_TIMEOUT_MS", "2000", 1);
	fault_mid_pass(self, _r, "STALL", "did not answer within 2000 ms");
	unsetenv("KVMSNAP_NBD_TIMEOUT_MS");
}

/*
 * Flushes after `image create`: the `writing` header (FUA, emulated with a
 * flush), then the one after the last data, state and footer, which kills
 * the server: the `complete` header is never sent.
 */
TEST_F_TIMEOUT(nbdvm, server_killed_before_the_complete_header, 120)
{
	unsigned int n;

	ASSERT_EQ(nbdkit_start_scripted(&self->k, EXPORT, true), 0);
	ASSERT_EQ(CLI("image", "create", self->k.uri, "--mem", MEM), 0);
	start_vm(self, _r);
	n = nbdkit_flushes(&self->k);
	ASSERT_EQ(nbdkit_kill_at_flush(&self->k, n + 2), 0);
	EXPECT_EQ(CLI("snapshot", self->k.uri, "--control", self->vm.sock), 1);
	expect_one_error_line(_r, self->err);
	EXPECT_NOT_NULL(strstr(self->err, "connection was lost"));
	TH_LOG("%.*s", LINE1(self->err));
	EXPECT_EQ(nbdkit_flushes(&self->k), n + 2);
	expect_guest_runs(_r, self->vm.sock);
	expect_interrupted(self, _r);
}

/* Every write 20 ms late: the snapshot converges or stops at its pass limit, and says so. */
TEST_F_TIMEOUT(nbdvm, slow_server_converges_or_stops_at_its_limits, 180)
{
	struct json_object *snap, *passes;
	double final_ms, downtime_ms;
	int status;

	ASSERT_EQ(NBDKIT_START(&self->k, "--filter=delay", "memory", EXPORTS, "delay-write=20ms"),
		  0);
	start_vm(self, _r);
	snap = CLI_JSON(&status, self->err, "snapshot", self->k.uri, "--control", self->vm.sock,
			"--json", "--max-passes", "6");
	ASSERT_EQ(status, 0);
	ASSERT_NOT_NULL(snap);
	passes = get(snap, "passes");
	ASSERT_GT(len_of(passes), 0);
	final_ms = json_object_get_double(get(at(passes, len_of(passes) - 1), "duration_ms"));
	downtime_ms = json_object_get_double(get(snap, "downtime_ms"));
	TH_LOG("%zu passes, %s (%s), downtime %.2f ms, final pass %.2f ms", len_of(passes),
	       bool_of(snap, "converged") ? "converged" : "did not converge",
	       str_of(snap, "stop_reason"), downtime_ms, final_ms);
	EXPECT_TRUE(bool_of(snap, "converged") || strstr(str_of(snap, "stop_reason"), "limit"));
	EXPECT_LE(len_of(passes), 7);
	/* The downtime reported covers the final pass, written while the guest was paused. */
	EXPECT_GE(downtime_ms, final_ms);
	json_object_put(snap);
	EXPECT_EQ(CLI("image", "verify", "--deep", self->k.uri), 0);
	expect_guest_runs(_r, self->vm.sock);
}

/* ---- refused before anything is written ---- */

/* The export's first 64 KiB are zeros still (nbdcopy reads them). */
static void expect_untouched(struct _fixture_nbdvm *self, struct th_result *_r)
{
	char cmd[320];

	if (!have_tool("nbdcopy"))
		return;
	snprintf(cmd, sizeof(cmd),
		 "nbdcopy '%s' - | head -c 65536 | tr -d '\\000' | wc -c | grep -qx 0",
		 self->k.uri);
	EXPECT_EQ(system(cmd), 0);
}

static void expect_refused(struct _fixture_nbdvm *self, struct th_result *_r, const char *msg)
{
	start_vm(self, _r);
	EXPECT_EQ(CLI("snapshot", self->k.uri, "--control", self->vm.sock), 1);
	expect_one_error_line(_r, self->err);
	EXPECT_NOT_NULL(strstr(self->err, msg));
	TH_LOG("%.*s", LINE1(self->err));
	EXPECT_STREQ(self->out, "");
	expect_guest_runs(_r, self->vm.sock);
}

TEST_F_TIMEOUT(nbdvm, short_export_refused, 120)
{
	ASSERT_EQ(NBDKIT_START(&self->k, "memory", "64M"), 0);
	expect_refused(self, _r, "64 MiB");
	EXPECT_NOT_NULL(strstr(self->err, "NBD export is smaller than the"));
	expect_untouched(self, _r);
}

TEST_F_TIMEOUT(nbdvm, read_only_export_refused, 120)
{
	ASSERT_EQ(NBDKIT_START(&self->k, "-r", "memory", EXPORTS), 0);
	expect_refused(self, _r, "read-only");
	expect_untouched(self, _r);
}

TEST_F_TIMEOUT(nbdvm, server_without_flush_refused, 120)
{
	ASSERT_EQ(nbdkit_start_scripted(&self->k, EXPORT, false), 0);
	expect_refused(self, _r, "does not support flush");
	expect_untouched(self, _r);
}

TEST_F_TIMEOUT(nbdvm, refused_connection, 120)
{
	/* Nothing listens on the socket: the server is never started. */
	expect_refused(self, _r, "cannot connect");
	EXPECT_EQ(CLI("image", "create", self->k.uri, "--mem", MEM), 1);
	expect_one_error_line(_r, self->err);
}

TEST_HARNESS_MAIN
