// SPDX-License-Identifier: GPL-2.0
/*
 * The kvmsnap columns of the benchmark: a dirtier VM (`kvmsnap run`), saved
 * live by `kvmsnap snapshot` into the fixed image or an append file, and an
 * eager `kvmsnap restore` of the image, timed. Every step is this binary run
 * as a user would run it, so the figures include nothing a user would not
 * get.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "bench/bench.h"
#include "control/conn.h"
#include "lib/align.h"
#include "util/util.h"

#define VM_START_MS    30000  /* until the control socket answers */
#define VM_PROGRESS_MS 60000  /* until the guest has written a page */
#define VM_STOP_MS     15000  /* from quit to exit */
#define RESTORE_MS     120000 /* until a restored VM runs */

struct bench_vm {
	struct bench_vm_opts o;
	struct bench_case c;
	pid_t pid;
	char sock[4200];
	unsigned int serial; /* this run's number, for unique paths */
};

static unsigned int vm_serial;

void bench_vm__cmdline(const struct bench_case *c, uint64_t tsc_khz, char *buf, size_t len)
{
	snprintf(buf, len, "ws=%lluK rate=%llu pattern=%s seed=1 tsc_khz=%llu",
		 (unsigned long long)(c->ws >> 10), (unsigned long long)c->rate,
		 bench_pattern_names[c->pattern], (unsigned long long)tsc_khz);
}

/* One control request on a new connection; the reply (ok) in *reply. */
static int vm_call(const char *sock, const char *cmd, struct json_object **reply, struct error *err)
{
	struct ctl_conn conn;
	char msg[256];
	int ret;

	ret = ctl_conn__open(&conn, sock, 15, msg, sizeof(msg));
	if (!ret) {
		ret = ctl_conn__call(&conn, cmd, NULL, reply, NULL, 0, NULL, msg, sizeof(msg));
		ctl_conn__close(&conn);
	}
	return ret ? err_set(err, ret, "%s", msg) : 0;
}

static uint64_t json_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? (uint64_t)json_object_get_int64(v) : 0;
}

static double json_double(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : 0;
}

