// SPDX-License-Identifier: GPL-2.0
/*
 * The command line of the real binary: every bad input to `kvmsnap run`
 * ends it with status 2, nothing on stdout and exactly one stderr line
 * "kvmsnap: error: ..." that names the cause; --help and the top-level
 * command dispatch; SIGTERM and SIGINT end a running VM with 128+N and
 * remove its control socket.
 */
#define RUN_TIMEOUT_MS	  30000 /* a bad-input run is far quicker */
#define SOCKET_TIMEOUT_MS 30000 /* until the control socket exists */
#define SIGNAL_DELAY_MS	  300	/* after the start, as a user would */
#define SIGNAL_EXIT_MS	  15000 /* from the signal to the exit */

#include "../lib/vmproc.h"

struct result {
	int status; /* exit status; -1 timed out, -2 killed by a signal */
	char out[OUT_MAX];
	char err[OUT_MAX];
};

/* Start `kvmsnap ARGS...`, stdout and stderr in DIR/out and DIR/err. */
static pid_t spawn(const char *dir, const char *const *args)
{
	char out[256], err[256];

	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(err, sizeof(err), "%s/err", dir);
	return spawn_io(args, "/dev/null", out, err, false);
}

static void collect(struct result *r, const char *dir)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/out", dir);
	read_file(path, r->out, sizeof(r->out));
	unlink(path);
	snprintf(path, sizeof(path), "%s/err", dir);
	read_file(path, r->err, sizeof(r->err));
	unlink(path);
}

/* Run `kvmsnap ARGS...` to the end. */
static void run(struct result *r, const char *dir, const char *const *args)
{
	pid_t pid = spawn(dir, args);

	memset(r, 0, sizeof(*r));
	r->status = pid > 0 ? wait_or_kill(pid, RUN_TIMEOUT_MS) : -2;
	collect(r, dir);
}

static void log_run(const struct result *r, const char *const *args)
{
	char cmd[1024] = "kvmsnap";
	size_t len;

	for (; *args; args++) {
		len = strlen(cmd);
		snprintf(cmd + len, sizeof(cmd) - len, " %s", *args);
	}
	TH_LOG("%s: exit status %d\nstdout:\n%sstderr:\n%s", cmd, r->status, r->out, r->err);
}

FIXTURE(cli)
{
	char dir[64];
	struct result res;
	pid_t pid;
};

