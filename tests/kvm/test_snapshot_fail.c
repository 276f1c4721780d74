// SPDX-License-Identifier: GPL-2.0
/*
 * Live snapshots that fail. Whatever goes wrong (no space, a write error in
 * the middle of a pass, the manager killed at any moment, no VM to talk
 * to), the running guest must not stop, stay paused, slow down or lose
 * data (checked as: running, no session, dirty logging off, every vCPU
 * making progress; not as a page rate, which depends on the host); the
 * image must be refused by `image verify` with a clear message, never pass
 * for a snapshot; and `kvmsnap snapshot` must exit non-zero with
 * one error line naming the cause.
 *
 * Root is needed for tmpfs mounts, loop devices and device-mapper; those
 * tests are skipped otherwise. Everything is undone in the teardown.
 */
#include <sys/mount.h>

#include "../lib/vmproc.h"

#define MAX_LOOPS 2

FIXTURE(fail)
{
	struct vm vm;
	char dir[64];
	char img[128];
	char mnt[128]; /* a tmpfs mounted here, or "" */
	char dm[64];   /* a device-mapper device of this name, or "" */
	pid_t holder;  /* a process that holds a snapshot session, or 0 */
	char loops[MAX_LOOPS][64];
	unsigned int nr_loops;
	char out[OUT_MAX];
	char err[OUT_MAX];
};

