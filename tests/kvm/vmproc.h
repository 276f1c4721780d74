/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Black-box helpers for the KVM tests that drive the kvmsnap binary (the
 * path is $KVMSNAP_BIN, else build/kvmsnap):
 *
 *   vm_spawn() / vm_stop()     `kvmsnap run ... --control SOCK` in a private
 *                              folder, its stdout and stderr kept in files there
 *   ctl_open(), call(), ...    the control protocol, spoken with raw socket code
 *   get(), ok_of(), ...        reading the JSON replies
 *   run_cli()                  any other subcommand, output captured
 *   expect_guest_runs(), ...   the guest after a snapshot, tried or done
 *   loop_attach(), rm_tree()   loop devices and temporary folders
 *
 * Everything is static inline: each test program includes what it uses.
 */
#ifndef KVMSNAP_TEST_VMPROC_H
#define KVMSNAP_TEST_VMPROC_H

#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "../harness.h"

/* A test may define any of these before including this file. */
#ifndef START_TIMEOUT_MS
#define START_TIMEOUT_MS 10000 /* until the control socket answers */
#endif
#ifndef REPLY_TIMEOUT_MS
#define REPLY_TIMEOUT_MS 10000
#endif
#ifndef EXIT_TIMEOUT_MS
#define EXIT_TIMEOUT_MS 10000
#endif
/* How long a guest may take to show progress: generous, for nested and emulated CPUs. */
#ifndef PROGRESS_TIMEOUT_MS
#define PROGRESS_TIMEOUT_MS 30000
#endif
#ifndef CLI_TIMEOUT_MS
#define CLI_TIMEOUT_MS 60000
#endif
#ifndef OUT_MAX
#define OUT_MAX 65536
#endif
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

static inline const char *kvmsnap_bin(void)
{
	const char *bin = getenv("KVMSNAP_BIN");

	return bin && *bin ? bin : "build/kvmsnap";
}

/* Where `make` put its output: $KVMSNAP_BUILD, else build. */
static inline const char *build_dir(void)
{
	const char *dir = getenv("KVMSNAP_BUILD");

	return dir && *dir ? dir : "build";
}

/*
 * The path of test kernel NAME ($KVMSNAP_BUILD/tests/guests/NAME.elf) in
 * path; true when it and the kvmsnap binary both exist, else logs what is
 * missing and returns false.
 */
static inline bool test_kernel(const char *name, char *path, size_t len)
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

static inline bool have_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static inline uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static inline void sleep_ms(unsigned int ms)
{
	usleep(ms * 1000);
}

/* ---- raw protocol ---- */

static inline int ctl_open(const char *path)
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

static inline int send_all(int fd, const void *buf, size_t len)
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

/*
 * One line (malloc'd, no newline); NULL on EOF, error or timeout. Reads
 * byte-wise. Descriptors that come with the line (SCM_RIGHTS) are closed,
 * after storing up to max_fds of them in fds and their count in *nr_fds
 * (both may be NULL/0).
 */
