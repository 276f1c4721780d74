// SPDX-License-Identifier: GPL-2.0
/*
 * Live snapshots of a real `kvmsnap run` with the dirtier guest, driven from
 * outside like a user would: `kvmsnap snapshot`, `kvmsnap image`, `kvmsnap
 * ctl` and raw control connections (tests/lib/vmproc.h). A snapshot under load
 * converges and verifies while the guest runs on; the image has exactly the
 * size `image size` computes however long the snapshot ran; a second
 * snapshot reuses the image; a snapshot of a paused VM holds exactly its
 * memory; --order size; a loop block device; run --snapshot; and the
 * commands that would steal a snapshot's dirty log are refused meanwhile.
 */
#include <xxhash.h>

#include "../lib/vmproc.h"

FIXTURE(snap)
{
	struct vm vm;
	char dir[64];
	char img[128];
	char loops[2][64];
	unsigned int nr_loops;
	char out[OUT_MAX];
	char err[OUT_MAX];
};

FIXTURE_SETUP(snap)
{
	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened");
	ASSERT_EQ(access(kvmsnap_bin(), X_OK), 0);
	snprintf(self->dir, sizeof(self->dir), "/tmp/kvmsnap-snap-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->img, sizeof(self->img), "%s/vm.img", self->dir);
}

FIXTURE_TEARDOWN(snap)
{
	unsigned int i;

	/* Exit status 0 after quit: the guest never failed a stamp check, no sanitizer report. */
	if (self->vm.pid > 0)
		EXPECT_EQ(vm_stop(&self->vm), 0);
	else
		vm_stop(&self->vm);
	for (i = 0; i < self->nr_loops; i++)
		loop_detach(self->loops[i]);
	rm_tree(self->dir);
}

#define CLI(...)	  RUN_CLI(self->out, self->err, __VA_ARGS__)
#define JSON(status, ...) CLI_JSON((status), self->err, __VA_ARGS__)

/* `kvmsnap image size ... --json`: the image size, 0 on failure. */
static uint64_t expected_size(const char *const *args)
{
	static char err[OUT_MAX];
	const char *argv[16] = {"image", "size", "--json"};
	struct json_object *j;
	uint64_t size;
	size_t n = 3;
	int status;

	while (*args && n < ARRAY_SIZE(argv) - 1)
		argv[n++] = *args++;
	argv[n] = NULL;
	j = cli_json(argv, &status, err);
	size = status == 0 ? u64_of(j, "image_size") : 0;
	json_object_put(j);
	return size;
}

#define EXPECTED_SIZE(...) expected_size((const char *const[]){__VA_ARGS__, NULL})

/* `kvmsnap image info IMAGE --json`, or NULL. */
static struct json_object *image_info(const char *img)
{
	static char err[OUT_MAX];
	int status;
	struct json_object *j = CLI_JSON(&status, err, "image", "info", img, "--json");

	if (status) {
		TH_LOG("image info %s: status %d: %s", img, status, err);
		json_object_put(j);
		return NULL;
	}
	return j;
}

/* A loop device over a new sparse file of size bytes in self->dir; NULL on failure. */
static const char *add_loop(struct _fixture_snap *self, uint64_t size)
{
	const char *dev;

	if (self->nr_loops >= ARRAY_SIZE(self->loops))
		return NULL;
	dev = loop_attach(self->dir, self->nr_loops, size, self->loops[self->nr_loops],
			  sizeof(self->loops[0]));
	if (dev)
		self->nr_loops++;
	return dev;
}

/* ---- under load ---- */

/*
 * The downtime holds, one after the other: the final batch (the last
 * pass), then pause_ms's steps. On one clock, so their sum is the downtime
 * but for the gaps between the steps and rounding to the µs.
 */
static void pause_adds_up(struct th_result *_r, struct json_object *j)
{
	struct json_object *passes = get(j, "passes"), *pause = get(j, "pause_ms");
	const char *steps[] = {"state", "sink", "unthrottle", "resume"};
	double sum, down = json_object_get_double(get(j, "downtime_ms"));
	size_t i;

	ASSERT_GE(len_of(passes), 1);
	ASSERT_NOT_NULL(pause);
	sum = json_object_get_double(
	    get(json_object_array_get_idx(passes, len_of(passes) - 1), "duration_ms"));
	for (i = 0; i < ARRAY_SIZE(steps); i++) {
		EXPECT_GE(json_object_get_double(get(pause, steps[i])), 0);
		sum += json_object_get_double(get(pause, steps[i]));
	}
	EXPECT_LE(sum, down + 0.01);
}

/* `kvmsnap snapshot IMG --control S --json [extra]`: its report in *jp, checked. */
static void snapshot_json(struct _fixture_snap *self, struct th_result *_r, struct json_object **jp,
			  const char *extra1, const char *extra2)
{
	const char *args[] = {"snapshot", self->img, "--control", self->vm.sock,
			      "--json",	  extra1,    extra2,	  NULL};
	struct json_object *j;
	int status;

	*jp = j = cli_json(args, &status, self->err);
	if (status)
		TH_LOG("snapshot: status %d: %s", status, self->err);
	EXPECT_EQ(status, 0);
	EXPECT_EQ(ok_of(j), 1);
	EXPECT_GE(len_of(get(j, "passes")), 2);
	EXPECT_TRUE(json_object_is_type(get(j, "downtime_ms"), json_type_double) ||
		    json_object_is_type(get(j, "downtime_ms"), json_type_int));
	EXPECT_NE(bool_of(j, "converged"), -1);
	pause_adds_up(_r, j);
	TH_LOG("%s after %zu passes (%s), threshold %" PRIu64 " KiB, downtime %.2f ms, "
	       "total %.0f ms",
	       bool_of(j, "converged") == 1 ? "converged" : "did not converge",
	       len_of(get(j, "passes")), str_of(j, "stop_reason") ?: "?",
	       u64_of(j, "threshold") >> 10, json_object_get_double(get(j, "downtime_ms")),
	       json_object_get_double(get(j, "total_ms")));
}

/* The image verifies in depth, and the guest ran on and ends cleanly on quit. */
static void verify_then_quit(struct _fixture_snap *self, struct th_result *_r, uint64_t generation,
			     uint64_t size)
{
	struct json_object *info;

	EXPECT_EQ(file_size(self->img), (int64_t)size);
	EXPECT_EQ(CLI("image", "verify", "--deep", self->img), 0);
	EXPECT_NOT_NULL(strstr(self->out, "complete"));
	EXPECT_NOT_NULL(strstr(self->out, "digests match"));
	info = image_info(self->img);
	EXPECT_STREQ(str_of(info, "state"), "complete");
	EXPECT_EQ(u64_of(info, "generation"), generation);
	json_object_put(info);

	/* The guest kept running and still does, without logging. */
	expect_guest_runs(_r, self->vm.sock);
	EXPECT_EQ(CLI("ctl", self->vm.sock, "quit"), 0);
	EXPECT_EQ(wait_exit(self->vm.pid, exit_timeout_ms), 0);
	self->vm.pid = 0;
}

#define CONVERGE_TRIES 3

/*
 * The dirtier rewrites 128M on 2 vCPUs at about 200 pages/ms (some 800
 * MB/s), less than the writer's bandwidth: precopy passes shrink the dirty
 * set below the default 20 ms downtime target. A noisy shared host can still
 * spoil a snapshot's passes; it is retried (into the same image) up to 3
 * times.
 */
TEST_F_TIMEOUT(snap, live_snapshot_converges_and_the_guest_runs_on, 120)
{
	uint64_t size = EXPECTED_SIZE("--mem", "256M", "--vcpus", "2");
	struct json_object *j = NULL;
	bool converged = false;
	int i;

	ASSERT_GT(size, 0);
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=128M,rate=200", "--mem", "256M",
			   "--vcpus", "2"),
		  0);
	ASSERT_TRUE(wait_guest_running(self->vm.sock));
	for (i = 0; i < CONVERGE_TRIES && !converged; i++) {
		snapshot_json(self, _r, &j, NULL, NULL);
		ASSERT_NOT_NULL(j);
		EXPECT_EQ(u64_of(j, "generation"), i + 1);
		EXPECT_EQ(u64_of(j, "image_size"), size);
		converged = bool_of(j, "converged") == 1;
		/*
		 * Not in one pass: what the dirtier wrote during pass 1 is
		 * copied again. How many passes that takes depends on the
		 * writer's speed against the guest's, so only the second pass
		 * (the final one, at the least) is required to find pages.
		 */
		if (converged) {
			EXPECT_GE(len_of(get(j, "passes")), 2);
			EXPECT_GT(u64_of(at(get(j, "passes"), 1), "dirty_pages"), 0);
		}
		json_object_put(j);
	}
	EXPECT_TRUE(converged);
	verify_then_quit(self, _r, i, size);
}

