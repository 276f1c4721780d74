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
	struct error err;	   /* why it failed: the reply's "error" */
};

struct command {
	const char *name;
	const char *const *args; /* members allowed besides "cmd"; NULL-terminated */
	/* 0, or -errno with rq->err set (lib/error.h): the reply is then an error. */
	int (*fn)(struct request *rq);
};

void request__add_u64(struct json_object *o, const char *key, uint64_t v);
void request__add_bool(struct json_object *o, const char *key, bool v);
void request__add_str(struct json_object *o, const char *key, const char *v);
/*
 * "tracking": the dirty trackers (vmm/dirty-track.h) as an array of
 * {uuid, slot, write_ids, valid, pending, pages}; a pending one also has
 * pending_id and fallback_pages, an invalid one why.
 */
void request__add_tracking(struct json_object *o, const struct dirty_track *dt);
/* Send these fds with the reply (SCM_RIGHTS); they stay owned by the caller. */
int request__attach_fd(struct request *rq, int fd);

#endif
