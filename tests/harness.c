// SPDX-License-Identifier: GPL-2.0
/* The runner behind tests/harness.h: fork, time out, report TAP. */
#include "harness.h"

struct th_result *th_res;
jmp_buf *th_env;

void th_register(struct th_test *t)
{
	t->next = NULL;
	*th_tail = t;
	th_tail = &t->next;
}

void th_register_variant(struct th_fixture *f, struct th_variant *v)
{
	v->next = NULL;
	*f->vtail = v;
	f->vtail = &v->next;
}

void th_bail(void)
{
	fflush(stdout);
	fflush(stderr);
	if (th_env)
		longjmp(*th_env, 1);
	/* Outside any test: nothing to unwind to. */
	_exit(th_res && th_res->failed ? 1 : 0);
}

/* The TAP name: test, f_test, or f.variant.test kselftest-style. */
static void th_name(const struct th_test *t, const struct th_variant *v, char *buf, size_t len)
{
	if (!t->fixture)
		snprintf(buf, len, "%s", t->name);
	else if (!v)
		snprintf(buf, len, "%s_%s", t->fixture->name, t->name);
	else
		snprintf(buf, len, "%s.%s.%s", t->fixture->name, v->name, t->name);
}

static volatile sig_atomic_t th_alarm;

static void th_on_alarm(int sig)
{
	(void)sig;
	th_alarm = 1;
}

/* Runs one test in a child. Returns 0 pass, 1 fail, 2 skip. */
static int th_run_one(struct th_test *t, const struct th_variant *v, const char *name, int num)
{
	jmp_buf env;
	struct sigaction sa = {.sa_handler = th_on_alarm};
	int status = 0, ret;
	pid_t pid, w;

	memset(th_res, 0, sizeof(*th_res));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		printf("not ok %d %s # fork: %s\n", num, name, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		/* Own process group, so a timeout also ends what the test started. */
		setpgid(0, 0);
		th_env = &env;
		if (!setjmp(env))
			t->fn(th_res, v ? v->data : NULL);
		th_env = NULL;
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
		printf("# %s: timed out after %d s\n", name, t->timeout);
		printf("not ok %d %s # TIMEOUT\n", num, name);
		return 1;
	}
	/* Reap anything the test left behind in its group. */
	kill(-pid, SIGKILL);

	if (WIFSIGNALED(status)) {
		printf("# %s: killed by signal %d\n", name, WTERMSIG(status));
		ret = 1;
	} else if (th_res->skipped && !th_res->failed) {
		printf("ok %d %s # SKIP %s\n", num, name, th_res->reason);
		return 2;
	} else {
		ret = (WEXITSTATUS(status) != 0 || th_res->failed) ? 1 : 0;
	}
	printf("%s %d %s\n", ret ? "not ok" : "ok", num, name);
	return ret;
}

int th_main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	int pass = 0, fail = 0, skip = 0, n = 0, num = 0, round;
	const struct th_variant *v;
	struct th_test *t;
	char name[256];

	setvbuf(stdout, NULL, _IOLBF, 0);
	th_res =
	    mmap(NULL, sizeof(*th_res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (th_res == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	/* Two rounds: count, then run. A test runs once per variant of its fixture. */
	for (round = 0; round < 2; round++) {
		if (round)
			printf("TAP version 13\n1..%d\n", n);
		for (t = th_head; t; t = t->next) {
			v = t->fixture ? t->fixture->variants : NULL;
			do {
				th_name(t, v, name, sizeof(name));
				if (filter && !strstr(name, filter))
					continue;
				if (!round) {
					n++;
					continue;
				}
				switch (th_run_one(t, v, name, ++num)) {
				case 0:
					pass++;
					break;
				case 2:
					skip++;
					break;
				default:
					fail++;
				}
			} while (v && (v = v->next));
		}
	}
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n", pass, fail, skip);
	return fail ? 1 : 0;
}
