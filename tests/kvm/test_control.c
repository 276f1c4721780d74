// SPDX-License-Identifier: GPL-2.0
/*
 * The control socket of a real `kvmsnap run` with the dirtier guest: status,
 * pause and resume (with the pause latency), digests, stats and dirty pages,
 * several clients, malformed input, quit, a second run on the same socket,
 * and `kvmsnap ctl`. The protocol is spoken with raw socket code (tests/lib/vmproc.h).
 */
#include <sys/stat.h>

#include "../lib/vmproc.h"

#define RAM_BYTES	134217728ULL /* --mem 128M */
#define WS_PAGES	8192	     /* dirtier:ws=32M */
#define GUEST_OWN_PAGES 256 /* generous: the dirtier writes 2 pages outside its working set */

/* Start `kvmsnap run` on the dirtier with nr_cpus vCPUs; 0 once the socket answers. */
static int vm_start(struct vm *vm, unsigned int nr_cpus)
{
	char cpus[16];

	snprintf(cpus, sizeof(cpus), "%u", nr_cpus);
	return VM_SPAWN(vm, "--guest", "dirtier:ws=32M", "--mem", "128M", "--vcpus", cpus);
}

/* ---- one VM per test ---- */

FIXTURE(ctl)
{
	struct vm vm;
};

FIXTURE_SETUP(ctl)
{
	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened");
	ASSERT_EQ(access(kvmsnap_bin(), X_OK), 0);
	ASSERT_EQ(vm_start(&self->vm, 1), 0);
}

FIXTURE_TEARDOWN(ctl)
{
	/* Exit status 0 after quit: also no sanitizer report in kvmsnap. */
	if (self->vm.pid > 0)
		EXPECT_EQ(vm_stop(&self->vm), 0);
	else
		vm_stop(&self->vm);
}

TEST_F(ctl, status_reports_the_vm)
{
	static const char *const names[] = {"pc.ram", "vga.vram", "pc.bios", "acpi.tables"};
	struct json_object *r = call(self->vm.sock, "{\"cmd\":\"status\"}"), *regions, *flags;
	size_t i;

	ASSERT_NOT_NULL(r);
	ASSERT_EQ(ok_of(r), 1);
	EXPECT_STREQ(str_of(r, "state"), "running");
	EXPECT_EQ(u64_of(r, "vcpus"), 1);
	EXPECT_EQ(u64_of(r, "mem"), RAM_BYTES);
	EXPECT_STREQ(str_of(r, "guest"), "dirtier:ws=32M");
	EXPECT_TRUE(json_object_is_type(get(r, "uptime_ms"), json_type_int));
	EXPECT_FALSE(json_object_get_boolean(get(r, "dirty_log")));
	regions = get(r, "regions");
	ASSERT_EQ(len_of(regions), 4);
	for (i = 0; i < 4; i++) {
		struct json_object *g = at(regions, i);

		EXPECT_STREQ(str_of(g, "name"), names[i]);
		EXPECT_GT(u64_of(g, "size"), 0);
		EXPECT_GE(len_of(get(g, "ranges")), 1);
	}
	EXPECT_EQ(u64_of(at(regions, 0), "size"), RAM_BYTES);
	flags = get(at(regions, 0), "flags");
	EXPECT_STREQ(json_object_get_string(at(flags, 0)), "ram");
	flags = get(at(regions, 2), "flags");
	EXPECT_STREQ(json_object_get_string(at(flags, 0)), "readonly");
	/* vga.vram: the text window and the linear framebuffer alias offset 0. */
	EXPECT_EQ(len_of(get(at(regions, 1), "ranges")), 2);
	json_object_put(r);
}