/*
 * The dirtier at full speed on 2 vCPUs: with logging on it dirties about as
 * fast as the writer writes on this 2-core host, and there is no
 * auto-converge, so at the default 20 ms target precopy may end at the pass
 * limit (the report says so and gives the real downtime). Either way the
 * snapshot is complete and sound. With a target of 200 ms the threshold
 * covers the whole working set and it converges.
 */
TEST_F_TIMEOUT(snap, live_snapshot_of_an_unlimited_dirtier, 120)
{
	uint64_t size = EXPECTED_SIZE("--mem", "256M", "--vcpus", "2");
	struct json_object *j;

	ASSERT_GT(size, 0);
	ASSERT_EQ(
	    VM_SPAWN(&self->vm, "--guest", "dirtier:ws=128M", "--mem", "256M", "--vcpus", "2"), 0);
	ASSERT_TRUE(wait_guest_running(self->vm.sock));
	snapshot_json(self, _r, &j, NULL, NULL);
	ASSERT_NOT_NULL(j);
	if (bool_of(j, "converged") != 1) {
		EXPECT_STREQ(str_of(j, "stop_reason"), "pass limit reached");
		EXPECT_GT(json_object_get_double(get(j, "downtime_ms")), 0);
	}
	json_object_put(j);
	snapshot_json(self, _r, &j, "--max-downtime", "200");
	ASSERT_NOT_NULL(j);
	EXPECT_EQ(bool_of(j, "converged"), 1);
	EXPECT_EQ(u64_of(j, "generation"), 2);
	json_object_put(j);
	verify_then_quit(self, _r, 2, size);
}

