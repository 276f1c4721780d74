// SPDX-License-Identifier: GPL-2.0
/*
 * A stock Linux kernel under `kvmsnap run --kernel bzImage --initrd`:
 * Debian's kernel with an initramfs built here from the static busybox.
 * Its /init prints a marker and a counter on ttyS0 while it rewrites memory,
 * answers commands typed on the serial line, and powers off or reboots when
 * told. Then the same guest saved live, and restored eager and lazy into
 * new VMs: the counter goes on, the shell answers, and dmesg has no
 * timekeeping or lockup warnings; also after a pause between save and
 * restore (the wall clock catches up, or with --clock continue lags), and
 * through incremental snapshots into a two-slot image.
 *
 * Kernel mode is emulated on PVM hosts (about a million instructions a
 * second): there the boots skip, and they run in the nested VM
 * (tools/nested/run-kvm-tests). The refusals of bad kernels boot nothing
 * and run anywhere with /dev/kvm.
 *
 * The kernel: $KVMSNAP_LINUX_KERNEL, else the one tools/nested/run-kvm-tests
 * unpacked into $KVMSNAP_BUILD/nested/cache.
 */
#include <glob.h>
#include <limits.h>
#include <sys/wait.h>

#include "../lib/cpio.h"
#include "../lib/elf-build.h"
#include "../lib/vmproc.h"

#define MIN(a, b)	 ((a) < (b) ? (a) : (b))
#define MAX(a, b)	 ((a) > (b) ? (a) : (b))
#define BUSYBOX		 "/bin/busybox"
#define MEM		 "256M"
#define BOOT_TIMEOUT_MS	 300000	     /* to /init: ~15 s in the nested VM, far longer when loaded */
#define GUEST_OUT_MAX	 (512 << 10) /* the boot log and a few minutes of ticks */
#define REPLY_TIMEOUT_MS 120000
#define END_TIMEOUT_MS	 120000
#define TEST_TIMEOUT_S	 400 /* one boot, with room for a loaded nested VM */
#define MARKER		 "kvmsnap-linux: init up"
#define PAUSE_S		 5 /* between a snapshot and its restore, for the clock tests */
#define CMDLINE		 "console=ttyS0 panic=-1 pci=off"
/* Timekeeping and lockup complaints; dmesg must have none. */
#define BAD_DMESG                                                                                 \
	"soft lockup|hard LOCKUP|detected stall|clocksource watchdog|Marking clocksource|"        \
	"timekeeping watchdog|hung_task|blocked for more than|Clocksource .* unstable|time went " \
	"backwards|wd_nsec|cs_nsec|skewed"
/*
 * ...but for the watchdog's note that it skipped a check because its own
 * reads were delayed (pr_info, "clock-skew test skipped"): a busy host,
 * not a clock fault. A clock it finds skewed still says "unstable".
 */
#define BENIGN_DMESG "wd-wd read-back delay of [0-9]*ns$"

/*
 * /init. The counter's subshell rewrites 4 MiB of tmpfs between ticks; the
 * foreground loop answers "ask WORD" with "answer: WORD", "dmesg" with the
 * bad lines and "dmesg-end", and powers off or reboots.
 */
static const char init_script[] =
    "#!/bin/busybox sh\n"
    "/bin/busybox --install -s /bin\n"
    "export PATH=/bin\n"
    "mount -t proc proc /proc\n"
    "mount -t sysfs sysfs /sys\n"
    "mount -t tmpfs tmpfs /tmp\n"
    "stty -echo 2>/dev/null\n"
    "echo '" MARKER "'\n"
    "(n=0; while :; do n=$((n+1)); echo \"tick $n\"; "
    "dd if=/dev/urandom of=/tmp/blob bs=64k count=64 2>/dev/null; usleep 200000; done) &\n"
    "while read -r cmd arg; do\n"
    "  case \"$cmd\" in\n"
    "  ask) echo \"answer: $arg\";;\n"
    "  date) echo \"date: $(date +%s)\";;\n"
    "  uptime) echo \"uptime: $(cut -d' ' -f1 /proc/uptime) s\";;\n"
    "  cpus) echo \"cpus online: $(cat /sys/devices/system/cpu/online).\";;\n"
    "  dmesg) dmesg | grep -i -E '" BAD_DMESG "' | grep -v '" BENIGN_DMESG "' | "
    "sed 's/^/dmesg-hit: /'; echo dmesg-end;;\n"
    "  poweroff) poweroff -f;;\n"
    "  reboot) reboot -f;;\n"
    "  esac\n"
    "done\n";

static bool host_tsc_stable(void);

/* Kernel mode emulated in software: a stock kernel takes far too long to boot. */
static bool pvm_host(void)
{
	const char *force = getenv("KVMSNAP_LINUX_TESTS");

	if (force && !strcmp(force, "1"))
		return false;
	return exists("/sys/module/kvm_pvm");
}

