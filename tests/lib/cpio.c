// SPDX-License-Identifier: GPL-2.0
/* A cpio newc writer for test initramfs images; see cpio.h. */
#include "cpio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../harness.h"

static int put(FILE *f, const void *p, size_t len)
{
	static const char zeros[4];

	size_t pad;

	if (len && fwrite(p, 1, len, f) != len)
		return -1;
	/* Data, and the 110-byte header with its name, end on a 4-byte boundary. */
	pad = (4 - ((size_t)ftell(f) & 3)) & 3;
	return fwrite(zeros, 1, pad, f) == pad ? 0 : -1;
}

static int header(FILE *f, unsigned int ino, uint32_t mode, size_t size, uint32_t maj, uint32_t min,
		  const char *name)
{
	char h[160];

	snprintf(h, sizeof(h), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino,
		 mode, 0, 0, (mode & S_IFMT) == S_IFDIR ? 2 : 1, 0, (unsigned int)size, 0, 0, maj,
		 min, (unsigned int)strlen(name) + 1, 0);
	if (fwrite(h, 1, 110, f) != 110 || fwrite(name, 1, strlen(name) + 1, f) != strlen(name) + 1)
		return -1;
	return put(f, NULL, 0);
}

/* The whole of a host file, malloc()ed. */
static void *slurp_file(const char *path, size_t *len)
{
	struct stat st;
	void *buf = NULL;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0)
		goto out;
	buf = malloc(st.st_size ? st.st_size : 1);
	if (buf && read(fd, buf, st.st_size) != st.st_size) {
		free(buf);
		buf = NULL;
	}
	*len = st.st_size;
out:
	if (fd >= 0)
		close(fd);
	return buf;
}

int cpio_write(const char *path, const struct cpio_entry *e, unsigned int n)
{
	FILE *f = fopen(path, "w");
	unsigned int i;
	int ret = 0;

	if (!f) {
		TH_LOG("cpio %s: %s", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n && !ret; i++) {
		const void *data = e[i].data;
		size_t len = e[i].len;
		void *buf = NULL;

		if (e[i].src) {
			buf = slurp_file(e[i].src, &len);
			if (!buf) {
				TH_LOG("cpio: cannot read %s: %s", e[i].src, strerror(errno));
				ret = -1;
				break;
			}
			data = buf;
		}
		if ((e[i].mode & S_IFMT) != S_IFREG)
			len = 0;
		ret = header(f, i + 1, e[i].mode, len, e[i].rdev_major, e[i].rdev_minor, e[i].name);
		if (!ret)
			ret = put(f, data, len);
		free(buf);
	}
	if (!ret)
		ret = header(f, 0, 0, 0, 0, 0, "TRAILER!!!");
	if (fclose(f) != 0)
		ret = -1;
	if (ret)
		TH_LOG("cpio %s: write failed", path);
	return ret;
}
