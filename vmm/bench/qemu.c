// SPDX-License-Identifier: GPL-2.0
/*
 * The QEMU column of `kvmsnap bench`. QEMU runs the Multiboot dirtier
 * (build/guests/dirtier-mb.elf) with the same RAM, working set and rate as
 * kvmsnap does, and saves it live with its own migration code into a file:
 * QEMU 7.2 has no file: URI, so the stream goes through `exec:cat`. The
 * shell command also leaves a marker file once cat has exited, so the time
 * and size taken include every byte reaching the file; then the file is
 * fsync'd, as kvmsnap's image is.
 *
 * Every wait has a deadline, and QEMU is always ended (SIGTERM, then
 * SIGKILL) and reaped, also on errors.
 */
#include "bench/qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/qmp.h"
#include "guest-abi.h"
#include "util/util.h"

#define QEMU_START_MS	   30000  /* spawn to a QMP greeting */
#define QMP_REPLY_MS	   10000  /* any one command */
#define GUEST_READY_MS	   60000  /* boot (firmware, option ROM) to the first progress */
#define SAMPLE_MS	   50	  /* query-migrate and file size */
#define CANCEL_MS	   10000  /* migrate_cancel to "cancelled" */
#define SAVE_DONE_MS	   30000  /* "completed" to cat's exit */
#define RESTORE_MIN_MS	   120000 /* spawn to "running" for an incoming migration */
#define RESTORE_POLL_MS	   10
#define TERM_GRACE_MS	   5000
#define EXIT_WAIT_MS	   2000 /* for the exit of a QEMU whose monitor failed */
#define DEFAULT_MAX_TIME_S 600
#define MAX_DOWNTIME_MS	   2000000 /* QEMU's limit on downtime-limit */

struct qemu_proc {
	pid_t pid;
	struct qmp qmp;
	char sock[PATH_MAX];
	char log[PATH_MAX];
};

static double ms_since(uint64_t t0_ns)
{
	return (double)(now_ns() - t0_ns) / 1e6;
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_size;
}

/* "QEMU exited: " and the first line of its log, for a QEMU that died early. */
static int qemu_died(struct qemu_proc *p, int code, struct error *err)
{
	char line[200] = "";
	FILE *f = fopen(p->log, "re");

	if (f) {
		if (fgets(line, sizeof(line), f))
			line[strcspn(line, "\n")] = '\0';
		fclose(f);
	}
	if (!line[0])
		return code;
	return err_set(err, code, "QEMU exited: %s", line);
}

static void qemu_stop(struct qemu_proc *p)
{
	qmp__close(&p->qmp);
	if (p->pid > 0)
		bench_proc__stop(p->pid, TERM_GRACE_MS);
	p->pid = 0;
	if (p->sock[0])
		unlink(p->sock);
}

/* Start QEMU (name: the files' tag) and connect to its monitor. */
static int qemu_start(const struct bench_qemu_opts *o, const char *name, bool incoming,
		      struct qemu_proc *p, struct error *err)
{
	char mem[32], smp[16], serial[PATH_MAX + 16], qmp[PATH_MAX + 32];
	const char *argv[40];
	unsigned int n = 0;
	int ret;

	memset(p, 0, sizeof(*p));
	p->qmp.fd = -1;
	snprintf(p->sock, sizeof(p->sock), "%s/qemu-%s.qmp", o->dir, name);
	snprintf(p->log, sizeof(p->log), "%s/qemu-%s.log", o->dir, name);
	if (o->ram % MiB)
		snprintf(mem, sizeof(mem), "%lluK", (unsigned long long)(o->ram / KiB));
	else
		snprintf(mem, sizeof(mem), "%lluM", (unsigned long long)(o->ram / MiB));
	snprintf(smp, sizeof(smp), "%u", o->vcpus ? o->vcpus : 1);
	snprintf(serial, sizeof(serial), "file:%s/qemu-serial%s%s.log", o->dir, incoming ? "-" : "",
		 incoming ? name : "");
	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", p->sock);
	unlink(p->sock);