/* Has the VM exited? Then say how, for the error. */
static int vm_gone(struct bench_vm *vm, struct error *err)
{
	int status;

	if (waitpid(vm->pid, &status, WNOHANG) != vm->pid)
		return 0;
	vm->pid = 0;
	return err_set(err, -ECHILD, "the VM exited (status %d) before the save",
		       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/* Wait for the control socket, then for the guest's first pages. */
static int vm_wait_ready(struct bench_vm *vm, struct error *err)
{
	double end = bench_now_ms() + VM_START_MS;
	struct json_object *r = NULL;
	uint64_t ready;
	int ret;

	for (;;) {
		ret = vm_gone(vm, err);
		if (ret)
			return ret;
		if (!access(vm->sock, F_OK) && !vm_call(vm->sock, "stats", &r, err))
			break;
		if (bench_now_ms() > end)
			return err_set(err, -ETIMEDOUT, "the VM's control socket did not answer");
		bench_sleep_ms(20);
	}
	end = bench_now_ms() + VM_PROGRESS_MS;
	ready = MAX(bench_ready_pages(&vm->c), 1);
	while (json_u64(r, "pages") < ready) {
		json_object_put(r);
		r = NULL;
		if (bench_now_ms() > end)
			return err_set(err, -ETIMEDOUT,
				       "the guest wrote fewer than %llu pages in %d s",
				       (unsigned long long)ready, VM_PROGRESS_MS / 1000);
		bench_sleep_ms(20);
		ret = vm_gone(vm, err);
		if (!ret)
			ret = vm_call(vm->sock, "stats", &r, err);
		if (ret)
			return ret;
	}
	json_object_put(r);
	return 0;
}

int bench_vm__start(struct bench_vm **out, const struct bench_case *c,
		    const struct bench_vm_opts *o, struct error *err)
{
	char mem[32], vcpus[16], spec[160], cmdline[160], log[4200];
	const char *argv[20];
	struct bench_vm *vm = calloc(1, sizeof(*vm));
	unsigned int n = 0;
	int ret;

	if (!vm)
		return err_set(err, -ENOMEM, "out of memory");
	vm->o = *o;
	vm->c = *c;
	vm->serial = ++vm_serial;
	snprintf(vm->sock, sizeof(vm->sock), "%s/vm-%u.sock", o->dir, vm->serial);
	snprintf(log, sizeof(log), "%s/vm-%u.log", o->dir, vm->serial);
	snprintf(mem, sizeof(mem), "%lluK", (unsigned long long)(c->ram >> 10));
	snprintf(vcpus, sizeof(vcpus), "%u", c->vcpus);
	argv[n++] = bench_proc__self();
	argv[n++] = "run";
	argv[n++] = "--mem";
	argv[n++] = mem;
	argv[n++] = "--vcpus";
	argv[n++] = vcpus;
	argv[n++] = "--control";
	argv[n++] = vm->sock;
	argv[n++] = "--serial";
	argv[n++] = "none";
	if (o->kernel) {
		bench_vm__cmdline(c, o->tsc_khz, cmdline, sizeof(cmdline));
		argv[n++] = "--kernel";
		argv[n++] = o->kernel;
		argv[n++] = "--append";
		argv[n++] = cmdline;
	} else {
		snprintf(spec, sizeof(spec), "dirtier:ws=%lluK,rate=%llu,pattern=%s,seed=1",
			 (unsigned long long)(c->ws >> 10), (unsigned long long)c->rate,
			 bench_pattern_names[c->pattern]);
		argv[n++] = "--guest";
		argv[n++] = spec;
	}
	argv[n] = NULL;
	unlink(vm->sock);
	vm->pid = bench_proc__spawn(argv, NULL, log, err);
	if (vm->pid < 0) {
		ret = vm->pid;
		free(vm);
		return ret;
	}
	ret = vm_wait_ready(vm, err);
	if (ret) {
		err_prefix(err, "kvmsnap run (log %s)", log);
		bench_vm__stop(vm);
		return ret;
	}
	*out = vm;
	return 0;
}

int bench_vm__rate(struct bench_vm *vm, double *pps, struct error *err)
{
	struct json_object *r;
	int ret;

	/* stats gives the rate since the previous stats: one to start, one to read. */
	ret = vm_call(vm->sock, "stats", &r, err);
	if (ret)
		return ret;
	json_object_put(r);
	bench_sleep_ms(vm->o.warm_ms);
	ret = vm_call(vm->sock, "stats", &r, err);
	if (ret)
		return ret;
	*pps = (double)json_u64(r, "pages_per_sec");
	json_object_put(r);
	return 0;
}

/* Fill r from `kvmsnap snapshot --json`'s report. */
static int parse_report(const char *out, struct bench_run *r, struct error *err)
{
	struct json_object *j = out ? json_tokener_parse(out) : NULL, *passes, *ok;
	size_t i, n;

	if (!j || !json_object_object_get_ex(j, "ok", &ok) || !json_object_get_boolean(ok)) {
		json_object_put(j);
		return err_set(err, -EPROTO, "kvmsnap snapshot: no report in its output");
	}
	r->converged =
	    json_object_object_get_ex(j, "converged", &ok) && json_object_get_boolean(ok);
	r->total_ms = json_double(j, "total_ms");
	r->guest_pps_during = json_double(j, "guest_pages_per_sec");
	r->downtime_ms = json_double(j, "downtime_ms");
	r->bytes = json_u64(j, "bytes_written");
	if (json_object_object_get_ex(j, "stop_reason", &ok))
		snprintf(r->note, sizeof(r->note), "%s", json_object_get_string(ok));
	if (json_object_object_get_ex(j, "passes", &passes) &&
	    json_object_is_type(passes, json_type_array)) {
		n = json_object_array_length(passes);
		r->passes = (unsigned int)n;
		for (i = 0; i < n; i++) {
			struct json_object *p = json_object_array_get_idx(passes, i);
			/* The highest in force during the pass: it may rise within it. */
			uint64_t t =
			    MAX(json_u64(p, "throttle_pct"), json_u64(p, "throttle_end_pct"));

			if (!i)
				r->pass1_mib_s = json_double(p, "rate_mib_s");
			r->pages += json_u64(p, "dirty_pages");
			if (i < BENCH_MAX_PASSES) {
				r->pass_bytes[i] = json_u64(p, "bytes");
				r->pass_ms[i] = json_double(p, "duration_ms");
				r->pass_throttle[i] = (unsigned int)t;
			}
			if (t > r->throttle_max)
				r->throttle_max = (unsigned int)t;
		}
	}
	/* append: data pages and zero runs apart (its passes count both) */
	if (json_object_object_get_ex(j, "zero_pages", &ok)) {
		r->zero_pages = json_u64(j, "zero_pages");
		r->pages = json_u64(j, "pages");
	} else if (json_object_object_get_ex(j, "zero_pages_kept", &ok)) {
		/* fixed: slots left unwritten, as they held zeros already */
		r->zero_pages = json_u64(j, "zero_pages_kept");
	}
	json_object_put(j);
	return 0;
}

/* Start `kvmsnap restore IMAGE [--lazy]` and time it to its "started" JSON line. */
static int vm_time_restore(struct bench_vm *vm, bool lazy, double *ms, struct error *err)
{
	char sock[4200], out[4200], log[4200];
	const char *argv[] = {bench_proc__self(),
			      "restore",
			      vm->o.image,
			      "--json",
			      "--serial",
			      "none",
			      "--control",
			      sock,
			      lazy ? "--lazy" : NULL,
			      NULL};
	double t0, end;
	struct stat st;
	pid_t pid;
	int ret = 0;

	snprintf(sock, sizeof(sock), "%s/restore-%u.sock", vm->o.dir, vm->serial);
	snprintf(out, sizeof(out), "%s/restore-%u.json", vm->o.dir, vm->serial);
	snprintf(log, sizeof(log), "%s/restore-%u.log", vm->o.dir, vm->serial);
	unlink(sock);
	unlink(out);
	/* What the restore reads comes from the disk, not from the page cache. */
	sync();
	t0 = bench_now_ms();
	pid = bench_proc__spawn(argv, out, log, err);
	if (pid < 0)
		return pid;
	end = t0 + RESTORE_MS;
	/* The JSON line comes once the VM runs; the file grows from 0 then. */
	while (stat(out, &st) || !st.st_size) {
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			return err_set(err, -EIO,
				       "kvmsnap restore exited %d before the VM ran (log %s)",
				       WIFEXITED(status) ? WEXITSTATUS(status) : 128, log);
		}
		if (bench_now_ms() > end) {
			ret = err_set(err, -ETIMEDOUT, "kvmsnap restore: no VM in %d s",
				      RESTORE_MS / 1000);
			break;
		}
		bench_sleep_ms(1);
	}
	*ms = bench_now_ms() - t0;
	if (!ret) {
		struct json_object *r = NULL;

		/* The socket may come a moment after the line; quit either way. */
		for (end = bench_now_ms() + 5000; bench_now_ms() < end; bench_sleep_ms(10))
			if (!vm_call(sock, "quit", &r, err))
				break;
		json_object_put(r);
	}
	bench_proc__stop(pid, VM_STOP_MS);
	return ret;
}

int bench_vm__save(struct bench_vm *vm, enum bench_kind kind, struct bench_run *r,
		   struct error *err)
{
	char path[4200], downtime[16], maxtime[16], limit[24];
	const char *argv[20];
	struct bench_sampler *s = NULL;
	struct stat st;
	unsigned int n = 0;
	char *out = NULL;
	int ret;

	if (kind == BENCH_FIXED)
		snprintf(path, sizeof(path), "%s", vm->o.image);
	else
		snprintf(path, sizeof(path), "%s/append-%u.bin", vm->o.dir, vm->serial);
	if (kind != BENCH_FIXED)
		unlink(path);
	snprintf(downtime, sizeof(downtime), "%u", vm->o.max_downtime_ms);
	snprintf(maxtime, sizeof(maxtime), "%u", vm->o.max_time_s);
	argv[n++] = bench_proc__self();
	argv[n++] = "snapshot";
	argv[n++] = path;
	argv[n++] = "--control";
	argv[n++] = vm->sock;
	argv[n++] = "--json";
	argv[n++] = "--max-downtime";
	argv[n++] = downtime;
	argv[n++] = "--max-time";
	argv[n++] = maxtime;
	if (kind == BENCH_APPEND)
		argv[n++] = "--append";
	if (vm->o.dirty_limit) {
		snprintf(limit, sizeof(limit), "%llu", (unsigned long long)vm->o.dirty_limit);
		argv[n++] = "--dirty-limit";
		argv[n++] = limit;
	}
	argv[n] = NULL;
	ret = bench_sampler__start(&s, path, err);
	if (ret)
		return ret;
	ret = bench_proc__run(argv, (vm->o.max_time_s + 120) * 1000, &out, vm->o.dir, err);
	bench_sampler__stop(s, &r->samples, &r->nr_samples);
	if (!ret)
		ret = parse_report(out, r, err);
	free(out);
	if (ret)
		return ret;
	/* A block device's st_size is 0: its size is the image's. */
	if (!stat(path, &st) && S_ISREG(st.st_mode)) {
		r->file_bytes = (uint64_t)st.st_size;
	} else {
		size_t i;

		r->file_bytes = r->image_size;
		for (i = 0; i < r->nr_samples; i++)
			r->samples[i].bytes = r->image_size;
	}
	if (kind == BENCH_APPEND)
		unlink(path);
	r->ok = true;
	if (kind == BENCH_FIXED && vm->o.restore)
		ret = vm_time_restore(vm, false, &r->restore_ms, err);
	if (!ret && kind == BENCH_FIXED && vm->o.restore)
		ret = vm_time_restore(vm, true, &r->restore_lazy_ms, err);
	return ret;
}

void bench_vm__stop(struct bench_vm *vm)
{
	struct json_object *r = NULL;
	struct error err;
	int status;

	if (!vm)
		return;
	if (vm->pid > 0) {
		bool quit = !vm_call(vm->sock, "quit", &r, &err);

		json_object_put(r);
		if (!quit || bench_proc__wait(vm->pid, VM_STOP_MS, &status))
			bench_proc__stop(vm->pid, 1000);
	}
	unlink(vm->sock);
	free(vm);
}
