/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A real NBD server for the tests: nbdkit, started on a Unix socket in a
 * temporary folder of its own, with whatever plugin and filters a test
 * names, and always stopped (SIGKILL, reaped) by nbdkit_cleanup(). It also
 * dies with the test process (--exit-with-parent) if a test crashes.
 *
 * Built without -Ivmm, for the tests that link the snapshot library alone.
 */
#ifndef KVMSNAP_TEST_NBDKIT_H
#define KVMSNAP_TEST_NBDKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct nbdkit {
	pid_t pid;    /* the server, or 0 */
	char dir[64]; /* its folder: socket, log, trigger and backing files */
	char sock[96];
	char uri[160]; /* nbd+unix:///?socket=SOCK */
	char log[96];  /* the server's stderr */
};

/* nbdkit is installed, with the plugins and filters the tests use; else why not. */
bool nbdkit_available(const char **why);

/* A new folder for k, before the server starts, so that args can name files in it. 0 or -1. */
int nbdkit_init(struct nbdkit *k);

/*
 * Start `nbdkit -f -U SOCK ARGS...` and wait up to 30 s until it accepts a
 * connection. The folder may already have served (a restart over the same
 * backing file). 0, or -1 with the server's log copied to stderr.
 */
int nbdkit_start(struct nbdkit *k, const char *const *args);
#define NBDKIT_START(k, ...) nbdkit_start((k), (const char *const[]){__VA_ARGS__, NULL})

/* SIGKILL the server, as a crash or a lost host would end it, and reap it. */
void nbdkit_kill(struct nbdkit *k);

/* Kill the server if it runs and remove its folder. */
void nbdkit_cleanup(struct nbdkit *k);

/*
 * A server of shell scripts over k->dir/disk, a sparse file of size bytes
 * (the eval plugin), whose faults come at exact moments:
 *  - writes sleep 8 s while k->dir/stall exists;
 *  - nbdkit_fail_writes(): writes that start in [from, to) fail with an
 *    errno, stall, or kill the server;
 *  - it counts flushes, and kills itself (SIGKILL to nbdkit, the script's
 *    parent) at flush number nbdkit_kill_at_flush().
 * can_flush false: a server that offers no flush. FUA is emulated by nbdkit
 * with a flush after the write.
 */
int nbdkit_start_scripted(struct nbdkit *k, unsigned long long size, bool can_flush);
/*
 * what: "EIO", "ENOSPC" (the write fails so), "KILL" (the server dies) or
 * "STALL" (the write sleeps 8 s first). 0 or -1.
 */
int nbdkit_fail_writes(const struct nbdkit *k, unsigned long long from, unsigned long long to,
		       const char *what);
/* Flushes the scripted server has had. */
unsigned int nbdkit_flushes(const struct nbdkit *k);
int nbdkit_kill_at_flush(const struct nbdkit *k, unsigned int n);

/* k->dir/name, in buf. */
const char *nbdkit_file(const struct nbdkit *k, const char *name, char *buf, size_t len);

/* Create k->dir/name (an error filter's trigger file); 0 or -1. */
int nbdkit_touch(const struct nbdkit *k, const char *name);

#endif
