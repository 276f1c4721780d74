// SPDX-License-Identifier: GPL-2.0
/*
 * Privileges of a running `kvmsnap run` started as root: by default every
 * thread runs as nobody:nogroup (real, effective, saved and fs ids), has no
 * capabilities (effective, permitted, inheritable, ambient, and the bounding
 * set when kvmsnap could drop it), no_new_privs and a seccomp filter, and
 * the VM still runs and answers its control socket; --user picks the user
 * (root keeps uid 0, locked down otherwise); --keep-caps and
 * KVMSNAP_KEEP_CAPS=1 keep everything. Read from /proc/PID/task/TID/status.
 * And the VM's allowlist, installed in a child, refuses what it leaves out.
 */
#include <dirent.h>
#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "../lib/vmproc.h"
#include "sandbox/seccomp.h"

struct creds {
	uint64_t inh, prm, eff, bnd, amb;
	int nnp;	     /* NoNewPrivs */
	int seccomp;	     /* Seccomp: 0 none, 2 filter */
	long uid[4], gid[4]; /* real, effective, saved, fs */
	int found;	     /* fields read */
};

/* "Uid:\t0\t0\t0\t0" into ids. */
static void read_ids(const char *s, long *ids)
{
	char *end;
	int i;

	for (i = 0; i < 4; i++, s = end)
		ids[i] = strtol(s, &end, 10);
}

/* Parse the capability lines and NoNewPrivs of a /proc status file. */
static int read_creds(const char *path, struct creds *c)
{
	static const struct {
		const char *key;
		size_t off;
	} caps[] = {
	    {"CapInh:", offsetof(struct creds, inh)}, {"CapPrm:", offsetof(struct creds, prm)},
	    {"CapEff:", offsetof(struct creds, eff)}, {"CapBnd:", offsetof(struct creds, bnd)},
	    {"CapAmb:", offsetof(struct creds, amb)},
	};
	char line[256];
	unsigned int i;
	FILE *f;

	memset(c, 0, sizeof(*c));
	c->nnp = c->seccomp = -1;
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
			if (!strncmp(line, caps[i].key, strlen(caps[i].key))) {
				*(uint64_t *)((char *)c + caps[i].off) =
				    strtoull(line + strlen(caps[i].key), NULL, 16);
				c->found++;
			}
		}
		if (!strncmp(line, "NoNewPrivs:", 11)) {
			c->nnp = atoi(line + 11);
			c->found++;
		} else if (!strncmp(line, "Seccomp:", 8)) {
			c->seccomp = atoi(line + 8);
			c->found++;
		} else if (!strncmp(line, "Uid:", 4)) {
			read_ids(line + 4, c->uid);
			c->found++;
		} else if (!strncmp(line, "Gid:", 4)) {
			read_ids(line + 4, c->gid);
			c->found++;
		}
	}
	fclose(f);
	return c->found == 9 ? 0 : -1;
}

/* ---- the kvmsnap process ---- */

/*
 * Start the dirtier with extra and extra2 (NULL ends the arguments) and KVMSNAP_KEEP_CAPS set to env
 * (NULL: unset). 0 once the guest makes progress: by then kvmsnap has dropped
 * whatever it drops, since it serves the socket only after that.
 */
