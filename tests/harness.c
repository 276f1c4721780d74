// SPDX-License-Identifier: GPL-2.0
/* The runner behind tests/harness.h: fork, time out, report TAP. */
#include "harness.h"

struct th_result *th_res;

static volatile sig_atomic_t th_alarm;

static void th_on_alarm(int sig)
{
	(void)sig;
	th_alarm = 1;
}

/* Runs one test in a child. Returns 0 pass, 1 fail, 2 skip. */
static int th_run_one(struct th_test *t, int num)
{
	struct sigaction sa = {.sa_handler = th_on_alarm};
	int status = 0, ret;
	pid_t pid, w;

	memset(th_res, 0, sizeof(*th_res));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		printf("not ok %d %s # fork: %s\n", num, t->name, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		/* Own process group, so a timeout also ends what the test started. */
		setpgid(0, 0);
		t->fn(t, th_res);
		fflush(stdout);
		fflush(stderr);
		_exit(th_res->failed ? 1 : 0);
	}
	setpgid(pid, pid);
	sigaction(SIGALRM, &sa, NULL);
	th_alarm = 0;
	alarm(t->timeout);
	do {
		w = waitpid(pid, &status, 0);
	} while (w < 0 && errno == EINTR && !th_alarm);
	alarm(0);
	if (w < 0) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		printf("# %s: timed out after %d s\n", t->name, t->timeout);
		printf("not ok %d %s # TIMEOUT\n", num, t->name);
		return 1;
	}
	/* Reap anything the test left behind in its group. */
	kill(-pid, SIGKILL);

	if (WIFSIGNALED(status)) {
		printf("# %s: killed by signal %d\n", t->name, WTERMSIG(status));
		ret = 1;
	} else if (th_res->skipped && !th_res->failed) {
		printf("ok %d %s # SKIP %s\n", num, t->name, th_res->reason);
		return 2;
	} else {
		ret = (WEXITSTATUS(status) != 0 || th_res->failed) ? 1 : 0;
	}
	printf("%s %d %s\n", ret ? "not ok" : "ok", num, t->name);
	return ret;
}

int th_main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	int pass = 0, fail = 0, skip = 0, n = 0, num = 0;
	struct th_test *t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	th_res =
	    mmap(NULL, sizeof(*th_res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (th_res == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (t = th_head; t; t = t->next)
		if (!filter || strstr(t->name, filter))
			n++;
	printf("TAP version 13\n1..%d\n", n);
	for (t = th_head; t; t = t->next) {
		if (filter && !strstr(t->name, filter))
			continue;
		switch (th_run_one(t, ++num)) {
		case 0:
			pass++;
			break;
		case 2:
			skip++;
			break;
		default:
			fail++;
		}
	}
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n", pass, fail, skip);
	return fail ? 1 : 0;
}