TEST_F(ctl, pause_digest_resume)
{
	struct json_object *r, *d1, *d2;
	const char *sock = self->vm.sock;
	size_t i;

	ASSERT_TRUE(wait_guest_running(sock));
	r = call(sock, "{\"cmd\":\"pause\"}");
	ASSERT_EQ(ok_of(r), 1);
	EXPECT_TRUE(json_object_is_type(get(r, "latency_us"), json_type_int));
	EXPECT_GE(json_object_get_int64(get(r, "latency_us")), 0);
	TH_LOG("pause latency %" PRIu64 " us", u64_of(r, "latency_us"));
	json_object_put(r);

	r = call(sock, "{\"cmd\":\"status\"}");
	EXPECT_STREQ(str_of(r, "state"), "paused");
	json_object_put(r);
	r = call(sock, "{\"cmd\":\"pause\"}");
	EXPECT_EQ(ok_of(r), 0);
	EXPECT_STREQ(str_of(r, "error"), "already paused");
	json_object_put(r);

	/* Paused: nothing changes memory, so every digest repeats. */
	d1 = call(sock, "{\"cmd\":\"digest\"}");
	sleep_ms(100);
	d2 = call(sock, "{\"cmd\":\"digest\"}");
	ASSERT_EQ(ok_of(d1), 1);
	ASSERT_EQ(ok_of(d2), 1);
	EXPECT_STREQ(str_of(d1, "algorithm"), "xxh3-page-tree");
	EXPECT_TRUE(json_object_get_boolean(get(d1, "paused")));
	ASSERT_EQ(len_of(get(d1, "regions")), 4);
	for (i = 0; i < 4; i++) {
		struct json_object *a = at(get(d1, "regions"), i), *b = at(get(d2, "regions"), i);
		const char *da = str_of(a, "digest");

		EXPECT_STREQ(str_of(a, "name"), str_of(b, "name"));
		EXPECT_STREQ(da, str_of(b, "digest"));
		EXPECT_EQ(strlen(da ?: ""), 16);
		EXPECT_EQ(strspn(da ?: "", "0123456789abcdef"), 16);
	}
	json_object_put(d1);
	json_object_put(d2);

	r = call(sock, "{\"cmd\":\"resume\"}");
	EXPECT_EQ(ok_of(r), 1);
	json_object_put(r);
	r = call(sock, "{\"cmd\":\"resume\"}");
	EXPECT_STREQ(str_of(r, "error"), "not paused");
	json_object_put(r);
	r = call(sock, "{\"cmd\":\"status\"}");
	EXPECT_STREQ(str_of(r, "state"), "running");
	json_object_put(r);
}

TEST_F(ctl, digest_changes_while_running)
{
	struct json_object *d1, *d2;
	const char *a, *b;

	uint64_t p0;

	ASSERT_TRUE(wait_guest_running(self->vm.sock));
	d1 = call(self->vm.sock, "{\"cmd\":\"digest\"}");
	/* Wait for the guest's next progress report: it has rewritten pages since. */
	p0 = guest_pages(self->vm.sock);
	ASSERT_GT(wait_pages_above(self->vm.sock, p0, progress_timeout_ms), p0);
	d2 = call(self->vm.sock, "{\"cmd\":\"digest\"}");
	ASSERT_EQ(ok_of(d1), 1);
	ASSERT_EQ(ok_of(d2), 1);
	EXPECT_FALSE(json_object_get_boolean(get(d1, "paused")));
	a = digest_of(d1, "pc.ram");
	b = digest_of(d2, "pc.ram");
	ASSERT_NOT_NULL(a);
	ASSERT_NOT_NULL(b);
	EXPECT_STRNE(a, b);
	/* The guest never writes the firmware. */
	EXPECT_STREQ(digest_of(d1, "pc.bios"), digest_of(d2, "pc.bios"));
	json_object_put(d1);
	json_object_put(d2);
}

/* A stats call, and when it was sent and its reply came: the VM's interval ends in between. */
struct timed_stats {
	struct json_object *r;
	uint64_t sent, recv;
};

static void timed_stats(struct th_result *_r, const char *sock, struct timed_stats *t)
{
	json_object_put(t->r);
	t->sent = ms_now();
	t->r = call(sock, "{\"cmd\":\"stats\"}");
	t->recv = ms_now();
	ASSERT_EQ(ok_of(t->r), 1);
}

