// SPDX-License-Identifier: GPL-2.0
/* The helpers of snapimg.h: small PC configurations, images, `kvmsnap image` in a child. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snapimg.h"

int snapimg_small_pc(struct snap_config *cfg, unsigned int vcpus)
{
	struct pc_config pc = {.ram_size = 2 << 20, .vram_size = 64 << 10, .nr_cpus = vcpus};

	return snapcfg__from_pc(&pc, cfg, NULL);
}

char *snapimg_mkdtemp(char *dir, size_t size, const char *prefix)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, size, "%s/%s-XXXXXX", tmp ? tmp : "/tmp", prefix);
	return mkdtemp(dir);
}

int snapimg_create(const char *path, const struct snap_config *cfg,
		   const struct snap_target_opts *o, struct error *err)
{
	struct snap_image img = {0};
	int ret = snap_image_create(path, cfg, o, &img, err);

	if (!ret)
		snap_image_close(&img);
	return ret;
}

void snapimg_cli(const char *dir, struct cli_out *o, const char *const *args)
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
	read_file(out, o->out, sizeof(o->out));
	read_file(errp, o->err, sizeof(o->err));
}