static void cli_setup(struct _fixture_cli *self, struct th_result *_r)
{
	if (access(kvmsnap_bin(), X_OK) < 0)
		TH_LOG("%s: %s (run `make`)", kvmsnap_bin(), strerror(errno));
	ASSERT_EQ(access(kvmsnap_bin(), X_OK), 0);
	strcpy(self->dir, "/tmp/kvmsnap-cli-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
}

static void cli_teardown(struct _fixture_cli *self)
{
	if (self->pid > 0) {
		kill(self->pid, SIGKILL);
		waitpid(self->pid, NULL, 0);
	}
	rm_tree(self->dir);
}

FIXTURE_SETUP(cli)
{
	cli_setup(self, _r);
}

FIXTURE_TEARDOWN(cli)
{
	cli_teardown(self);
}

/*
 * Bad input: status 2, no stdout, one stderr line "kvmsnap: error: ..."
 * holding both key words (what2 may be NULL).
 */
static void expect_error(struct _fixture_cli *self, struct th_result *_r, const char *const *args,
			 const char *what1, const char *what2)
{
	struct result *r = &self->res;

	run(r, self->dir, args);
	if (r->status != 2 || count_lines(r->err) != 1 || strncmp(r->err, "kvmsnap: error:", 15) ||
	    !strstr(r->err, what1) || (what2 && !strstr(r->err, what2)) || r->out[0])
		log_run(r, args);
	EXPECT_EQ(r->status, 2);
	EXPECT_EQ(count_lines(r->err), 1);
	EXPECT_EQ(strncmp(r->err, "kvmsnap: error:", 15), 0);
	EXPECT_NOT_NULL(strstr(r->err, what1));
	if (what2)
		EXPECT_NOT_NULL(strstr(r->err, what2));
	EXPECT_STREQ(r->out, "");
}

/* A test that `kvmsnap run ARGS...` fails naming what1 and what2. */
#define BAD_RUN(name, what1, what2, ...)                         \
	TEST_F(cli, name)                                        \
	{                                                        \
		const char *args[] = {"run", __VA_ARGS__, NULL}; \
		expect_error(self, _r, args, what1, what2);      \
	}

/* Parsing. */
BAD_RUN(unknown_option, "unknown option", "--bogus", "--guest", "hello", "--bogus")
BAD_RUN(unknown_short_option, "unknown option", "-x", "--guest", "hello", "-x")
/* An unknown letter inside a group of short options. */
BAD_RUN(unknown_short_option_grouped, "unknown option", "-x", "-xv", "--guest", "hello")
BAD_RUN(missing_value, "--mem", "value", "--guest", "hello", "--mem")
BAD_RUN(unexpected_argument, "unexpected argument", "extra", "--guest", "hello", "extra")
BAD_RUN(mem_not_a_size, "--mem 1X", "not a size", "--guest", "hello", "--mem", "1X")
BAD_RUN(mem_zero, "--mem 0", "between", "--guest", "hello", "--mem", "0")
BAD_RUN(mem_too_large, "--mem 100G", "64G", "--guest", "hello", "--mem", "100G")
BAD_RUN(mem_unaligned, "--mem 1000001", "multiple of 4K", "--guest", "hello", "--mem", "1000001")
BAD_RUN(vcpus_zero, "--vcpus 0", "1 to 64", "--guest", "hello", "--vcpus", "0")
BAD_RUN(vcpus_too_many, "--vcpus 65", "1 to 64", "--guest", "hello", "--vcpus", "65")
BAD_RUN(vcpus_not_a_number, "--vcpus two", "1 to 64", "--guest", "hello", "--vcpus", "two")
BAD_RUN(vram_too_large, "--vram 1G", "256M", "--guest", "hello", "--vram", "1G")
BAD_RUN(guest_and_kernel, "exactly one of", NULL, "--guest", "hello", "--kernel", "/bin/true")
BAD_RUN(neither_guest_nor_kernel, "exactly one of", NULL, "--mem", "64M")
BAD_RUN(append_without_kernel, "--append", "--kernel", "--guest", "hello", "--append", "x")
BAD_RUN(decompress_without_kernel, "--decompress", "--kernel", "--guest", "hello", "--decompress",
	"guest")
BAD_RUN(decompress_bad_value, "--decompress sideways", "host or guest", "--kernel", "/bin/true",
	"--decompress", "sideways")
BAD_RUN(kernel_cache_empty, "--kernel-cache", "give a folder, or none", "--kernel", "/bin/true",
	"--kernel-cache", "")
BAD_RUN(kernel_cache_without_kernel, "--kernel-cache", "--kernel", "--guest", "hello",
	"--kernel-cache", "/tmp")
BAD_RUN(no_such_guest, "nosuch", "no such built-in guest", "--guest", "nosuch")

/* Opening things: the serial file, the KVM device, the control socket. */
BAD_RUN(serial_in_missing_dir, "/nonexistent-dir/x", "No such file or directory", "--guest",
	"hello", "--serial", "/nonexistent-dir/x")
BAD_RUN(kvm_device_missing, "/nonexistent does not exist", "KVM is not available", "--guest",
	"hello", "--serial", "none", "--kvm-device", "/nonexistent")
/* /dev/null opens but answers no KVM ioctl. */
BAD_RUN(kvm_device_not_kvm, "/dev/null", "KVM", "--guest", "hello", "--serial", "none",
	"--kvm-device", "/dev/null")
BAD_RUN(control_path_empty, "control socket", "empty", "--guest", "hello", "--serial", "none",
	"--control", "")

TEST_F(cli, control_path_is_regular_file)
{
	const char *args[] = {"run",  "--guest",   "hello", "--serial",
			      "none", "--control", NULL,    NULL};
	char path[128], buf[16];
	int fd;

	snprintf(path, sizeof(path), "%s/file", self->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, "keep me\n", 8), 8);
	close(fd);
	args[6] = path;
	expect_error(self, _r, args, path, "not a socket");
	/* Refused, not replaced. */
	read_file(path, buf, sizeof(buf));
	EXPECT_STREQ(buf, "keep me\n");
}

TEST_F(cli, control_path_too_long)
{
	const char *args[] = {"run",  "--guest",   "hello", "--serial",
			      "none", "--control", NULL,    NULL};
	char path[201];
	struct stat st;

	snprintf(path, sizeof(path), "%s/", self->dir);
	memset(path + strlen(path), 's', sizeof(path) - 1 - strlen(path));
	path[sizeof(path) - 1] = '\0';
	ASSERT_EQ(strlen(path), 200);
	args[6] = path;
	expect_error(self, _r, args, "too long", NULL);
	EXPECT_NE(stat(path, &st), 0);
}