/* interval_ms of b spans from a's request to b's, to the ms it truncates to. */
static void expect_interval(struct th_result *_r, const struct timed_stats *a,
			    const struct timed_stats *b)
{
	uint64_t ms = u64_of(b->r, "interval_ms");

	EXPECT_GE(ms + 1, b->sent - a->recv);
	EXPECT_LE(ms, b->recv - a->sent + 1);
}

TEST_F(ctl, stats_show_progress)
{
	struct timed_stats s1 = {0}, s2 = {0};
	struct json_object *cpu;
	uint64_t deadline = ms_now() + progress_timeout_ms;

	ASSERT_TRUE(wait_guest_running(self->vm.sock));
	timed_stats(_r, self->vm.sock, &s1);
	/* Each stats starts the next interval: ask until one shows progress since the last. */
	for (;;) {
		sleep_ms(20);
		timed_stats(_r, self->vm.sock, &s2);
		if (u64_of(s2.r, "pages") > u64_of(s1.r, "pages") || ms_now() > deadline)
			break;
		json_object_put(s1.r);
		s1 = s2;
		s2.r = NULL;
	}
	ASSERT_GT(u64_of(s2.r, "pages"), u64_of(s1.r, "pages"));
	expect_interval(_r, &s1, &s2);
	EXPECT_GT(u64_of(s2.r, "pages_per_sec"), 0);
	EXPECT_FALSE(json_object_get_boolean(get(s2.r, "dirty_log")));
	EXPECT_NULL(get(s2.r, "dirty"));
	ASSERT_EQ(len_of(get(s2.r, "cpus")), 1);
	cpu = at(get(s2.r, "cpus"), 0);
	EXPECT_EQ(u64_of(cpu, "cpu"), 0);
	EXPECT_TRUE(json_object_get_boolean(get(cpu, "ready")));
	EXPECT_EQ(u64_of(cpu, "pages"), u64_of(s2.r, "pages"));
	EXPECT_GT(u64_of(cpu, "exits"), 0);
	TH_LOG("guest progress: %" PRIu64 " pages/s over %" PRIu64 " ms",
	       u64_of(s2.r, "pages_per_sec"), u64_of(s2.r, "interval_ms"));
	json_object_put(s1.r);
	json_object_put(s2.r);
}

/* The guest's completed passes, summed over its vCPUs, in a stats reply. */
static uint64_t passes_of(struct json_object *r)
{
	return u64_of(r, "passes");
}

/*
 * Every interval of the dirty log in which the guest rewrote its whole
 * working set must count all of it. We cannot watch the passes counter
 * without ending the interval (stats fetches and clears the log), so an
 * interval too short for the guest is not judged: the next one is twice as
 * long, up to progress_timeout_ms in all.
 *
 * The first interval starts with the dirty log, turned on while the VM is
 * paused: its passes counter then says exactly where the guest is, and a
 * pass completed after the one in progress was written inside the interval.
 * Later intervals start at a stats reply, whose passes are read just before
 * the log is cleared: a pass may end in between, so they need one more.
 */