FIXTURE_SETUP(fail)
{
	ASSERT_EQ(access(kvmsnap_bin(), X_OK), 0);
	snprintf(self->dir, sizeof(self->dir), "/tmp/kvmsnap-fail-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->img, sizeof(self->img), "%s/vm.img", self->dir);
}

FIXTURE_TEARDOWN(fail)
{
	char cmd[160];
	unsigned int i;

	if (self->holder > 0) {
		kill(self->holder, SIGKILL);
		waitpid(self->holder, NULL, 0);
	}
	/* Exit status 0 after quit: the guest never failed a stamp check. */
	if (self->vm.pid > 0)
		EXPECT_EQ(vm_stop(&self->vm), 0);
	else
		vm_stop(&self->vm);
	if (self->dm[0]) {
		snprintf(cmd, sizeof(cmd), "dmsetup remove --noudevsync --retry %s >/dev/null 2>&1",
			 self->dm);
		if (system(cmd))
			TH_LOG("could not remove the device-mapper device %s", self->dm);
	}
	for (i = 0; i < self->nr_loops; i++)
		loop_detach(self->loops[i]);
	if (self->mnt[0] && umount(self->mnt)) {
		TH_LOG("umount %s: %s; detaching it", self->mnt, strerror(errno));
		umount2(self->mnt, MNT_DETACH);
	}
	rm_tree(self->dir);
}

#define CLI(...) RUN_CLI(self->out, self->err, __VA_ARGS__)

/* Mount a tmpfs of size bytes on self->dir/mnt; 0, or -errno. */
static int mount_tmpfs(struct _fixture_fail *self, const char *size)
{
	char opts[64];

	snprintf(self->mnt, sizeof(self->mnt), "%s/mnt", self->dir);
	if (mkdir(self->mnt, 0700)) {
		self->mnt[0] = '\0';
		return -errno;
	}
	snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	if (mount("tmpfs", self->mnt, "tmpfs", MS_NOSUID | MS_NODEV, opts)) {
		int ret = -errno;

		rmdir(self->mnt);
		self->mnt[0] = '\0';
		return ret;
	}
	return 0;
}

/* A loop device over a new sparse file of size bytes in folder dir; NULL on failure. */
static const char *add_loop(struct _fixture_fail *self, const char *dir, uint64_t size)
{
	const char *dev;

	if (self->nr_loops >= MAX_LOOPS)
		return NULL;
	dev = loop_attach(dir, self->nr_loops, size, self->loops[self->nr_loops],
			  sizeof(self->loops[0]));
	if (dev)
		self->nr_loops++;
	return dev;
}

/* `kvmsnap image size ARGS --json` as an object, or NULL. */
static struct json_object *image_size_json(const char *const *args)
{
	static const char *const prefix[] = {"image", "size", "--json", NULL};
	static char err[OUT_MAX];

	return cli_json_ok(prefix, args, err);
}

#define IMAGE_SIZE_JSON(...) image_size_json((const char *const[]){__VA_ARGS__, NULL})

/* The first line of s, for a log message. */
#define LINE1(s) (int)strcspn((s), "\n"), (s)

/* A failed command said so in exactly one line: "kvmsnap: error: ...". */
static void expect_one_error_line(struct th_result *_r, const char *err)
{
	EXPECT_EQ(count_lines(err), 1);
	EXPECT_EQ(strncmp(err, "kvmsnap: error: ", 16), 0);
}

/* `image verify IMG` refuses an interrupted snapshot, and says why. */
static void expect_interrupted(struct _fixture_fail *self, struct th_result *_r, const char *img)
{
	EXPECT_EQ(CLI("image", "verify", img), 1);
	expect_one_error_line(_r, self->err);
	EXPECT_NOT_NULL(strstr(self->err, "is 'writing'"));
	EXPECT_NOT_NULL(strstr(self->err, "interrupted"));
	TH_LOG("verify: %.*s", LINE1(self->err));
}

/* ---- no space ---- */

TEST_F(fail, not_enough_space_leaves_no_file)
{
	const char *sock = self->vm.sock;
	char img[192];
	int ret;

	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened");
	TEST_REQUIRE(geteuid() == 0, "needs root to mount a tmpfs");
	ret = mount_tmpfs(self, "32M");
	if (ret)
		SKIP(return, "cannot mount a tmpfs: %s", strerror(-ret));
	snprintf(img, sizeof(img), "%s/img", self->mnt);
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=64M,rate=5000", "--mem", "256M"), 0);
	ASSERT_TRUE(wait_guest_running(sock));

	EXPECT_EQ(CLI("snapshot", img, "--control", sock), 1);
	expect_one_error_line(_r, self->err);
	EXPECT_NOT_NULL(strstr(self->err, "not enough space"));
	EXPECT_STREQ(self->out, "");
	TH_LOG("%.*s", LINE1(self->err));
	EXPECT_FALSE(exists(img));
	expect_guest_runs(_r, sock);
}

/* ---- a write error in the middle of pass 1 ---- */

/*
 * A loop device over a sparse file on a 64M tmpfs, for a 256M guest: image
 * create only touches the metadata at the start of each section, so it fits;
 * pass 1 then fills the tmpfs in the middle of pc.ram and the loop device
 * fails the write. No device-mapper needed.
 */
TEST_F(fail, write_error_mid_pass_on_a_loop_device)
{
	const char *sock = self->vm.sock, *dev;
	int ret;

	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened");
	TEST_REQUIRE(geteuid() == 0, "needs root for tmpfs and loop devices");
	TEST_REQUIRE(have_tool("losetup"), "losetup is not installed");
	ret = mount_tmpfs(self, "64M");
	if (ret)
		SKIP(return, "cannot mount a tmpfs: %s", strerror(-ret));
	dev = add_loop(self, self->mnt, 300 << 20);
	if (!dev)
		SKIP(return, "cannot set up a loop device (losetup --find failed)");
	ASSERT_EQ(CLI("image", "create", dev, "--mem", "256M"), 0);
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=64M,rate=5000", "--mem", "256M"), 0);
	ASSERT_TRUE(wait_guest_running(sock));

	EXPECT_EQ(CLI("snapshot", dev, "--control", sock), 1);
	expect_one_error_line(_r, self->err);
	EXPECT_NOT_NULL(strstr(self->err, "write of "));
	EXPECT_NOT_NULL(strstr(self->err, " failed: "));
	EXPECT_TRUE(strstr(self->err, "Input/output error") ||
		    strstr(self->err, "No space left on device"));
	TH_LOG("%.*s", LINE1(self->err));
	expect_guest_runs(_r, sock);
	expect_interrupted(self, _r, dev);
}

/* The kernel has device-mapper (dmsetup alone is not enough). */
static bool have_dm(void)
{
	char line[128];
	bool found = false;
	FILE *f;

	if (!have_tool("dmsetup"))
		return false;
	f = fopen("/proc/misc", "r");
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, "device-mapper") != NULL;
	if (f)
		fclose(f);
	return found;
}

