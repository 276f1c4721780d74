// SPDX-License-Identifier: GPL-2.0
/*
 * Checkpoint series on a real VM, driving the kvmsnap binary: incremental
 * snapshots, two slots, `--every`, and restores from each slot.
 *
 *  - full, then incremental into the same slot of a paused VM: the footer
 *    digests equal `ctl digest` and `verify --deep` passes (one and two slots);
 *  - another VM wrote the image in between: the next --incremental is full,
 *    says why, and is exact;
 *  - `snapshot --slot 1` SIGKILLed at random moments: slot 0 keeps its
 *    generation and digests, restores exactly, and both VMs go on;
 *  - `snapshot --every 1` and `run --checkpoint --every 1` for a few cycles,
 *    and a series that goes on after a failed checkpoint;
 *  - two slots on a block device, restored from it;
 *  - restore from each slot, eager and lazy; a restored VM's first
 *    snapshot back into its slot is incremental and exact.
 *
 * No speed is assumed: the tests wait for the guest's progress counters and
 * for the checkpoints' own output, with generous deadlines.
 */
#include <inttypes.h>
#include <signal.h>
#include <sys/wait.h>

#include "../lib/elf-build.h"
#include "../lib/vmproc.h"

#define MEM	    "128M"
#define GUEST	    "dirtier:ws=16M,rate=50"
#define KILL_ROUNDS 8

static const char *const region_ids[] = {"pc.ram", "vga.vram", "pc.bios", "acpi.tables"};

struct digests {
	char d[4][17];
};

FIXTURE(cp)
{
	struct vm vm, vm2; /* the VM, and a second one (another VM, a restored one) */
	char dir[64];
	char img[128];
	char loop[64]; /* a loop device, detached in the teardown */
	char out[OUT_MAX], err[OUT_MAX];
};

