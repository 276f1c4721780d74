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
 * Compiled once into libtest.a (tests/lib/vmproc.c).
 */
#ifndef KVMSNAP_TEST_VMPROC_H
#define KVMSNAP_TEST_VMPROC_H

/* What the tests that drive sockets, files and processes use besides. */
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include "../harness.h"
#include "util.h"

/*
 * Deadlines, in ms. Generous, for nested VMs and emulated CPUs; a test may
 * change them before it starts anything.
 */
extern unsigned int start_timeout_ms;	 /* until the control socket answers (30 s) */
extern unsigned int reply_timeout_ms;	 /* for a reply on the control socket (15 s) */
extern unsigned int exit_timeout_ms;	 /* from quit to the exit (15 s) */
extern unsigned int progress_timeout_ms; /* for the guest to show progress (30 s) */
extern unsigned int cli_timeout_ms;	 /* for a kvmsnap subcommand (60 s) */

#define OUT_MAX 65536 /* what run_cli() and slurp() keep of an output */

const char *kvmsnap_bin(void);

/* Where `make` put its output: $KVMSNAP_BUILD, else build. */
const char *build_dir(void);

/*
 * The path of test kernel NAME ($KVMSNAP_BUILD/tests/guests/NAME.elf) in
 * path; true when it and the kvmsnap binary both exist, else logs what is
 * missing and returns false.
 */
bool test_kernel(const char *name, char *path, size_t len);

/* ---- raw protocol ---- */

int ctl_open(const char *path);

int send_all(int fd, const void *buf, size_t len);

/*
 * One line (malloc'd, no newline); NULL on EOF, error or timeout. Reads
 * byte-wise. Descriptors that come with the line (SCM_RIGHTS) are closed,
 * after storing up to max_fds of them in fds and their count in *nr_fds
 * (both may be NULL/0).
 */
char *recv_line_fds(int fd, int *fds, unsigned int max_fds, unsigned int *nr_fds);

char *recv_line(int fd);

struct json_object *parse_object(const char *line);

/* Send one request line on fd; the parsed reply object, or NULL. */
struct json_object *call_fd(int fd, const char *req);

struct json_object *call(const char *path, const char *req);

/* ---- JSON ---- */

struct json_object *get(struct json_object *o, const char *key);

/* 1 or 0 for a boolean "ok", -1 when there is none. */
int ok_of(struct json_object *o);

/* 1 or 0 for a boolean member, -1 when it is missing or no boolean. */
int bool_of(struct json_object *o, const char *key);

const char *str_of(struct json_object *o, const char *key);

uint64_t u64_of(struct json_object *o, const char *key);

struct json_object *at(struct json_object *a, size_t i);

size_t len_of(struct json_object *a);

/* The digest of the named region in a digest reply, or NULL. */
const char *digest_of(struct json_object *r, const char *name);

/* Dirty pages of the named region in a stats reply; -1 if absent. */
int64_t dirty_of(struct json_object *r, const char *name);

/* Whether a request succeeds ("ok":true); the reply is logged if not. */
bool call_ok(const char *path, const char *req);

/* ---- processes ---- */

/*
 * Wait up to ms for pid; its exit status, or -1 on timeout / -2 if
 * signalled (the signal is logged).
 */
int wait_exit(pid_t pid, unsigned int ms);

/* wait_exit(), and on a timeout kill pid and reap it. */
int wait_or_kill(pid_t pid, unsigned int ms);

/*
 * Fork and exec kvmsnap with args; stdin, stdout and stderr come from and
 * go to the given files (NULL: inherited), stderr appended to when
 * err_append. The child's pid, or -1.
 */
pid_t spawn_io(const char *const *args, const char *in, const char *out, const char *err,
	       bool err_append);

/* Fork and exec kvmsnap with args; stdout and stderr go to the given files (NULL: inherit). */
pid_t spawn_cli(const char *const *args, const char *out_path, const char *err_path);

/* The file's first OUT_MAX - 1 bytes into buf, NUL-terminated ("" if unreadable). */
void slurp(const char *path, char *buf);

/*
 * Run kvmsnap with args; stdout and stderr land in out and err (OUT_MAX
 * bytes each). Exit status; -1 if it could not run or took longer than
 * CLI_TIMEOUT_MS (it is then killed), -2 if it died of a signal.
 */