static inline char *recv_line_fds(int fd, int *fds, unsigned int max_fds, unsigned int *nr_fds)
{
	uint64_t deadline = ms_now() + REPLY_TIMEOUT_MS;
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

static inline char *recv_line(int fd)
{
	return recv_line_fds(fd, NULL, 0, NULL);
}

static inline struct json_object *parse_object(const char *line)
{
	struct json_object *o = line ? json_tokener_parse(line) : NULL;

	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

/* Send one request line on fd; the parsed reply object, or NULL. */
static inline struct json_object *call_fd(int fd, const char *req)
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

static inline struct json_object *call(const char *path, const char *req)
{
	int fd = ctl_open(path);
	struct json_object *o;

	if (fd < 0)
		return NULL;
	o = call_fd(fd, req);
	close(fd);
	return o;
}

/* ---- JSON ---- */

static inline struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (o)
		json_object_object_get_ex(o, key, &v);
	return v;
}

/* 1 or 0 for a boolean "ok", -1 when there is none. */
static inline int ok_of(struct json_object *o)
{
	struct json_object *v = get(o, "ok");

	return json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : -1;
}

/* 1 or 0 for a boolean member, -1 when it is missing or no boolean. */
static inline int bool_of(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	return json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : -1;
}

static inline const char *str_of(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static inline uint64_t u64_of(struct json_object *o, const char *key)
{
	return json_object_get_uint64(get(o, key));
}

static inline struct json_object *at(struct json_object *a, size_t i)
{
	return json_object_is_type(a, json_type_array) && i < json_object_array_length(a)
		   ? json_object_array_get_idx(a, i)
		   : NULL;
}

static inline size_t len_of(struct json_object *a)
{
	return json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

/* The digest of the named region in a digest reply, or NULL. */
static inline const char *digest_of(struct json_object *r, const char *name)
{
	struct json_object *regions = get(r, "regions");
	size_t i;

	for (i = 0; i < len_of(regions); i++)
		if (!strcmp(str_of(at(regions, i), "name") ?: "", name))
			return str_of(at(regions, i), "digest");
	return NULL;
}

/* Dirty pages of the named region in a stats reply; -1 if absent. */
static inline int64_t dirty_of(struct json_object *r, const char *name)
{
	struct json_object *dirty = get(r, "dirty");
	size_t i;

	for (i = 0; i < len_of(dirty); i++)
		if (!strcmp(str_of(at(dirty, i), "region") ?: "", name))
			return (int64_t)u64_of(at(dirty, i), "pages");
	return -1;
}

/* Whether a request succeeds ("ok":true); the reply is logged if not. */
static inline bool call_ok(const char *path, const char *req)
{
	struct json_object *o = call(path, req);
	bool ok = ok_of(o) == 1;

	if (!ok)
		TH_LOG("%s: %s", req, o ? json_object_to_json_string(o) : "no reply");
	json_object_put(o);
	return ok;
}

/* ---- processes ---- */

/*
 * Wait up to ms for pid; its exit status, or -1 on timeout / -2 if
 * signalled (the signal is logged).
 */
static inline int wait_exit(pid_t pid, unsigned int ms)
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

/* wait_exit(), and on a timeout kill pid and reap it. */
static inline int wait_or_kill(pid_t pid, unsigned int ms)
{
	int status = wait_exit(pid, ms);

	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return status;
}

/* In the child: fd becomes the file at path (NULL: left as it is). */
static inline void redirect(int fd, const char *path, int flags)
{
	int f = path ? open(path, flags, 0600) : -1;

	if (f >= 0)
		dup2(f, fd);
}

/*
 * Fork and exec kvmsnap with args; stdin, stdout and stderr come from and
 * go to the given files (NULL: inherited), stderr appended to when
 * err_append. The child's pid, or -1.
 */
static inline pid_t spawn_io(const char *const *args, const char *in, const char *out,
			     const char *err, bool err_append)
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

/* Fork and exec kvmsnap with args; stdout and stderr go to the given files (NULL: inherit). */
static inline pid_t spawn_cli(const char *const *args, const char *out_path, const char *err_path)
{
	return spawn_io(args, NULL, out_path, err_path, false);
}

/* The file's first size - 1 bytes into buf, NUL-terminated ("" if unreadable). */
static inline void read_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t got = f ? fread(buf, 1, size - 1, f) : 0;

	buf[got] = '\0';
	if (f)
		fclose(f);
}

/* The file's first OUT_MAX - 1 bytes into buf, NUL-terminated ("" if unreadable). */
static inline void slurp(const char *path, char *buf)
{
	read_file(path, buf, OUT_MAX);
}

/* Create or truncate path and write buf to it; 0 or -1. */
static inline int write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, buf, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

/*
 * Run kvmsnap with args; stdout and stderr land in out and err (OUT_MAX
 * bytes each). Exit status; -1 if it could not run or took longer than
 * CLI_TIMEOUT_MS (it is then killed), -2 if it died of a signal.
 */
static inline int run_cli(const char *const *args, char *out, char *err)
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
	status = pid > 0 ? wait_or_kill(pid, CLI_TIMEOUT_MS) : -1;
	slurp(po, out);
	slurp(pe, err);
	unlink(po);
	unlink(pe);
	rmdir(dir);
	return status;
}

#define RUN_CLI(out, err, ...) run_cli((const char *const[]){__VA_ARGS__, NULL}, (out), (err))

static inline size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- a guest run to its end ---- */

struct run {
	int status;	      /* exit status; -1 timed out, -2 killed by a signal */
	double secs;	      /* wall time */
	char serial[OUT_MAX]; /* what the guest wrote to --serial */
	char err[OUT_MAX];    /* kvmsnap's stderr */
};

/*
 * Start `kvmsnap run ARGS... --serial DIR/serial` with stdin and stdout on
 * /dev/null and stderr in DIR/stderr. The pid, or -1.
 */
static inline pid_t run_spawn(const char *dir, const char *const *args)
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

/* What a run_spawn() in dir left: serial output and stderr into r; the files go. */
static inline void run_collect(struct run *r, const char *dir)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/serial", dir);
	read_file(path, r->serial, sizeof(r->serial));
	unlink(path);
	snprintf(path, sizeof(path), "%s/stderr", dir);
	read_file(path, r->err, sizeof(r->err));
	unlink(path);
}

