/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the image tests (tests/unit/test_snap_image.c on regular files,
 * tests/kvm/test_image_blockdev.c on loop devices): the smallest PC's
 * configuration, the temporary directory, creating an image, and running
 * `kvmsnap image ...` (cmd_image) in a child with its output captured.
 * Include after harness.h; the fixture must have a `char dir[]`.
 */
#ifndef KVMSNAP_TEST_SNAPIMG_H
#define KVMSNAP_TEST_SNAPIMG_H

#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snapshot/image.h"
#include "vmm/pc.h"
#include "vmm/snapcfg.h"

int cmd_image(int argc, char **argv);

/* The smallest PC: 2M RAM, 64K VRAM, 256K BIOS, 128K ACPI: 624 pages. */
static inline int snapimg_small_pc(struct snap_config *cfg, unsigned int vcpus)
{
	struct pc_config pc = {.ram_size = 2 << 20, .vram_size = 64 << 10, .nr_cpus = vcpus};

	return snapcfg__from_pc(&pc, cfg, NULL);
}

/* A new directory $TMPDIR/<prefix>-XXXXXX (or under /tmp) in dir; NULL on failure. */
static inline char *snapimg_mkdtemp(char *dir, size_t size, const char *prefix)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, size, "%s/%s-XXXXXX", tmp ? tmp : "/tmp", prefix);
	return mkdtemp(dir);
}

static inline int snapimg_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* Remove dir and everything below it, if it was made. */
static inline void snapimg_rmtree(const char *dir)
{
	if (dir[0])
		nftw(dir, snapimg_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* snap_image_create with options o, the image closed again on success. */
static inline int snapimg_create(const char *path, const struct snap_config *cfg,
				 const struct snap_target_opts *o, struct error *err)
{
	struct snap_image img = {0};
	int ret = snap_image_create(path, cfg, o, &img, err);

	if (!ret)
		snap_image_close(&img);
	return ret;
}

struct cli_out {
	int status;
	char out[65536];
	char err[4096];
};

static inline void snapimg_slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

/* Run cmd_image in a child, its stdout and stderr captured through files in dir. */
static inline void snapimg_cli(const char *dir, struct cli_out *o, const char *const *args)
{
	char out[320], errp[320];
	char *argv[16];
	int n = 0, st;
	pid_t pid;

	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(errp, sizeof(errp), "%s/err", dir);
	argv[n++] = (char *)"image";
	while (*args && n < 15)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int fo = open(out, O_CREAT | O_TRUNC | O_WRONLY, 0644);
		int fe = open(errp, O_CREAT | O_TRUNC | O_WRONLY, 0644);

		dup2(fo, 1);
		dup2(fe, 2);
		st = cmd_image(n, argv);
		fflush(NULL);
		_exit(st);
	}
	waitpid(pid, &st, 0);
	o->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	snapimg_slurp(out, o->out, sizeof(o->out));
	snapimg_slurp(errp, o->err, sizeof(o->err));
}

#define CLI(o, ...) snapimg_cli(self->dir, (o), (const char *const[]){__VA_ARGS__, NULL})

#endif