TEST_F(ctl, dirty_log_counts_dirty_pages)
{
	const char *sock = self->vm.sock;
	struct timed_stats prev = {0}, cur = {0};
	uint64_t deadline, start_passes, need;
	unsigned int wait = 50, judged = 0;
	struct json_object *r;
	int64_t ram, vram;

	ASSERT_TRUE(wait_guest_running(sock));
	ASSERT_TRUE(call_ok(sock, "{\"cmd\":\"pause\"}"));
	timed_stats(_r, sock, &prev);
	start_passes = passes_of(prev.r);
	need = 2;
	prev.sent = ms_now();
	r = call(sock, "{\"cmd\":\"dirty-log\",\"enable\":true}");
	prev.recv = ms_now();
	ASSERT_EQ(ok_of(r), 1);
	EXPECT_TRUE(json_object_get_boolean(get(r, "dirty_log")));
	json_object_put(r);
	r = call(sock, "{\"cmd\":\"status\"}");
	EXPECT_TRUE(json_object_get_boolean(get(r, "dirty_log")));
	json_object_put(r);
	ASSERT_TRUE(call_ok(sock, "{\"cmd\":\"resume\"}"));

	/* Two judged intervals: since enabling, then since the previous stats (fetch-and-clear). */
	deadline = ms_now() + progress_timeout_ms;
	while (judged < 2) {
		ASSERT_LT(ms_now(), deadline);
		sleep_ms(wait);
		timed_stats(_r, sock, &cur);
		EXPECT_TRUE(json_object_get_boolean(get(cur.r, "dirty_log")));
		/* The interval starts with the dirty log, not with the VM. */
		expect_interval(_r, &prev, &cur);
		ram = dirty_of(cur.r, "pc.ram");
		vram = dirty_of(cur.r, "vga.vram");
		TH_LOG("dirty in %" PRIu64 " ms, %" PRIu64 " passes: pc.ram %" PRId64
		       " pages, vga.vram %" PRId64,
		       u64_of(cur.r, "interval_ms"), passes_of(cur.r) - start_passes, ram, vram);
		EXPECT_LE(ram, RAM_BYTES / 4096);
		EXPECT_GE(vram, 0);
		EXPECT_LE(vram, (16 << 20) / 4096);
		EXPECT_EQ(dirty_of(cur.r, "pc.bios"), -1); /* read-only: not logged */
		EXPECT_GE(dirty_of(cur.r, "acpi.tables"), 0);
		if (passes_of(cur.r) >= start_passes + need) {
			/*
			 * A whole pass inside the interval: every working-set page
			 * is dirty, and besides them only the guest's own few
			 * (stack, loop state).
			 */
			EXPECT_GE(ram, WS_PAGES);
			EXPECT_LE(ram, WS_PAGES + GUEST_OWN_PAGES);
			judged++;
			wait = 50;
		} else {
			wait *= 2;
		}
		start_passes = passes_of(cur.r);
		need = 3;
		json_object_put(prev.r);
		prev = cur;
		cur.r = NULL;
	}
	json_object_put(prev.r);

	r = call(sock, "{\"cmd\":\"dirty-log\",\"enable\":false}");
	EXPECT_EQ(ok_of(r), 1);
	json_object_put(r);
	r = call(sock, "{\"cmd\":\"stats\"}");
	EXPECT_EQ(ok_of(r), 1);
	EXPECT_FALSE(json_object_get_boolean(get(r, "dirty_log")));
	EXPECT_NULL(get(r, "dirty"));
	json_object_put(r);
}

TEST_F(ctl, clients_in_turn_and_at_once)
{
	const char *sock = self->vm.sock;
	struct json_object *r;
	int a, b, i;

	for (i = 0; i < 20; i++) {
		r = call(sock, "{\"cmd\":\"status\"}");
		ASSERT_EQ(ok_of(r), 1);
		json_object_put(r);
	}
	a = ctl_open(sock);
	b = ctl_open(sock);
	ASSERT_GE(a, 0);
	ASSERT_GE(b, 0);
	/* b asks while a has half a request in: a's partial line does not block b. */
	ASSERT_EQ(send_all(a, "{\"cmd\":", 7), 0);
	r = call_fd(b, "{\"cmd\":\"stats\"}");
	EXPECT_EQ(ok_of(r), 1);
	json_object_put(r);
	r = call_fd(a, "\"status\"}");
	EXPECT_STREQ(str_of(r, "state"), "running");
	json_object_put(r);
	for (i = 0; i < 5; i++) {
		r = call_fd(i & 1 ? a : b, "{\"cmd\":\"digest\"}");
		EXPECT_EQ(ok_of(r), 1);
		json_object_put(r);
	}
	/* Pipelined: three requests in one write, three replies in order. */
	ASSERT_EQ(
	    send_all(a, "{\"cmd\":\"status\"}\n{\"cmd\":\"stats\"}\n{\"cmd\":\"bogus\"}\n", 50), 0);
	r = call_fd(b, "{\"cmd\":\"status\"}");
	EXPECT_EQ(ok_of(r), 1);
	json_object_put(r);
	for (i = 0; i < 3; i++) {
		char *line = recv_line(a);

		ASSERT_NOT_NULL(line);
		r = json_tokener_parse(line);
		free(line);
		EXPECT_EQ(ok_of(r), i < 2);
		if (i == 0)
			EXPECT_NOT_NULL(get(r, "regions"));
		if (i == 1)
			EXPECT_NOT_NULL(get(r, "cpus"));
		json_object_put(r);
	}
	close(a);
	close(b);
}