FIXTURE_SETUP(cp)
{
	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened read-write: no KVM here");
	ASSERT_EQ(access(kvmsnap_bin(), X_OK), 0);
	snprintf(self->dir, sizeof(self->dir), "/tmp/kvmsnap-cp-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->img, sizeof(self->img), "%s/img", self->dir);
}

FIXTURE_TEARDOWN(cp)
{
	vm_stop(&self->vm2);
	vm_stop(&self->vm);
	if (self->loop[0])
		loop_detach(self->loop);
	if (self->dir[0])
		rm_tree(self->dir);
}

#define CLI(...) RUN_CLI(self->out, self->err, __VA_ARGS__)
#define LINE1(s) (int)strcspn((s), "\n"), (s)

/* A snapshot's JSON report (to put), or NULL with its error logged. */
static struct json_object *snap_json(struct _fixture_cp *self, const char *const *args)
{
	const char *const prefix[] = {"snapshot", self->img, "--json", NULL};

	return cli_json_ok(prefix, args, self->err);
}

#define SNAP(...) snap_json(self, (const char *const[]){__VA_ARGS__, NULL})

/* `image info IMG --json [--slot N]` (slot < 0: the default one), parsed. */
static struct json_object *info(struct _fixture_cp *self, int slot)
{
	char s[8];

	snprintf(s, sizeof(s), "%d", slot);
	if (slot < 0 ? CLI("image", "info", self->img, "--json")
		     : CLI("image", "info", self->img, "--json", "--slot", s))
		return NULL;
	return json_tokener_parse(self->out);
}

/* The footer digests of a slot (slot < 0: the default one). */
static bool footer_digests(struct _fixture_cp *self, int slot, struct digests *out)
{
	struct json_object *inf = info(self, slot), *d = get(get(inf, "footer"), "digests");
	size_t i, k, found = 0;

	for (k = 0; k < ARRAY_SIZE(region_ids); k++)
		for (i = 0; i < len_of(d); i++)
			if (!strcmp(str_of(at(d, i), "id") ?: "", region_ids[k])) {
				snprintf(out->d[k], 17, "%s", str_of(at(d, i), "digest") ?: "");
				found++;
			}
	json_object_put(inf);
	return found == ARRAY_SIZE(region_ids);
}

/* The digests of the paused VM behind sock (`ctl digest`). */
static bool live_digests(const char *sock, struct digests *out)
{
	struct json_object *r = call(sock, "{\"cmd\":\"digest\"}");
	size_t k, found = 0;
	bool paused = bool_of(r, "paused") == 1;

	for (k = 0; k < ARRAY_SIZE(region_ids); k++) {
		const char *d = digest_of(r, region_ids[k]);

		if (d) {
			snprintf(out->d[k], 17, "%s", d);
			found++;
		}
	}
	json_object_put(r);
	return paused && found == ARRAY_SIZE(region_ids);
}

static void expect_same(struct th_result *_r, const struct digests *a, const struct digests *b)
{
	size_t k;

	for (k = 0; k < ARRAY_SIZE(region_ids); k++) {
		if (strcmp(a->d[k], b->d[k]))
			TH_LOG("%s: %s vs %s", region_ids[k], a->d[k], b->d[k]);
		EXPECT_STREQ(a->d[k], b->d[k]);
	}
}

/* The paused VM behind sock holds what the footer of the slot says, and the slot verifies. */
static void expect_slot_is_vm(struct th_result *_r, struct _fixture_cp *self, int slot,
			      const char *sock)
{
	struct digests foot, live;
	char s[8];

	snprintf(s, sizeof(s), "%d", slot);
	ASSERT_TRUE(footer_digests(self, slot, &foot));
	ASSERT_TRUE(live_digests(sock, &live));
	expect_same(_r, &foot, &live);
	EXPECT_EQ(CLI("image", "verify", "--deep", self->img, "--slot", s), 0);
	EXPECT_NOT_NULL(strstr(self->out, "digests match"));
}

static void pause_vm(struct th_result *_r, const char *sock)
{
	ASSERT_TRUE(call_ok(sock, "{\"cmd\":\"pause\"}"));
}

static void resume_vm(struct th_result *_r, const char *sock)
{
	ASSERT_TRUE(call_ok(sock, "{\"cmd\":\"resume\"}"));
}

/* Let the guest write some more pages than it has so far. */
static void let_it_run(struct th_result *_r, const char *sock)
{
	uint64_t p = guest_pages(sock);

	ASSERT_GT(wait_pages_above(sock, p, progress_timeout_ms), p);
}

static void expect_mode(struct th_result *_r, struct json_object *rep, unsigned int slot,
			const char *mode)
{
	ASSERT_NOT_NULL(rep);
	EXPECT_EQ(u64_of(rep, "slot"), slot);
	EXPECT_STREQ(str_of(rep, "mode"), mode);
	if (strcmp(str_of(rep, "mode") ?: "", "full") == 0)
		TH_LOG("slot %u generation %" PRIu64 ": full: %s", slot, u64_of(rep, "generation"),
		       str_of(rep, "full_reason") ?: "(no reason)");
}

/* ---- full, then incremental ---- */

/*
 * A full snapshot of the running VM into each slot, then, paused, an
 * incremental one into slot 0: it writes less than the full one, and the
 * slot's footer equals the paused VM's digests, so every page changed
 * since slot 0's completion was written and the digest tables were
 * updated exactly. For a one-slot image, then a two-slot one.
 */
TEST_F_TIMEOUT(cp, full_then_incremental_is_exact, 240)
{
	const char *sock = self->vm.sock;
	struct json_object *full, *inc;
	unsigned int s, slots;

	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", GUEST, "--mem", MEM), 0);
	ASSERT_TRUE(wait_guest_running(sock));
	for (slots = 1; slots <= 2; slots++) {
		ASSERT_EQ(CLI("image", "create", self->img, "--mem", MEM, "--slots",
			      slots == 1 ? "1" : "2", "--force"),
			  0);
		/* A new image (a new uuid): full, whatever the VM tracked before. */
		full = SNAP("--control", sock, "--incremental");
		expect_mode(_r, full, 0, "full");
		for (s = 1; s < slots; s++) {
			inc = SNAP("--control", sock, "--incremental");
			expect_mode(_r, inc, s, "full");
			json_object_put(inc);
		}
		let_it_run(_r, sock);
		pause_vm(_r, sock);
		inc = SNAP("--control", sock, "--incremental", "--slot", "0");
		expect_mode(_r, inc, 0, "incremental");
		EXPECT_EQ(u64_of(inc, "generation"), slots + 1);
		EXPECT_LT(u64_of(inc, "bytes_written"), u64_of(full, "bytes_written"));
		TH_LOG("%u slot(s): full %" PRIu64 " bytes, incremental %" PRIu64, slots,
		       u64_of(full, "bytes_written"), u64_of(inc, "bytes_written"));
		expect_slot_is_vm(_r, self, 0, sock);
		json_object_put(inc);
		/* Again, paused: nothing changed since, and it stays exact. */
		inc = SNAP("--control", sock, "--incremental", "--slot", "0");
		expect_mode(_r, inc, 0, "incremental");
		expect_slot_is_vm(_r, self, 0, sock);
		json_object_put(inc);
		json_object_put(full);
		resume_vm(_r, sock);
		expect_guest_runs(_r, sock);
	}
}

/* ---- a fallback to full ---- */

/*
 * VM A snapshots into the image, then VM B (same configuration) does: the
 * image's generation moved on without A. A's --incremental must then be
 * full and say why; paused, it is exact (an incremental one would have left
 * B's pages). Recreating the image (a new uuid) does the same.
 */
TEST_F_TIMEOUT(cp, incremental_falls_back_to_full, 180)
{
	const char *a = self->vm.sock, *b = self->vm2.sock;
	struct json_object *rep;

	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", GUEST, "--mem", MEM), 0);
	ASSERT_EQ(VM_SPAWN(&self->vm2, "--guest", "dirtier:ws=8M,rate=50", "--mem", MEM), 0);
	ASSERT_TRUE(wait_guest_running(a));
	ASSERT_TRUE(wait_guest_running(b));

	rep = SNAP("--control", a, "--incremental");
	expect_mode(_r, rep, 0, "full");
	json_object_put(rep);
	rep = SNAP("--control", b, "--incremental");
	expect_mode(_r, rep, 0, "full");
	EXPECT_EQ(u64_of(rep, "generation"), 2);
	json_object_put(rep);

	pause_vm(_r, a);
	rep = SNAP("--control", a, "--incremental");
	expect_mode(_r, rep, 0, "full");
	EXPECT_NOT_NULL(str_of(rep, "full_reason"));
	expect_slot_is_vm(_r, self, 0, a);
	json_object_put(rep);
	/* Now tracked: incremental again. */
	rep = SNAP("--control", a, "--incremental");
	expect_mode(_r, rep, 0, "incremental");
	json_object_put(rep);

	/* A new image at the same path: another uuid. */
	ASSERT_EQ(CLI("image", "create", self->img, "--mem", MEM, "--force"), 0);
	rep = SNAP("--control", a, "--incremental");
	expect_mode(_r, rep, 0, "full");
	expect_slot_is_vm(_r, self, 0, a);
	json_object_put(rep);
	resume_vm(_r, a);
	expect_guest_runs(_r, a);
	expect_guest_runs(_r, b);
}

/* ---- the manager killed while it writes the other slot ---- */

/*
 * Slot 0 holds the paused VM's memory (its digests are recorded); the VM
 * runs on, and `snapshot --slot 1 --incremental` is SIGKILLed after a
 * random delay within the time one such snapshot takes here, KILL_ROUNDS
 * times at least. After each: the VM runs, slot 0 still has
 * generation 1 and the recorded digests, and verifies deep. Finally slot 0
 * restores into a new VM whose memory is the recorded one, and that VM goes
 * on. KVMSNAP_TEST_SEED sets the delays.
 */
TEST_F_TIMEOUT(cp, killed_in_the_second_slot_keeps_the_first, 300)
{
	const char *sock = self->vm.sock, *sock2 = self->vm2.sock;
	const char *snap[] = {
	    "snapshot",	     self->img,	    "--control", sock,		 "--slot", "1",
	    "--incremental", "--threshold", "4K",	 "--max-passes", "8",	   NULL};
	const char *seed_env = getenv("KVMSNAP_TEST_SEED");
	uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : 0x636b7074ULL;
	unsigned int round, killed = 0, span;
	struct digests want, got;
	uint64_t t0;
	char out_path[96], err_path[96];
	struct json_object *rep;

	if (!seed)
		seed = 1;
	TH_LOG("seed %#" PRIx64 " (KVMSNAP_TEST_SEED)", seed);
	snprintf(out_path, sizeof(out_path), "%s/snap.out", self->dir);
	snprintf(err_path, sizeof(err_path), "%s/snap.err", self->dir);
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=64M,rate=5000", "--mem", "256M"), 0);
	ASSERT_TRUE(wait_guest_running(sock));
	ASSERT_EQ(CLI("image", "create", self->img, "--mem", "256M", "--slots", "2"), 0);

	pause_vm(_r, sock);
	rep = SNAP("--control", sock, "--slot", "0");
	expect_mode(_r, rep, 0, "full");
	json_object_put(rep);
	ASSERT_TRUE(live_digests(sock, &want));
	resume_vm(_r, sock);

	/* One attempt to its end gives the range of the delays: this host's duration. */
	t0 = ms_now();
	ASSERT_EQ(run_cli(snap, self->out, self->err), 0);
	span = (unsigned int)(ms_now() - t0);
	TH_LOG("a snapshot of slot 1 takes %u ms here; kills land in 5..%u ms", span, span + 5);
	/*
	 * A round that finishes before its kill shows a shorter snapshot: later
	 * delays stay under half its delay, and rounds go on (up to three times as
	 * many) until a kill has landed, whatever this host's speed.
	 */
	for (round = 0; round < KILL_ROUNDS || (!killed && round < 3 * KILL_ROUNDS); round++) {
		unsigned int delay = 5 + (unsigned int)(xorshift64(&seed) % (span + 1));
		struct json_object *inf;
		int status;
		pid_t pid;

		pid = spawn_cli(snap, out_path, err_path);
		ASSERT_GT(pid, 0);
		sleep_ms(delay);
		kill(pid, SIGKILL);
		status = wait_exit(pid, 30000);
		killed += status == -2;
		if (status != -2) {
			EXPECT_EQ(status, 0);
			if (delay / 2 < span) /* it took less than delay */
				span = delay / 2;
		}
		expect_guest_runs(_r, sock);

		inf = info(self, 0);
		ASSERT_NOT_NULL(inf);
		EXPECT_STREQ(str_of(inf, "state"), "complete");
		EXPECT_EQ(u64_of(inf, "generation"), 1);
		TH_LOG("round %u: %s after %u ms; slot 1 %s", round,
		       status == -2 ? "killed" : "finished", delay,
		       str_of(at(get(inf, "slots"), 1), "state") ?: "?");
		json_object_put(inf);
		ASSERT_TRUE(footer_digests(self, 0, &got));
		expect_same(_r, &want, &got);
		EXPECT_EQ(CLI("image", "verify", "--deep", self->img, "--slot", "0"), 0);
	}
	TH_LOG("%u rounds, %u killed", round, killed);
	EXPECT_GT(killed, 0);

	/*
	 * Killed attempts kept every dirty bit: paused, slot 1 (incremental if
	 * the VM still tracks it, else full) holds exactly the VM's memory.
	 */
	pause_vm(_r, sock);
	rep = SNAP("--control", sock, "--slot", "1", "--incremental");
	ASSERT_NOT_NULL(rep);
	TH_LOG("slot 1 after the kills: %s%s%s", str_of(rep, "mode") ?: "?",
	       str_of(rep, "full_reason") ? ": " : "", str_of(rep, "full_reason") ?: "");
	json_object_put(rep);
	expect_slot_is_vm(_r, self, 1, sock);
	resume_vm(_r, sock);

	/* Slot 0 restores exactly, and the restored VM goes on. */
	ASSERT_EQ(VM_SPAWN_CMD(&self->vm2, "restore", self->img, "--slot", "0", "--paused"), 0);
	ASSERT_TRUE(live_digests(sock2, &got));
	expect_same(_r, &want, &got);
	resume_vm(_r, sock2);
	expect_guest_runs(_r, sock2);
	expect_guest_runs(_r, sock);
}

/* ---- continuous checkpointing ---- */

static unsigned int count_char(const char *s, char c)
{
	unsigned int n = 0;

	for (; *s; s++)
		n += *s == c;
	return n;
}

/* Wait until the file at path has at least n lines; false at the deadline. */
static bool wait_lines(const char *path, unsigned int n, unsigned int ms, char *buf)
{
	uint64_t deadline = ms_now() + ms;

	do {
		slurp(path, buf);
		if (count_char(buf, '\n') >= n)
			return true;
		sleep_ms(50);
	} while (ms_now() < deadline);
	return false;
}

#define CYCLES 4

static const char *self_sock; /* the VM of the running test (one test per process) */

/*
 * `snapshot --every 1 --incremental --json` until SIGINT: one record per
 * checkpoint, alternating slots, generations one apart, the first into each
 * slot full and the rest incremental; both slots verify deep afterwards.
 */
TEST_F_TIMEOUT(cp, every_second_for_a_few_cycles, 180)
{
	const char *sock = self->vm.sock;
	const char *args[] = {"snapshot", self->img, "--control", sock, "--incremental",
			      "--every",  "1",	     "--json",	  NULL};
	char out_path[96], err_path[96];
	unsigned int i;
	int status;
	pid_t pid;
	char *line;

	snprintf(out_path, sizeof(out_path), "%s/every.out", self->dir);
	snprintf(err_path, sizeof(err_path), "%s/every.err", self->dir);
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", GUEST, "--mem", MEM), 0);
	ASSERT_TRUE(wait_guest_running(sock));
	ASSERT_EQ(CLI("image", "create", self->img, "--mem", MEM, "--slots", "2"), 0);

	pid = spawn_cli(args, out_path, err_path);
	ASSERT_GT(pid, 0);
	EXPECT_TRUE(wait_lines(out_path, CYCLES, 120000, self->out));
	kill(pid, SIGINT);
	status = wait_exit(pid, 60000);
	slurp(err_path, self->err);
	if (status)
		TH_LOG("--every: status %d: %.*s", status, LINE1(self->err));
	EXPECT_EQ(status, 0);
	slurp(out_path, self->out);

	line = self->out;
	for (i = 0; i < CYCLES && *line; i++) {
		char *nl = strchr(line, '\n');
		struct json_object *rec;

		ASSERT_NOT_NULL(nl);
		*nl = '\0';
		rec = json_tokener_parse(line);
		ASSERT_NOT_NULL(rec);
		EXPECT_EQ(bool_of(rec, "ok"), 1);
		EXPECT_EQ(u64_of(rec, "checkpoint"), i + 1);
		EXPECT_EQ(u64_of(rec, "slot"), i % 2);
		EXPECT_EQ(u64_of(rec, "generation"), i + 1);
		EXPECT_STREQ(str_of(rec, "mode"), i < 2 ? "full" : "incremental");
		EXPECT_GE(u64_of(rec, "bytes_written"), u64_of(rec, "pages") * 4096);
		EXPECT_NOT_NULL(get(rec, "downtime_ms"));
		EXPECT_NOT_NULL(get(rec, "total_ms"));
		TH_LOG("%s", line);
		json_object_put(rec);
		line = nl + 1;
	}
	EXPECT_EQ(i, CYCLES);
	EXPECT_EQ(CLI("image", "verify", "--deep", self->img, "--slot", "0"), 0);
	EXPECT_EQ(CLI("image", "verify", "--deep", self->img, "--slot", "1"), 0);
	expect_guest_runs(_r, sock);
}

/* A control connection of its own that holds a snapshot session: other snapshots fail. */
static int hold_session(void)
{
	uint64_t deadline = ms_now() + 30000;

	do {
		int fd = ctl_open(self_sock);
		struct json_object *r =
		    fd >= 0 ? call_fd(fd, "{\"cmd\":\"snapshot-begin\"}") : NULL;
		bool ok = ok_of(r) == 1;

		json_object_put(r);
		if (ok)
			return fd;
		if (fd >= 0)
			close(fd);
		/* A checkpoint holds the session now: again after it. */
		sleep_ms(20);
	} while (ms_now() < deadline);
	return -1;
}

/*
 * A checkpoint that fails (another client holds the VM's snapshot session)
 * is reported as a failed record, and the series goes on: once the session
 * is released, the next checkpoints succeed, and the series exits 0.
 */
TEST_F_TIMEOUT(cp, every_goes_on_after_a_failed_checkpoint, 180)
{
	const char *sock = self->vm.sock;
	const char *args[] = {"snapshot", self->img, "--control", sock, "--incremental",
			      "--every",  "1",	     "--json",	  NULL};
	char out_path[96], err_path[96], *failed, *after;
	int status, fd;
	pid_t pid;

	snprintf(out_path, sizeof(out_path), "%s/every.out", self->dir);
	snprintf(err_path, sizeof(err_path), "%s/every.err", self->dir);
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", GUEST, "--mem", MEM), 0);
	ASSERT_TRUE(wait_guest_running(sock));
	ASSERT_EQ(CLI("image", "create", self->img, "--mem", MEM, "--slots", "2"), 0);
	self_sock = sock;

	pid = spawn_cli(args, out_path, err_path);
	ASSERT_GT(pid, 0);
	EXPECT_TRUE(wait_lines(out_path, 2, 120000, self->out));
	fd = hold_session();
	ASSERT_GE(fd, 0);
	/* The next checkpoint fails... */
	failed = NULL;
	for (uint64_t deadline = ms_now() + 60000; !failed && ms_now() < deadline; sleep_ms(50)) {
		slurp(out_path, self->out);
		failed = strstr(self->out, "\"ok\":false");
	}
	close(fd);
	ASSERT_NOT_NULL(failed);
	while (failed > self->out && failed[-1] != '\n')
		failed--;
	TH_LOG("%.*s", (int)strcspn(failed, "\n"), failed);
	EXPECT_NOT_NULL(strstr(failed, "in progress"));
	/* ...and one after it succeeds. */
	after = NULL;
	for (uint64_t deadline = ms_now() + 60000; !after && ms_now() < deadline; sleep_ms(50)) {
		size_t off = (size_t)(failed - self->out);

		slurp(out_path, self->out);
		after = strstr(self->out + off, "\"ok\":true");
	}
	ASSERT_NOT_NULL(after);
	kill(pid, SIGINT);
	status = wait_exit(pid, 60000);
	EXPECT_EQ(status, 0);
	EXPECT_EQ(CLI("image", "verify", "--deep", self->img, "--slot", "0"), 0);
	EXPECT_EQ(CLI("image", "verify", "--deep", self->img, "--slot", "1"), 0);
	expect_guest_runs(_r, sock);
}

/*
 * `run --checkpoint IMG --every 1`: the VM prints a line per checkpoint; once
 * it has quit, both slots of the image verify deep.
 */
TEST_F_TIMEOUT(cp, run_checkpoint_option, 180)
{
	const char *sock = self->vm.sock;
	char *line;

	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", GUEST, "--mem", MEM, "--checkpoint", self->img,
			   "--every", "1"),
		  0);
	ASSERT_TRUE(wait_guest_running(sock));
	EXPECT_TRUE(wait_lines(self->vm.out, 3, 120000, self->out));
	for (line = strtok(self->out, "\n"); line; line = strtok(NULL, "\n"))
		TH_LOG("%s", line);
	slurp(self->vm.out, self->out);
	EXPECT_NOT_NULL(strstr(self->out, "checkpoint 1: slot 0, generation 1, full"));
	EXPECT_NOT_NULL(strstr(self->out, "checkpoint 3: slot 0, generation 3, incremental"));
	EXPECT_EQ(vm_stop(&self->vm), 0);
	EXPECT_EQ(CLI("image", "verify", "--deep", self->img, "--slot", "0"), 0);
	/* Slot 1 is complete, or 'writing' if the quit cut its checkpoint short. */
	if (CLI("image", "verify", "--deep", self->img, "--slot", "1"))
		EXPECT_NOT_NULL(strstr(self->err, "'writing'"));
}