/* ---- the image never grows ---- */

static void expect_preallocated(struct th_result *_r, const char *img, uint64_t size)
{
	struct stat st;

	ASSERT_EQ(stat(img, &st), 0);
	EXPECT_EQ((uint64_t)st.st_size, size);
	/* Every block reserved up front: a later write cannot fail for space. */
	EXPECT_GE((uint64_t)st.st_blocks * 512, size);
}

TEST_F_TIMEOUT(snap, image_size_is_fixed_whatever_the_duration, 90)
{
	const char *sock = self->vm.sock;
	uint64_t size = EXPECTED_SIZE("--mem", "256M", "--vcpus", "2");
	struct json_object *j, *info;
	char img2[160];
	int status;

	ASSERT_GT(size, 0);
	snprintf(img2, sizeof(img2), "%s/long.img", self->dir);
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=128M,rate=200", "--mem", "256M",
			   "--vcpus", "2"),
		  0);
	ASSERT_TRUE(wait_guest_running(sock));

	/* Short: the default downtime target. */
	j = JSON(&status, "snapshot", self->img, "--control", sock, "--json");
	ASSERT_EQ(status, 0);
	TH_LOG("short: %zu passes, %.0f ms, %" PRIu64 " bytes written into a %" PRIu64
	       "-byte image",
	       len_of(get(j, "passes")), json_object_get_double(get(j, "total_ms")),
	       u64_of(j, "bytes_written"), size);
	json_object_put(j);
	expect_preallocated(_r, self->img, size);
	info = image_info(self->img);
	EXPECT_EQ(u64_of(info, "generation"), 1);
	EXPECT_EQ(u64_of(info, "image_size"), size);
	json_object_put(info);

	/*
	 * Long: a threshold of one page, up to 20 passes. The dirty set shrinks
	 * pass by pass but rarely to one page (only if the vCPUs stall for a
	 * whole pass on a busy host), so most runs end at the pass limit.
	 */
	j = JSON(&status, "snapshot", img2, "--control", sock, "--threshold", "4K", "--max-passes",
		 "20", "--json");
	ASSERT_EQ(status, 0);
	/* The working set, dirtied during pass 1, is written again. */
	EXPECT_GE(len_of(get(j, "passes")), 3);
	if (bool_of(j, "converged") != 1) {
		EXPECT_EQ(len_of(get(j, "passes")), 21);
		EXPECT_STREQ(str_of(j, "stop_reason"), "pass limit reached");
	}
	/*
	 * Pages were written over again: more bytes than pass 1 wrote (which,
	 * in a new image, leaves the pages the guest never touched alone)...
	 */
	EXPECT_GT(u64_of(j, "bytes_written"),
		  u64_of(json_object_array_get_idx(get(j, "passes"), 0), "bytes"));
	TH_LOG("long: %zu passes, %.0f ms, %" PRIu64 " bytes written into a %" PRIu64 "-byte image",
	       len_of(get(j, "passes")), json_object_get_double(get(j, "total_ms")),
	       u64_of(j, "bytes_written"), size);
	json_object_put(j);
	/* ...and it did not grow. */
	expect_preallocated(_r, img2, size);
	EXPECT_EQ(CLI("image", "verify", "--deep", img2), 0);

	/* Again into the first image: the same size, the next generation. */
	j = JSON(&status, "snapshot", self->img, "--control", sock, "--threshold", "4K",
		 "--max-passes", "20", "--json");
	ASSERT_EQ(status, 0);
	EXPECT_EQ(u64_of(j, "generation"), 2);
	json_object_put(j);
	expect_preallocated(_r, self->img, size);
	info = image_info(self->img);
	EXPECT_EQ(u64_of(info, "generation"), 2);
	EXPECT_EQ(u64_of(get(info, "footer"), "generation"), 2);
	EXPECT_STREQ(str_of(info, "state"), "complete");
	json_object_put(info);
	EXPECT_EQ(CLI("image", "verify", "--deep", self->img), 0);
	EXPECT_NOT_NULL(strstr(self->out, "generation 2, complete"));
	expect_guest_runs(_r, sock);
}

