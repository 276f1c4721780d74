// SPDX-License-Identifier: GPL-2.0
/*
 * `kvmsnap restore` of real snapshots, eager and lazy, from a file and from
 * a loop block device (root only), driving the binary:
 *  - a VM restored --paused has exactly the memory the image's footer
 *    digests describe (`ctl digest`, every region), its saved progress, and
 *    the VGA text screen of the image ("dirtier cpu0 ..."); resumed, the
 *    dirtier goes on from there without a failed stamp check or a crash;
 *  - a 2-vCPU VM restores, both vCPUs go on;
 *  - round trips: a restored VM is snapshotted into its own image (same
 *    size, generation + 1) and into a new one, and snapshot -> restore ->
 *    snapshot -> restore stays exact at every step;
 *  - a dirtier with passes=N, snapshotted mid-run, finishes on the
 *    restored VM: exit status 1 and "self-check ok" on its serial output.
 */
#include "../lib/vmproc.h"

#include "snapshot/snapshot.h"
#include "vmm/pc.h"
#include "vmm/snapcfg.h"

#define RUN_PASSES 2 /* a restored VM runs this many more passes before it is judged */
#define MEM	   "128M"
#define MEM_BYTES  (128ULL << 20)
#define GUEST	   "dirtier:ws=32M"
#define PASSES	   20000 /* of 8192 pages: some seconds of dirtier work */
#define MAX_PROCS  8
#define MAX_LOOPS  4

static const char *const region_ids[] = {"pc.ram", "vga.vram", "pc.bios", "acpi.tables"};

/* ---- processes ---- */

/* What every fixture of this file holds: a folder, VMs, loop devices. */
struct rs {
	char dir[128];
	pid_t pids[MAX_PROCS];
	unsigned int nr_pids;
	char loops[MAX_LOOPS][64];
	unsigned int nr_loops;
};

/* Start kvmsnap with args; stdout to out (NULL: nowhere), stderr appended to err (NULL: nowhere). */
static pid_t spawn(const char *const *args, const char *out, const char *err)
{
	return spawn_io(args, "/dev/null", out ? out : "/dev/null", err ? err : "/dev/null", true);
}

/* Run a kvmsnap command to its end; stdout in out (may be NULL), stderr to the log. */
static int cli(struct rs *self, char *out, const char *const *args)
{
	char po[200], pe[200];
	pid_t pid;
	int st;

	snprintf(po, sizeof(po), "%s/cli.out", self->dir);
	snprintf(pe, sizeof(pe), "%s/log", self->dir);
	pid = spawn(args, po, pe);
	st = pid > 0 ? wait_exit(pid, 120000) : -1;
	if (out)
		read_file(po, out, OUT_MAX);
	return st;
}

#define CLI(out, ...) cli(self, (out), (const char *const[]){__VA_ARGS__, NULL})

/* Start a VM (run or restore) that serves sock; 0 once sock answers. */
static pid_t start_vm(struct rs *self, const char *sock, const char *const *args)
{
	uint64_t deadline = ms_now() + start_timeout_ms;
	char pe[200];
	pid_t pid;
	int fd;

	snprintf(pe, sizeof(pe), "%s/log", self->dir);
	pid = spawn(args, NULL, pe);
	if (pid < 0 || self->nr_pids >= MAX_PROCS)
		return -1;
	self->pids[self->nr_pids++] = pid;
	while (ms_now() < deadline) {
		fd = ctl_open(sock);
		if (fd >= 0) {
			close(fd);
			return pid;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			self->pids[--self->nr_pids] = 0;
			return -1;
		}
		sleep_ms(10);
	}
	return -1;
}

#define START(sock, ...) start_vm(self, (sock), (const char *const[]){__VA_ARGS__, NULL})

/* quit, and the exit status. */
static int quit_vm(struct rs *self, pid_t pid, const char *sock)
{
	unsigned int i;
	int st;

	call_ok(sock, "{\"cmd\":\"quit\"}");
	st = wait_exit(pid, exit_timeout_ms);
	for (i = 0; i < self->nr_pids; i++)
		if (self->pids[i] == pid && st != -1)
			self->pids[i] = 0;
	return st;
}

