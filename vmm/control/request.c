// SPDX-License-Identifier: GPL-2.0
/* Building a reply: members and descriptors; see request.h. */
#include "control/request.h"

#include <errno.h>

/* json-c returns NULL when out of memory; the member then reads as null. */
void request__add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

void request__add_bool(struct json_object *o, const char *key, bool v)
{
	json_object_object_add(o, key, json_object_new_boolean(v));
}

void request__add_str(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

int request__attach_fd(struct request *rq, int fd)
{
	struct control_state *st = rq->st;

	if (st->nr_out_fds >= CONTROL_MAX_FDS)
		return err_set(&rq->err, -E2BIG, "too many descriptors for one reply");
	st->out_fds[st->nr_out_fds++] = fd;
	return 0;
}
