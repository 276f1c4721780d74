// SPDX-License-Identifier: GPL-2.0
/* --kernel FILE: read it and pick the loader by what the file contains. */
#include "loader/loader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader/elf.h"
#include "loader/linux.h"
#include "util/util.h"

int loader__load_image(struct mem_registry *mem, const struct kernel_args *args, const void *buf,
		       size_t len, struct boot_state *boot, struct error *err)
{
	const char *name = args->path ? args->path : "(kernel)";
	unsigned int cls;
	size_t off;
	int ret;

	/* A bzImage is no ELF and has no Multiboot header: its boot sector says what it is. */
	if (bzimage__detect(buf, len))
		return loader__load_linux(mem, args, buf, len, boot, err);
	/* Multiboot first: a Multiboot kernel may well be an ELF64 file. */
	ret = loader__load_multiboot(mem, args, buf, len, boot, err);
	if (ret != -ENOENT)
		return ret;

	cls = elf__class(buf, len);
	if (cls && cls != 1 && args->nr_initrds)
		return err_set(err, -EINVAL, "kernel %s: --initrd needs a Multiboot kernel", name);
	if (cls && cls != 1)
		return loader__load_elf64(mem, name, buf, len, boot, err);
	if (loader__find_multiboot(buf, len, &off) == -EBADMSG)
		return err_set(err, -ENOEXEC,
			       "kernel %s: Multiboot header at offset 0x%zx has a bad checksum",
			       name, off);
	if (cls == 1)
		return err_set(
		    err, -ENOEXEC,
		    "kernel %s: 32-bit ELF without a Multiboot header in its first 8 KiB", name);
	return err_set(
	    err, -ENOEXEC,
	    "kernel %s: not an ELF64 x86-64 executable and no Multiboot header in its first 8 KiB",
	    name);
}

/* The whole file in a malloc()ed buffer, refusing what cannot be a kernel. */
static int read_kernel(const char *path, uint64_t limit, void **buf, size_t *len, struct error *err)
{
	char a[32], b[32];
	struct stat st;
	ssize_t n;
	int fd, ret = 0;

	*buf = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = err_errno(err, errno, "kernel %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = err_set(err, -EINVAL, "kernel %s: not a regular file", path);
		goto out;
	}
	if (!st.st_size) {
		ret = err_set(err, -ENOEXEC, "kernel %s: file is empty", path);
		goto out;
	}
	if ((uint64_t)st.st_size > limit) {
		ret = err_set(err, -EFBIG, "kernel %s: file is too large (%s; the limit is %s)",
			      path, format_size(st.st_size, a, sizeof(a)),
			      format_size(limit, b, sizeof(b)));
		goto out;
	}
	*buf = malloc(st.st_size);
	if (!*buf) {
		ret = err_errno(err, ENOMEM, "kernel %s", path);
		goto out;
	}
	n = read_in_full(fd, *buf, st.st_size);
	if (n != st.st_size) {
		ret = n < 0 ? err_errno(err, (int)n, "kernel %s: read", path)
			    : err_set(err, -EIO, "kernel %s: read: file shrank", path);
		free(*buf);
		*buf = NULL;
		goto out;
	}
	*len = st.st_size;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

int loader__load_kernel(struct mem_registry *mem, const struct kernel_args *args,
			struct boot_state *boot, struct error *err)
{
	struct mem_region *ram = mem__find_region(mem, "pc.ram");
	uint64_t limit = KERNEL_FILE_MAX;
	size_t len = 0;
	void *buf;
	int ret;

	if (ram)
		limit = MIN(limit, ram->size);
	ret = read_kernel(args->path, limit, &buf, &len, err);
	if (ret)
		return ret;
	ret = loader__load_image(mem, args, buf, len, boot, err);
	free(buf);
	return ret;
}
