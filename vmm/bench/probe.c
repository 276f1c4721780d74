// SPDX-License-Identifier: GPL-2.0
/*
 * The target's own limit, measured in the same run as the saves it is
 * compared with (the machines' storage drifts by 2x from run to run):
 * sequential 1 MiB O_DIRECT writes over already written blocks, 8 in
 * flight, fsync'd at the end. fio does it when installed; otherwise a
 * probe of our own with one write in flight (the table says which).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "bench/bench.h"
#include "util/util.h"

#define PROBE_BS (1U << 20)

static int probe_fio_once(const char *path, uint64_t size, double *mib_s, struct error *err)
{
	char dir[4096], sz[32], file[4200];
	const char *argv[] = {"fio",
			      "--name=seq",
			      file,
			      "--rw=write",
			      "--bs=1M",
			      "--direct=1",
			      "--numjobs=1",
			      "--ioengine=libaio",
			      "--iodepth=8",
			      "--fallocate=none",
			      "--end_fsync=1",
			      "--output-format=json",
			      sz,
			      NULL};
	struct json_object *j = NULL, *jobs, *w, *bw;
	char *out = NULL, *slash;
	int ret;

	snprintf(file, sizeof(file), "--filename=%s", path);
	snprintf(sz, sizeof(sz), "--size=%llu", (unsigned long long)size);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || !strncmp(path, "/dev/", 5))
		snprintf(dir, sizeof(dir), "/tmp");
	else
		*slash = '\0';
	ret = bench_proc__run(argv, 300 * 1000, &out, dir, err);
	if (ret)
		return ret;
	/* Older fio versions print notes before the JSON object. */
	j = out && strchr(out, '{') ? json_tokener_parse(strchr(out, '{')) : NULL;
	free(out);
	if (!j || !json_object_object_get_ex(j, "jobs", &jobs) ||
	    !json_object_is_type(jobs, json_type_array) || !json_object_array_length(jobs) ||
	    !json_object_object_get_ex(json_object_array_get_idx(jobs, 0), "write", &w) ||
	    !json_object_object_get_ex(w, "bw_bytes", &bw)) {
		json_object_put(j);
		return err_set(err, -EPROTO, "fio: no write bandwidth in its JSON output");
	}
	*mib_s = (double)json_object_get_int64(bw) / (1 << 20);
	json_object_put(j);
	return 0;
}

static int probe_own_once(const char *path, uint64_t size, double *mib_s, struct error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
	uint64_t off;
	double t0;
	void *buf;
	int ret = 0;

	if (fd < 0)
		return err_errno(err, errno, "%s: O_DIRECT open", path);
	if (posix_memalign(&buf, 4096, PROBE_BS)) {
		close(fd);
		return err_set(err, -ENOMEM, "probe: out of memory");
	}
	/* Not zeros: a target that compresses or skips zeros would flatter itself. */
	for (off = 0; off < PROBE_BS / 8; off++)
		((uint64_t *)buf)[off] = off * 0x9e3779b97f4a7c15ULL;
	t0 = bench_now_ms();
	for (off = 0; off + PROBE_BS <= size; off += PROBE_BS)
		if (pwrite_in_full(fd, buf, PROBE_BS, (off_t)off) != PROBE_BS) {
			ret = err_errno(err, errno ? errno : EIO, "%s: write", path);
			break;
		}
	if (!ret && fsync(fd))
		ret = err_errno(err, errno, "%s: fsync", path);
	if (!ret)
		*mib_s = (double)off / (1 << 20) / ((bench_now_ms() - t0) / 1000.0);
	free(buf);
	close(fd);
	return ret;
}

int bench_probe__run(const char *path, uint64_t size, bool use_fio, struct bench_probe *p,
		     struct error *err)
{
	struct stat st;
	bool is_file = stat(path, &st) || S_ISREG(st.st_mode);
	double mib_s = 0;
	int ret, i;

	size &= ~(uint64_t)(PROBE_BS - 1);
	if (!size)
		size = PROBE_BS;
	snprintf(p->tool, sizeof(p->tool), "%s", use_fio ? "fio" : "O_DIRECT probe");
	/* Twice: the first writes the blocks, the second is over written blocks. */
	for (i = 0; i < 2; i++) {
		ret = use_fio ? probe_fio_once(path, size, &mib_s, err)
			      : probe_own_once(path, size, &mib_s, err);
		if (ret)
			break;
	}
	if (is_file)
		unlink(path);
	if (ret)
		return ret;
	p->seq_mib_s = mib_s;
	return 0;
}