/* ---- restore from each slot ---- */

/*
 * Two paused snapshots at different moments, one per slot: each slot
 * restores (eagerly, then lazily) into a VM that holds exactly its memory;
 * with no --slot, the newest. A VM restored from slot 0 then snapshots
 * incrementally back into slot 0, exactly.
 */
TEST_F_TIMEOUT(cp, restore_from_each_slot, 240)
{
	const char *sock = self->vm.sock, *sock2 = self->vm2.sock;
	static const char *const slot_arg[] = {"0", "1"};
	struct digests at[2], got;
	struct json_object *rep;
	unsigned int s, lazy;

	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", GUEST, "--mem", MEM), 0);
	ASSERT_TRUE(wait_guest_running(sock));
	ASSERT_EQ(CLI("image", "create", self->img, "--mem", MEM, "--slots", "2"), 0);
	for (s = 0; s < 2; s++) {
		let_it_run(_r, sock);
		pause_vm(_r, sock);
		rep = SNAP("--control", sock, "--slot", slot_arg[s]);
		expect_mode(_r, rep, s, "full");
		json_object_put(rep);
		ASSERT_TRUE(live_digests(sock, &at[s]));
		resume_vm(_r, sock);
	}
	/* The guest ran between them: pc.ram differs. */
	EXPECT_STRNE(at[0].d[0], at[1].d[0]);
	EXPECT_EQ(vm_stop(&self->vm), 0);

	for (lazy = 0; lazy < 2; lazy++)
		for (s = 0; s < 3; s++) {
			/* s == 2: no --slot, the newest (slot 1). */
			const char *args[8] = {self->img, "--paused"};
			unsigned int n = 2;

			if (s < 2) {
				args[n++] = "--slot";
				args[n++] = slot_arg[s];
			}
			if (lazy)
				args[n++] = "--lazy";
			args[n] = NULL;
			ASSERT_EQ(vm_spawn_cmd(&self->vm2, "restore", args), 0);
			ASSERT_TRUE(live_digests(sock2, &got));
			expect_same(_r, &at[s < 2 ? s : 1], &got);
			resume_vm(_r, sock2);
			expect_guest_runs(_r, sock2);
			EXPECT_EQ(vm_stop(&self->vm2), 0);
		}

	/* Restored from slot 0, the VM tracks against it: back into slot 0 incrementally. */
	ASSERT_EQ(VM_SPAWN_CMD(&self->vm2, "restore", self->img, "--slot", "0", "--lazy"), 0);
	ASSERT_TRUE(wait_guest_running(sock2));
	let_it_run(_r, sock2);
	pause_vm(_r, sock2);
	rep = SNAP("--control", sock2, "--incremental", "--slot", "0");
	expect_mode(_r, rep, 0, "incremental");
	EXPECT_EQ(u64_of(rep, "generation"), 3);
	json_object_put(rep);
	expect_slot_is_vm(_r, self, 0, sock2);
	/* The incremental slot restores eagerly (data against the footer) to the same memory. */
	ASSERT_TRUE(live_digests(sock2, &at[0]));
	ASSERT_EQ(VM_SPAWN_CMD(&self->vm, "restore", self->img, "--slot", "0", "--paused"), 0);
	ASSERT_TRUE(live_digests(sock, &got));
	expect_same(_r, &at[0], &got);
	EXPECT_EQ(vm_stop(&self->vm), 0);
	/* Slot 1 was not tracked by this VM: full. */
	rep = SNAP("--control", sock2, "--incremental", "--slot", "1");
	expect_mode(_r, rep, 1, "full");
	json_object_put(rep);
	expect_slot_is_vm(_r, self, 1, sock2);
	resume_vm(_r, sock2);
	expect_guest_runs(_r, sock2);
}