/* Reap a run_spawn() in dir, killing it after ms; fill r. */
static inline void run_finish(struct run *r, const char *dir, pid_t pid, unsigned int ms)
{
	r->status = wait_or_kill(pid, ms);
	run_collect(r, dir);
}

/*
 * Run `kvmsnap run ARGS... --serial DIR/serial` to its end, killing it
 * after ms; 0, or -1 if it could not be started.
 */
static inline int run_guest(struct run *r, const char *dir, const char *const *args,
			    unsigned int ms)
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

/* ---- a VM ---- */

struct vm {
	pid_t pid;
	char dir[64];
	char sock[96];
	char out[96]; /* kvmsnap run's stdout and stderr */
	char err[96];
};

/*
 * Start `kvmsnap run ARGS --control SOCK --serial none` with SOCK in a new
 * private folder; 0 once the socket answers. vm_stop() undoes it, also
 * after a failure.
 */
static inline int vm_spawn(struct vm *vm, const char *const *run_args)
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
	argv[n++] = "run";
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
	deadline = ms_now() + START_TIMEOUT_MS;
	while (ms_now() < deadline) {
		int fd = ctl_open(vm->sock), status;

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (waitpid(vm->pid, &status, WNOHANG) == vm->pid) {
			TH_LOG("kvmsnap run exited early with status %d",
			       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			vm->pid = 0;
			return -1;
		}
		sleep_ms(10);
	}
	TH_LOG("the control socket %s did not come up", vm->sock);
	return -1;
}

#define VM_SPAWN(vm, ...) vm_spawn((vm), (const char *const[]){__VA_ARGS__, NULL})

/* Show what kvmsnap run wrote on stderr, line by line, as TAP comments. */
static inline void vm_show_log(const struct vm *vm)
{
	static char buf[OUT_MAX];
	char *line, *save = NULL;

	if (!vm->err[0])
		return;
	slurp(vm->err, buf);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fprintf(stderr, "#   run: %s\n", line);
}

/*
 * Quit politely, else kill; remove what is left. Returns kvmsnap's exit
 * status (-1 if it had to be killed or was not running); on anything but 0
 * its stderr is shown.
 */