/*
 * device-mapper over a loop device: linear everywhere but an `error` zone
 * from 64M into pc.ram's data area to its end. The header, the VM start
 * section, the state area, every section's descriptor and page header
 * table, and the footer stay writable, so `image create` works and pass 1
 * fails in the middle of pc.ram with EIO.
 */
TEST_F(fail, eio_mid_pass_with_device_mapper)
{
	const char *sock = self->vm.sock, *dev;
	struct json_object *layout;
	uint64_t size, data, end, split;
	char path[96], cmd[128];
	FILE *p;
	int i;

	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened");
	TEST_REQUIRE(geteuid() == 0, "needs root for device-mapper");
	TEST_REQUIRE(have_tool("losetup"), "losetup is not installed");
	TEST_REQUIRE(have_dm(), "no device-mapper: dmsetup missing or not in the kernel");
	layout = IMAGE_SIZE_JSON("--mem", "256M");
	ASSERT_NOT_NULL(layout);
	size = u64_of(layout, "image_size");
	ASSERT_STREQ(str_of(at(get(layout, "sections"), 0), "region"), "pc.ram");
	data = u64_of(at(get(layout, "sections"), 0), "data_offset");
	end = u64_of(at(get(layout, "sections"), 1), "offset");
	json_object_put(layout);
	split = data + (64 << 20);
	ASSERT_EQ(end, data + (256ULL << 20));
	dev = add_loop(self, self->dir, size);
	if (!dev)
		SKIP(return, "cannot set up a loop device (losetup --find failed)");

	snprintf(self->dm, sizeof(self->dm), "kvmsnap-test-%d", getpid());
	snprintf(cmd, sizeof(cmd), "dmsetup create --noudevsync %s >/dev/null", self->dm);
	p = popen(cmd, "w");
	ASSERT_NOT_NULL(p);
	fprintf(p, "0 %" PRIu64 " linear %s 0\n", split / 512, dev);
	fprintf(p, "%" PRIu64 " %" PRIu64 " error\n", split / 512, (end - split) / 512);
	fprintf(p, "%" PRIu64 " %" PRIu64 " linear %s %" PRIu64 "\n", end / 512, (size - end) / 512,
		dev, end / 512);
	if (pclose(p)) {
		self->dm[0] = '\0';
		SKIP(return, "dmsetup create failed");
	}
	snprintf(cmd, sizeof(cmd), "dmsetup mknodes %s >/dev/null 2>&1", self->dm);
	if (system(cmd))
		TH_LOG("dmsetup mknodes failed");
	snprintf(path, sizeof(path), "/dev/mapper/%s", self->dm);
	for (i = 0; i < 200 && !exists(path); i++)
		sleep_ms(10);
	ASSERT_TRUE(exists(path));

	ASSERT_EQ(CLI("image", "create", path, "--mem", "256M"), 0);
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=64M,rate=5000", "--mem", "256M"), 0);
	ASSERT_TRUE(wait_guest_running(sock));

	EXPECT_EQ(CLI("snapshot", path, "--control", sock), 1);
	expect_one_error_line(_r, self->err);
	EXPECT_NOT_NULL(strstr(self->err, "write of "));
	EXPECT_NOT_NULL(strstr(self->err, "Input/output error"));
	TH_LOG("%.*s", LINE1(self->err));
	expect_guest_runs(_r, sock);
	expect_interrupted(self, _r, path);
}

/* ---- the manager killed ---- */

#define KILL_ROUNDS 10