/* ---- a paused VM: the image holds exactly its memory ---- */

static void hex64(uint64_t v, char buf[17])
{
	snprintf(buf, 17, "%016" PRIx64, v);
}

/*
 * Both digests of the n pages at off in the image file: plain XXH3-64 of the
 * bytes, and the "XXH3 page tree" of the format (XXH3 of the little-endian
 * block digests, each the XXH3 of the little-endian XXH3 of 512 pages).
 * 0 on success.
 */
static int image_digests(const char *img, uint64_t off, uint64_t pages, char plain[17],
			 char tree[17])
{
	uint64_t size = pages * 4096, i;
	uint8_t *buf = malloc(size), *le = malloc(pages * 8);
	int fd = open(img, O_RDONLY | O_CLOEXEC), ret = -1;
	size_t done = 0;

	if (!buf || !le || fd < 0)
		goto out;
	while (done < size) {
		ssize_t n = pread(fd, buf + done, size - done, (off_t)(off + done));

		if (n <= 0)
			goto out;
		done += n;
	}
	hex64(XXH3_64bits(buf, size), plain);
	for (i = 0; i < pages; i++) {
		uint64_t h = XXH3_64bits(buf + i * 4096, 4096);
		int b;

		for (b = 0; b < 8; b++)
			le[i * 8 + b] = (uint8_t)(h >> (8 * b));
	}
	/* Two levels: a digest per run of 512 page hashes, then over those. */
	for (i = 0; i < pages; i += 512) {
		uint64_t n = pages - i < 512 ? pages - i : 512;
		uint64_t h = XXH3_64bits(le + i * 8, n * 8);
		int b;

		for (b = 0; b < 8; b++)
			le[(i / 512) * 8 + b] = (uint8_t)(h >> (8 * b));
	}
	hex64(XXH3_64bits(le, (pages + 511) / 512 * 8), tree);
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(le);
	return ret;
}

static struct json_object *find_by(struct json_object *arr, const char *key, const char *val)
{
	size_t i;

	for (i = 0; i < len_of(arr); i++)
		if (!strcmp(str_of(at(arr, i), key) ?: "", val))
			return at(arr, i);
	return NULL;
}

/*
 * Paused first, the VM stays paused through the snapshot (the session's own
 * pause is a no-op) and after it, so its memory is the snapshot's. The
 * footer digests must then equal `ctl digest`, which computes the same "XXH3
 * page tree" value (Documentation/snapshot-format.md, "Region digest"). The
 * data areas, hashed here, must hold the paused memory byte for byte.
 */