/* A loop device over a new sparse file of size bytes. */
static const char *add_loop(struct rs *self, uint64_t size)
{
	char *dev = self->loops[self->nr_loops];

	if (self->nr_loops >= MAX_LOOPS ||
	    !loop_attach(self->dir, self->nr_loops, size, dev, sizeof(self->loops[0])))
		return NULL;
	self->nr_loops++;
	return dev;
}

static void rs_setup(struct th_result *_r, struct rs *self, bool blockdev)
{
	const char *tmp = getenv("TMPDIR");

	if (blockdev) {
		TEST_REQUIRE(geteuid() == 0, "needs root for loop devices");
		TEST_REQUIRE(have_tool("losetup"), "losetup is not installed");
	}
	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened read-write: no KVM here");
	ASSERT_EQ(access(kvmsnap_bin(), X_OK), 0);
	snprintf(self->dir, sizeof(self->dir), "%s/kvmsnap-restore-XXXXXX", tmp ? tmp : "/tmp");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
}

static void rs_teardown(struct th_result *_r, struct rs *self)
{
	char cmd[200];
	unsigned int i;

	for (i = 0; i < self->nr_pids; i++) {
		if (self->pids[i] <= 0)
			continue;
		kill(self->pids[i], SIGKILL);
		waitpid(self->pids[i], NULL, 0);
	}
	for (i = 0; i < self->nr_loops; i++)
		loop_detach(self->loops[i]);
	if (self->dir[0]) {
		char log[OUT_MAX];

		/* What kvmsnap said, for a failed test. */
		snprintf(cmd, sizeof(cmd), "%s/log", self->dir);
		read_file(cmd, log, sizeof(log));
		if (_r->failed && log[0])
			TH_LOG("kvmsnap stderr:\n%s", log);
		rm_tree(self->dir);
	}
}

/* ---- what is checked ---- */

static char *path_in(struct rs *self, char *buf, const char *name)
{
	snprintf(buf, 200, "%s/%s", self->dir, name);
	return buf;
}

static uint64_t image_size_for(unsigned int vcpus)
{
	struct pc_config pc = {.ram_size = MEM_BYTES, .vram_size = VRAM_DEFAULT, .nr_cpus = vcpus};
	struct snap_config cfg;
	struct snap_layout l;
	struct error err;

	if (snapcfg__from_pc(&pc, &cfg, &err) ||
	    snap_layout_compute(&cfg, SNAP_ORDER_REGISTRY, &l, &err))
		return 0;
	return l.image_size;
}

/* An image target: a file in the test folder, or a loop device of the exact size. */
static const char *target(struct rs *self, char *buf, const char *name, bool blockdev,
			  unsigned int vcpus)
{
	const char *dev;

	if (!blockdev)
		return path_in(self, buf, name);
	dev = add_loop(self, image_size_for(vcpus));
	if (!dev)
		return NULL;
	snprintf(buf, 200, "%s", dev);
	return buf;
}

/* `image info --json`, parsed. */
static struct json_object *info(struct rs *self, const char *img)
{
	static char out[OUT_MAX];

	if (CLI(out, "image", "info", img, "--json"))
		return NULL;
	return json_tokener_parse(out);
}

/* The footer digest of region id in an info reply. */
static const char *footer_digest(struct json_object *inf, const char *id)
{
	struct json_object *d = get(get(inf, "footer"), "digests");
	size_t i;

	for (i = 0; i < len_of(d); i++)
		if (!strcmp(str_of(at(d, i), "id") ?: "", id))
			return str_of(at(d, i), "digest");
	return NULL;
}

static const char *live_digest(struct json_object *dg, const char *name)
{
	struct json_object *regions = get(dg, "regions");
	size_t i;

	for (i = 0; i < len_of(regions); i++)
		if (!strcmp(str_of(at(regions, i), "name") ?: "", name))
			return str_of(at(regions, i), "digest");
	return NULL;
}