static uint64_t xorshift64(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * `kvmsnap snapshot` killed with SIGKILL after a random delay of 5 to 1500
 * ms, 10 times into the same image. The dirtier outruns the writer once
 * logging is on, and a threshold of one page is never met, so each snapshot
 * runs its 12 passes, about a second: kills land in the set-up, in a pass,
 * in the final pause, or after the end. After each: the VM runs unpaused
 * with logging off, every vCPU making progress, and the image is either refused as
 * interrupted or sound (when the kill came before the header said
 * `writing`, or after it said `complete`). KVMSNAP_TEST_SEED sets the delays.
 */
TEST_F_TIMEOUT(fail, manager_killed_at_random_moments, 120)
{
	const char *sock = self->vm.sock;
	const char *snap[] = {"snapshot", self->img,	  "--control", sock, "--threshold",
			      "4K",	  "--max-passes", "12",	       NULL};
	const char *seed_env = getenv("KVMSNAP_TEST_SEED");
	uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : 0x6b766d736e6170ULL;
	unsigned int killed = 0, finished = 0, refused = 0, sound = 0, round;
	char out_path[96], err_path[96];

	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened");
	if (!seed)
		seed = 1;
	TH_LOG("seed %#" PRIx64 " (KVMSNAP_TEST_SEED)", seed);
	snprintf(out_path, sizeof(out_path), "%s/snap.out", self->dir);
	snprintf(err_path, sizeof(err_path), "%s/snap.err", self->dir);
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=128M,rate=5000", "--mem", "256M",
			   "--vcpus", "2"),
		  0);
	ASSERT_EQ(CLI("image", "create", self->img, "--mem", "256M", "--vcpus", "2"), 0);
	ASSERT_TRUE(wait_guest_running(sock));

	for (round = 0; round < KILL_ROUNDS; round++) {
		unsigned int delay = 5 + (unsigned int)(xorshift64(&seed) % 1496);
		int status, vst;
		pid_t pid;
		bool was_killed;

		pid = spawn_cli(snap, out_path, err_path);
		ASSERT_GT(pid, 0);
		sleep_ms(delay);
		was_killed = kill(pid, SIGKILL) == 0;
		status = wait_exit(pid, 30000);
		/* Done before the kill: then it must have succeeded. */
		was_killed = was_killed && status == -2;
		if (!was_killed) {
			slurp(err_path, self->err);
			if (status)
				TH_LOG("round %u: snapshot status %d: %.*s", round, status,
				       LINE1(self->err));
			EXPECT_EQ(status, 0);
		}
		killed += was_killed;
		finished += !was_killed;

		/* The VM noticed, ended the session and resumed if it paused. */
		expect_guest_runs(_r, sock);

		vst = CLI("image", "verify", "--deep", self->img);
		TH_LOG("round %u: %s after %u ms; verify: %.*s", round,
		       was_killed ? "killed" : "finished", delay,
		       LINE1(vst ? self->err : self->out));
		if (vst == 0) {
			/* Sound: the last complete snapshot, or still the empty image. */
			EXPECT_TRUE(strstr(self->out, "digests match") ||
				    strstr(self->out, "generation 0, empty"));
			sound++;
		} else {
			EXPECT_EQ(vst, 1);
			expect_one_error_line(_r, self->err);
			EXPECT_TRUE(strstr(self->err, "writing") ||
				    strstr(self->err, "interrupted") ||
				    strstr(self->err, "checksum"));
			refused++;
		}
		if (!was_killed)
			EXPECT_EQ(vst, 0);
	}
	TH_LOG("%u rounds: %u killed, %u finished; image %u times refused, %u times sound", round,
	       killed, finished, refused, sound);
	EXPECT_EQ(round, KILL_ROUNDS);
	EXPECT_GT(killed, 0);

	/* The image is not spoiled for good: a new snapshot into it works. */
	EXPECT_EQ(CLI("snapshot", self->img, "--control", sock), 0);
	EXPECT_EQ(CLI("image", "verify", "--deep", self->img), 0);
	EXPECT_NOT_NULL(strstr(self->out, "digests match"));
	expect_guest_runs(_r, sock);
}

/*
 * Killed in the final pause, deterministically: a stand-in manager opens a
 * session, turns logging on, pauses the VM and is then killed with SIGKILL.
 * The VM must resume by itself and turn logging off.
 */
