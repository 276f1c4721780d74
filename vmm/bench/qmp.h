/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A minimal QMP client for the QEMU side of `kvmsnap bench`: connect to
 * QEMU's monitor socket, negotiate, run commands one at a time. Events that
 * arrive while a reply is awaited are skipped. Every wait has a deadline.
 */
#ifndef KVMSNAP_BENCH_QMP_H
#define KVMSNAP_BENCH_QMP_H

#include <stddef.h>
#include <stdint.h>

struct error;
struct json_object;

struct qmp {
	int fd;
	char *buf; /* received bytes not yet parsed */
	size_t len, cap;
};

/*
 * Connect to the socket at path (QEMU may not have created it yet: retried
 * until timeout_ms), read the greeting and send qmp_capabilities.
 */
int qmp__connect(struct qmp *q, const char *path, unsigned int timeout_ms, struct error *err);

/*
 * Run cmd with args (a JSON object, or NULL; consumed) and wait up to
 * timeout_ms for its "return", stored in *ret if ret is given (json_object_put
 * it). An "error" reply is -EIO with QEMU's description in err.
 */
int qmp__call(struct qmp *q, const char *cmd, struct json_object *args, struct json_object **ret,
	      unsigned int timeout_ms, struct error *err);

/*
 * human-monitor-command "xp /1gx ADDR": the guest-physical quadword at addr.
 * For a guest that has no channel but its memory (the Multiboot dirtier).
 */
int qmp__read_u64(struct qmp *q, uint64_t addr, uint64_t *val, unsigned int timeout_ms,
		  struct error *err);

void qmp__close(struct qmp *q);

#endif