/* Every region of the paused VM behind sock hashes as the footer of img says. */
static void expect_exact(struct th_result *_r, struct rs *self, const char *sock, const char *img)
{
	struct json_object *inf = info(self, img), *dg = call(sock, "{\"cmd\":\"digest\"}");
	unsigned int i;

	ASSERT_NOT_NULL(inf);
	ASSERT_NOT_NULL(dg);
	EXPECT_STREQ(str_of(inf, "state"), "complete");
	EXPECT_TRUE(json_object_get_boolean(get(dg, "paused")));
	EXPECT_EQ(len_of(get(dg, "regions")), ARRAY_SIZE(region_ids));
	for (i = 0; i < ARRAY_SIZE(region_ids); i++) {
		const char *want = footer_digest(inf, region_ids[i]);

		EXPECT_NOT_NULL(want);
		EXPECT_STREQ(live_digest(dg, region_ids[i]), want);
	}
	json_object_put(inf);
	json_object_put(dg);
}

static uint64_t cpu_counter(const char *sock, unsigned int cpu, const char *name)
{
	struct json_object *r = call(sock, "{\"cmd\":\"stats\"}");
	uint64_t v = u64_of(at(get(r, "cpus"), cpu), name);

	json_object_put(r);
	return v;
}

static uint64_t cpu_pages(const char *sock, unsigned int cpu)
{
	return cpu_counter(sock, cpu, "pages");
}

/* Wait until every vCPU's counter name is at least min[i]; false at the deadline. */
static bool wait_counters(const char *sock, unsigned int vcpus, const char *name,
			  const uint64_t *min)
{
	uint64_t deadline = ms_now() + progress_timeout_ms;
	unsigned int i, ok;

	while (ms_now() < deadline) {
		for (i = 0, ok = 0; i < vcpus; i++)
			ok += cpu_counter(sock, i, name) >= min[i];
		if (ok == vcpus)
			return true;
		sleep_ms(20);
	}
	return false;
}

static void expect_state(struct th_result *_r, const char *sock, const char *want)
{
	struct json_object *r = call(sock, "{\"cmd\":\"status\"}");

	EXPECT_STREQ(str_of(r, "state"), want);
	json_object_put(r);
}

/*
 * Resumed, every vCPU goes past where it was and completes RUN_PASSES more
 * passes, each checking every stamp of its slice, and the VM neither fails
 * a check nor crashes. Judged by the guest's counters, not by a time.
 */
static void expect_goes_on(struct th_result *_r, pid_t pid, const char *sock, unsigned int vcpus)
{
	uint64_t before[4], passes[4], after;
	unsigned int i;

	for (i = 0; i < vcpus; i++) {
		before[i] = cpu_pages(sock, i);
		passes[i] = cpu_counter(sock, i, "passes") + RUN_PASSES;
	}
	ASSERT_TRUE(call_ok(sock, "{\"cmd\":\"resume\"}"));
	EXPECT_TRUE(wait_counters(sock, vcpus, "passes", passes));
	/* Still running: a failed stamp check (6) or a crash (4) would have ended it. */
	ASSERT_EQ(wait_exit(pid, 0), -1);
	expect_state(_r, sock, "running");
	for (i = 0; i < vcpus; i++) {
		after = cpu_pages(sock, i);
		TH_LOG("vCPU %u: %llu pages at the restore, %llu after %d more passes", i,
		       (unsigned long long)before[i], (unsigned long long)after, RUN_PASSES);
		EXPECT_GT(before[i], 0);
		EXPECT_GT(after, before[i]);
	}
}

static void snapshot(struct th_result *_r, struct rs *self, const char *img, const char *sock)
{
	ASSERT_EQ(CLI(NULL, "snapshot", img, "--control", sock, "--json"), 0);
}

/* Run the dirtier and snapshot it into img; the VM is gone afterwards. */
static void make_image(struct th_result *_r, struct rs *self, const char *img, const char *guest,
		       unsigned int vcpus)
{
	static const uint64_t one_pass[4] = {1, 1, 1, 1};
	char sock[200], cpus[8];
	pid_t pid;
	int st;

	snprintf(cpus, sizeof(cpus), "%u", vcpus);
	path_in(self, sock, "run.sock");
	pid = START(sock, "run", "--guest", guest, "--mem", MEM, "--vcpus", cpus, "--control", sock,
		    "--serial", "none");
	ASSERT_GT(pid, 0);
	/* Mid-run, with a pass behind every vCPU (finish_case needs one). */
	ASSERT_TRUE(wait_counters(sock, vcpus, "passes", one_pass));
	snapshot(_r, self, img, sock);
	/*
	 * 0 after quit; 1 if a dirtier with passes= finished them all first,
	 * which a slow host allows: the image was taken either way.
	 */
	st = quit_vm(self, pid, sock);
	ASSERT_TRUE(st == 0 || st == 1);
}