TEST_F(snap, snapshot_of_a_paused_vm_holds_its_memory)
{
	const char *sock = self->vm.sock;
	struct json_object *info, *dig, *report;
	char state[32];
	size_t i;
	int status;

	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=32M", "--mem", "128M"), 0);
	ASSERT_TRUE(wait_guest_running(sock));
	ASSERT_EQ(CLI("ctl", sock, "pause"), 0);
	report = JSON(&status, "snapshot", self->img, "--control", sock, "--json");
	ASSERT_EQ(status, 0);
	/* Nothing is dirtied while paused: pass 1, then an empty final batch. */
	EXPECT_EQ(bool_of(report, "converged"), 1);
	EXPECT_STREQ(vm_state(sock, state, sizeof(state)), "paused");

	dig = call(sock, "{\"cmd\":\"digest\"}");
	ASSERT_EQ(ok_of(dig), 1);
	EXPECT_EQ(bool_of(dig, "paused"), 1);
	info = image_info(self->img);
	ASSERT_NOT_NULL(info);
	ASSERT_EQ(len_of(get(get(info, "footer"), "digests")), 4);
	TH_LOG("ctl digest algorithm %s, footer %s", str_of(dig, "algorithm") ?: "?",
	       str_of(get(info, "footer"), "digest_algorithm") ?: "?");
	for (i = 0; i < 4; i++) {
		struct json_object *f = at(get(get(info, "footer"), "digests"), i);
		const char *name = str_of(f, "id") ?: "?", *foot = str_of(f, "digest");
		const char *live = digest_of(dig, name);
		struct json_object *sec = find_by(get(info, "sections"), "region", name);
		char plain[17] = "", tree[17] = "";

		ASSERT_NOT_NULL(sec);
		ASSERT_EQ(image_digests(self->img, u64_of(sec, "data_offset"), u64_of(sec, "pages"),
					plain, tree),
			  0);
		TH_LOG("%-12s live %s footer %s image data: plain %s tree %s", name,
		       live ?: "(none)", foot ?: "(none)", plain, tree);
		/* The footer describes the data the image holds... */
		EXPECT_STREQ(foot, tree);
		/* ...which is the paused memory, byte for byte, whatever the algorithm... */
		EXPECT_TRUE(live && (!strcmp(live, plain) || !strcmp(live, tree)));
		/* ...the report printed the footer's digests... */
		EXPECT_STREQ(str_of(find_by(get(report, "digests"), "region", name), "digest"),
			     foot);
		/* ...and `ctl digest` gives the footer's value. */
		EXPECT_STREQ(live, foot);
	}
	json_object_put(info);
	json_object_put(dig);
	json_object_put(report);
	EXPECT_EQ(CLI("image", "verify", "--deep", self->img), 0);

	EXPECT_EQ(CLI("ctl", sock, "resume"), 0);
	expect_guest_runs(_r, sock);
}

/* ---- section order ---- */

TEST_F(snap, order_size_puts_the_largest_section_first)
{
	const char *sock = self->vm.sock;
	struct json_object *info, *secs;
	char img2[160];
	uint64_t size;
	size_t i;

	/* VRAM larger than RAM, so that size order differs from registry order. */
	size = EXPECTED_SIZE("--mem", "16M", "--vram", "64M", "--order", "size");
	ASSERT_GT(size, 0);
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=8M", "--mem", "16M", "--vram", "64M"),
		  0);
	ASSERT_TRUE(wait_guest_running(sock));
	ASSERT_EQ(CLI("snapshot", self->img, "--control", sock, "--order", "size"), 0);
	info = image_info(self->img);
	ASSERT_NOT_NULL(info);
	EXPECT_STREQ(str_of(info, "order"), "size");
	secs = get(info, "sections");
	ASSERT_EQ(len_of(secs), 4);
	EXPECT_STREQ(str_of(at(secs, 0), "region"), "vga.vram");
	EXPECT_STREQ(str_of(at(secs, 1), "region"), "pc.ram");
	for (i = 1; i < len_of(secs); i++) {
		EXPECT_GE(u64_of(at(secs, i - 1), "size"), u64_of(at(secs, i), "size"));
		/* Laid out in that order. */
		EXPECT_GT(u64_of(at(secs, i), "offset"), u64_of(at(secs, i - 1), "offset"));
	}
	json_object_put(info);
	EXPECT_EQ(file_size(self->img), (int64_t)size);
	EXPECT_EQ(CLI("image", "verify", "--deep", self->img), 0);

	/* The default is the registry's order; the size is the same. */
	snprintf(img2, sizeof(img2), "%s/registry.img", self->dir);
	ASSERT_EQ(CLI("snapshot", img2, "--control", sock), 0);
	info = image_info(img2);
	EXPECT_STREQ(str_of(info, "order"), "registry");
	EXPECT_STREQ(str_of(at(get(info, "sections"), 0), "region"), "pc.ram");
	EXPECT_STREQ(str_of(at(get(info, "sections"), 1), "region"), "vga.vram");
	json_object_put(info);
	EXPECT_EQ(file_size(img2), (int64_t)size);
	EXPECT_EQ(CLI("image", "verify", "--deep", img2), 0);
	expect_guest_runs(_r, sock);
}

/* ---- a raw block device ---- */

