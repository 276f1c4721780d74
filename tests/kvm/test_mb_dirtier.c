// SPDX-License-Identifier: GPL-2.0
/*
 * The dirtier built as a Multiboot kernel (build/guests/dirtier-mb.elf):
 * under `kvmsnap run --kernel` it finishes its passes and self-check, and a
 * live snapshot of it restores into a VM that goes on dirtying with every
 * stamp intact; under QEMU (skipped without it) it boots and keeps
 * dirtying, as its scratch-page progress counter shows. Progress is waited
 * for, never timed.
 */
#include "../lib/vmproc.h"

#include <signal.h>

#include "bench/qmp.h"
#include "bench/qemu.h"
#include "guest-abi.h"

#define MB_DIRTIER     "guests/dirtier-mb.elf"
#define RUN_TIMEOUT_MS 60000
#define WS_PAGES       4096  /* ws=16M */
#define QEMU_BOOT_MS   60000 /* firmware and option ROM, then ring 3 */
#define QMP_MS	       10000

FIXTURE(mbd)
{
	char dir[64];
	char kernel[4096];
	struct run run;
	struct vm vm, vm2;
	pid_t qemu;
	struct qmp qmp;
};

FIXTURE_SETUP(mbd)
{
	struct stat st;

	self->qmp.fd = -1;
	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened: %s", strerror(errno));
	snprintf(self->kernel, sizeof(self->kernel), "%s/%s", build_dir(), MB_DIRTIER);
	if (stat(self->kernel, &st))
		TH_LOG("%s: %s (run `make`)", self->kernel, strerror(errno));
	ASSERT_EQ(stat(self->kernel, &st), 0);
	strcpy(self->dir, "/tmp/kvmsnap-mbd-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
}

FIXTURE_TEARDOWN(mbd)
{
	qmp__close(&self->qmp);
	if (self->qemu > 0) {
		kill(self->qemu, SIGKILL);
		waitpid(self->qemu, NULL, 0);
	}
	if (self->vm2.pid > 0)
		vm_stop(&self->vm2);
	if (self->vm.pid > 0)
		vm_stop(&self->vm);
	if (self->dir[0])
		rm_tree(self->dir);
}

static void expect_in(struct th_result *_r, const char *out, const char *what)
{
	if (!strstr(out, what))
		TH_LOG("missing \"%s\" in:\n%s", what, out);
	EXPECT_NOT_NULL(strstr(out, what));
}

TEST_F(mbd, passes_then_self_check)
{
	const char *args[] = {"--kernel", self->kernel, "--append", "ws=4M rate=50 passes=3",
			      "--mem",	  "256M",	NULL};

	ASSERT_EQ(run_guest(&self->run, self->dir, args, RUN_TIMEOUT_MS), 0);
	if (self->run.status != 1)
		TH_LOG("exit status %d\nstderr:\n%sserial:\n%s", self->run.status, self->run.err,
		       self->run.serial);
	/* The dirtier's exit 0: status (0 << 1) | 1. */
	ASSERT_EQ(self->run.status, 1);
	expect_in(_r, self->run.serial, "message port kvmsnap");
	expect_in(_r, self->run.serial, "dirtier: ws 4096 KiB (1024 pages at 0x400000), rate 50");
	expect_in(_r, self->run.serial, "dirtier: 3 passes done, self-check ok\n");
}

TEST_F(mbd, bad_parameter_ends_it)
{
	const char *args[] = {"--kernel", self->kernel, "--append", "ws=16M pattern=zigzag",
			      "--mem",	  "256M",	NULL};

	ASSERT_EQ(run_guest(&self->run, self->dir, args, RUN_TIMEOUT_MS), 0);
	/* RT_EXIT_BAD_PARAMS (0x74), through the message port. */
	EXPECT_EQ(self->run.status, 0x74 << 1 | 1);
	expect_in(_r, self->run.serial, "bad parameter 'pattern=zigzag'");
}

/* Wait until the VM's page counter reaches at least min; false at the deadline. */
static bool wait_pages_at_least(const char *sock, uint64_t min)
{
	return wait_pages_above(sock, min - 1, progress_timeout_ms) >= min;
}

TEST_F_TIMEOUT(mbd, snapshot_restore_goes_on, 240)
{
	char img[128], err[OUT_MAX], state[32];
	uint64_t pages;
	int status;
	struct json_object *o;

	snprintf(img, sizeof(img), "%s/img", self->dir);
	ASSERT_EQ(VM_SPAWN(&self->vm, "--kernel", self->kernel, "--append", "ws=16M rate=50",
			   "--mem", "256M"),
		  0);
	ASSERT_TRUE(wait_guest_running(self->vm.sock));
	/* A pass behind it, so the image holds stamps to check. */
	ASSERT_TRUE(wait_pages_at_least(self->vm.sock, WS_PAGES));

	o = CLI_JSON(&status, err, "snapshot", img, "--control", self->vm.sock, "--json");
	if (status)
		TH_LOG("snapshot: status %d: %s", status, err);
	ASSERT_EQ(status, 0);
	json_object_put(o);
	EXPECT_EQ(vm_stop(&self->vm), 0);
	self->vm.pid = 0;

	ASSERT_EQ(VM_SPAWN_CMD(&self->vm2, "restore", img), 0);
	pages = guest_pages(self->vm2.sock);
	TH_LOG("restored at %llu pages", (unsigned long long)pages);
	EXPECT_GT(pages, 0);
	/* Two full passes on: each page's stamp is checked before it is rewritten. */
	EXPECT_TRUE(wait_pages_at_least(self->vm2.sock, pages + 2 * WS_PAGES));
	EXPECT_STREQ(vm_state(self->vm2.sock, state, sizeof(state)), "running");
	EXPECT_EQ(vm_stop(&self->vm2), 0);
	self->vm2.pid = 0;
}

static pid_t spawn_qemu(const char *qemu, const char *kernel, const char *append,
			const char *serial, const char *qmp, const char *log)
{
	char serial_arg[256], qmp_arg[256];
	pid_t pid;

	snprintf(serial_arg, sizeof(serial_arg), "file:%s", serial);
	snprintf(qmp_arg, sizeof(qmp_arg), "unix:%s,server=on,wait=off", qmp);
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp(qemu, qemu, "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "256",
		       "-kernel", kernel, "-append", append, "-display", "none", "-serial",
		       serial_arg, "-no-reboot", "-nodefaults", "-qmp", qmp_arg, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* The scratch page's PROGRESS once it is at least min (or the deadline passed). */
static uint64_t qemu_pages_at_least(struct th_result *_r, struct qmp *q, uint64_t min)
{
	uint64_t deadline = ms_now() + QEMU_BOOT_MS, v = 0;
	struct error err = {0};

	while (ms_now() < deadline) {
		int ret =
		    qmp__read_u64(q, DIRTIER_MB_SCRATCH_GPA + MSGPORT_PROGRESS, &v, QMP_MS, &err);

		if (ret)
			TH_LOG("%s", err.msg);
		ASSERT_EQ(ret, 0);
		if (v >= min)
			break;
		sleep_ms(50);
	}
	return v;
}

TEST_F_TIMEOUT(mbd, runs_under_qemu, 240)
{
	const char *qemu = bench_qemu__find();
	char serial[128], sock[128], log[128], out[OUT_MAX];
	struct json_object *st = NULL;
	struct error err = {0};
	uint64_t pages;
	int ret;

	TEST_REQUIRE(qemu, "no qemu-system-x86_64 in PATH (or $KVMSNAP_QEMU)");
	snprintf(serial, sizeof(serial), "%s/serial", self->dir);
	snprintf(sock, sizeof(sock), "%s/qmp", self->dir);
	snprintf(log, sizeof(log), "%s/qemu.log", self->dir);
	self->qemu = spawn_qemu(qemu, self->kernel, "ws=16M rate=50", serial, sock, log);
	ASSERT_GT(self->qemu, 0);
	ret = qmp__connect(&self->qmp, sock, QEMU_BOOT_MS, &err);
	if (ret) {
		read_file(log, out, sizeof(out));
		TH_LOG("%s; QEMU said: %s", err.msg, out);
	}
	ASSERT_EQ(ret, 0);

	/* A first pass done, then two more: it keeps going, every stamp checked. */
	pages = qemu_pages_at_least(_r, &self->qmp, WS_PAGES);
	ASSERT_GE(pages, WS_PAGES);
	EXPECT_GE(qemu_pages_at_least(_r, &self->qmp, pages + 2 * WS_PAGES), pages + 2 * WS_PAGES);
	/* A failed stamp check would have stopped the counter; QEMU runs on. */
	ASSERT_EQ(qmp__call(&self->qmp, "query-status", NULL, &st, QMP_MS, &err), 0);
	EXPECT_STREQ(json_object_get_string(json_object_object_get(st, "status")), "running");
	json_object_put(st);

	read_file(serial, out, sizeof(out));
	expect_in(_r, out, "message port none (scratch page)");
}

TEST_HARNESS_MAIN