static void expect_rejected(struct th_result *_r, const char *sock, const char *bytes, size_t len)
{
	int fd = ctl_open(sock);
	char *line;

	ASSERT_GE(fd, 0);
	send_all(fd, bytes, len);
	line = recv_line(fd);
	if (line) {
		struct json_object *r = json_tokener_parse(line);
		/* An error reply with a reason... */
		bool refused = ok_of(r) == 0 && str_of(r, "error") && *str_of(r, "error");

		if (!refused)
			TH_LOG("input %.20s...: unexpected reply %s", bytes, line);
		EXPECT_TRUE(refused);
		json_object_put(r);
		free(line);
	} /* ...or a closed connection. */
	close(fd);
}

TEST_F(ctl, malformed_input_is_refused)
{
	static const char *const lines[] = {
	    "\x01\x02\xff\xfe garbage \x80\n",
	    "[1,2]\n",
	    "{}\n",
	    "{\"cmd\":5}\n",
	    "{\"cmd\":\"launch-missiles\"}\n",
	    "{\"cmd\":\"dirty-log\",\"enable\":\"on\"}\n",
	    "{\"cmd\":\"status\"\n",
	    "\n",
	};
	const char *sock = self->vm.sock;
	size_t i, big_len = 100 * 1024;
	struct json_object *r;
	char *big;
	int fd;

	for (i = 0; i < ARRAY_SIZE(lines); i++)
		expect_rejected(_r, sock, lines[i], strlen(lines[i]));
	big = malloc(big_len + 1);
	ASSERT_NOT_NULL(big);
	memset(big, 'a', big_len);
	big[big_len] = '\n';
	expect_rejected(_r, sock, big, big_len + 1);
	free(big);
	/* Half a request, then gone. */
	fd = ctl_open(sock);
	ASSERT_GE(fd, 0);
	send_all(fd, "{\"cmd\":\"sta", 11);
	close(fd);
	/* The VM still answers, and still runs. */
	r = call(sock, "{\"cmd\":\"status\"}");
	EXPECT_EQ(ok_of(r), 1);
	EXPECT_STREQ(str_of(r, "state"), "running");
	json_object_put(r);
}

TEST_F(ctl, quit_ends_kvmsnap)
{
	struct json_object *r;
	struct stat st;
	int fd, status;

	fd = ctl_open(self->vm.sock);
	ASSERT_GE(fd, 0);
	r = call_fd(fd, "{\"cmd\":\"quit\"}");
	EXPECT_EQ(ok_of(r), 1);
	json_object_put(r);
	close(fd);
	status = wait_exit(self->vm.pid, exit_timeout_ms);
	self->vm.pid = 0;
	EXPECT_EQ(status, 0);
	EXPECT_NE(lstat(self->vm.sock, &st), 0);
	EXPECT_EQ(errno, ENOENT);
}