static inline int vm_stop(struct vm *vm)
{
	int status = -1;

	if (vm->pid > 0) {
		json_object_put(call(vm->sock, "{\"cmd\":\"quit\"}"));
		status = wait_exit(vm->pid, EXIT_TIMEOUT_MS);
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

/* Wait until every vCPU of the dirtier reports ready and some progress. */
static inline bool wait_guest_running(const char *sock)
{
	uint64_t deadline = ms_now() + PROGRESS_TIMEOUT_MS;

	while (ms_now() < deadline) {
		struct json_object *r = call(sock, "{\"cmd\":\"stats\"}");
		struct json_object *cpus = get(r, "cpus");
		bool all = len_of(cpus) > 0;
		size_t i;

		for (i = 0; i < len_of(cpus); i++)
			all = all && json_object_get_boolean(get(at(cpus, i), "ready")) &&
			      u64_of(at(cpus, i), "pages") > 0;
		json_object_put(r);
		if (all)
			return true;
		sleep_ms(20);
	}
	return false;
}

/* ---- snapshots ---- */

/* Run kvmsnap with args; its stdout parsed as one JSON object (NULL if none), status in *status. */
static inline struct json_object *cli_json(const char *const *args, int *status, char *err)
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

#define CLI_JSON(status, err, ...) \
	cli_json((const char *const[]){__VA_ARGS__, NULL}, (status), (err))

/* st_size of a file, or -1. */
static inline int64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (int64_t)st.st_size;
}

static inline bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* The guest's progress counter (pages it wrote) from stats, or 0. */
static inline uint64_t guest_pages(const char *sock)
{
	struct json_object *r = call(sock, "{\"cmd\":\"stats\"}");
	uint64_t pages = ok_of(r) == 1 ? u64_of(r, "pages") : 0;

	json_object_put(r);
	return pages;
}

/*
 * Wait up to ms until the guest's progress counter is above floor; the last
 * value seen. The dirtier reports every 65536 pages a vCPU and after every
 * pass.
 */
static inline uint64_t wait_pages_above(const char *sock, uint64_t floor, unsigned int ms)
{
	uint64_t deadline = ms_now() + ms, p;

	while ((p = guest_pages(sock)) <= floor && ms_now() < deadline)
		sleep_ms(20);
	return p;
}

/* The VM's "state" ("running", "paused", ...) into buf; "" without a reply. */
static inline const char *vm_state(const char *sock, char *buf, size_t len)
{
	struct json_object *r = call(sock, "{\"cmd\":\"status\"}");

	snprintf(buf, len, "%s", str_of(r, "state") ?: "");
	json_object_put(r);
	return buf;
}

/*
 * Wait up to ms until no snapshot session is open and dirty logging is off:
 * the VM notices a closed connection on its next poll, not at once.
 */
static inline bool wait_session_gone(const char *sock, unsigned int ms)
{
	uint64_t deadline = ms_now() + ms;

	do {
		struct json_object *r = call(sock, "{\"cmd\":\"stats\"}");
		bool gone =
		    ok_of(r) == 1 && bool_of(r, "snapshot") == 0 && bool_of(r, "dirty_log") == 0;

		json_object_put(r);
		if (gone)
			return true;
		sleep_ms(10);
	} while (ms_now() < deadline);
	return false;
}

/* Every vCPU's progress counter (pages) from stats into pages[max]; how many vCPUs, 0 on error. */
static inline size_t cpu_pages_of(const char *sock, uint64_t *pages, size_t max)
{
	struct json_object *r = call(sock, "{\"cmd\":\"stats\"}");
	struct json_object *cpus = get(r, "cpus");
	size_t i, n = ok_of(r) == 1 ? len_of(cpus) : 0;

	for (i = 0; i < n && i < max; i++)
		pages[i] = u64_of(at(cpus, i), "pages");
	json_object_put(r);
	return n < max ? n : max;
}

/*
 * The guest behind sock runs as if no snapshot had been tried: state
 * running, no session, dirty logging off, and every vCPU's progress grows
 * (none left parked). Not its speed: that depends on the host.
 */
static inline void expect_guest_runs(struct th_result *_r, const char *sock)
{
	uint64_t p0[16], p1[16], deadline;
	struct json_object *r;
	size_t i, n, moved;

	EXPECT_TRUE(wait_session_gone(sock, PROGRESS_TIMEOUT_MS));
	r = call(sock, "{\"cmd\":\"status\"}");
	EXPECT_EQ(ok_of(r), 1);
	EXPECT_STREQ(str_of(r, "state"), "running");
	EXPECT_EQ(bool_of(r, "dirty_log"), 0);
	json_object_put(r);
	/* The guest reports progress every 65536 pages a vCPU: wait for the next reports. */
	n = cpu_pages_of(sock, p0, ARRAY_SIZE(p0));
	EXPECT_GT(n, 0);
	deadline = ms_now() + PROGRESS_TIMEOUT_MS;
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

/* ---- set-up ---- */

static inline bool have_tool(const char *name)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

/*
 * A loop device over a new sparse file of size bytes, dir/backingN; its
 * path into dev (len bytes), or NULL. Detach it with loop_detach().
 */
static inline const char *loop_attach(const char *dir, unsigned int n, uint64_t size, char *dev,
				      size_t len)
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

static inline void loop_detach(const char *dev)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "losetup -d %s", dev);
	if (system(cmd))
		TH_LOG("could not detach %s", dev);
}

static inline int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* Remove dir and everything in it, staying on its file system. */
static inline void rm_tree(const char *dir)
{
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

#endif