/* ---- two slots on a block device ---- */

/*
 * A loop device of exactly `image size --slots 2`: full, full, then
 * incremental snapshots alternate between its slots; paused, the last one
 * is exact, both slots verify deep, and slot 1 restores eagerly from the
 * device to the same memory.
 */
TEST_F_TIMEOUT(cp, two_slots_on_a_block_device, 240)
{
	const char *sock = self->vm.sock, *sock2 = self->vm2.sock;
	struct json_object *size, *rep;
	struct digests want, got;
	unsigned int i;
	int status;

	TEST_REQUIRE(geteuid() == 0, "needs root for loop devices");
	TEST_REQUIRE(have_tool("losetup"), "losetup is not installed");
	size =
	    CLI_JSON(&status, self->err, "image", "size", "--mem", MEM, "--slots", "2", "--json");
	ASSERT_EQ(status, 0);
	ASSERT_NOT_NULL(size);
	if (!loop_attach(self->dir, 0, u64_of(size, "image_size"), self->loop, sizeof(self->loop)))
		SKIP(return, "cannot set up a loop device (losetup --find failed)");
	json_object_put(size);
	snprintf(self->img, sizeof(self->img), "%s", self->loop);
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", GUEST, "--mem", MEM), 0);
	ASSERT_TRUE(wait_guest_running(sock));
	ASSERT_EQ(CLI("image", "create", self->img, "--mem", MEM, "--slots", "2"), 0);

	for (i = 0; i < 4; i++) {
		if (i == 3) {
			let_it_run(_r, sock);
			pause_vm(_r, sock);
		}
		rep = SNAP("--control", sock, "--incremental");
		expect_mode(_r, rep, i % 2, i < 2 ? "full" : "incremental");
		EXPECT_EQ(u64_of(rep, "generation"), i + 1);
		json_object_put(rep);
	}
	expect_slot_is_vm(_r, self, 1, sock);
	EXPECT_EQ(CLI("image", "verify", "--deep", self->img, "--slot", "0"), 0);
	ASSERT_TRUE(live_digests(sock, &want));
	EXPECT_EQ(vm_stop(&self->vm), 0);

	ASSERT_EQ(VM_SPAWN_CMD(&self->vm2, "restore", self->img, "--paused"), 0);
	ASSERT_TRUE(live_digests(sock2, &got));
	expect_same(_r, &want, &got);
	resume_vm(_r, sock2);
	expect_guest_runs(_r, sock2);
}