/* Help and the top-level dispatch. */
TEST_F(cli, run_help)
{
	const char *args[] = {"run", "--help", NULL};
	struct result *r = &self->res;

	run(r, self->dir, args);
	if (r->status != 0)
		log_run(r, args);
	ASSERT_EQ(r->status, 0);
	EXPECT_NOT_NULL(strstr(r->out, "usage: kvmsnap run"));
	EXPECT_NOT_NULL(strstr(r->out, "--keep-caps"));
	EXPECT_NOT_NULL(strstr(r->out, "KVMSNAP_KEEP_CAPS"));
	EXPECT_NOT_NULL(strstr(r->out, "Built-in guests:"));
	EXPECT_NOT_NULL(strstr(r->out, "\n  hello "));
	EXPECT_NOT_NULL(strstr(r->out, "\n  dirtier "));
	EXPECT_STREQ(r->err, "");
}

TEST_F(cli, top_level_help)
{
	const char *args[] = {"--help", NULL};
	struct result *r = &self->res;

	run(r, self->dir, args);
	ASSERT_EQ(r->status, 0);
	EXPECT_NOT_NULL(strstr(r->out, "usage: kvmsnap"));
	EXPECT_NOT_NULL(strstr(r->out, "\n  run "));
	EXPECT_NOT_NULL(strstr(r->out, "\n  ctl "));
	EXPECT_STREQ(r->err, "");
}

TEST_F(cli, unknown_command)
{
	const char *args[] = {"nosuchcmd", NULL};

	expect_error(self, _r, args, "nosuchcmd", "not a kvmsnap command");
}

TEST_F(cli, no_arguments)
{
	const char *args[] = {NULL};
	struct result *r = &self->res;

	run(r, self->dir, args);
	EXPECT_EQ(r->status, 2);
	EXPECT_STREQ(r->out, "");
	EXPECT_NOT_NULL(strstr(r->err, "usage: kvmsnap"));
}

/*
 * A signal ends a running VM with 128+N, promptly, without an error line,
 * and the control socket file goes away.
 */
static void expect_signal_exit(struct _fixture_cli *self, struct th_result *_r, int sig)
{
	char sock[128];
	const char *args[] = {"run",	  "--guest", "dirtier:ws=8M", "--mem", "64M",
			      "--serial", "none",    "--control",     sock,    NULL};
	uint64_t start, deadline, t0;
	struct stat st;
	int status;

	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened: %s", strerror(errno));
	snprintf(sock, sizeof(sock), "%s/ctl.sock", self->dir);
	start = ms_now();
	self->pid = spawn(self->dir, args);
	ASSERT_GT(self->pid, 0);
	/* The socket exists only once kvmsnap routes signals to its signal thread. */
	deadline = start + SOCKET_TIMEOUT_MS;
	while (stat(sock, &st) && ms_now() < deadline && waitpid(self->pid, &status, WNOHANG) == 0)
		usleep(5000);
	if (stat(sock, &st)) {
		TH_LOG("the control socket %s did not appear", sock);
		collect(&self->res, self->dir);
		TH_LOG("stderr:\n%s", self->res.err);
	}
	ASSERT_EQ(stat(sock, &st), 0);
	if (ms_now() < start + SIGNAL_DELAY_MS)
		usleep((start + SIGNAL_DELAY_MS - ms_now()) * 1000);

	t0 = ms_now();
	ASSERT_EQ(kill(self->pid, sig), 0);
	self->res.status = wait_or_kill(self->pid, SIGNAL_EXIT_MS);
	self->pid = 0;
	TH_LOG("exited %" PRIu64 " ms after signal %d", ms_now() - t0, sig);
	collect(&self->res, self->dir);
	if (self->res.status != 128 + sig)
		TH_LOG("exit status %d, stderr:\n%s", self->res.status, self->res.err);
	EXPECT_EQ(self->res.status, 128 + sig);
	EXPECT_NULL(strstr(self->res.err, "kvmsnap: error"));
	EXPECT_NE(stat(sock, &st), 0);
}

/* The folder and process of the cli fixture, for one signal per variant. */
FIXTURE(signal)
{
	struct _fixture_cli c;
};

FIXTURE_VARIANT(signal)
{
	int sig;
};

FIXTURE_VARIANT_ADD(signal, sigterm){.sig = SIGTERM};
FIXTURE_VARIANT_ADD(signal, sigint){.sig = SIGINT};

FIXTURE_SETUP(signal)
{
	cli_setup(&self->c, _r);
}

FIXTURE_TEARDOWN(signal)
{
	cli_teardown(&self->c);
}

TEST_F(signal, ends_vm)
{
	expect_signal_exit(&self->c, _r, variant->sig);
}

TEST_HARNESS_MAIN
