// SPDX-License-Identifier: GPL-2.0
/* The helpers of vmproc.h: kvmsnap processes, the control protocol, JSON replies. */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "vmproc.h"

unsigned int start_timeout_ms = 30000;
unsigned int reply_timeout_ms = 15000;
unsigned int exit_timeout_ms = 15000;
unsigned int progress_timeout_ms = 30000;
unsigned int cli_timeout_ms = 60000;

const char *kvmsnap_bin(void)
{
	const char *bin = getenv("KVMSNAP_BIN");

	return bin && *bin ? bin : "build/kvmsnap";
}

const char *build_dir(void)
{
	const char *dir = getenv("KVMSNAP_BUILD");

	return dir && *dir ? dir : "build";
}

bool test_kernel(const char *name, char *path, size_t len)
{
	struct stat st;
	bool ok = true;

	snprintf(path, len, "%s/tests/guests/%s.elf", build_dir(), name);
	if (stat(path, &st) < 0) {
		fprintf(stderr, "# %s: %s (run `make tests`)\n", path, strerror(errno));
		ok = false;
	}
	if (access(kvmsnap_bin(), X_OK) < 0) {
		fprintf(stderr, "# %s: %s\n", kvmsnap_bin(), strerror(errno));
		ok = false;
	}
	return ok;
}

int ctl_open(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

int send_all(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

char *recv_line_fds(int fd, int *fds, unsigned int max_fds, unsigned int *nr_fds)
{
	uint64_t deadline = ms_now() + reply_timeout_ms;
	size_t used = 0, cap = 4096;
	char *buf = malloc(cap);

	if (nr_fds)
		*nr_fds = 0;
	while (buf) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		union {
			char buf[CMSG_SPACE(sizeof(int) * 32)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov;
		struct msghdr msg = {
		    .msg_iov = &iov,
		    .msg_iovlen = 1,
		    .msg_control = ctl.buf,
		    .msg_controllen = sizeof(ctl.buf),
		};
		struct cmsghdr *c;
		uint64_t now = ms_now();
		ssize_t n;

		if (used == cap) {
			char *b = realloc(buf, cap *= 2);

			if (!b)
				break;
			buf = b;
		}
		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) != 1)
			break;
		iov.iov_base = buf + used;
		iov.iov_len = 1;
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
		if (n <= 0)
			break;
		for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			size_t i, k;

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (i = 0; i < k; i++) {
				int got;

				memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (fds && nr_fds && *nr_fds < max_fds)
					fds[*nr_fds] = got;
				else
					close(got);
				if (nr_fds)
					(*nr_fds)++;
			}
		}
		if (buf[used] == '\n') {
			buf[used] = '\0';
			return buf;
		}
		used++;
	}
	free(buf);
	return NULL;
}

char *recv_line(int fd)
{
	return recv_line_fds(fd, NULL, 0, NULL);
}

struct json_object *parse_object(const char *line)
{
	struct json_object *o = line ? json_tokener_parse(line) : NULL;

	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

struct json_object *call_fd(int fd, const char *req)
{
	struct json_object *o;
	char *line;

	if (send_all(fd, req, strlen(req)) || send_all(fd, "\n", 1))
		return NULL;
	line = recv_line(fd);
	o = parse_object(line);
	free(line);
	return o;
}

struct json_object *call(const char *path, const char *req)
{
	int fd = ctl_open(path);
	struct json_object *o;

	if (fd < 0)
		return NULL;
	o = call_fd(fd, req);
	close(fd);
	return o;
}

struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (o)
		json_object_object_get_ex(o, key, &v);
	return v;
}

int ok_of(struct json_object *o)
{
	struct json_object *v = get(o, "ok");

	return json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : -1;
}

int bool_of(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	return json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : -1;
}