/* restore img [--lazy] [--paused] --control sock --serial FILE */
static pid_t restore(struct rs *self, const char *img, const char *sock, bool lazy, bool paused,
		     const char *serial)
{
	const char *args[12] = {"restore", img, "--control", sock, "--serial", serial};
	unsigned int n = 6;

	if (lazy)
		args[n++] = "--lazy";
	if (paused)
		args[n++] = "--paused";
	args[n] = NULL;
	return start_vm(self, sock, args);
}

static void screen(struct rs *self, const char *img, char *out)
{
	if (CLI(out, "image", "screen", img))
		out[0] = '\0';
}

/* ---- the cases ---- */

static void restore_case(struct th_result *_r, struct rs *self, bool lazy, bool blockdev,
			 unsigned int vcpus)
{
	static char scr1[OUT_MAX], scr2[OUT_MAX];
	char img[200], img2[200], sock[200], ser[200], out[OUT_MAX];
	pid_t pid;

	ASSERT_NOT_NULL(target(self, img, "img", blockdev, vcpus));
	path_in(self, img2, "img2");
	path_in(self, sock, "restored.sock");
	path_in(self, ser, "serial");
	make_image(_r, self, img, GUEST, vcpus);

	pid = restore(self, img, sock, lazy, true, ser);
	ASSERT_GT(pid, 0);
	expect_state(_r, sock, "paused");
	expect_exact(_r, self, sock, img);
	if (lazy && blockdev) {
		/* Mapped: nobody may write the device now. */
		EXPECT_EQ(CLI(out, "image", "create", img, "--mem", MEM, "--force"), 1);
	}

	/* The screen the image holds is the restored VM's: a second, paused snapshot shows it. */
	snapshot(_r, self, img2, sock);
	expect_state(_r, sock, "paused");
	expect_exact(_r, self, sock, img2);
	screen(self, img, scr1);
	screen(self, img2, scr2);
	EXPECT_NOT_NULL(strstr(scr1, "dirtier cpu0 pass "));
	if (vcpus > 1)
		EXPECT_NOT_NULL(strstr(scr1, "dirtier cpu1 pass "));
	EXPECT_STREQ(scr1, scr2);
	/* Light grey on black (attribute 0x07), as the dirtier writes its status line. */
	EXPECT_EQ(CLI(scr2, "image", "screen", "--ansi", img), 0);
	EXPECT_NOT_NULL(strstr(scr2, "\033[0;37;40mdirtier cpu0 pass "));
	TH_LOG("screen: %.*s", (int)strcspn(strstr(scr1, "dirtier") ?: "", "\n"),
	       strstr(scr1, "dirtier") ?: "");

	expect_goes_on(_r, pid, sock, vcpus);
	EXPECT_EQ(quit_vm(self, pid, sock), 0);
}

FIXTURE(restore)
{
	struct rs rs;
};

FIXTURE_VARIANT(restore)
{
	bool lazy, blockdev;
	unsigned int vcpus;
};

FIXTURE_VARIANT_ADD(restore, eager_file){.vcpus = 1};
FIXTURE_VARIANT_ADD(restore, lazy_file){.lazy = true, .vcpus = 1};
FIXTURE_VARIANT_ADD(restore, eager_blockdev){.blockdev = true, .vcpus = 1};
FIXTURE_VARIANT_ADD(restore, lazy_blockdev){.lazy = true, .blockdev = true, .vcpus = 1};
FIXTURE_VARIANT_ADD(restore, eager_file_2_vcpus){.vcpus = 2};
FIXTURE_VARIANT_ADD(restore, lazy_file_2_vcpus){.lazy = true, .vcpus = 2};

FIXTURE_SETUP(restore)
{
	rs_setup(_r, &self->rs, variant->blockdev);
}

FIXTURE_TEARDOWN(restore)
{
	rs_teardown(_r, &self->rs);
}