static bool find_kernel(char *path, size_t len)
{
	const char *env = getenv("KVMSNAP_LINUX_KERNEL");
	char pattern[PATH_MAX];
	glob_t g;
	bool ok;

	if (env && *env) {
		snprintf(path, len, "%s", env);
		return exists(path);
	}
	snprintf(pattern, sizeof(pattern), "%s/nested/cache/linux-image-*/boot/vmlinuz-*",
		 build_dir());
	if (glob(pattern, 0, NULL, &g))
		return false;
	ok = g.gl_pathc > 0;
	if (ok)
		snprintf(path, len, "%s", g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
	return ok;
}

static int write_initramfs(const char *path)
{
	const struct cpio_entry e[] = {
	    {.name = "bin", .mode = S_IFDIR | 0755},
	    {.name = "dev", .mode = S_IFDIR | 0755},
	    {.name = "dev/console", .mode = S_IFCHR | 0600, .rdev_major = 5, .rdev_minor = 1},
	    {.name = "proc", .mode = S_IFDIR | 0755},
	    {.name = "sys", .mode = S_IFDIR | 0755},
	    {.name = "tmp", .mode = S_IFDIR | 01777},
	    {.name = "bin/busybox", .mode = S_IFREG | 0755, .src = BUSYBOX},
	    {.name = "init",
	     .mode = S_IFREG | 0755,
	     .data = init_script,
	     .len = sizeof(init_script) - 1},
	};

	return cpio_write(path, e, ARRAY_SIZE(e));
}

/* A kvmsnap run or restore whose serial line this test types into and reads. */
struct guest {
	pid_t pid;
	int in; /* the FIFO behind its stdin */
	char serial[160];
	char err[160];
	char buf[GUEST_OUT_MAX];
};

FIXTURE(lx)
{
	char dir[64];
	char kernel[PATH_MAX];
	char initrd[128];
	char fifo[128];
	char image[128];
	char sock[128];
	const char *vcpus; /* --vcpus of the boot; restores must bring them all back */
	struct guest g;
};

FIXTURE_SETUP(lx)
{
	TEST_REQUIRE(!pvm_host(),
		     "kernel mode is emulated on this host (PVM): a stock kernel would take far "
		     "too long to boot; run it in the nested VM (tools/nested/run-kvm-tests), or "
		     "set KVMSNAP_LINUX_TESTS=1");
	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened: %s", strerror(errno));
	TEST_REQUIRE(host_tsc_stable() || getenv("KVMSNAP_LINUX_TESTS"),
		     "this host's clocksource is not the TSC: without KVM's master clock, "
		     "guests (QEMU's too) stalled at random in the nested VM; run it with "
		     "KVMSNAP_NESTED_SMP=1, or set KVMSNAP_LINUX_TESTS=1");
	TEST_REQUIRE(exists(kvmsnap_bin()), "%s is missing", kvmsnap_bin());
	TEST_REQUIRE(find_kernel(self->kernel, sizeof(self->kernel)),
		     "no Linux kernel: set KVMSNAP_LINUX_KERNEL, or let "
		     "tools/nested/run-kvm-tests fetch Debian's into %s/nested/cache",
		     build_dir());
	TEST_REQUIRE(exists(BUSYBOX), "%s is missing (apt-get install busybox-static)", BUSYBOX);
	strcpy(self->dir, "/tmp/kvmsnap-linux-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->initrd, sizeof(self->initrd), "%s/initramfs.cpio", self->dir);
	snprintf(self->fifo, sizeof(self->fifo), "%s/in", self->dir);
	snprintf(self->image, sizeof(self->image), "%s/vm.img", self->dir);
	snprintf(self->sock, sizeof(self->sock), "%s/ctl", self->dir);
	ASSERT_EQ(write_initramfs(self->initrd), 0);
	ASSERT_EQ(mkfifo(self->fifo, 0600), 0);
	self->g.pid = -1;
	self->g.in = -1;
	self->vcpus = "1";
}

FIXTURE_TEARDOWN(lx)
{
	if (self->g.pid > 0)
		wait_or_kill(self->g.pid, 1);
	if (self->g.in >= 0)
		close(self->g.in);
	if (self->dir[0])
		rm_tree(self->dir);
}

/* Start kvmsnap CMD ARGS... --serial stdio, stdin on the FIFO, stdout in name.serial. */
static int guest_start(struct _fixture_lx *self, const char *name, const char *const *args)
{
	struct guest *g = &self->g;

	snprintf(g->serial, sizeof(g->serial), "%s/%s.serial", self->dir, name);
	snprintf(g->err, sizeof(g->err), "%s/%s.err", self->dir, name);
	/* Read-write: opening never blocks, and the guest never sees the input end. */
	if (g->in < 0)
		g->in = open(self->fifo, O_RDWR | O_CLOEXEC);
	if (g->in < 0)
		return -1;
	g->pid = spawn_io(args, self->fifo, g->serial, g->err, false);
	return g->pid > 0 ? 0 : -1;
}

/*
 * Wait until the serial output holds needle after offset from; its offset
 * past the match, or -1 on timeout or when kvmsnap ended. g->buf holds the output.
 */
static long guest_wait(struct guest *g, const char *needle, long from, unsigned int ms)
{
	uint64_t end = ms_now() + ms;
	int status;

	for (;;) {
		const char *hit;

		read_file(g->serial, g->buf, sizeof(g->buf));
		if ((size_t)from <= strlen(g->buf)) {
			hit = strstr(g->buf + from, needle);
			if (hit)
				return (long)(hit - g->buf) + (long)strlen(needle);
		}
		if (ms_now() > end)
			return -1;
		if (waitpid(g->pid, &status, WNOHANG) == g->pid) {
			g->pid = -1;
			read_file(g->serial, g->buf, sizeof(g->buf));
			hit = strstr(g->buf + MIN((size_t)from, strlen(g->buf)), needle);
			return hit ? (long)(hit - g->buf) + (long)strlen(needle) : -1;
		}
		sleep_ms(200);
	}
}

static int guest_type(struct guest *g, const char *line)
{
	size_t len = strlen(line), done = 0;

	while (done < len) {
		ssize_t n = write(g->in, line + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

/* Show the serial tail and stderr when something is not there. */
static void guest_show(struct guest *g)
{
	char err[OUT_MAX];
	size_t len;

	read_file(g->serial, g->buf, sizeof(g->buf));
	slurp(g->err, err);
	len = strlen(g->buf);
	TH_LOG("serial (last 3000 bytes):\n%s", g->buf + (len > 3000 ? len - 3000 : 0));
	TH_LOG("stderr:\n%s", err);
}

/* Where /init's marker starts in the console output; -1, with the console shown, if it never came. */
static long wait_for_init(struct guest *g)
{
	long at = guest_wait(g, MARKER, 0, BOOT_TIMEOUT_MS);

	if (at < 0)
		guest_show(g);
	return at;
}

/* "cpus" lists the online CPUs: "0" for one, "0-1" for two. */
static long expect_cpus_online(struct th_result *_r, struct guest *g, const char *vcpus, long from)
{
	char want[64];
	long at;

	snprintf(want, sizeof(want), "cpus online: %s.", strcmp(vcpus, "1") ? "0-1" : "0");
	EXPECT_EQ(guest_type(g, "cpus\n"), 0);
	at = guest_wait(g, want, from, REPLY_TIMEOUT_MS);
	if (at < 0)
		guest_show(g);
	EXPECT_GE(at, 0);
	return at;
}

/* "ask WORD" gets "answer: WORD" after from; the offset past it. */
static long expect_answer(struct th_result *_r, struct guest *g, const char *word, long from)
{
	char cmd[64], want[64];
	long at;

	snprintf(cmd, sizeof(cmd), "ask %s\n", word);
	snprintf(want, sizeof(want), "answer: %s", word);
	EXPECT_EQ(guest_type(g, cmd), 0);
	at = guest_wait(g, want, from, REPLY_TIMEOUT_MS);
	if (at < 0)
		guest_show(g);
	EXPECT_GE(at, 0);
	return at;
}

/*
 * Whether this host's TSC is stable (its clocksource is tsc), so that KVM
 * runs guests with a master clock. The nested VM with 2 L1 vCPUs has
 * "TSCs unsynchronized": there guests stalled at random, QEMU's as well as
 * kvmsnap's (Documentation/linux.md); with KVMSNAP_NESTED_SMP=1 they did not.
 */
static bool host_tsc_stable(void)
{
	char cs[64] = "";

	read_file("/sys/devices/system/clocksource/clocksource0/current_clocksource", cs,
		  sizeof(cs));
	return !strncmp(cs, "tsc", 3);
}

/* dmesg has no timekeeping or lockup lines. */
static void expect_clean_dmesg(struct th_result *_r, struct guest *g, long from)
{
	unsigned int bad = 0;
	const char *p, *end;
	long at;

	EXPECT_EQ(guest_type(g, "dmesg\n"), 0);
	at = guest_wait(g, "dmesg-end", from, REPLY_TIMEOUT_MS);
	ASSERT_GE(at, 0);
	end = g->buf + at;
	for (p = strstr(g->buf + from, "dmesg-hit: "); p && p < end;
	     p = strstr(p + 1, "dmesg-hit: ")) {
		const char *eol = strchr(p, '\n');

		TH_LOG("%.*s", eol ? (int)(eol - p) : (int)strlen(p), p);
		bad++;
	}
	EXPECT_EQ(bad, 0);
}

/* Log the guest's uptime (to place dmesg lines in time); the offset past it. */
static long log_uptime(struct th_result *_r, struct guest *g, const char *when, long from)
{
	long at, eol;

	EXPECT_EQ(guest_type(g, "uptime\n"), 0);
	at = guest_wait(g, "uptime: ", from, REPLY_TIMEOUT_MS);
	ASSERT_GE(at, 0);
	eol = guest_wait(g, " s", at, REPLY_TIMEOUT_MS);
	ASSERT_GE(eol, 0);
	TH_LOG("%s: guest uptime %.*s s", when, (int)(eol - 2 - at), g->buf + at);
	return eol;
}

/* Type cmd ("poweroff" or "reboot"); kvmsnap's exit status. */
static int guest_end(struct guest *g, const char *cmd)
{
	char line[32];
	int status;

	snprintf(line, sizeof(line), "%s\n", cmd);
	if (guest_type(g, line))
		return -1;
	status = wait_or_kill(g->pid, END_TIMEOUT_MS);
	g->pid = -1;
	return status;
}

/*
 * Boots share one kernel cache, so the first unpacks the kernel on the host
 * and the others map it: both paths run in every test program.
 */
#define KERNEL_CACHE "/tmp/kvmsnap-test-linux-kcache"

static int boot(struct _fixture_lx *self, const char *name, bool control)
{
	/* clang-format off */
	const char *args[] = {"run", "--kernel", self->kernel, "--initrd", self->initrd,
			      "--append", CMDLINE, "--mem", MEM, "--vcpus", self->vcpus,
			      "--kernel-cache", KERNEL_CACHE, "--serial", "stdio",
			      control ? "--control" : NULL, self->sock, NULL};
	/* clang-format on */

	return guest_start(self, name, args);
}

TEST_F_TIMEOUT(lx, boots_answers_and_powers_off, TEST_TIMEOUT_S)
{
	struct guest *g = &self->g;
	uint64_t t0 = ms_now();
	long at;

	ASSERT_EQ(boot(self, "boot", false), 0);
	at = wait_for_init(g);
	ASSERT_GE(at, 0);
	TH_LOG("kvmsnap: /init after %.1f s", (ms_now() - t0) / 1000.0);
	ASSERT_GE(guest_wait(g, "tick 3", at, REPLY_TIMEOUT_MS), 0);
	at = expect_answer(_r, g, "hello-42", at);
	expect_clean_dmesg(_r, g, at);
	/* ACPI S5 through the FADT's sleep control register: status 0. */
	EXPECT_EQ(guest_end(g, "poweroff"), 0);
	read_file(g->serial, g->buf, sizeof(g->buf));
	EXPECT_NOT_NULL(strstr(g->buf, "reboot: Power down"));
}

/* The kernel's own decompressor, in the guest, as before kvmsnap unpacked it. */
TEST_F_TIMEOUT(lx, boots_with_the_kernels_own_decompressor, TEST_TIMEOUT_S)
{
	const char *args[] = {"run",	  "--kernel", self->kernel, "--initrd", self->initrd,
			      "--append", CMDLINE,    "--mem",	    MEM,	"--decompress",
			      "guest",	  "--serial", "stdio",	    NULL};
	struct guest *g = &self->g;
	uint64_t t0 = ms_now();
	long at;

	ASSERT_EQ(guest_start(self, "boot", args), 0);
	at = wait_for_init(g);
	ASSERT_GE(at, 0);
	TH_LOG("kvmsnap --decompress guest: /init after %.1f s", (ms_now() - t0) / 1000.0);
	at = expect_answer(_r, g, "hello-43", at);
	expect_clean_dmesg(_r, g, at);
	EXPECT_EQ(guest_end(g, "poweroff"), 0);
}

TEST_F_TIMEOUT(lx, reboot_ends_with_status_8, TEST_TIMEOUT_S)
{
	struct guest *g = &self->g;
	long at;

	ASSERT_EQ(boot(self, "boot", false), 0);
	at = wait_for_init(g);
	ASSERT_GE(at, 0);
	/* The ACPI reset register: kvmsnap ends the VM with 8. */
	EXPECT_EQ(guest_end(g, "reboot"), 8);
	read_file(g->serial, g->buf, sizeof(g->buf));
	EXPECT_NOT_NULL(strstr(g->buf, "reboot: Restarting system"));
}

/* The highest "tick N" in the output after from; -1 if none. */
static long last_tick(const char *out, long from)
{
	const char *p = out + from;
	long n = -1;

	while ((p = strstr(p, "tick ")) != NULL) {
		p += 5;
		n = MAX(n, strtol(p, NULL, 10));
	}
	return n;
}

/* The first "tick N" after from; -1 if none. */
static long first_tick(const char *out, long from)
{
	const char *p = strstr(out + from, "tick ");

	return p ? strtol(p + 5, NULL, 10) : -1;
}

/*
 * Restore the image into a new VM (lazy or eager), with the serial line on
 * the same FIFO: the counter goes on from where the snapshot caught it,
 * the shell answers, dmesg is clean, and poweroff ends it with 0.
 */
static void restore_and_check(struct _fixture_lx *self, struct th_result *_r, bool lazy,
			      long before, long at_quit)
{
	const char *name = lazy ? "lazy" : "eager";
	const char *args[] = {"restore", self->image, "--serial", "stdio", lazy ? "--lazy" : NULL,
			      NULL};
	struct guest *g = &self->g;
	char word[32];
	long at, first;

	ASSERT_EQ(guest_start(self, name, args), 0);
	at = guest_wait(g, "tick ", 0, REPLY_TIMEOUT_MS);
	if (at < 0)
		guest_show(g);
	ASSERT_GE(at, 0);
	/* Ticks after this one are whole lines. */
	ASSERT_GE(guest_wait(g, "\n", at, REPLY_TIMEOUT_MS), 0);
	ASSERT_GE(guest_wait(g, "tick ", at, REPLY_TIMEOUT_MS), 0);
	first = first_tick(g->buf, at);
	TH_LOG("%s restore: first whole tick %ld; before the snapshot %ld, at quit %ld", name,
	       first, before, at_quit);
	/* From the snapshot on: not from 1, not before what the snapshot saw. */
	EXPECT_GT(first, before);
	EXPECT_LE(first, at_quit + 2);
	snprintf(word, sizeof(word), "after-%s", name);
	at = expect_answer(_r, g, word, 0);
	ASSERT_GE(at, 0);
	at = expect_cpus_online(_r, g, self->vcpus, at);
	ASSERT_GE(at, 0);
	expect_clean_dmesg(_r, g, at);
	EXPECT_EQ(guest_end(g, "poweroff"), 0);
}

/* Boot, save live at tick 5, quit; restore eager, then lazy: each goes on. */
static void live_snapshot_and_restores(struct _fixture_lx *self, struct th_result *_r)
{
	struct guest *g = &self->g;
	char out[OUT_MAX], err[OUT_MAX];
	long at, before, at_quit;
	int status;

	ASSERT_EQ(boot(self, "boot", true), 0);
	at = wait_for_init(g);
	ASSERT_GE(at, 0);
	ASSERT_GE(guest_wait(g, "tick 5", at, REPLY_TIMEOUT_MS), 0);
	before = last_tick(g->buf, at);

	/* Live: the counter and the memory it rewrites go on during the snapshot. */
	status = RUN_CLI(out, err, "snapshot", self->image, "--control", self->sock);
	if (status)
		TH_LOG("snapshot: status %d\n%s%s", status, out, err);
	ASSERT_EQ(status, 0);
	at = expect_answer(_r, g, "after-snapshot", at);
	if (at < 0) {
		/* Whether the VM still runs, and unthrottled. */
		RUN_CLI(out, err, "ctl", self->sock, "status", "--json");
		TH_LOG("ctl status: %.300s", out);
		RUN_CLI(out, err, "ctl", self->sock, "stats", "--json");
		TH_LOG("ctl stats: %.1500s", out);
	}
	ASSERT_GE(at, 0);
	status = RUN_CLI(out, err, "ctl", self->sock, "quit");
	EXPECT_EQ(status, 0);
	EXPECT_EQ(wait_or_kill(g->pid, END_TIMEOUT_MS), 0);
	g->pid = -1;
	read_file(g->serial, g->buf, sizeof(g->buf));
	at_quit = last_tick(g->buf, 0);
	ASSERT_GT(at_quit, before);

	restore_and_check(self, _r, false, before, at_quit);
	restore_and_check(self, _r, true, before, at_quit);
}

TEST_F_TIMEOUT(lx, live_snapshot_then_restore_eager_and_lazy, 3 * TEST_TIMEOUT_S)
{
	live_snapshot_and_restores(self, _r);
}

/* Two vCPUs: the AP started by INIT/SIPI, saved and restored with the BSP. */
TEST_F_TIMEOUT(lx, two_vcpus_snapshot_and_restore, 3 * TEST_TIMEOUT_S)
{
	self->vcpus = "2";
	live_snapshot_and_restores(self, _r);
}

/*
 * Save the guest behind self->sock live into image while it counts, see
 * it answer, and quit it. *before gets the last tick seen before the
 * snapshot, *at_quit the last one printed.
 */
static void snapshot_and_quit(struct _fixture_lx *self, struct th_result *_r, const char *sock,
			      const char *image, long from, long *before, long *at_quit)
{
	struct guest *g = &self->g;
	char out[OUT_MAX], err[OUT_MAX];
	uint64_t t0;
	int status;
	long at;

	read_file(g->serial, g->buf, sizeof(g->buf));
	*before = last_tick(g->buf, from);
	t0 = ms_now();
	status = RUN_CLI(out, err, "snapshot", image, "--control", sock);
	if (status)
		TH_LOG("snapshot: status %d\n%s%s", status, out, err);
	ASSERT_EQ(status, 0);
	TH_LOG("live snapshot: %.1f s", (ms_now() - t0) / 1000.0);
	at = expect_answer(_r, g, "after-snapshot", from);
	ASSERT_GE(at, 0);
	EXPECT_EQ(RUN_CLI(out, err, "ctl", sock, "quit"), 0);
	EXPECT_EQ(wait_or_kill(g->pid, END_TIMEOUT_MS), 0);
	g->pid = -1;
	read_file(g->serial, g->buf, sizeof(g->buf));
	*at_quit = last_tick(g->buf, 0);
}

/* The first whole tick of a restored guest; the offset past it. */
static long restored_first_tick(struct th_result *_r, struct guest *g, long *first)
{
	long at = guest_wait(g, "tick ", 0, REPLY_TIMEOUT_MS);

	if (at < 0)
		guest_show(g);
	ASSERT_GE(at, 0);
	ASSERT_GE(guest_wait(g, "\n", at, REPLY_TIMEOUT_MS), 0);
	ASSERT_GE(guest_wait(g, "tick ", at, REPLY_TIMEOUT_MS), 0);
	*first = first_tick(g->buf, at);
	return at;
}

/*
 * The guest's `date +%s` minus the host's time, in seconds: *lo from the
 * host time before the question, *hi after the answer (the guest read its
 * clock in between). The offset past the answer.
 */
static long guest_clock_offset(struct th_result *_r, struct guest *g, long from, long long *lo,
			       long long *hi)
{
	long long h0 = (long long)time(NULL), h1, t;
	long at;

	EXPECT_EQ(guest_type(g, "date\n"), 0);
	at = guest_wait(g, "date: ", from, REPLY_TIMEOUT_MS);
	if (at < 0)
		guest_show(g);
	ASSERT_GE(at, 0);
	ASSERT_GE(guest_wait(g, "\n", at, REPLY_TIMEOUT_MS), 0);
	h1 = (long long)time(NULL);
	t = strtoll(g->buf + at, NULL, 10);
	*lo = t - h1;
	*hi = t - h0;
	return at;
}

/*
 * Restore with args: the counter goes on from the snapshot (after before,
 * at most two past at_quit), the shell answers, dmesg is clean. *lo and
 * *hi bound the guest's clock offset from the host's (guest_clock_offset).
 * The guest is left running.
 */
static void restore_checked(struct _fixture_lx *self, struct th_result *_r, const char *name,
			    const char *const *args, long before, long at_quit, long long *lo,
			    long long *hi)
{
	struct guest *g = &self->g;
	char word[48];
	long at, first;

	ASSERT_EQ(guest_start(self, name, args), 0);
	at = restored_first_tick(_r, g, &first);
	at = guest_clock_offset(_r, g, at, lo, hi);
	TH_LOG("%s: first whole tick %ld (before the snapshot %ld, at quit %ld); guest clock "
	       "minus host %lld..%lld s",
	       name, first, before, at_quit, *lo, *hi);
	EXPECT_GT(first, before);
	EXPECT_LE(first, at_quit + 2);
	snprintf(word, sizeof(word), "after-%s", name);
	at = expect_answer(_r, g, word, at);
	ASSERT_GE(at, 0);
	expect_clean_dmesg(_r, g, at);
}

/*
 * A pause between save and restore: by default the guest's wall clock
 * catches up (within 2 s of the host's); with --clock continue it lags by
 * at least the pause. Either way the counter goes on and dmesg is clean.
 */
TEST_F_TIMEOUT(lx, wall_clock_after_a_pause, 3 * TEST_TIMEOUT_S)
{
	const char *catch_up[] = {"restore", self->image, "--serial", "stdio", "-v", NULL};
	const char *cont[] = {"restore", self->image, "--serial", "stdio",
			      "--clock", "continue",  NULL};
	struct guest *g = &self->g;
	long at, before, at_quit;
	char err[OUT_MAX];
	const char *p;
	long long lo, hi;

	ASSERT_EQ(boot(self, "boot", true), 0);
	at = wait_for_init(g);
	ASSERT_GE(at, 0);
	ASSERT_GE(guest_wait(g, "tick 3", at, REPLY_TIMEOUT_MS), 0);
	guest_clock_offset(_r, g, at, &lo, &hi);
	TH_LOG("booted: guest clock minus host %lld..%lld s", lo, hi);
	snapshot_and_quit(self, _r, self->sock, self->image, at, &before, &at_quit);
	sleep(PAUSE_S);

	restore_checked(self, _r, "catch-up", catch_up, before, at_quit, &lo, &hi);
	EXPECT_GE(hi, -2);
	EXPECT_LE(lo, 2);
	/* -v: how far the clock moved, and every vCPU took KVM_KVMCLOCK_CTRL. */
	slurp(g->err, err);
	p = strstr(err, "clock catches up");
	if (p)
		TH_LOG("kvmsnap: ...%.60s", p);
	EXPECT_NOT_NULL(p);
	if (strstr(err, "no KVM_CAP_KVMCLOCK_CTRL"))
		TH_LOG("KVM here has no KVM_CAP_KVMCLOCK_CTRL");
	EXPECT_NULL(strstr(err, "KVMCLOCK_CTRL not needed"));
	EXPECT_EQ(guest_end(g, "poweroff"), 0);

	restore_checked(self, _r, "continue", cont, before, at_quit, &lo, &hi);
	EXPECT_LE(hi, -PAUSE_S);
	EXPECT_EQ(guest_end(g, "poweroff"), 0);
}

/*
 * A checkpoint series of the running guest into a two-slot image: a full
 * snapshot into each slot, then an incremental one into slot 0. Each slot
 * restores: the counter goes on from its own snapshot, the shell answers,
 * dmesg is clean.
 */
TEST_F_TIMEOUT(lx, incremental_snapshots_and_two_slots, 3 * TEST_TIMEOUT_S)
{
	const char *slot0[] = {"restore", self->image, "--slot", "0", "--serial", "stdio", NULL};
	const char *slot1[] = {"restore",  self->image, "--slot", "1",
			       "--serial", "stdio",	"--lazy", NULL};
	char out[OUT_MAX], err[OUT_MAX], want[32];
	long before[3], after[3], at;
	struct guest *g = &self->g;
	long long lo, hi;
	int i, status;

	status = RUN_CLI(out, err, "image", "create", self->image, "--mem", MEM, "--slots", "2");
	if (status)
		TH_LOG("image create: status %d\n%s", status, err);
	ASSERT_EQ(status, 0);
	ASSERT_EQ(boot(self, "boot", true), 0);
	at = wait_for_init(g);
	ASSERT_GE(at, 0);
	for (i = 0; i < 3; i++) {
		snprintf(want, sizeof(want), "tick %ld", i ? after[i - 1] + 3 : 3);
		ASSERT_GE(guest_wait(g, want, at, REPLY_TIMEOUT_MS), 0);
		before[i] = last_tick(g->buf, at);
		status = RUN_CLI(out, err, "snapshot", self->image, "--control", self->sock,
				 "--incremental", "--json");
		if (status)
			TH_LOG("snapshot %d: status %d\n%s%s", i, status, out, err);
		ASSERT_EQ(status, 0);
		TH_LOG("snapshot %d: %.300s", i, out);
		/* The first into each slot is full; slot 0's second is incremental. */
		snprintf(want, sizeof(want), "\"slot\":%d", i % 2);
		EXPECT_NOT_NULL(strstr(out, want));
		EXPECT_NOT_NULL(
		    strstr(out, i == 2 ? "\"mode\":\"incremental\"" : "\"mode\":\"full\""));
		read_file(g->serial, g->buf, sizeof(g->buf));
		after[i] = last_tick(g->buf, at);
	}
	at = expect_answer(_r, g, "after-snapshots", at);
	ASSERT_GE(at, 0);
	EXPECT_EQ(RUN_CLI(out, err, "ctl", self->sock, "quit"), 0);
	EXPECT_EQ(wait_or_kill(g->pid, END_TIMEOUT_MS), 0);
	g->pid = -1;

	/* Slot 0: the incremental snapshot, the newest. */
	restore_checked(self, _r, "slot0", slot0, before[2], after[2], &lo, &hi);
	EXPECT_EQ(guest_end(g, "poweroff"), 0);
	/* Slot 1: the older full one, lazily. */
	restore_checked(self, _r, "slot1", slot1, before[1], after[1], &lo, &hi);
	EXPECT_EQ(guest_end(g, "poweroff"), 0);
}

/* Two cycles: boot, save, restore with a control socket, save that, restore again. */
TEST_F_TIMEOUT(lx, two_snapshot_restore_cycles, 3 * TEST_TIMEOUT_S)
{
	char image2[160], sock2[160], want[32];
	/* Its own socket: the first VM's keeper removes the first one when it can. */
	const char *second[] = {"restore",   self->image, "--serial", "stdio",
				"--control", sock2,	  NULL};
	struct guest *g = &self->g;
	long at, before, at_quit, first;

	snprintf(image2, sizeof(image2), "%s/vm2.img", self->dir);
	snprintf(sock2, sizeof(sock2), "%s/ctl2", self->dir);
	ASSERT_EQ(boot(self, "boot", true), 0);
	at = wait_for_init(g);
	ASSERT_GE(at, 0);
	ASSERT_GE(guest_wait(g, "tick 5", at, REPLY_TIMEOUT_MS), 0);
	snapshot_and_quit(self, _r, self->sock, self->image, at, &before, &at_quit);

	/* Cycle 2: the restored VM counts on, and is saved live in turn. */
	ASSERT_EQ(guest_start(self, "cycle2", second), 0);
	at = restored_first_tick(_r, g, &first);
	TH_LOG("cycle 2: first whole tick %ld; before the snapshot %ld, at quit %ld", first, before,
	       at_quit);
	at = log_uptime(_r, g, "cycle 2 restored", at);
	EXPECT_GT(first, before);
	EXPECT_LE(first, at_quit + 2);
	snprintf(want, sizeof(want), "tick %ld", first + 3);
	ASSERT_GE(guest_wait(g, want, at, REPLY_TIMEOUT_MS), 0);
	log_uptime(_r, g, "cycle 2, before its snapshot", at);
	snapshot_and_quit(self, _r, sock2, image2, at, &before, &at_quit);

	/* Cycle 3: from the second image. */
	{
		const char *third[] = {"restore", image2, "--serial", "stdio", NULL};

		ASSERT_EQ(guest_start(self, "cycle3", third), 0);
	}
	at = restored_first_tick(_r, g, &first);
	TH_LOG("cycle 3: first whole tick %ld; before the snapshot %ld, at quit %ld", first, before,
	       at_quit);
	at = log_uptime(_r, g, "cycle 3 restored", at);
	EXPECT_GT(first, before);
	EXPECT_LE(first, at_quit + 2);
	at = expect_answer(_r, g, "after-two-cycles", 0);
	ASSERT_GE(at, 0);
	expect_clean_dmesg(_r, g, at);
	EXPECT_EQ(guest_end(g, "poweroff"), 0);
}

/* ---- bad kernels: refused before anything runs, on any host with /dev/kvm ---- */

#define BZ_SETUP_BYTES (5 * 512)
#define BZ_KERNEL_LEN  0x2000
#define BZ_LEN	       (BZ_SETUP_BYTES + BZ_KERNEL_LEN)

FIXTURE(bad)
{
	char dir[64];
	char kernel[128];
	char initrd[128];
	uint8_t img[BZ_LEN];
};

/* A well-formed little bzImage (boot.rst's setup header), which a test then spoils. */
FIXTURE_SETUP(bad)
{
	uint8_t *b = self->img;

	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened: %s", strerror(errno));
	TEST_REQUIRE(exists(kvmsnap_bin()), "%s is missing", kvmsnap_bin());
	strcpy(self->dir, "/tmp/kvmsnap-lxbad-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(self->dir));
	snprintf(self->kernel, sizeof(self->kernel), "%s/bzImage", self->dir);
	snprintf(self->initrd, sizeof(self->initrd), "%s/initrd", self->dir);
	memset(b, 0, BZ_LEN);
	b[0x1f1] = 4;			    /* setup_sects */
	w32(b + 0x1f4, BZ_KERNEL_LEN / 16); /* syssize */
	w16(b + 0x1fe, 0xaa55);		    /* boot_flag */
	b[0x201] = 0x6a;		    /* the header ends at 0x26c */
	memcpy(b + 0x202, "HdrS", 4);
	w16(b + 0x206, 0x020f);	    /* protocol 2.15 */
	w32(b + 0x22c, 0x7fffffff); /* initrd_addr_max */
	w32(b + 0x230, 0x200000);   /* kernel_alignment */
	b[0x234] = 1;		    /* relocatable_kernel */
	w16(b + 0x236, 0x3);	    /* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
	w32(b + 0x238, 2047);	    /* cmdline_size */
	w64(b + 0x258, 0x1000000);  /* pref_address */
	w32(b + 0x260, 0x400000);   /* init_size */
	/* The 64-bit entry: hlt; jmp back, should it ever run. */
	b[BZ_SETUP_BYTES + 0x200] = 0xf4;
	b[BZ_SETUP_BYTES + 0x201] = 0xeb;
	b[BZ_SETUP_BYTES + 0x202] = 0xfd;
}

FIXTURE_TEARDOWN(bad)
{
	if (self->dir[0])
		rm_tree(self->dir);
}

/* kvmsnap run refuses it: status 2, one line "kvmsnap: error: ...why...". */
static void expect_refused(struct _fixture_bad *self, struct th_result *_r, size_t len,
			   bool with_initrd, const char *why)
{
	char out[OUT_MAX], err[OUT_MAX];
	int status;

	ASSERT_EQ(write_file(self->kernel, self->img, len), 0);
	if (with_initrd)
		status = RUN_CLI(out, err, "run", "--kernel", self->kernel, "--initrd",
				 self->initrd, "--mem", "32M", "--serial", "none");
	else
		status = RUN_CLI(out, err, "run", "--kernel", self->kernel, "--mem", "32M",
				 "--serial", "none");
	if (status != 2 || count_lines(err) != 1 || !strstr(err, why))
		TH_LOG("status %d, stderr:\n%s", status, err);
	EXPECT_EQ(status, 2);
	EXPECT_EQ(count_lines(err), 1);
	EXPECT_EQ(strncmp(err, "kvmsnap: error: ", 16), 0);
	EXPECT_NOT_NULL(strstr(err, why));
	EXPECT_STREQ(out, "");
}

TEST_F(bad, wrong_magic)
{
	memcpy(self->img + 0x202, "HdrZ", 4);
	expect_refused(self, _r, BZ_LEN, false, "not a Linux bzImage: no \"HdrS\" magic");
}

TEST_F(bad, old_protocol)
{
	w16(self->img + 0x206, 0x0204);
	expect_refused(self, _r, BZ_LEN, false, "boot protocol 2.04 is too old");
}

TEST_F(bad, truncated_file)
{
	expect_refused(self, _r, BZ_LEN - 16, false, "truncated");
}

TEST_F(bad, initrd_does_not_fit)
{
	int fd = open(self->initrd, O_WRONLY | O_CREAT, 0600);

	/* 32 MiB of RAM, 16 MiB below the kernel and 4 MiB for it: 20 MiB does not fit. */
	ASSERT_GE(fd, 0);
	ASSERT_EQ(ftruncate(fd, 20 << 20), 0);
	close(fd);
	expect_refused(self, _r, BZ_LEN, true, "does not fit in guest RAM");
}

/* A payload that says xz and is not: refused before the VM runs. */
TEST_F(bad, corrupt_payload)
{
	static const uint8_t junk[] = {0xfd, '7', 'z', 'X', 'Z', 0, 0, 4, 0xde, 0xad, 0xbe, 0xef};

	memcpy(self->img + BZ_SETUP_BYTES + 0x300, junk, sizeof(junk));
	w32(self->img + BZ_SETUP_BYTES + 0x300 + 60, 1 << 20); /* kbuild's size trailer */
	w32(self->img + 0x248, 0x300);			       /* payload_offset */
	w32(self->img + 0x24c, 64);			       /* payload_length */
	expect_refused(self, _r, BZ_LEN, false, "xz payload: corrupt");
}

/* Debian's kernel cut short, where it is at hand. */
TEST_F(bad, truncated_stock_kernel)
{
	char stock[PATH_MAX];
	int fd;
	ssize_t n;

	TEST_REQUIRE(find_kernel(stock, sizeof(stock)), "no stock kernel at hand");
	fd = open(stock, O_RDONLY);
	ASSERT_GE(fd, 0);
	n = read(fd, self->img, BZ_LEN);
	close(fd);
	ASSERT_EQ(n, BZ_LEN);
	expect_refused(self, _r, BZ_LEN, false, "truncated: the header says");
}

TEST_HARNESS_MAIN