TEST_F(ctl, second_run_on_a_live_socket_fails)
{
	const char *args[] = {"run",	   "--guest",	  "dirtier:ws=4M", "--mem", "64M",
			      "--control", self->vm.sock, "--serial",	   "none",  NULL};
	static char out[OUT_MAX], err[OUT_MAX];
	struct json_object *r;
	int status;

	status = run_cli(args, out, err);
	EXPECT_NE(status, 0);
	EXPECT_NE(status, -1);
	EXPECT_NOT_NULL(strstr(err, "is in use by another process"));
	err[strcspn(err, "\n")] = '\0';
	TH_LOG("second run: status %d, stderr: %s", status, err);
	/* The first VM and its socket are untouched. */
	r = call(self->vm.sock, "{\"cmd\":\"status\"}");
	EXPECT_EQ(ok_of(r), 1);
	json_object_put(r);
}

TEST_F(ctl, ctl_command)
{
	const char *sock = self->vm.sock;
	const char *status_json[] = {"ctl", sock, "status", "--json", NULL};
	const char *status_text[] = {"ctl", sock, "status", NULL};
	const char *pause[] = {"ctl", sock, "pause", NULL};
	const char *resume[] = {"ctl", sock, "resume", NULL};
	const char *digest[] = {"ctl", sock, "digest", NULL};
	const char *dirty_on[] = {"ctl", sock, "dirty-log", "on", NULL};
	const char *stats[] = {"ctl", sock, "stats", NULL};
	const char *quit[] = {"ctl", sock, "quit", NULL};
	static char out[OUT_MAX], err[OUT_MAX];
	struct json_object *r;

	EXPECT_EQ(run_cli(status_json, out, err), 0);
	EXPECT_EQ(count_lines(out), 1);
	r = json_tokener_parse(out);
	EXPECT_EQ(ok_of(r), 1);
	EXPECT_EQ(u64_of(r, "mem"), RAM_BYTES);
	json_object_put(r);

	EXPECT_EQ(run_cli(status_text, out, err), 0);
	EXPECT_NOT_NULL(strstr(out, "state:     running\n"));
	EXPECT_NOT_NULL(strstr(out, "region pc.ram: 128M, ram"));
	EXPECT_EQ(run_cli(pause, out, err), 0);
	EXPECT_NOT_NULL(strstr(out, "paused in "));
	EXPECT_EQ(run_cli(pause, out, err), 1);
	EXPECT_STREQ(err, "kvmsnap: error: already paused\n");
	EXPECT_EQ(run_cli(digest, out, err), 0);
	EXPECT_NOT_NULL(strstr(out, "paused:    yes\n"));
	EXPECT_NOT_NULL(strstr(out, "pc.ram "));
	EXPECT_EQ(run_cli(resume, out, err), 0);
	EXPECT_EQ(run_cli(dirty_on, out, err), 0);
	EXPECT_STREQ(out, "dirty log: on\n");
	EXPECT_EQ(run_cli(stats, out, err), 0);
	EXPECT_NOT_NULL(strstr(out, "dirty pc.ram: "));
	EXPECT_EQ(run_cli(quit, out, err), 0);
	EXPECT_EQ(wait_exit(self->vm.pid, exit_timeout_ms), 0);
	self->vm.pid = 0;
}

/* ---- without a VM ---- */

