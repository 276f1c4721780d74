// SPDX-License-Identifier: GPL-2.0
/* Sealed memfds and read-only descriptors of them; see memfd.h. */
#include "util/memfd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int memfd__create_sealed(const char *name, uint64_t size, struct error *err)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), e;

	if (fd < 0)
		return err_errno(err, errno, "memfd %s", name);
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		e = errno;
		close(fd);
		return err_errno(err, e, "memfd %s of %llu bytes", name, (unsigned long long)size);
	}
	return fd;
}

int memfd__reopen_rdonly(int fd, struct error *err)
{
	char path[64];
	int ro;

	/* The /proc link opens the same file anew, with only the access asked for. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	if (ro < 0)
		return err_errno(err, errno, "cannot reopen descriptor %d read-only", fd);
	return ro;
}