TEST_F(fail, manager_killed_while_the_vm_is_paused)
{
	const char *sock = self->vm.sock;
	struct json_object *r;
	char state[32], c = 0;
	uint64_t p0, p1;
	int pfd[2];

	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened");
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=64M,rate=5000", "--mem", "256M",
			   "--vcpus", "2"),
		  0);
	ASSERT_TRUE(wait_guest_running(sock));
	ASSERT_EQ(pipe(pfd), 0);
	fflush(NULL);
	self->holder = fork();
	ASSERT_GE(self->holder, 0);
	if (self->holder == 0) {
		static const char *const steps[] = {"{\"cmd\":\"snapshot-log\"}",
						    "{\"cmd\":\"snapshot-dirty\"}",
						    "{\"cmd\":\"snapshot-pause\"}"};
		int fd = ctl_open(sock);
		char *line = NULL;
		size_t i;

		c = 'n';
		if (fd >= 0 && !send_all(fd, "{\"cmd\":\"snapshot-begin\"}\n", 25))
			line = recv_line(fd);
		r = parse_object(line);
		free(line);
		if (ok_of(r) == 1)
			c = 'y';
		json_object_put(r);
		for (i = 0; c == 'y' && i < ARRAY_SIZE(steps); i++) {
			r = call_fd(fd, steps[i]);
			if (ok_of(r) != 1)
				c = 'n';
			json_object_put(r);
		}
		if (write(pfd[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	ASSERT_EQ(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	ASSERT_EQ(c, 'y');

	/* Paused by the session: no progress at all. */
	EXPECT_STREQ(vm_state(sock, state, sizeof(state)), "paused");
	r = call(sock, "{\"cmd\":\"status\"}");
	EXPECT_EQ(bool_of(r, "dirty_log"), 1);
	json_object_put(r);
	p0 = guest_pages(sock);
	sleep_ms(100);
	p1 = guest_pages(sock);
	EXPECT_EQ(p0, p1);

	kill(self->holder, SIGKILL);
	waitpid(self->holder, NULL, 0);
	self->holder = 0;
	expect_guest_runs(_r, sock);
}

/* ---- refused before anything is written ---- */

TEST(no_control_socket)
{
	char dir[] = "/tmp/kvmsnap-fail-XXXXXX", sock[64], img[64];
	static char out[OUT_MAX], err[OUT_MAX];

	ASSERT_EQ(access(kvmsnap_bin(), X_OK), 0);
	ASSERT_NOT_NULL(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/missing.sock", dir);
	snprintf(img, sizeof(img), "%s/vm.img", dir);
	EXPECT_EQ(RUN_CLI(out, err, "snapshot", img, "--control", sock), 1);
	EXPECT_EQ(count_lines(err), 1);
	EXPECT_EQ(strncmp(err, "kvmsnap: error: ", 16), 0);
	EXPECT_NOT_NULL(strstr(err, "cannot connect to control socket"));
	EXPECT_NOT_NULL(strstr(err, "No such file or directory"));
	EXPECT_STREQ(out, "");
	TH_LOG("%.*s", LINE1(err));
	/* No VM, no image. */
	EXPECT_FALSE(exists(img));
	EXPECT_EQ(RUN_CLI(out, err, "snapshot", img, "--control", sock, "--json"), 1);
	EXPECT_EQ(count_lines(err), 1);
	EXPECT_STREQ(out, "");
	rmdir(dir);
}

TEST_F(fail, unusable_targets_leave_the_guest_alone)
{
	const char *sock = self->vm.sock;
	char img[160];

	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened");
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=32M,rate=5000", "--mem", "128M"), 0);
	ASSERT_TRUE(wait_guest_running(sock));

	/* A folder that does not exist. */
	snprintf(img, sizeof(img), "%s/no/such/folder/vm.img", self->dir);
	EXPECT_EQ(CLI("snapshot", img, "--control", sock), 1);
	expect_one_error_line(_r, self->err);
	EXPECT_NOT_NULL(strstr(self->err, "No such file or directory"));
	TH_LOG("%.*s", LINE1(self->err));

	/* An image made for another VM: refused, and left as it was. */
	ASSERT_EQ(CLI("image", "create", self->img, "--mem", "64M"), 0);
	EXPECT_EQ(CLI("snapshot", self->img, "--control", sock), 1);
	expect_one_error_line(_r, self->err);
	EXPECT_NOT_NULL(strstr(self->err, "another VM configuration"));
	TH_LOG("%.*s", LINE1(self->err));
	EXPECT_EQ(CLI("image", "verify", self->img), 0);
	EXPECT_NOT_NULL(strstr(self->out, "generation 0, empty"));
	expect_guest_runs(_r, sock);
}

TEST_HARNESS_MAIN