TEST_F_TIMEOUT(restore, exact_and_goes_on, 180)
{
	restore_case(_r, &self->rs, variant->lazy, variant->blockdev, variant->vcpus);
}

static uint64_t generation_of(struct rs *self, const char *img, uint64_t *size)
{
	struct json_object *inf = info(self, img);
	uint64_t g = u64_of(inf, "generation");

	*size = u64_of(inf, "image_size");
	json_object_put(inf);
	return g;
}

static uint64_t target_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_size;
}

/*
 * run -> snapshot A -> restore A -> snapshot A again (in place) and B ->
 * restore B -> snapshot C -> restore C, and restore A: exact at every step.
 */
static void round_trip_case(struct th_result *_r, struct rs *self, bool lazy, bool blockdev)
{
	char a[200], b[200], c[200], s1[200], s2[200], s3[200], ser[200];
	uint64_t gen, size, gen2, size2, fsize, pass;
	pid_t p1, p2, p3;

	ASSERT_NOT_NULL(target(self, a, "a.img", blockdev, 1));
	path_in(self, b, "b.img");
	path_in(self, c, "c.img");
	path_in(self, s1, "1.sock");
	path_in(self, s2, "2.sock");
	path_in(self, s3, "3.sock");
	path_in(self, ser, "serial");
	make_image(_r, self, a, GUEST, 1);
	gen = generation_of(self, a, &size);
	fsize = target_size(a);

	/* A restored, running VM, snapshotted into its own image and a new one. */
	p1 = restore(self, a, s1, lazy, false, ser);
	ASSERT_GT(p1, 0);
	/* It runs on: a pass beyond the one the image caught. */
	pass = cpu_counter(s1, 0, "passes") + 1;
	ASSERT_TRUE(wait_counters(s1, 1, "passes", &pass));
	snapshot(_r, self, a, s1);
	gen2 = generation_of(self, a, &size2);
	EXPECT_EQ(gen2, gen + 1);
	EXPECT_EQ(size2, size);
	EXPECT_EQ(target_size(a), fsize);
	snapshot(_r, self, b, s1);
	ASSERT_EQ(quit_vm(self, p1, s1), 0);

	/* B holds the restored VM exactly; it runs on, and its snapshot C does too. */
	p2 = restore(self, b, s2, lazy, true, ser);
	ASSERT_GT(p2, 0);
	expect_exact(_r, self, s2, b);
	expect_goes_on(_r, p2, s2, 1);
	snapshot(_r, self, c, s2);
	ASSERT_EQ(quit_vm(self, p2, s2), 0);

	p3 = restore(self, c, s3, lazy, true, ser);
	ASSERT_GT(p3, 0);
	expect_exact(_r, self, s3, c);
	expect_goes_on(_r, p3, s3, 1);
	ASSERT_EQ(quit_vm(self, p3, s3), 0);

	/* And A, written in place by a restored VM, restores exactly too. */
	p1 = restore(self, a, s1, lazy, true, ser);
	ASSERT_GT(p1, 0);
	expect_exact(_r, self, s1, a);
	expect_goes_on(_r, p1, s1, 1);
	EXPECT_EQ(quit_vm(self, p1, s1), 0);
}

FIXTURE(round_trip)
{
	struct rs rs;
};

FIXTURE_VARIANT(round_trip)
{
	bool lazy, blockdev;
};

FIXTURE_VARIANT_ADD(round_trip, eager_file){};
FIXTURE_VARIANT_ADD(round_trip, lazy_file){.lazy = true};
FIXTURE_VARIANT_ADD(round_trip, eager_blockdev){.blockdev = true};
FIXTURE_VARIANT_ADD(round_trip, lazy_blockdev){.lazy = true, .blockdev = true};

FIXTURE_SETUP(round_trip)
{
	rs_setup(_r, &self->rs, variant->blockdev);
}

FIXTURE_TEARDOWN(round_trip)
{
	rs_teardown(_r, &self->rs);
}

TEST_F_TIMEOUT(round_trip, stays_exact, 240)
{
	round_trip_case(_r, &self->rs, variant->lazy, variant->blockdev);
}

