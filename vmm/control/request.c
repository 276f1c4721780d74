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

void request__add_tracking(struct json_object *o, const struct dirty_track *dt)
{
	struct json_object *list = json_object_new_array();
	char uuid[DIRTY_TRACK_UUID_HEX + 1], id[DIRTY_TRACK_ID_HEX + 1];
	unsigned int i, k;

	for (i = 0; i < DIRTY_TRACK_MAX; i++) {
		const struct dirty_tracker *t = &dt->t[i];
		struct json_object *e, *ids;

		if (!t->used)
			continue;
		e = json_object_new_object();
		ids = json_object_new_array();
		request__add_str(e, "uuid", dirty_track__format_uuid(t->uuid, uuid));
		request__add_u64(e, "slot", t->slot);
		for (k = 0; k < t->nr_ids; k++)
			json_object_array_add(
			    ids, json_object_new_string(dirty_track__format_id(t->ids[k], id)));
		json_object_object_add(e, "write_ids", ids);
		request__add_bool(e, "valid", t->valid);
		request__add_bool(e, "pending", t->pending);
		request__add_u64(e, "pages", dirty_track__pages(dt, t, false));
		if (!t->valid)
			request__add_str(e, "why", dirty_track__why(t->why));
		if (t->pending) {
			request__add_str(e, "pending_id",
					 dirty_track__format_id(t->pending_id, id));
			request__add_u64(e, "fallback_pages", dirty_track__pages(dt, t, true));
		}
		json_object_array_add(list, e);
	}
	json_object_object_add(o, "tracking", list);
}

int request__attach_fd(struct request *rq, int fd)
{
	struct control_state *st = rq->st;

	if (st->nr_out_fds >= CONTROL_MAX_FDS)
		return err_set(&rq->err, -E2BIG, "too many descriptors for one reply");
	st->out_fds[st->nr_out_fds++] = fd;
	return 0;
}