	argv[n++] = o->qemu;
	argv[n++] = "-enable-kvm";
	argv[n++] = "-cpu";
	argv[n++] = "host,-arch-capabilities";
	argv[n++] = "-m";
	argv[n++] = mem;
	argv[n++] = "-smp";
	argv[n++] = smp;
	argv[n++] = "-kernel";
	argv[n++] = o->kernel;
	argv[n++] = "-append";
	argv[n++] = o->append ? o->append : "";
	argv[n++] = "-display";
	argv[n++] = "none";
	argv[n++] = "-serial";
	argv[n++] = serial;
	argv[n++] = "-no-reboot";
	argv[n++] = "-nodefaults";
	argv[n++] = "-qmp";
	argv[n++] = qmp;
	if (incoming) {
		argv[n++] = "-incoming";
		argv[n++] = "defer";
	}
	argv[n] = NULL;

	p->pid = bench_proc__spawn(argv, p->log, p->log, err);
	if (p->pid < 0) {
		ret = err_prefix(err, "QEMU");
		p->pid = 0;
		return ret;
	}
	ret = qmp__connect(&p->qmp, p->sock, QEMU_START_MS, err);
	if (ret) {
		/* A QEMU that rejects its arguments closes the monitor as it exits. */
		int status;

		if (!bench_proc__wait(p->pid, EXIT_WAIT_MS, &status)) {
			p->pid = 0;
			return qemu_died(p, ret, err);
		}
	}
	return ret;
}

static int set_params(struct qemu_proc *p, const struct bench_qemu_opts *o, struct error *err)
{
	struct json_object *a = json_object_new_object(), *caps, *cap;

	/* INT64_MAX bytes/s: QEMU's "unlimited" (its default is 32 MiB/s). */
	json_object_object_add(a, "max-bandwidth", json_object_new_int64(INT64_MAX));
	json_object_object_add(a, "downtime-limit",
			       json_object_new_int64(MIN(o->max_downtime_ms, MAX_DOWNTIME_MS)));
	if (qmp__call(&p->qmp, "migrate-set-parameters", a, NULL, QMP_REPLY_MS, err))
		return err->code;

	a = json_object_new_object();
	caps = json_object_new_array();
	cap = json_object_new_object();
	json_object_object_add(cap, "capability", json_object_new_string("auto-converge"));
	json_object_object_add(cap, "state", json_object_new_boolean(o->auto_converge));
	json_object_array_add(caps, cap);
	json_object_object_add(a, "capabilities", caps);
	return qmp__call(&p->qmp, "migrate-set-capabilities", a, NULL, QMP_REPLY_MS, err);
}

/*
 * Wait until the dirtier has reported o->ready_pages of progress in its
 * scratch page, as the kvmsnap columns wait for it on the message port:
 * between ring 3 and that report the guest first touches its memory, which
 * took 4 s here, and a save in that time would find it all but empty.
 */
static int wait_guest_ready(struct qemu_proc *p, uint64_t ready, struct error *err)
{
	uint64_t t0 = now_ns(), pages = 0;
	int ret;

	for (;;) {
		ret = qmp__read_u64(&p->qmp, DIRTIER_MB_SCRATCH_GPA + MSGPORT_PROGRESS, &pages,
				    QMP_REPLY_MS, err);
		if (ret || (pages && pages >= ready))
			return ret;
		if (ms_since(t0) > GUEST_READY_MS)
			return err_set(err, -ETIMEDOUT,
				       "the guest showed no progress in %u s (is it the "
				       "Multiboot dirtier?)",
				       GUEST_READY_MS / 1000);
		bench_sleep_ms(SAMPLE_MS);
	}
}