int run_cli(const char *const *args, char *out, char *err);

#define RUN_CLI(out, err, ...) run_cli((const char *const[]){__VA_ARGS__, NULL}, (out), (err))

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
pid_t run_spawn(const char *dir, const char *const *args);

/* What a run_spawn() in dir left: serial output and stderr into r; the files go. */
void run_collect(struct run *r, const char *dir);

/* Reap a run_spawn() in dir, killing it after ms; fill r. */
void run_finish(struct run *r, const char *dir, pid_t pid, unsigned int ms);

/*
 * Run `kvmsnap run ARGS... --serial DIR/serial` to its end, killing it
 * after ms; 0, or -1 if it could not be started.
 */
int run_guest(struct run *r, const char *dir, const char *const *args, unsigned int ms);

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
int vm_spawn(struct vm *vm, const char *const *run_args);

#define VM_SPAWN(vm, ...) vm_spawn((vm), (const char *const[]){__VA_ARGS__, NULL})

/* vm_spawn() of another subcommand that serves --control: `kvmsnap restore IMAGE ...`. */
int vm_spawn_cmd(struct vm *vm, const char *cmd, const char *const *args);

#define VM_SPAWN_CMD(vm, cmd, ...) \
	vm_spawn_cmd((vm), (cmd), (const char *const[]){__VA_ARGS__, NULL})

/* Show what kvmsnap run wrote on stderr, line by line, as TAP comments. */
void vm_show_log(const struct vm *vm);

/*
 * Quit politely, else kill; remove what is left. Returns kvmsnap's exit
 * status (-1 if it had to be killed or was not running); on anything but 0
 * its stderr is shown.
 */
int vm_stop(struct vm *vm);

/*
 * Wait until every vCPU of the dirtier reports ready and has written
 * GUEST_RUNNING_PAGES pages or a whole pass: its working set is in use.
 * (Tests were written when its first report came only then.)
 */
#define GUEST_RUNNING_PAGES 65536
bool wait_guest_running(const char *sock);

/* ---- snapshots ---- */

/* Run kvmsnap with args; its stdout parsed as one JSON object (NULL if none), status in *status. */
struct json_object *cli_json(const char *const *args, int *status, char *err);

#define CLI_JSON(status, err, ...) \
	cli_json((const char *const[]){__VA_ARGS__, NULL}, (status), (err))

/*
 * kvmsnap PREFIX... ARGS... (at most 30 words); its stdout as one JSON
 * object (to put) if it exited 0, else NULL with the first line of its
 * stderr logged. err (OUT_MAX bytes) gets its stderr.
 */
struct json_object *cli_json_ok(const char *const *prefix, const char *const *args, char *err);

/* The guest's progress counter (pages it wrote) from stats, or 0. */
uint64_t guest_pages(const char *sock);

/*
 * Wait up to ms until the guest's progress counter is above floor; the last
 * value seen. The dirtier reports every 5 ms a vCPU (every 65536 pages
 * without the TSC frequency) and after every pass.
 */
uint64_t wait_pages_above(const char *sock, uint64_t floor, unsigned int ms);

/* The VM's "state" ("running", "paused", ...) into buf; "" without a reply. */
const char *vm_state(const char *sock, char *buf, size_t len);

/*
 * Wait up to ms until no snapshot session is open and dirty logging is off:
 * the VM notices a closed connection on its next poll, not at once.
 */
bool wait_session_gone(const char *sock, unsigned int ms);

/* Every vCPU's progress counter (pages) from stats into pages[max]; how many vCPUs, 0 on error. */
size_t cpu_pages_of(const char *sock, uint64_t *pages, size_t max);

/*
 * The guest behind sock runs as if no snapshot had been tried: state
 * running, no session, dirty logging off, and every vCPU's progress grows
 * (none left parked). Not its speed: that depends on the host.
 */
void expect_guest_runs(struct th_result *_r, const char *sock);

/* ---- set-up ---- */

/*
 * A loop device over a new sparse file of size bytes, dir/backingN; its
 * path into dev (len bytes), or NULL. Detach it with loop_detach().
 */
const char *loop_attach(const char *dir, unsigned int n, uint64_t size, char *dev, size_t len);

void loop_detach(const char *dev);

#endif