static int vm_start(struct vm *vm, const char *extra, const char *extra2, const char *env)
{
	uint64_t deadline;
	int status;

	memset(vm, 0, sizeof(*vm));
	strcpy(vm->dir, "/tmp/kvmsnap-priv-XXXXXX");
	if (!mkdtemp(vm->dir))
		return -1;
	snprintf(vm->sock, sizeof(vm->sock), "%s/ctl.sock", vm->dir);
	fflush(NULL);
	vm->pid = fork();
	if (vm->pid < 0)
		return -1;
	if (vm->pid == 0) {
		if (env)
			setenv("KVMSNAP_KEEP_CAPS", env, 1);
		else
			unsetenv("KVMSNAP_KEEP_CAPS");
		execl(kvmsnap_bin(), "kvmsnap", "run", "--guest", "dirtier:ws=8M", "--mem", "64M",
		      "--serial", "none", "--control", vm->sock, extra, extra2, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", kvmsnap_bin(), strerror(errno));
		_exit(127);
	}
	deadline = ms_now() + progress_timeout_ms;
	while (ms_now() < deadline) {
		if (guest_pages(vm->sock) > 0)
			return 0;
		if (waitpid(vm->pid, &status, WNOHANG) == vm->pid) {
			TH_LOG("kvmsnap run exited early with status %d",
			       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			vm->pid = 0;
			return -1;
		}
		usleep(20000);
	}
	TH_LOG("the guest made no progress within %d ms", progress_timeout_ms);
	return -1;
}

FIXTURE(priv)
{
	struct vm vm;
	struct creds own; /* of this test process */
	long uid, gid;	  /* the ids the VM must run as */
};

/* How kvmsnap is started, and whether its threads must have dropped their capabilities. */
FIXTURE_VARIANT(priv)
{
	const char *extra, *extra2; /* extra arguments, or NULL */
	const char *env;	    /* KVMSNAP_KEEP_CAPS, or NULL: unset */
	bool want_dropped;
	const char *user; /* the user it must run as: "nobody", or "UID:GID" */
};

FIXTURE_VARIANT_ADD(priv, by_default){.want_dropped = true, .user = "nobody"};
FIXTURE_VARIANT_ADD(priv, keep_caps){.extra = "--keep-caps", .user = "0:0"};
FIXTURE_VARIANT_ADD(priv, env_1){.env = "1", .user = "0:0"};
/* Only KVMSNAP_KEEP_CAPS=1 keeps them. */
FIXTURE_VARIANT_ADD(priv, env_0){.env = "0", .want_dropped = true, .user = "nobody"};
/* root stays root, but without capabilities and with the filter. */
FIXTURE_VARIANT_ADD(priv, user_root){
    .extra = "--user", .extra2 = "root", .want_dropped = true, .user = "0:0"};
/* Any uid, named or not, and a group of its own. */
FIXTURE_VARIANT_ADD(priv, user_ids){
    .extra = "--user", .extra2 = "4321:1234", .want_dropped = true, .user = "4321:1234"};

FIXTURE_SETUP(priv)
{
	TEST_REQUIRE(geteuid() == 0,
		     "needs root (euid is %u): kvmsnap only has capabilities to drop as root",
		     geteuid());
	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened: %s", strerror(errno));
	ASSERT_EQ(access(kvmsnap_bin(), X_OK), 0);
	ASSERT_EQ(read_creds("/proc/self/status", &self->own), 0);
	TEST_REQUIRE(self->own.eff != 0, "root without capabilities (CapEff 0)");
	if (!strcmp(variant->user, "nobody")) {
		struct passwd *pw = getpwnam("nobody");
		struct group *gr = getgrnam("nogroup");

		self->uid = pw ? (long)pw->pw_uid : 65534;
		self->gid = gr ? (long)gr->gr_gid : pw ? (long)pw->pw_gid : 65534;
	} else {
		ASSERT_EQ(sscanf(variant->user, "%ld:%ld", &self->uid, &self->gid), 2);
	}
}

FIXTURE_TEARDOWN(priv)
{
	if (self->vm.pid > 0)
		EXPECT_EQ(vm_stop(&self->vm), 0);
	else
		vm_stop(&self->vm);
}

/* Dropped: nothing, and the bounding set too if it could be emptied. */
static bool as_wanted(const struct creds *c, const struct creds *own, bool want_dropped)
{
	bool setpcap = own->eff & (1ULL << CAP_SETPCAP);

	if (want_dropped)
		return !c->eff && !c->prm && !c->inh && !c->amb && c->nnp == 1 &&
		       (!setpcap || !c->bnd);
	return c->eff && c->eff == own->eff && c->bnd == own->bnd && c->nnp == own->nnp;
}

/*
 * Check every thread of the VM against want_dropped; *n gets the number of
 * threads checked. The bounding set can only be emptied with CAP_SETPCAP.
 */
static void check_threads(struct _fixture_priv *self, struct th_result *_r, bool want_dropped,
			  unsigned int *n)
{
	bool setpcap = self->own.eff & (1ULL << CAP_SETPCAP);
	char path[300];
	struct dirent *de;
	struct creds c;
	int i;
	DIR *d;

	*n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", self->vm.pid);
	d = opendir(path);
	if (!d)
		TH_LOG("%s: %s", path, strerror(errno));
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/status", self->vm.pid, de->d_name);
		if (read_creds(path, &c))
			continue; /* the thread just ended */
		(*n)++;
		if (!as_wanted(&c, &self->own, want_dropped))
			TH_LOG("task %s: CapInh %016" PRIx64 " CapPrm %016" PRIx64
			       " CapEff %016" PRIx64 " CapBnd %016" PRIx64 " CapAmb %016" PRIx64
			       " NoNewPrivs %d Seccomp %d",
			       de->d_name, c.inh, c.prm, c.eff, c.bnd, c.amb, c.nnp, c.seccomp);
		/* Real, effective, saved and fs ids alike: no way back. */
		for (i = 0; i < 4; i++) {
			EXPECT_EQ(c.uid[i], self->uid);
			EXPECT_EQ(c.gid[i], self->gid);
		}
		EXPECT_EQ(c.seccomp, want_dropped ? 2 : self->own.seccomp);
		if (want_dropped) {
			EXPECT_EQ(c.eff, 0);
			EXPECT_EQ(c.prm, 0);
			EXPECT_EQ(c.inh, 0);
			EXPECT_EQ(c.amb, 0);
			EXPECT_EQ(c.nnp, 1);
			if (setpcap)
				EXPECT_EQ(c.bnd, 0);
		} else {
			/* Kept: what root had, and no_new_privs as inherited. */
			EXPECT_NE(c.eff, 0);
			EXPECT_EQ(c.eff, self->own.eff);
			EXPECT_EQ(c.bnd, self->own.bnd);
			EXPECT_EQ(c.nnp, self->own.nnp);
		}
	}
	if (d)
		closedir(d);
}

/* The guest keeps dirtying memory, and the control commands still work. */
static void expect_vm_works(struct _fixture_priv *self, struct th_result *_r)
{
	uint64_t before = guest_pages(self->vm.sock), after = before;

	EXPECT_GT(before, 0);
	after = wait_pages_above(self->vm.sock, before, progress_timeout_ms);
	EXPECT_GT(after, before);
	EXPECT_TRUE(call_ok(self->vm.sock, "{\"cmd\":\"status\"}"));
	EXPECT_TRUE(call_ok(self->vm.sock, "{\"cmd\":\"pause\"}"));
	EXPECT_TRUE(call_ok(self->vm.sock, "{\"cmd\":\"resume\"}"));
	EXPECT_TRUE(call_ok(self->vm.sock, "{\"cmd\":\"digest\"}"));
	EXPECT_TRUE(call_ok(self->vm.sock, "{\"cmd\":\"dirty-log\",\"enable\":true}"));
	EXPECT_TRUE(call_ok(self->vm.sock, "{\"cmd\":\"stats\"}"));
}

TEST_F(priv, capabilities)
{
	unsigned int threads;

	ASSERT_EQ(vm_start(&self->vm, variant->extra, variant->extra2, variant->env), 0);
	check_threads(self, _r, variant->want_dropped, &threads);
	/* The main thread, the signal thread and a vCPU thread at least. */
	EXPECT_GE(threads, 3);
	expect_vm_works(self, _r);
	EXPECT_EQ(vm_stop(&self->vm), 0);
}

/*
 * The manager reads --user before it connects: a bad one fails before any
 * image exists. A good one (the default and an unnamed uid) still takes a
 * complete snapshot after its switch: snapshot-begin saw root connect.
 */
TEST(snapshot_manager_user)
{
	static char out[OUT_MAX], err[OUT_MAX];
	char img[160];
	struct vm vm;

	TEST_REQUIRE(geteuid() == 0, "needs root: kvmsnap only switches users as root");
	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened: %s", strerror(errno));
	ASSERT_EQ(vm_start(&vm, NULL, NULL, NULL), 0);
	snprintf(img, sizeof(img), "%s/vm.img", vm.dir);
	EXPECT_EQ(RUN_CLI(out, err, "snapshot", img, "--control", vm.sock, "--user", "nosuchuser"),
		  1);
	EXPECT_NOT_NULL(strstr(err, "no such user"));
	EXPECT_FALSE(exists(img));
	EXPECT_EQ(RUN_CLI(out, err, "snapshot", img, "--control", vm.sock, "--json"), 0);
	EXPECT_NOT_NULL(strstr(out, "\"ok\":true"));
	EXPECT_EQ(RUN_CLI(out, err, "snapshot", img, "--control", vm.sock, "--user", "4321:1234"),
		  0);
	if (strlen(err))
		TH_LOG("%s", err);
	unlink(img);
	EXPECT_EQ(vm_stop(&vm), 0);
}

/* ---- the allowlists themselves, in a child of this test ---- */

static void *thread_fn(void *arg)
{
	return arg;
}

/*
 * Install profile's allowlist in a child and try what it must refuse and
 * what it must allow; the child's exit status is the number of the first
 * check that failed (0: none).
 */
static int child_checks(enum seccomp_profile profile)
{
	struct error err;
	static int token;
	pthread_t t;
	void *ret;
	int fd;

	if (seccomp__install(profile, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	/* Refused with EPERM: a new socket, a program, a new file, a process. */
	if (socket(AF_INET, SOCK_STREAM, 0) != -1 || errno != EPERM)
		return 2;
	if (socket(AF_UNIX, SOCK_STREAM, 0) != -1 || errno != EPERM)
		return 3;
	execl("/bin/true", "true", (char *)NULL);
	if (errno != EPERM)
		return 4;
#ifndef KVMSNAP_SANITIZE /* LeakSanitizer opens /proc files at exit: see seccomp.c */
	fd = open("/tmp/kvmsnap-seccomp-test", O_WRONLY | O_CREAT, 0600);
	if (fd != -1 || errno != EPERM)
		return 5;
#endif
	if (syscall(SYS_fork) != -1 || errno != EPERM)
		return 6;
	if (setuid(0) != -1 || errno != EPERM)
		return 7;
	if (profile == SECCOMP_MANAGER && (ioctl(0, FIONREAD, &fd) != -1 || errno != EPERM))
		return 8;
	/* Allowed: what the VM does after set-up. */
	if (profile == SECCOMP_VM) {
		fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return 9;
		close(fd);
		if (pthread_create(&t, NULL, thread_fn, &token) || pthread_join(t, &ret) ||
		    ret != &token)
			return 10;
	}
	if (getpid() <= 0 || write(STDERR_FILENO, "", 0) != 0)
		return 11;
	return 0;
}

static int run_child_checks(enum seccomp_profile profile)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(child_checks(profile));
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status))
		return 100 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

TEST(vm_allowlist_refuses_the_rest)
{
	EXPECT_EQ(run_child_checks(SECCOMP_VM), 0);
}

TEST(manager_allowlist_refuses_the_rest)
{
	EXPECT_EQ(run_child_checks(SECCOMP_MANAGER), 0);
}

TEST_HARNESS_MAIN