/*
 * A lazily restored VM maps its image: no snapshot may write that image
 * until the VM's memory is its own again (a snapshot of it materializes it).
 */
FIXTURE(lazy_lock)
{
	struct rs rs;
};

FIXTURE_SETUP(lazy_lock)
{
	rs_setup(_r, &self->rs, false);
}

FIXTURE_TEARDOWN(lazy_lock)
{
	rs_teardown(_r, &self->rs);
}

TEST_F_TIMEOUT(lazy_lock, restore_holds_its_image, 240)
{
	struct rs *rs = &self->rs;
	char a[200], b[200], s1[200], s2[200], ser[200];
	static char out[OUT_MAX];
	pid_t restored, other;

	path_in(rs, a, "a.img");
	path_in(rs, b, "b.img");
	path_in(rs, s1, "1.sock");
	path_in(rs, s2, "2.sock");
	path_in(rs, ser, "serial");
	make_image(_r, rs, a, GUEST, 1);
	restored = restore(rs, a, s1, true, false, ser);
	ASSERT_GT(restored, 0);
	other = start_vm(rs, s2,
			 (const char *const[]){"run", "--guest", GUEST, "--mem", MEM, "--vcpus",
					       "1", "--control", s2, "--serial", "none", NULL});
	ASSERT_GT(other, 0);
	/* Another VM of the same shape may not write the image the restored one maps. */
	EXPECT_EQ(cli(rs, out, (const char *const[]){"snapshot", a, "--control", s2, NULL}), 1);
	/* Once the restored VM is snapshotted elsewhere, its memory is in memfds... */
	snapshot(_r, rs, b, s1);
	/* ...and the image is free. */
	EXPECT_EQ(cli(rs, out, (const char *const[]){"snapshot", a, "--control", s2, NULL}), 0);
	EXPECT_EQ(quit_vm(rs, other, s2), 0);
	EXPECT_EQ(quit_vm(rs, restored, s1), 0);
}

/* A dirtier with a pass limit, snapshotted mid-run, finishes on the restored VM. */
static void finish_case(struct th_result *_r, struct rs *self, bool lazy)
{
	static char serial[OUT_MAX];
	char img[200], sock[200], ser[200], guest[64];
	struct json_object *st;
	uint64_t passes;
	pid_t pid;
	int status;

	path_in(self, img, "img");
	path_in(self, sock, "restored.sock");
	path_in(self, ser, "serial");
	snprintf(guest, sizeof(guest), "%s,passes=%d", GUEST, PASSES);
	make_image(_r, self, img, guest, 1);

	pid = restore(self, img, sock, lazy, true, ser);
	ASSERT_GT(pid, 0);
	st = call(sock, "{\"cmd\":\"stats\"}");
	passes = u64_of(st, "passes");
	json_object_put(st);
	TH_LOG("snapshot taken after %llu of %d passes", (unsigned long long)passes, PASSES);
	/* Mid-run, or the test proves nothing: raise PASSES if this fails. */
	ASSERT_LT(passes, PASSES);
	ASSERT_GT(passes, 0);
	ASSERT_TRUE(call_ok(sock, "{\"cmd\":\"resume\"}"));
	status = wait_exit(pid, 120000);
	if (status != -1)
		self->pids[self->nr_pids - 1] = 0;
	/* Guest exit code 0, as (0 << 1) | 1: every stamp of every pass was right. */
	EXPECT_EQ(status, 1);
	read_file(ser, serial, sizeof(serial));
	TH_LOG("restored serial output: %s", serial);
	EXPECT_NOT_NULL(strstr(serial, "passes done, self-check ok"));
}

FIXTURE(passes)
{
	struct rs rs;
};

FIXTURE_VARIANT(passes)
{
	bool lazy;
};

FIXTURE_VARIANT_ADD(passes, eager){};
FIXTURE_VARIANT_ADD(passes, lazy){.lazy = true};

FIXTURE_SETUP(passes)
{
	rs_setup(_r, &self->rs, false);
}

FIXTURE_TEARDOWN(passes)
{
	rs_teardown(_r, &self->rs);
}

TEST_F_TIMEOUT(passes, finish, 180)
{
	finish_case(_r, &self->rs, variant->lazy);
}

TEST_HARNESS_MAIN