TEST_F(snap, loop_device_target)
{
	const char *sock = self->vm.sock, *dev, *small;
	uint64_t size = EXPECTED_SIZE("--mem", "128M");
	struct json_object *info;
	char want[96];

	TEST_REQUIRE(geteuid() == 0, "needs root for loop devices");
	TEST_REQUIRE(have_tool("losetup"), "losetup is not installed");
	ASSERT_GT(size, 0);
	dev = add_loop(self, size + (1 << 20));
	small = add_loop(self, size - (1 << 20));
	if (!dev || !small)
		SKIP(return, "cannot set up loop devices (losetup --find failed)");
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=32M", "--mem", "128M"), 0);
	ASSERT_TRUE(wait_guest_running(sock));

	EXPECT_EQ(CLI("snapshot", dev, "--control", sock), 0);
	EXPECT_EQ(CLI("image", "verify", "--deep", dev), 0);
	EXPECT_NOT_NULL(strstr(self->out, "generation 1, complete"));
	EXPECT_NOT_NULL(strstr(self->out, "digests match"));
	info = image_info(dev);
	EXPECT_STREQ(str_of(info, "state"), "complete");
	EXPECT_EQ(u64_of(info, "image_size"), size);
	EXPECT_EQ(u64_of(info, "target_size"), size + (1 << 20));
	json_object_put(info);

	/* One MiB short: refused before anything is written; the guest runs on. */
	EXPECT_EQ(CLI("snapshot", small, "--control", sock), 1);
	EXPECT_EQ(count_lines(self->err), 1);
	EXPECT_EQ(strncmp(self->err, "kvmsnap: error: ", 16), 0);
	snprintf(want, sizeof(want), "%s: ", small);
	EXPECT_NOT_NULL(strstr(self->err, want));
	EXPECT_NOT_NULL(strstr(self->err, "device is smaller than the"));
	TH_LOG("%.*s", (int)strcspn(self->err, "\n"), self->err);
	expect_guest_runs(_r, sock);
}

/* ---- kvmsnap run --snapshot ---- */

TEST_F_TIMEOUT(snap, run_snapshot_option, 120)
{
	const char *sock = self->vm.sock;
	uint64_t t0, deadline;
	bool complete = false;
	char *log;

	t0 = ms_now();
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=32M", "--mem", "128M", "--snapshot",
			   self->img, "--snapshot-after", "1"),
		  0);
	/* One second, then a snapshot of 128M: generous for slow hosts. */
	deadline = t0 + 60000;
	while (!complete && ms_now() < deadline) {
		static char err[OUT_MAX];
		int status;
		struct json_object *info =
		    CLI_JSON(&status, err, "image", "info", self->img, "--json");

		complete = status == 0 && !strcmp(str_of(info, "state") ?: "", "complete");
		json_object_put(info);
		if (!complete)
			sleep_ms(100);
	}
	ASSERT_TRUE(complete);
	TH_LOG("complete %" PRIu64 " ms after start", ms_now() - t0);
	EXPECT_GE(ms_now() - t0, 1000);
	EXPECT_EQ(CLI("image", "verify", "--deep", self->img), 0);
	EXPECT_NOT_NULL(strstr(self->out, "generation 1, complete"));
	expect_guest_runs(_r, sock);

	/*
	 * The snapshot process reports on run's stdout. Fails when that is a
	 * file or a pipe: start_snapshot_child() in vmm/builtin-run.c ends with
	 * _exit(manager__snapshot(&m)), which drops the fully buffered report.
	 */
	log = malloc(OUT_MAX);
	ASSERT_NOT_NULL(log);
	slurp(self->vm.out, log);
	EXPECT_NOT_NULL(strstr(log, "generation 1, complete"));
	free(log);
	EXPECT_EQ(CLI("ctl", sock, "quit"), 0);
	EXPECT_EQ(wait_exit(self->vm.pid, exit_timeout_ms), 0);
	self->vm.pid = 0;
}

/* ---- a session owns the dirty log ---- */

