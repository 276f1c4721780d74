// SPDX-License-Identifier: GPL-2.0
/* The tests' NBD server: see nbdkit.h. */
#include "nbdkit.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 30000
#define MAX_ARGS	 32

bool nbdkit_available(const char **why)
{
	static const char *const need[] = {
	    "plugins/nbdkit-memory-plugin.so", "plugins/nbdkit-file-plugin.so",
	    "plugins/nbdkit-eval-plugin.so", "filters/nbdkit-error-filter.so",
	    "filters/nbdkit-delay-filter.so"};
	char path[160];
	unsigned int i;

	if (system("nbdkit --version >/dev/null 2>&1")) {
		*why = "nbdkit is not installed (tools/install-deps installs it)";
		return false;
	}
	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		snprintf(path, sizeof(path), "/usr/lib/x86_64-linux-gnu/nbdkit/%s", need[i]);
		if (access(path, R_OK)) {
			*why = "nbdkit lacks the memory, file or eval plugin or the error or delay "
			       "filter";
			return false;
		}
	}
	return true;
}

int nbdkit_init(struct nbdkit *k)
{
	memset(k, 0, sizeof(*k));
	strcpy(k->dir, "/tmp/kvmsnap-nbdkit-XXXXXX");
	if (!mkdtemp(k->dir))
		return -1;
	snprintf(k->sock, sizeof(k->sock), "%s/sock", k->dir);
	snprintf(k->uri, sizeof(k->uri), "nbd+unix:///?socket=%s", k->sock);
	snprintf(k->log, sizeof(k->log), "%s/nbdkit.log", k->dir);
	return 0;
}

const char *nbdkit_file(const struct nbdkit *k, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", k->dir, name);
	return buf;
}

int nbdkit_touch(const struct nbdkit *k, const char *name)
{
	char path[160];
	int fd =
	    open(nbdkit_file(k, name, path, sizeof(path)), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static bool accepts(const char *sock)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	ok = fd >= 0 && !connect(fd, (struct sockaddr *)&a, sizeof(a));
	if (fd >= 0)
		close(fd);
	return ok;
}

static void show_log(const struct nbdkit *k)
{
	char line[256];
	FILE *f = fopen(k->log, "r");

	while (f && fgets(line, sizeof(line), f))
		fprintf(stderr, "# nbdkit: %s", line);
	if (f)
		fclose(f);
}

int nbdkit_start(struct nbdkit *k, const char *const *args)
{
	const char *argv[MAX_ARGS + 8];
	unsigned int n = 0, waited;
	int status;

	argv[n++] = "nbdkit";
	argv[n++] = "-f";
	argv[n++] = "--exit-with-parent";
	argv[n++] = "-U";
	argv[n++] = k->sock;
	while (*args && n < MAX_ARGS)
		argv[n++] = *args++;
	argv[n] = NULL;
	unlink(k->sock); /* a killed server's */
	k->pid = fork();
	if (k->pid < 0) {
		k->pid = 0;
		return -1;
	}
	if (!k->pid) {
		int fd = open(k->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execvp("nbdkit", (char *const *)argv);
		_exit(127);
	}
	for (waited = 0; waited < START_TIMEOUT_MS; waited += 10) {
		if (accepts(k->sock))
			return 0;
		if (waitpid(k->pid, &status, WNOHANG) == k->pid) {
			k->pid = 0;
			break;
		}
		usleep(10000);
	}
	fprintf(stderr, "# nbdkit did not start:\n");
	show_log(k);
	nbdkit_kill(k);
	return -1;
}

void nbdkit_kill(struct nbdkit *k)
{
	if (k->pid <= 0)
		return;
	kill(k->pid, SIGKILL);
	while (waitpid(k->pid, NULL, 0) < 0 && errno == EINTR)
		;
	k->pid = 0;
}

void nbdkit_cleanup(struct nbdkit *k)
{
	char cmd[128];

	nbdkit_kill(k);
	if (!k->dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", k->dir);
	if (system(cmd))
		fprintf(stderr, "# cannot remove %s\n", k->dir);
	k->dir[0] = '\0';
}

int nbdkit_start_scripted(struct nbdkit *k, unsigned long long size, bool can_flush)
{
	char disk[160], sz[64], pread[256], pwrite[768], flush[512];
	const char *d = k->dir;
	int fd;

	fd = open(nbdkit_file(k, "disk", disk, sizeof(disk)), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size)) {
		close(fd);
		return -1;
	}
	close(fd);
	snprintf(sz, sizeof(sz), "get_size=echo %llu", size);
	snprintf(pread, sizeof(pread),
		 "pread=dd if=%s skip=$4 count=$3 iflag=skip_bytes,count_bytes status=none", disk);
	/*
	 * An error is "ERRNO message" on stderr and exit 1 (nbdkit-sh-plugin),
	 * after reading the data: a script that leaves it unread makes nbdkit's
	 * write into the pipe fail, and the error becomes EIO.
	 */
	snprintf(pwrite, sizeof(pwrite),
		 "pwrite=if [ -e %s/stall ]; then sleep 8; fi; "
		 "if [ -e %s/fail-from ]; then read from to what <%s/fail-from; "
		 "if [ $4 -ge $from ] && [ $4 -lt $to ]; then [ $what = KILL ] && kill -9 $PPID; "
		 "if [ $what = STALL ]; then sleep 8; else "
		 "cat >/dev/null; echo \"$what injected at $4\" >&2; exit 1; fi; fi; fi; "
		 "dd of=%s seek=$4 oflag=seek_bytes conv=notrunc status=none",
		 d, d, d, disk);
	snprintf(
	    flush, sizeof(flush),
	    "flush=n=$(cat %s/flushes 2>/dev/null || echo 0); n=$((n+1)); echo $n >%s/flushes; "
	    "if [ -e %s/kill-at ] && [ $n -ge $(cat %s/kill-at) ]; then kill -9 $PPID; fi",
	    d, d, d, d);
	return NBDKIT_START(k, "eval", sz, pread, pwrite, "can_write=exit 0",
			    can_flush ? "can_flush=exit 0" : "can_flush=exit 3",
			    "can_fua=echo emulate", flush);
}

static int put(const struct nbdkit *k, const char *name, const char *text)
{
	char path[160];
	FILE *f = fopen(nbdkit_file(k, name, path, sizeof(path)), "w");
	int ret;

	if (!f)
		return -1;
	ret = fputs(text, f) < 0 ? -1 : 0;
	return fclose(f) ? -1 : ret;
}

int nbdkit_fail_writes(const struct nbdkit *k, unsigned long long from, unsigned long long to,
		       const char *what)
{
	char text[96];

	snprintf(text, sizeof(text), "%llu %llu %s\n", from, to, what);
	return put(k, "fail-from", text);
}

unsigned int nbdkit_flushes(const struct nbdkit *k)
{
	char path[160];
	unsigned int n = 0;
	FILE *f = fopen(nbdkit_file(k, "flushes", path, sizeof(path)), "r");

	if (f && fscanf(f, "%u", &n) != 1)
		n = 0;
	if (f)
		fclose(f);
	return n;
}

int nbdkit_kill_at_flush(const struct nbdkit *k, unsigned int n)
{
	char text[32];

	snprintf(text, sizeof(text), "%u\n", n);
	return put(k, "kill-at", text);
}
