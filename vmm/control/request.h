/* SPDX-License-Identifier: GPL-2.0 */
/* Internal to vmm/control: one request being handled, and reply helpers. */
#ifndef KVMSNAP_CONTROL_REQUEST_H
#define KVMSNAP_CONTROL_REQUEST_H

#include <json-c/json.h>

#include "control/control.h"
#include "util/util.h"

struct request {
	struct control_state *st;
	struct kvm *kvm;
	struct json_object *args;  /* the request object */
	struct json_object *reply; /* {"ok":true}; handlers add their fields */
	char error[256];
};

struct command {
	const char *name;
	const char *const *args; /* members allowed besides "cmd"; NULL-terminated */
	int (*fn)(struct request *rq);
};

/* Set the error sentence of a failed request; returns -1 for the handler to return. */
int request__fail(struct request *rq, const char *fmt, ...) __printf(2, 3);
void request__add_u64(struct json_object *o, const char *key, uint64_t v);
void request__add_bool(struct json_object *o, const char *key, bool v);
void request__add_str(struct json_object *o, const char *key, const char *v);
/* Send these fds with the reply (SCM_RIGHTS); they stay owned by the caller. */
int request__attach_fd(struct request *rq, int fd);

/* The snapshot session commands (control/snapshot.c). */
int snapshot_session__begin(struct request *rq);
int snapshot_session__log(struct request *rq);
int snapshot_session__dirty(struct request *rq);
int snapshot_session__pause(struct request *rq);
int snapshot_session__state(struct request *rq);
int snapshot_session__end(struct request *rq);
/* A request other than snapshot-* may not touch what a session owns. */
bool snapshot_session__active(const struct control_state *st);

#endif
