// SPDX-License-Identifier: GPL-2.0
/* Child processes of the benchmark: started, waited for with a deadline, stopped. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "util/util.h"

double bench_now_ms(void)
{
	return (double)now_ns() / 1e6;
}

const char *bench_proc__self(void)
{
	static char path[4096];
	ssize_t n;

	if (path[0])
		return path;
	n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n <= 0)
		return "kvmsnap";
	path[n] = '\0';
	return path;
}

extern char **environ;

void bench_sleep_ms(unsigned int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

bool bench_proc__which(const char *prog, char *path, size_t len)
{
	const char *dirs = getenv("PATH");

	while (dirs && *dirs) {
		size_t n = strcspn(dirs, ":");

		snprintf(path, len, "%.*s/%s", (int)n, dirs, prog);
		if (n && !access(path, X_OK))
			return true;
		dirs += n + (dirs[n] == ':');
	}
	return false;
}

pid_t bench_proc__spawn(const char *const *argv, const char *out_path, const char *err_path,
			struct error *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	pid_t pid;
	int ret;

	/* Whatever this process blocks or ignores, the child starts with the defaults. */
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGPIPE);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path ? out_path : "/dev/null",
					 O_WRONLY | O_CREAT | O_TRUNC, 0600);
	/* One log for both: one open file, or the two would overwrite each other. */
	if (out_path && err_path && !strcmp(out_path, err_path))
		posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
	else
		posix_spawn_file_actions_addopen(&fa, STDERR_FILENO,
						 err_path ? err_path : "/dev/null",
						 O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawnattr_init(&attr);
	/* Its own process group: a stray grandchild dies with it (bench_proc__stop). */
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					    POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawnattr_setpgroup(&attr, 0);
	ret = posix_spawnp(&pid, argv[0], &fa, &attr, (char *const *)argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return ret ? err_errno(err, ret, "%s", argv[0]) : pid;
}

int bench_proc__wait(pid_t pid, unsigned int timeout_ms, int *status)
{
	double end = bench_now_ms() + timeout_ms;
	for (;;) {
		pid_t p = waitpid(pid, status, WNOHANG);

		if (p == pid)
			return 0;
		if (p < 0 && errno != EINTR)
			return -errno;
		if (bench_now_ms() >= end)
			return -ETIMEDOUT;
		bench_sleep_ms(5);
	}
}

void bench_proc__stop(pid_t pid, unsigned int grace_ms)
{
	int status;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	if (bench_proc__wait(pid, grace_ms, &status)) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
}

/* The whole of a small file, NUL-terminated; NULL if unreadable. */
static char *slurp(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (!fstat(fd, &st) && st.st_size < (64 << 20)) {
		buf = malloc((size_t)st.st_size + 1);
		n = buf ? read_in_full(fd, buf, (size_t)st.st_size) : -1;
		if (n < 0) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
		}
	}
	close(fd);
	return buf;
}

/* The last non-empty line of s, without its newline, in buf. */
static void last_line(const char *s, char *buf, size_t len)
{
	const char *end = s + strlen(s), *start;

	while (end > s && (end[-1] == '\n' || end[-1] == ' '))
		end--;
	for (start = end; start > s && start[-1] != '\n'; start--)
		;
	snprintf(buf, len, "%.*s", (int)(end - start), start);
}

/* "kvmsnap snapshot" for messages: the program's base name and its first word. */
static void describe(const char *const *argv, char *buf, size_t len)
{
	const char *slash = strrchr(argv[0], '/');

	snprintf(buf, len, "%s%s%s", slash ? slash + 1 : argv[0], argv[1] ? " " : "",
		 argv[1] ? argv[1] : "");
}

int bench_proc__run(const char *const *argv, unsigned int timeout_ms, char **out, const char *dir,
		    struct error *err)
{
	char out_path[4096], err_path[4096], line[200], what[64];
	char *text;
	int status, ret;
	pid_t pid;

	describe(argv, what, sizeof(what));
	snprintf(out_path, sizeof(out_path), "%s/.cmd-out", dir);
	snprintf(err_path, sizeof(err_path), "%s/.cmd-err", dir);
	pid = bench_proc__spawn(argv, out_path, err_path, err);
	if (pid < 0)
		return pid;
	ret = bench_proc__wait(pid, timeout_ms, &status);
	if (ret) {
		bench_proc__stop(pid, 1000);
		return err_set(err, ret, "%s: no exit within %u s", what, timeout_ms / 1000);
	}
	if (out)
		*out = slurp(out_path);
	text = slurp(err_path);
	unlink(out_path);
	unlink(err_path);
	if (WIFEXITED(status) && !WEXITSTATUS(status)) {
		free(text);
		return 0;
	}
	last_line(text ? text : "", line, sizeof(line));
	free(text);
	if (out) {
		free(*out);
		*out = NULL;
	}
	if (WIFEXITED(status))
		return err_set(err, -EIO, "%s exited %d: %s", what, WEXITSTATUS(status),
			       line[0] ? line : "(no message)");
	return err_set(err, -EIO, "%s: killed by signal %d", what, WTERMSIG(status));
}