/* ---- a series of live snapshots of one VM ---- */

/* The guest's pass counter (every vCPU's passes, summed) from stats. */
static uint64_t guest_passes(const char *sock)
{
	struct json_object *r = call(sock, "{\"cmd\":\"stats\"}");
	uint64_t passes = ok_of(r) == 1 ? u64_of(r, "passes") : 0;

	json_object_put(r);
	return passes;
}

/*
 * Several live snapshots of one running VM, full and incremental, each
 * while the dirtier rewrites its working set at full speed (so precopy runs
 * passes with lazily re-armed dirty logging, and logging stays on between
 * them for the tracker). The last one restored must be exact: the dirtier
 * checks the stamp of every page before it rewrites it, and a page the
 * image missed ends the VM with status 6.
 */
TEST_F_TIMEOUT(cp, live_series_restores_exactly, 240)
{
	const char *sock = self->vm.sock, *sock2 = self->vm2.sock;
	struct json_object *rep;
	uint64_t passes, deadline;
	unsigned int i;
	int status;

	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=64M", "--mem", MEM), 0);
	ASSERT_TRUE(wait_guest_running(sock));
	for (i = 0; i < 6; i++) {
		/* Full ones unthrottled, so that precopy runs passes; incremental ones as they come. */
		rep = i % 2 ? SNAP("--control", sock, "--incremental")
			    : SNAP("--control", sock, "--max-throttle", "0");
		ASSERT_NOT_NULL(rep);
		TH_LOG("snapshot %u: %s, %zu passes", i + 1, str_of(rep, "mode") ?: "?",
		       len_of(get(rep, "passes")));
		json_object_put(rep);
		let_it_run(_r, sock);
	}
	EXPECT_EQ(vm_stop(&self->vm), 0);

	ASSERT_EQ(VM_SPAWN_CMD(&self->vm2, "restore", self->img), 0);
	passes = guest_passes(sock2) + 3;
	deadline = ms_now() + progress_timeout_ms;
	while (guest_passes(sock2) < passes && ms_now() < deadline)
		sleep_ms(20);
	status = wait_exit(self->vm2.pid, 0);
	if (status != -1)
		self->vm2.pid = 0;
	EXPECT_EQ(status, -1); /* still running: no failed stamp check (6), no crash */
	EXPECT_GE(guest_passes(sock2), passes);
}

TEST_HARNESS_MAIN