TEST_F(snap, session_refuses_commands_that_steal_the_dirty_log)
{
	const char *sock = self->vm.sock;
	struct json_object *r;
	char img2[160], state[32], *line;
	unsigned int nr_fds = 0;
	int a, b;

	snprintf(img2, sizeof(img2), "%s/second.img", self->dir);
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=32M", "--mem", "128M"), 0);
	ASSERT_TRUE(wait_guest_running(sock));

	/* Connection a plays the manager: a session with dirty logging on. */
	a = ctl_open(sock);
	ASSERT_GE(a, 0);
	ASSERT_EQ(send_all(a, "{\"cmd\":\"snapshot-begin\"}\n", 25), 0);
	line = recv_line_fds(a, NULL, 0, &nr_fds);
	ASSERT_NOT_NULL(line);
	r = parse_object(line);
	free(line);
	EXPECT_EQ(ok_of(r), 1);
	EXPECT_EQ(len_of(get(r, "regions")), 4);
	json_object_put(r);
	/* The shared area and one memfd per region (all closed again here). */
	EXPECT_EQ(nr_fds, 5);
	r = call_fd(a, "{\"cmd\":\"snapshot-log\"}");
	EXPECT_EQ(ok_of(r), 1);
	json_object_put(r);

	EXPECT_EQ(CLI("ctl", sock, "pause"), 1);
	EXPECT_NOT_NULL(strstr(self->err, "a snapshot is in progress"));
	TH_LOG("pause: %.*s", (int)strcspn(self->err, "\n"), self->err);
	EXPECT_EQ(CLI("ctl", sock, "resume"), 1);
	EXPECT_NOT_NULL(strstr(self->err, "a snapshot is in progress"));
	EXPECT_EQ(CLI("ctl", sock, "dirty-log", "off"), 1);
	EXPECT_NOT_NULL(strstr(self->err, "a snapshot is in progress"));
	TH_LOG("dirty-log off: %.*s", (int)strcspn(self->err, "\n"), self->err);
	EXPECT_EQ(CLI("ctl", sock, "dirty-log", "on"), 1);
	EXPECT_NOT_NULL(strstr(self->err, "a snapshot is in progress"));

	/* Another connection cannot take the session over or start its own... */
	b = ctl_open(sock);
	ASSERT_GE(b, 0);
	r = call_fd(b, "{\"cmd\":\"snapshot-dirty\"}");
	EXPECT_EQ(ok_of(r), 0);
	EXPECT_STREQ(str_of(r, "error"), "a snapshot session belongs to another connection");
	json_object_put(r);
	r = call_fd(b, "{\"cmd\":\"snapshot-begin\"}");
	EXPECT_EQ(ok_of(r), 0);
	EXPECT_STREQ(str_of(r, "error"), "a snapshot is already in progress");
	json_object_put(r);
	close(b);
	/* ...nor can a second `kvmsnap snapshot`, which then creates no image. */
	EXPECT_EQ(CLI("snapshot", img2, "--control", sock), 1);
	EXPECT_NOT_NULL(strstr(self->err, "a snapshot is already in progress"));
	EXPECT_FALSE(exists(img2));

	/* Reading state is fine; stats leave the session's dirty bits alone. */
	EXPECT_STREQ(vm_state(sock, state, sizeof(state)), "running");
	r = call(sock, "{\"cmd\":\"stats\"}");
	EXPECT_EQ(ok_of(r), 1);
	EXPECT_EQ(bool_of(r, "snapshot"), 1);
	EXPECT_EQ(bool_of(r, "dirty_log"), 1);
	EXPECT_NULL(get(r, "dirty"));
	json_object_put(r);

	/* The session ends with its connection: logging off, commands back. */
	close(a);
	EXPECT_TRUE(wait_session_gone(sock, 3000));
	EXPECT_EQ(CLI("ctl", sock, "pause"), 0);
	EXPECT_STREQ(vm_state(sock, state, sizeof(state)), "paused");
	EXPECT_EQ(CLI("ctl", sock, "resume"), 0);
	EXPECT_EQ(CLI("ctl", sock, "dirty-log", "on"), 0);
	EXPECT_EQ(CLI("ctl", sock, "dirty-log", "off"), 0);
	expect_guest_runs(_r, sock);
}

/* The digests of every region in the footer of img, by region, into d (4 x 17 bytes). */
static void footer_digests(struct th_result *_r, const char *img, char d[4][17])
{
	struct json_object *info = image_info(img);
	size_t i;

	ASSERT_NOT_NULL(info);
	ASSERT_EQ(len_of(get(get(info, "footer"), "digests")), 4);
	for (i = 0; i < 4; i++)
		snprintf(d[i], 17, "%s",
			 str_of(at(get(get(info, "footer"), "digests"), i), "digest") ?: "");
	json_object_put(info);
}

/*
 * --via-stream: the manager never maps guest memory, and the image is the
 * memfd mode's, digest for digest, for the same paused VM; live, it verifies.
 */
