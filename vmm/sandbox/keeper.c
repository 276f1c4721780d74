// SPDX-License-Identifier: GPL-2.0
/* The control socket's keeper; see keeper.h. */
#include "sandbox/keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "sandbox/seccomp.h"

static void __attribute__((noreturn))
keeper_main(int fd, const char *path, const char *dir, const struct stat *was)
{
	struct stat st;
	char c;

	/* Nothing of the VM's: in particular not the listening socket. */
	if (fd > 3)
		close_range(3, (unsigned int)fd - 1, 0);
	close_range((unsigned int)fd + 1, ~0U, 0);
	prctl(PR_SET_NAME, "kvmsnap-keeper");
	if (caps__drop_all(NULL) || seccomp__install(SECCOMP_KEEPER, NULL))
		_exit(1);
	/* EOF, or an error: the VM has closed its end or is gone. */
	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
	/* A newer VM may have replaced the socket: leave that one alone. */
	if (!lstat(path, &st) && st.st_dev == was->st_dev && st.st_ino == was->st_ino)
		unlink(path);
	if (dir)
		rmdir(dir);
	_exit(0);
}

int keeper__start(struct keeper *k, const char *path, const char *dir, struct error *err)
{
	struct stat st;
	int p[2];
	pid_t pid;

	k->pid = 0;
	k->fd = -1;
	if (lstat(path, &st))
		return err_errno(err, errno, "control socket %s", path);
	if (pipe2(p, O_CLOEXEC))
		return err_errno(err, errno, "cannot start the control socket's keeper");
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return err_errno(err, errno, "cannot start the control socket's keeper");
	}
	if (pid == 0) {
		close(p[1]);
		keeper_main(p[0], path, dir, &st);
	}
	close(p[0]);
	k->pid = pid;
	k->fd = p[1];
	return 0;
}

void keeper__finish(struct keeper *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	if (k->pid > 0)
		while (waitpid(k->pid, NULL, 0) < 0 && errno == EINTR)
			;
	k->pid = 0;
}