static const char *str_member(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static int64_t int_member(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static int add_sample(struct bench_qemu_result *r, double t_ms, uint64_t bytes, size_t *cap,
		      struct error *err)
{
	if (r->nr_samples == *cap) {
		size_t n = *cap ? 2 * *cap : 256;
		struct bench_sample *s = realloc(r->samples, n * sizeof(*s));

		if (!s)
			return err_set(err, -ENOMEM, "samples: out of memory");
		r->samples = s;
		*cap = n;
	}
	r->samples[r->nr_samples++] = (struct bench_sample){t_ms, bytes};
	return 0;
}

/* The figures of a completed migration, from its last query-migrate. */
static void take_figures(struct bench_qemu_result *r, struct json_object *info)
{
	struct json_object *ram;

	r->downtime_ms = (double)int_member(info, "downtime");
	if (json_object_object_get_ex(info, "ram", &ram)) {
		r->transferred = (uint64_t)int_member(ram, "transferred");
		r->passes = (unsigned int)int_member(ram, "dirty-sync-count");
	}
}

/* Wait for cat to exit (the marker), then fsync the file. */
static int finish_file(const struct bench_qemu_opts *o, const char *done,
		       struct bench_qemu_result *r, struct error *err)
{
	uint64_t t0 = now_ns();
	int fd, ret = 0;

	while (access(done, F_OK)) {
		if (ms_since(t0) > SAVE_DONE_MS)
			return err_set(err, -ETIMEDOUT, "%s: cat did not finish in %u s", o->file,
				       SAVE_DONE_MS / 1000);
		bench_sleep_ms(1);
	}
	unlink(done);
	t0 = now_ns();
	fd = open(o->file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(err, errno, "%s", o->file);
	if (fsync(fd))
		ret = err_errno(err, errno, "%s: fsync", o->file);
	close(fd);
	r->fsync_ms = ms_since(t0);
	return ret;
}

static bool status_is(const char *s, const char *what)
{
	return s && !strcmp(s, what);
}

/* Copy s into the result's status, cut to fit. */
static void set_status(struct bench_qemu_result *r, const char *s)
{
	size_t n = MIN(strlen(s), sizeof(r->status) - 1);

	memcpy(r->status, s, n);
	r->status[n] = '\0';
}

/* query-migrate into *info; its status into r->status. */
static int query_migrate(struct qemu_proc *p, struct bench_qemu_result *r,
			 struct json_object **info, struct error *err)
{
	const char *st, *desc;
	int ret;

	ret = qmp__call(&p->qmp, "query-migrate", NULL, info, QMP_REPLY_MS, err);
	if (ret)
		return ret;
	st = str_member(*info, "status");
	desc = str_member(*info, "error-desc");
	if (st && desc) {
		char buf[sizeof(r->status)];

		snprintf(buf, sizeof(buf), "%.20s: %.40s", st, desc);
		set_status(r, buf);
	} else {
		set_status(r, st ? st : "none");
	}
	return 0;
}

/*
 * migrate, then query-migrate and the file's size every SAMPLE_MS until the
 * migration ends; past max_time_s, migrate_cancel. 0 whether or not it
 * completed (r->completed says).
 */
static int save(struct qemu_proc *p, const struct bench_qemu_opts *o, struct bench_qemu_result *r,
		struct error *err)
{
	uint64_t max_ms = (uint64_t)(o->max_time_s ? o->max_time_s : DEFAULT_MAX_TIME_S) * 1000;
	char done[PATH_MAX], uri[2 * PATH_MAX + 64];
	struct json_object *args, *info = NULL;
	uint64_t t0, cancelled_at = 0;
	size_t cap = 0;
	unsigned int tick = 0;
	int ret;

	if (strchr(o->file, '\'') || strchr(o->dir, '\''))
		return err_set(err, -EINVAL, "%s: a quote in the path (it goes through a shell)",
			       o->file);
	snprintf(done, sizeof(done), "%s/qemu-save.done", o->dir);
	snprintf(uri, sizeof(uri), "exec:cat > '%s' && : > '%s'", o->file, done);
	unlink(done);
	if (unlink(o->file) && errno != ENOENT)
		return err_errno(err, errno, "%s", o->file);

	args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string(uri));
	t0 = now_ns();
	ret = qmp__call(&p->qmp, "migrate", args, NULL, QMP_REPLY_MS, err);
	if (ret)
		return ret;

	for (;;) {
		const char *st;
		double t;

		/* Ticks at fixed times, so a slow reply does not shift the samples. */
		t = ms_since(t0);
		if (t < (double)++tick * SAMPLE_MS)
			bench_sleep_ms((unsigned int)((double)tick * SAMPLE_MS - t));
		json_object_put(info);
		info = NULL;
		ret = query_migrate(p, r, &info, err);
		if (!ret)
			ret = add_sample(r, ms_since(t0), file_size(o->file), &cap, err);
		if (ret)
			break;
		st = str_member(info, "status");
		if (status_is(st, "completed")) {
			take_figures(r, info);
			ret = finish_file(o, done, r, err);
			if (ret)
				break;
			r->total_ms = ms_since(t0);
			r->file_bytes = file_size(o->file);
			r->completed = true;
			ret = add_sample(r, r->total_ms, r->file_bytes, &cap, err);
			break;
		}
		if (status_is(st, "failed") || status_is(st, "cancelled"))
			break;
		if (!cancelled_at && ms_since(t0) > (double)max_ms) {
			ret = qmp__call(&p->qmp, "migrate_cancel", NULL, NULL, QMP_REPLY_MS, err);
			if (ret)
				break;
			cancelled_at = now_ns();
		}
		if (cancelled_at && ms_since(cancelled_at) > CANCEL_MS) {
			ret = err_set(err, -ETIMEDOUT, "migrate_cancel: still \"%s\" after %u s",
				      st ? st : "?", CANCEL_MS / 1000);
			break;
		}
	}
	json_object_put(info);
	if (!ret && cancelled_at && !r->completed)
		snprintf(r->status, sizeof(r->status), "cancelled after max-time %llu s",
			 (unsigned long long)(max_ms / 1000));
	if (!r->completed)
		r->file_bytes = file_size(o->file);
	return ret;
}

/* QEMU -incoming defer, migrate-incoming from the file, until "running". */
static int restore(const struct bench_qemu_opts *o, struct bench_qemu_result *r, struct error *err)
{
	uint64_t limit_ms = MAX((uint64_t)RESTORE_MIN_MS, (uint64_t)o->max_time_s * 1000);
	struct json_object *args, *info;
	struct qemu_proc p;
	char uri[PATH_MAX + 16];
	uint64_t t0;
	int ret;

	snprintf(uri, sizeof(uri), "exec:cat '%s'", o->file);
	t0 = now_ns();
	ret = qemu_start(o, "restore", true, &p, err);
	if (!ret) {
		args = json_object_new_object();
		json_object_object_add(args, "uri", json_object_new_string(uri));
		ret = qmp__call(&p.qmp, "migrate-incoming", args, NULL, QMP_REPLY_MS, err);
	}
	while (!ret) {
		const char *st;
		bool running;

		ret = qmp__call(&p.qmp, "query-status", NULL, &info, QMP_REPLY_MS, err);
		if (ret)
			break;
		st = str_member(info, "status");
		running = status_is(st, "running");
		if (running)
			r->restore_ms = ms_since(t0);
		else if (ms_since(t0) > (double)limit_ms)
			ret = err_set(err, -ETIMEDOUT,
				      "incoming migration: still \"%s\" after %llu s",
				      st ? st : "?", (unsigned long long)(limit_ms / 1000));
		else if (status_is(st, "shutdown") || status_is(st, "internal-error"))
			ret = err_set(err, -EIO, "incoming migration: QEMU status \"%s\"", st);
		json_object_put(info);
		if (running)
			break;
		bench_sleep_ms(RESTORE_POLL_MS);
	}
	if (ret)
		err_prefix(err, "restore");
	qemu_stop(&p);
	return ret;
}

int bench_qemu__run(const struct bench_qemu_opts *o, struct bench_qemu_result *r, struct error *err)
{
	struct qemu_proc p;
	int ret;

	memset(r, 0, sizeof(*r));
	if (!o->qemu || !o->kernel || !o->dir || !o->file || !o->ram) {
		ret =
		    err_set(err, -EINVAL, "bench qemu: qemu, kernel, dir, file and ram are needed");
		set_status(r, err->msg);
		return ret;
	}
	ret = qemu_start(o, "save", false, &p, err);
	if (!ret)
		ret = set_params(&p, o, err);
	if (!ret)
		ret = wait_guest_ready(&p, o->ready_pages, err);
	if (!ret) {
		bench_sleep_ms(o->warm_ms);
		ret = save(&p, o, r, err);
	}
	qemu_stop(&p);
	if (!ret && o->restore && r->completed)
		ret = restore(o, r, err);
	if (ret)
		set_status(r, err->msg);
	return ret;
}

const char *bench_qemu__find(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("KVMSNAP_QEMU");

	if (env && *env)
		return env;
	return bench_proc__which("qemu-system-x86_64", path, sizeof(path)) ? path : NULL;
}