TEST_F_TIMEOUT(snap, stream_snapshot_equals_the_memfd_one, 120)
{
	const char *sock = self->vm.sock;
	char stream_img[160], a[4][17], b[4][17];
	struct json_object *report;
	int status, i;

	snprintf(stream_img, sizeof(stream_img), "%s/stream.img", self->dir);
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=32M", "--mem", "128M"), 0);
	ASSERT_TRUE(wait_guest_running(sock));
	ASSERT_EQ(CLI("ctl", sock, "pause"), 0);
	ASSERT_EQ(CLI("snapshot", self->img, "--control", sock), 0);
	report = JSON(&status, "snapshot", stream_img, "--control", sock, "--via-stream", "--json");
	TH_LOG("stream: status %d, %s", status, self->err);
	ASSERT_EQ(status, 0);
	EXPECT_STREQ(str_of(report, "io_engine"), "stream");
	json_object_put(report);
	footer_digests(_r, self->img, a);
	footer_digests(_r, stream_img, b);
	for (i = 0; i < 4; i++)
		EXPECT_STREQ(a[i], b[i]);
	EXPECT_EQ(CLI("image", "verify", "--deep", stream_img), 0);
	ASSERT_EQ(CLI("ctl", sock, "resume"), 0);
	/* Live, into the same slots: generation 2, exact at its pause. */
	ASSERT_EQ(CLI("snapshot", stream_img, "--control", sock, "--via-stream"), 0);
	EXPECT_NOT_NULL(strstr(self->out, "generation 2"));
	status = CLI("image", "verify", "--deep", stream_img);
	TH_LOG("verify: %s%s", self->out, self->err);
	EXPECT_EQ(status, 0);
	expect_guest_runs(_r, sock);
}

/*
 * What a control client gets with snapshot-begin cannot change guest memory:
 * every descriptor is read-only and sealed against resizing, and the VM
 * goes on after a client that tried.
 */
TEST_F(snap, session_hands_out_sealed_read_only_memfds)
{
	const char *sock = self->vm.sock;
	const char *req = "{\"cmd\":\"snapshot-begin\"}\n";
	int fds[8], fd, i, seals;
	unsigned int nr = 0;
	char *line;

	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=8M", "--mem", "64M"), 0);
	ASSERT_TRUE(wait_guest_running(sock));
	fd = ctl_open(sock);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(send_all(fd, req, strlen(req)), 0);
	line = recv_line_fds(fd, fds, 8, &nr);
	ASSERT_NOT_NULL(line);
	free(line);
	ASSERT_EQ(nr, 5); /* the shared area and 4 regions */
	for (i = 0; i < (int)nr; i++) {
		void *p;

		EXPECT_EQ(fcntl(fds[i], F_GETFL) & O_ACCMODE, O_RDONLY);
		seals = fcntl(fds[i], F_GET_SEALS);
		EXPECT_TRUE(seals >= 0 && (seals & F_SEAL_SHRINK) && (seals & F_SEAL_GROW));
		EXPECT_NE(ftruncate(fds[i], 0), 0);
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
		EXPECT_EQ(p, MAP_FAILED);
		if (p != MAP_FAILED)
			munmap(p, 4096);
		close(fds[i]);
	}
	close(fd); /* the session ends with the connection */
	expect_guest_runs(_r, sock);
}

/* Another user who reaches the socket (here: made world-writable) gets no guest memory. */
TEST_F(snap, snapshot_begin_is_only_for_root_and_the_vms_user)
{
	const char *sock = self->vm.sock;
	int pipefd[2], status;
	char reply[512] = "";
	ssize_t n;
	pid_t pid;

	TEST_REQUIRE(geteuid() == 0, "needs root to become another user");
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=8M", "--mem", "64M"), 0);
	ASSERT_TRUE(wait_guest_running(sock));
	ASSERT_EQ(chmod(self->vm.dir, 0755), 0);
	ASSERT_EQ(chmod(sock, 0666), 0);
	ASSERT_EQ(pipe(pipefd), 0);
	pid = fork();
	if (pid == 0) {
		struct json_object *r;
		const char *err;

		close(pipefd[0]);
		if (setresgid(12345, 12345, 12345) || setresuid(12345, 12345, 12345))
			_exit(2);
		r = call(sock, "{\"cmd\":\"snapshot-begin\"}");
		err = str_of(r, "error");
		if (write(pipefd[1], err ? err : "(no error)", strlen(err ? err : "(no error)")) <
		    0)
			_exit(3);
		_exit(ok_of(r) == 0 ? 0 : 1);
	}
	close(pipefd[1]);
	n = read(pipefd[0], reply, sizeof(reply) - 1);
	reply[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	TH_LOG("uid 12345: %s", reply);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_NOT_NULL(strstr(reply, "only root or the VM's own user"));
	expect_guest_runs(_r, sock);
}

TEST_HARNESS_MAIN