const char *str_of(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

uint64_t u64_of(struct json_object *o, const char *key)
{
	return json_object_get_uint64(get(o, key));
}

struct json_object *at(struct json_object *a, size_t i)
{
	return json_object_is_type(a, json_type_array) && i < json_object_array_length(a)
		   ? json_object_array_get_idx(a, i)
		   : NULL;
}

size_t len_of(struct json_object *a)
{
	return json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

const char *digest_of(struct json_object *r, const char *name)
{
	struct json_object *regions = get(r, "regions");
	size_t i;

	for (i = 0; i < len_of(regions); i++)
		if (!strcmp(str_of(at(regions, i), "name") ?: "", name))
			return str_of(at(regions, i), "digest");
	return NULL;
}

int64_t dirty_of(struct json_object *r, const char *name)
{
	struct json_object *dirty = get(r, "dirty");
	size_t i;

	for (i = 0; i < len_of(dirty); i++)
		if (!strcmp(str_of(at(dirty, i), "region") ?: "", name))
			return (int64_t)u64_of(at(dirty, i), "pages");
	return -1;
}

bool call_ok(const char *path, const char *req)
{
	struct json_object *o = call(path, req);
	bool ok = ok_of(o) == 1;

	if (!ok)
		TH_LOG("%s: %s", req, o ? json_object_to_json_string(o) : "no reply");
	json_object_put(o);
	return ok;
}

int wait_exit(pid_t pid, unsigned int ms)
{
	uint64_t deadline = ms_now() + ms;
	int status;

	do {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid) {
			if (WIFEXITED(status))
				return WEXITSTATUS(status);
			if (WIFSIGNALED(status))
				TH_LOG("kvmsnap was killed by signal %d", WTERMSIG(status));
			return -2;
		}
		if (w < 0)
			return -2;
		sleep_ms(2);
	} while (ms_now() < deadline);
	return -1;
}

int wait_or_kill(pid_t pid, unsigned int ms)
{
	int status = wait_exit(pid, ms);

	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return status;
}

static void redirect(int fd, const char *path, int flags)
{
	int f = path ? open(path, flags, 0600) : -1;

	if (f >= 0)
		dup2(f, fd);
}

pid_t spawn_io(const char *const *args, const char *in, const char *out, const char *err,
	       bool err_append)
{
	const char *argv[40];
	size_t n = 0;
	pid_t pid;

	argv[n++] = kvmsnap_bin();
	while (*args && n < ARRAY_SIZE(argv) - 1)
		argv[n++] = *args++;
	argv[n] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		redirect(STDIN_FILENO, in, O_RDONLY);
		redirect(STDOUT_FILENO, out, O_WRONLY | O_CREAT | O_TRUNC);
		redirect(STDERR_FILENO, err,
			 O_WRONLY | O_CREAT | (err_append ? O_APPEND : O_TRUNC));
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

pid_t spawn_cli(const char *const *args, const char *out_path, const char *err_path)
{
	return spawn_io(args, NULL, out_path, err_path, false);
}

void slurp(const char *path, char *buf)
{
	read_file(path, buf, OUT_MAX);
}

int run_cli(const char *const *args, char *out, char *err)
{
	char dir[] = "/tmp/kvmsnap-cli-XXXXXX", po[64], pe[64];
	int status;
	pid_t pid;

	out[0] = err[0] = '\0';
	if (!mkdtemp(dir))
		return -1;
	snprintf(po, sizeof(po), "%s/out", dir);
	snprintf(pe, sizeof(pe), "%s/err", dir);
	pid = spawn_cli(args, po, pe);
	status = pid > 0 ? wait_or_kill(pid, cli_timeout_ms) : -1;
	slurp(po, out);
	slurp(pe, err);
	unlink(po);
	unlink(pe);
	rmdir(dir);
	return status;
}

pid_t run_spawn(const char *dir, const char *const *args)
{
	char serial[256], err[256];
	const char *argv[32];
	size_t n = 0;

	snprintf(serial, sizeof(serial), "%s/serial", dir);
	snprintf(err, sizeof(err), "%s/stderr", dir);
	argv[n++] = "run";
	while (*args && n < ARRAY_SIZE(argv) - 3)
		argv[n++] = *args++;
	argv[n++] = "--serial";
	argv[n++] = serial;
	argv[n] = NULL;
	return spawn_io(argv, "/dev/null", "/dev/null", err, false);
}

void run_collect(struct run *r, const char *dir)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/serial", dir);
	read_file(path, r->serial, sizeof(r->serial));
	unlink(path);
	snprintf(path, sizeof(path), "%s/stderr", dir);
	read_file(path, r->err, sizeof(r->err));
	unlink(path);
}

void run_finish(struct run *r, const char *dir, pid_t pid, unsigned int ms)
{
	r->status = wait_or_kill(pid, ms);
	run_collect(r, dir);
}

int run_guest(struct run *r, const char *dir, const char *const *args, unsigned int ms)
{
	uint64_t t0;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	t0 = ms_now();
	pid = run_spawn(dir, args);
	if (pid < 0)
		return -1;
	r->status = wait_or_kill(pid, ms);
	r->secs = (double)(ms_now() - t0) / 1000.0;
	run_collect(r, dir);
	return 0;
}

int vm_spawn(struct vm *vm, const char *const *run_args)
{
	return vm_spawn_cmd(vm, "run", run_args);
}

int vm_spawn_cmd(struct vm *vm, const char *cmd, const char *const *run_args)
{
	const char *argv[32];
	uint64_t deadline;
	size_t n = 0;

	memset(vm, 0, sizeof(*vm));
	snprintf(vm->dir, sizeof(vm->dir), "/tmp/kvmsnap-vm-XXXXXX");
	if (!mkdtemp(vm->dir)) {
		vm->dir[0] = '\0';
		return -1;
	}
	snprintf(vm->sock, sizeof(vm->sock), "%s/ctl.sock", vm->dir);
	snprintf(vm->out, sizeof(vm->out), "%s/run.out", vm->dir);
	snprintf(vm->err, sizeof(vm->err), "%s/run.err", vm->dir);
	argv[n++] = cmd;
	while (*run_args && n < ARRAY_SIZE(argv) - 6)
		argv[n++] = *run_args++;
	argv[n++] = "--control";
	argv[n++] = vm->sock;
	argv[n++] = "--serial";
	argv[n++] = "none";
	argv[n] = NULL;
	vm->pid = spawn_cli(argv, vm->out, vm->err);
	if (vm->pid < 0) {
		vm->pid = 0;
		return -1;
	}
	deadline = ms_now() + start_timeout_ms;
	while (ms_now() < deadline) {
		int fd = ctl_open(vm->sock), status;

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (waitpid(vm->pid, &status, WNOHANG) == vm->pid) {
			TH_LOG("kvmsnap %s exited early with status %d", cmd,
			       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			vm->pid = 0;
			return -1;
		}
		sleep_ms(10);
	}
	TH_LOG("the control socket %s did not come up", vm->sock);
	return -1;
}

void vm_show_log(const struct vm *vm)
{
	static char buf[OUT_MAX];
	char *line, *save = NULL;

	if (!vm->err[0])
		return;
	slurp(vm->err, buf);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fprintf(stderr, "#   run: %s\n", line);
}

int vm_stop(struct vm *vm)
{
	int status = -1;

	if (vm->pid > 0) {
		json_object_put(call(vm->sock, "{\"cmd\":\"quit\"}"));
		status = wait_exit(vm->pid, exit_timeout_ms);
		if (status == -1) {
			kill(vm->pid, SIGKILL);
			waitpid(vm->pid, NULL, 0);
		}
		vm->pid = 0;
		if (status)
			vm_show_log(vm);
	}
	if (vm->dir[0]) {
		unlink(vm->sock);
		unlink(vm->out);
		unlink(vm->err);
		rmdir(vm->dir);
		vm->dir[0] = '\0';
	}
	return status;
}

bool wait_guest_running(const char *sock)
{
	uint64_t deadline = ms_now() + progress_timeout_ms;

	while (ms_now() < deadline) {
		struct json_object *r = call(sock, "{\"cmd\":\"stats\"}");
		struct json_object *cpus = get(r, "cpus");
		bool all = len_of(cpus) > 0;
		size_t i;

		for (i = 0; i < len_of(cpus); i++) {
			struct json_object *c = at(cpus, i);

			all =
			    all && json_object_get_boolean(get(c, "ready")) &&
			    (u64_of(c, "pages") >= GUEST_RUNNING_PAGES || u64_of(c, "passes") > 0);
		}
		json_object_put(r);
		if (all)
			return true;
		sleep_ms(20);
	}
	return false;
}

struct json_object *cli_json(const char *const *args, int *status, char *err)
{
	char *out = malloc(OUT_MAX);
	struct json_object *o = NULL;

	*status = -1;
	if (!out)
		return NULL;
	*status = run_cli(args, out, err);
	o = parse_object(out);
	free(out);
	return o;
}

struct json_object *cli_json_ok(const char *const *prefix, const char *const *args, char *err)
{
	const char *argv[32];
	struct json_object *j;
	size_t n = 0;
	int status;

	while (*prefix && n < ARRAY_SIZE(argv) - 1)
		argv[n++] = *prefix++;
	while (*args && n < ARRAY_SIZE(argv) - 1)
		argv[n++] = *args++;
	argv[n] = NULL;
	j = cli_json(argv, &status, err);
	if (status) {
		TH_LOG("kvmsnap %s: status %d: %.*s", argv[0], status, (int)strcspn(err, "\n"),
		       err);
		json_object_put(j);
		return NULL;
	}
	return j;
}

uint64_t guest_pages(const char *sock)
{
	struct json_object *r = call(sock, "{\"cmd\":\"stats\"}");
	uint64_t pages = ok_of(r) == 1 ? u64_of(r, "pages") : 0;

	json_object_put(r);
	return pages;
}

uint64_t wait_pages_above(const char *sock, uint64_t floor, unsigned int ms)
{
	uint64_t deadline = ms_now() + ms, p;

	while ((p = guest_pages(sock)) <= floor && ms_now() < deadline)
		sleep_ms(20);
	return p;
}

const char *vm_state(const char *sock, char *buf, size_t len)
{
	struct json_object *r = call(sock, "{\"cmd\":\"status\"}");

	snprintf(buf, len, "%s", str_of(r, "state") ?: "");
	json_object_put(r);
	return buf;
}

/*
 * Dirty logging stays on after a snapshot only while the VM tracks changes
 * for a later incremental one: on exactly when some tracker exists.
 */
static bool log_held_only_by_tracking(const char *sock)
{
	struct json_object *r = call(sock, "{\"cmd\":\"status\"}");
	struct json_object *t = get(r, "tracking");
	bool needed = false, ok;
	size_t i;

	/* Only a valid tracker, or one awaiting its commit, needs the log. */
	for (i = 0; i < len_of(t); i++)
		needed |= bool_of(at(t, i), "valid") == 1 || bool_of(at(t, i), "pending") == 1;
	ok = ok_of(r) == 1 && bool_of(r, "dirty_log") == needed;
	json_object_put(r);
	return ok;
}

bool wait_session_gone(const char *sock, unsigned int ms)
{
	uint64_t deadline = ms_now() + ms;

	do {
		struct json_object *r = call(sock, "{\"cmd\":\"stats\"}");
		bool gone =
		    ok_of(r) == 1 && bool_of(r, "snapshot") == 0 && log_held_only_by_tracking(sock);

		json_object_put(r);
		if (gone)
			return true;
		sleep_ms(10);
	} while (ms_now() < deadline);
	return false;
}

size_t cpu_pages_of(const char *sock, uint64_t *pages, size_t max)
{
	struct json_object *r = call(sock, "{\"cmd\":\"stats\"}");
	struct json_object *cpus = get(r, "cpus");
	size_t i, n = ok_of(r) == 1 ? len_of(cpus) : 0;

	for (i = 0; i < n && i < max; i++)
		pages[i] = u64_of(at(cpus, i), "pages");
	json_object_put(r);
	return n < max ? n : max;
}

void expect_guest_runs(struct th_result *_r, const char *sock)
{
	uint64_t p0[16], p1[16], deadline;
	struct json_object *r;
	size_t i, n, moved;

	EXPECT_TRUE(wait_session_gone(sock, progress_timeout_ms));
	r = call(sock, "{\"cmd\":\"status\"}");
	EXPECT_EQ(ok_of(r), 1);
	EXPECT_STREQ(str_of(r, "state"), "running");
	EXPECT_TRUE(log_held_only_by_tracking(sock));
	json_object_put(r);
	/* The guest reports progress every few ms a vCPU: wait for the next reports. */
	n = cpu_pages_of(sock, p0, ARRAY_SIZE(p0));
	EXPECT_GT(n, 0);
	deadline = ms_now() + progress_timeout_ms;
	do {
		sleep_ms(20);
		moved = 0;
		if (cpu_pages_of(sock, p1, ARRAY_SIZE(p1)) == n)
			for (i = 0; i < n; i++)
				moved += p1[i] > p0[i];
	} while (moved < n && ms_now() < deadline);
	for (i = 0; i < n; i++) {
		if (p1[i] <= p0[i])
			TH_LOG("vCPU %zu made no progress: %" PRIu64 " pages", i, p1[i]);
		EXPECT_GT(p0[i], 0);
	}
	EXPECT_EQ(moved, n);
}

const char *loop_attach(const char *dir, unsigned int n, uint64_t size, char *dev, size_t len)
{
	char file[320], cmd[400];
	FILE *p;
	int fd;

	snprintf(file, sizeof(file), "%s/backing%u", dir, n);
	fd = open(file, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size)) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "losetup --find --show %s 2>/dev/null", file);
	p = popen(cmd, "r");
	if (!p)
		return NULL;
	if (!fgets(dev, (int)len, p))
		dev[0] = '\0';
	pclose(p);
	dev[strcspn(dev, "\n")] = '\0';
	return strncmp(dev, "/dev/", 5) ? NULL : dev;
}

void loop_detach(const char *dev)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "losetup -d %s", dev);
	if (system(cmd))
		TH_LOG("could not detach %s", dev);
}