TEST(ctl_errors)
{
	char dir[] = "/tmp/kvmsnap-ctl-XXXXXX", sock[64];
	const char *missing[] = {"ctl", sock, "status", NULL};
	const char *bad_cmd[] = {"ctl", sock, "reboot", NULL};
	const char *no_arg[] = {"ctl", sock, "dirty-log", NULL};
	const char *help[] = {"ctl", "--help", NULL};
	static char out[OUT_MAX], err[OUT_MAX];

	ASSERT_EQ(access(kvmsnap_bin(), X_OK), 0);
	ASSERT_NOT_NULL(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/missing.sock", dir);
	EXPECT_EQ(run_cli(missing, out, err), 1);
	EXPECT_EQ(count_lines(err), 1);
	EXPECT_EQ(strncmp(err, "kvmsnap: error: cannot connect to control socket ", 49), 0);
	EXPECT_NOT_NULL(strstr(err, "No such file or directory"));
	EXPECT_STREQ(out, "");
	EXPECT_EQ(run_cli(bad_cmd, out, err), 2);
	EXPECT_EQ(count_lines(err), 1);
	EXPECT_EQ(run_cli(no_arg, out, err), 2);
	EXPECT_EQ(count_lines(err), 1);
	EXPECT_EQ(run_cli(help, out, err), 0);
	EXPECT_NOT_NULL(strstr(out, "usage: kvmsnap ctl PATH"));
	rmdir(dir);
}

/* ---- pause and resume on two vCPUs ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#define PAUSE_ROUNDS 50

FIXTURE(two_vcpus)
{
	struct vm vm;
	int fd;
};

FIXTURE_SETUP(two_vcpus)
{
	self->fd = -1;
	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened");
	ASSERT_EQ(vm_start(&self->vm, 2), 0);
}

FIXTURE_TEARDOWN(two_vcpus)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->vm.pid > 0)
		EXPECT_EQ(vm_stop(&self->vm), 0);
	else
		vm_stop(&self->vm);
}

TEST_F_TIMEOUT(two_vcpus, pause_resume, 120)
{
	uint64_t lat[PAUSE_ROUNDS], before[2], after[2], deadline;
	struct json_object *r, *s1, *s2;
	bool running;
	int i, fd;
	size_t c;

	running = wait_guest_running(self->vm.sock);
	if (!running)
		TH_LOG("the dirtier did not start on both vCPUs");
	ASSERT_TRUE(running);
	fd = self->fd = ctl_open(self->vm.sock);
	ASSERT_GE(fd, 0);
	r = call_fd(fd, "{\"cmd\":\"stats\"}");
	for (c = 0; c < 2; c++)
		before[c] = u64_of(at(get(r, "cpus"), c), "pages");
	json_object_put(r);

	for (i = 0; i < PAUSE_ROUNDS; i++) {
		r = call_fd(fd, "{\"cmd\":\"pause\"}");
		if (ok_of(r) != 1)
			TH_LOG("round %d: pause failed: %s", i, str_of(r, "error") ?: "no reply");
		ASSERT_EQ(ok_of(r), 1);
		lat[i] = u64_of(r, "latency_us");
		json_object_put(r);
		r = call_fd(fd, "{\"cmd\":\"status\"}");
		EXPECT_STREQ(str_of(r, "state"), "paused");
		json_object_put(r);
		/* Every vCPU parked: no progress between two looks. */
		s1 = call_fd(fd, "{\"cmd\":\"stats\"}");
		usleep(2000);
		s2 = call_fd(fd, "{\"cmd\":\"stats\"}");
		EXPECT_EQ(len_of(get(s2, "cpus")), 2);
		EXPECT_EQ(u64_of(s1, "pages"), u64_of(s2, "pages"));
		json_object_put(s1);
		json_object_put(s2);
		r = call_fd(fd, "{\"cmd\":\"resume\"}");
		EXPECT_EQ(ok_of(r), 1);
		json_object_put(r);
		usleep(5000);
	}
	qsort(lat, PAUSE_ROUNDS, sizeof(lat[0]), cmp_u64);
	TH_LOG("pause latency over %d pauses of 2 vCPUs: min %" PRIu64 " us, median %" PRIu64
	       " us, max %" PRIu64 " us",
	       PAUSE_ROUNDS, lat[0], lat[PAUSE_ROUNDS / 2], lat[PAUSE_ROUNDS - 1]);

	/* Both vCPUs still make progress afterwards. */
	deadline = ms_now() + progress_timeout_ms;
	do {
		sleep_ms(20);
		r = call_fd(fd, "{\"cmd\":\"stats\"}");
		for (c = 0; c < 2; c++)
			after[c] = u64_of(at(get(r, "cpus"), c), "pages");
		json_object_put(r);
	} while ((after[0] <= before[0] || after[1] <= before[1]) && ms_now() < deadline);
	for (c = 0; c < 2; c++)
		EXPECT_GT(after[c], before[c]);
}

TEST_HARNESS_MAIN
