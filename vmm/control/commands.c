// SPDX-License-Identifier: GPL-2.0
/*
 * Control requests: parse one JSON line, check it against the command table,
 * run the handler and render the reply line. No I/O here, so the whole
 * request path can be tested without KVM or sockets.
 */
#include "control/control.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "snapshot/bitmap.h"
#include "util/util.h"

#include "control/request.h"

static uint64_t ms_between(uint64_t from_ns, uint64_t to_ns)
{
	return to_ns > from_ns ? (to_ns - from_ns) / 1000000 : 0;
}

static const char *vm_state(struct kvm *kvm)
{
	if (kvm__has_exited(kvm))
		return "exiting";
	return kvm__is_paused(kvm) ? "paused" : "running";
}

/* ---- status ---- */

static struct json_object *region_flags(const struct mem_region *r)
{
	struct json_object *flags = json_object_new_array();

	if (r->flags & MEM_REGION_RAM)
		json_object_array_add(flags, json_object_new_string("ram"));
	if (r->flags & MEM_REGION_READONLY)
		json_object_array_add(flags, json_object_new_string("readonly"));
	return flags;
}

static struct json_object *region_ranges(const struct mem_region *r)
{
	struct json_object *ranges = json_object_new_array();
	const struct mem_range *rg;

	mem__for_each_range (r, rg) {
		struct json_object *o = json_object_new_object();

		request__add_u64(o, "gpa", rg->gpa);
		request__add_u64(o, "size", rg->size);
		request__add_u64(o, "offset", rg->offset);
		request__add_u64(o, "slot", rg->slot);
		json_object_array_add(ranges, o);
	}
	return ranges;
}

static int cmd_status(struct request *rq)
{
	struct kvm *kvm = rq->kvm;
	struct json_object *regions = json_object_new_array();
	const struct mem_region *r;

	request__add_str(rq->reply, "state", vm_state(kvm));
	request__add_u64(rq->reply, "vcpus", kvm->nr_cpus);
	request__add_u64(rq->reply, "mem", kvm->ram_size);
	request__add_str(rq->reply, "guest", kvm->guest_desc);
	request__add_u64(rq->reply, "uptime_ms",
			 kvm->start_ns ? ms_between(kvm->start_ns, now_ns()) : 0);
	request__add_bool(rq->reply, "dirty_log", kvm->mem.log_dirty);
	request__add_u64(rq->reply, "throttle_pct", kvm__throttle(kvm));
	request__add_str(rq->reply, "dirty_log_mode",
			 kvm->mem.manual_protect ? "get+clear" : "get");
	mem__for_each_region (&kvm->mem, r) {
		struct json_object *o = json_object_new_object();

		request__add_str(o, "name", r->name);
		request__add_u64(o, "size", r->size);
		json_object_object_add(o, "flags", region_flags(r));
		json_object_object_add(o, "ranges", region_ranges(r));
		json_object_array_add(regions, o);
	}
	json_object_object_add(rq->reply, "regions", regions);
	request__add_tracking(rq->reply, &kvm->mem.track);
	return 0;
}

/* ---- pause, resume, quit ---- */

static int cmd_pause(struct request *rq)
{
	uint64_t us = 0;
	int ret;

	if (rq->st->claimed_by)
		return err_set(&rq->err, -EBUSY,
			       "%s is in progress; pause is not available until it ends",
			       rq->st->claimed_by);
	ret = kvm__pause(rq->kvm, &us, NULL);

	if (ret == -EALREADY)
		return err_set(&rq->err, -EALREADY, "already paused");
	if (ret == -ESHUTDOWN)
		return err_set(&rq->err, -ESHUTDOWN, "the VM is shutting down");
	if (ret)
		return err_set(&rq->err, ret, "cannot pause the VM: %s", strerror(-ret));
	request__add_u64(rq->reply, "latency_us", us);
	return 0;
}

static int cmd_resume(struct request *rq)
{
	int ret;

	if (rq->st->claimed_by)
		return err_set(&rq->err, -EBUSY,
			       "%s is in progress; resume is not available until it ends",
			       rq->st->claimed_by);
	ret = kvm__resume(rq->kvm, NULL);

	if (ret == -EALREADY)
		return err_set(&rq->err, -EINVAL, "not paused");
	if (ret == -ESHUTDOWN)
		return err_set(&rq->err, -ESHUTDOWN, "the VM is shutting down");
	if (ret)
		return err_set(&rq->err, ret, "cannot resume the VM: %s", strerror(-ret));
	return 0;
}

static int cmd_quit(struct request *rq)
{
	/* The server sends this reply before it notices the exit and closes. */
	kvm__request_exit(rq->kvm, 0, "quit requested on the control socket");
	return 0;
}

/* ---- digest ---- */

static int cmd_digest(struct request *rq)
{
	struct json_object *regions = json_object_new_array();
	const struct mem_region *r;
	char hex[DIGEST_HEX_SIZE];

	request__add_str(rq->reply, "algorithm", DIGEST_ALGORITHM);
	request__add_bool(rq->reply, "paused", kvm__is_paused(rq->kvm));
	mem__for_each_region (&rq->kvm->mem, r) {
		struct json_object *o = json_object_new_object();

		request__add_str(o, "name", r->name);
		request__add_u64(o, "size", r->size);
		request__add_str(o, "digest", digest__format(digest__region(r), hex));
		json_object_array_add(regions, o);
	}
	json_object_object_add(rq->reply, "regions", regions);
	return 0;
}

/* ---- dirty-log ---- */

static void stats_restart(struct request *rq)
{
	rq->st->stats_ns = now_ns();
	rq->st->stats_pages = kvm__progress_pages(rq->kvm);
}

static int cmd_dirty_log(struct request *rq)
{
	struct mem_registry *mem = &rq->kvm->mem;
	struct json_object *v;
	bool on;
	int ret;

	if (!json_object_object_get_ex(rq->args, "enable", &v))
		return err_set(&rq->err, -EINVAL, "dirty-log needs \"enable\": true or false");
	if (!json_object_is_type(v, json_type_boolean))
		return err_set(&rq->err, -EINVAL, "\"enable\" must be true or false");
	on = json_object_get_boolean(v);
	if (rq->st->claimed_by)
		return err_set(&rq->err, -EBUSY, "%s is in progress and owns the dirty log",
			       rq->st->claimed_by);
	mem->log_asked = on;
	/* Already in that state: leave the slots alone, so no dirty bits are lost. */
	if (mem->log_dirty != on) {
		ret = mem__set_log_dirty(mem, on, NULL);
		if (ret == -ENODEV)
			return err_set(&rq->err, -EINVAL,
				       "dirty logging needs a VM with memory slots");
		if (ret)
			return err_set(&rq->err, ret, "cannot turn dirty logging %s: %s",
				       on ? "on" : "off", strerror(-ret));
		/* The next stats interval starts with the dirty log: one interval for both. */
		if (on)
			stats_restart(rq);
	}
	request__add_bool(rq->reply, "dirty_log", on);
	return 0;
}

/* ---- stats ---- */

/* Fetch-and-clear every range of r; *pages gets its distinct dirty pages. */
static int region_dirty_pages(struct request *rq, const struct mem_region *r, uint64_t *pages)
{
	uint64_t *bm = calloc(1, mem__region_bitmap_bytes(r));
	int ret;

	if (!bm)
		return err_set(&rq->err, -ENOMEM, "out of memory for the dirty bitmap of %s",
			       r->name);
	ret = mem__fetch_dirty(&rq->kvm->mem, r, bm, &rq->err);
	if (!ret)
		*pages = snap_bitmap_count(bm, r->size / PAGE_SIZE);
	free(bm);
	return ret;
}

static int stats_dirty(struct request *rq)
{
	struct json_object *list = json_object_new_array();
	const struct mem_region *r;
	uint64_t pages = 0;
	int ret;

	json_object_object_add(rq->reply, "dirty", list);
	mem__for_each_region (&rq->kvm->mem, r) {
		struct json_object *o;

		if (r->flags & MEM_REGION_READONLY)
			continue;
		ret = region_dirty_pages(rq, r, &pages);
		if (ret)
			return ret;
		o = json_object_new_object();
		request__add_str(o, "region", r->name);
		request__add_u64(o, "pages", pages);
		json_object_array_add(list, o);
	}
	return 0;
}

static uint64_t stats_cpus(struct request *rq, uint64_t *total_passes)
{
	struct json_object *cpus = json_object_new_array();
	uint64_t total = 0, passes = 0;
	struct kvm_cpu *cpu;
	unsigned int i;

	/* Plain words written by the vCPU threads: relaxed loads, no lock. */
	kvm__for_each_cpu (rq->kvm, cpu, i) {
		struct json_object *o = json_object_new_object();
		uint64_t p = __atomic_load_n(&cpu->progress.pages, __ATOMIC_RELAXED);
		uint64_t n = __atomic_load_n(&cpu->progress.passes, __ATOMIC_RELAXED);

		request__add_u64(o, "cpu", i);
		request__add_u64(o, "pages", p);
		request__add_u64(o, "passes", n);
		request__add_bool(o, "ready",
				  __atomic_load_n(&cpu->progress.ready, __ATOMIC_RELAXED));
		request__add_u64(o, "exits", __atomic_load_n(&cpu->nr_exits, __ATOMIC_RELAXED));
		json_object_array_add(cpus, o);
		total += p;
		passes += n;
	}
	json_object_object_add(rq->reply, "cpus", cpus);
	*total_passes = passes;
	return total;
}

static int cmd_stats(struct request *rq)
{
	struct control_state *st = rq->st;
	uint64_t now = now_ns(), since, base_pages, pages, passes, interval_ns, pps = 0;

	pages = stats_cpus(rq, &passes);
	/* The first interval starts when the VM did, with no progress yet. */
	since = st->stats_ns ? st->stats_ns : rq->kvm->start_ns;
	base_pages = st->stats_ns ? st->stats_pages : 0;
	interval_ns = since && now > since ? now - since : 0;
	if (interval_ns && pages >= base_pages)
		pps = (uint64_t)((double)(pages - base_pages) * 1e9 / (double)interval_ns);

	request__add_u64(rq->reply, "pages", pages);
	request__add_u64(rq->reply, "passes", passes);
	request__add_u64(rq->reply, "interval_ms", interval_ns / 1000000);
	request__add_u64(rq->reply, "pages_per_sec", pps);
	request__add_bool(rq->reply, "dirty_log", rq->kvm->mem.log_dirty);
	/* A snapshot owns the dirty log: reading it here would steal its pages. */
	request__add_bool(rq->reply, "snapshot", st->claimed_by != NULL);
	if (rq->kvm->mem.log_dirty && !st->claimed_by) {
		int ret = stats_dirty(rq);

		if (ret)
			return ret;
	}
	st->stats_ns = now;
	st->stats_pages = pages;
	return 0;
}

/* ---- dispatch ---- */

static const char *const no_args[] = {NULL};
static const char *const dirty_log_args[] = {"enable", NULL};

static const struct command commands[] = {
    {"status", no_args, cmd_status}, {"pause", no_args, cmd_pause},
    {"resume", no_args, cmd_resume}, {"quit", no_args, cmd_quit},
    {"digest", no_args, cmd_digest}, {"dirty-log", dirty_log_args, cmd_dirty_log},
    {"stats", no_args, cmd_stats},
};

/* A built-in command, else one of a service. */
static const struct command *find_command(const struct control_state *st, const char *name)
{
	unsigned int i, k;

	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	for (k = 0; k < st->nr_services; k++)
		for (i = 0; i < st->services[k]->nr_commands; i++)
			if (!strcmp(st->services[k]->commands[i].name, name))
				return &st->services[k]->commands[i];
	return NULL;
}

static bool arg_allowed(const struct command *c, const char *key)
{
	const char *const *a;

	if (!strcmp(key, "cmd"))
		return true;
	for (a = c->args; *a; a++)
		if (!strcmp(*a, key))
			return true;
	return false;
}

static bool is_blank(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

/* The request object, or NULL with rq->err set. */
static struct json_object *parse_request(struct request *rq, const char *line, size_t len)
{
	struct json_object *obj = NULL;
	struct json_tokener *tok;
	enum json_tokener_error err;
	char *buf;

	if (is_blank(line, len)) {
		err_set(&rq->err, -EINVAL,
			"empty request; send one JSON object such as {\"cmd\":\"status\"}");
		return NULL;
	}
	if (memchr(line, '\0', len)) {
		err_set(&rq->err, -EINVAL, "request contains a NUL byte");
		return NULL;
	}
	/* Parse through the NUL as well, so a bare number or literal ends there. */
	buf = malloc(len + 1);
	tok = json_tokener_new();
	if (!buf || !tok) {
		err_set(&rq->err, -ENOMEM, "out of memory");
		goto out;
	}
	memcpy(buf, line, len);
	buf[len] = '\0';
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8 |
					JSON_TOKENER_ALLOW_TRAILING_CHARS);
	obj = json_tokener_parse_ex(tok, buf, len + 1);
	err = json_tokener_get_error(tok);
	if (err != json_tokener_success) {
		err_set(&rq->err, -EINVAL, "request is not valid JSON: %s",
			json_tokener_error_desc(err));
	} else if (!is_blank(buf + json_tokener_get_parse_end(tok),
			     len - MIN(len, json_tokener_get_parse_end(tok)))) {
		err_set(&rq->err, -EINVAL,
			"request has more after its JSON value; send one object per line");
	} else if (!json_object_is_type(obj, json_type_object)) {
		err_set(&rq->err, -EINVAL,
			"request must be a JSON object such as {\"cmd\":\"status\"}");
	} else {
		goto out;
	}
	json_object_put(obj);
	obj = NULL;
out:
	if (tok)
		json_tokener_free(tok);
	free(buf);
	return obj;
}

static const struct command *check_request(struct request *rq)
{
	const struct command *c;
	struct json_object *v;
	const char *name;

	if (!json_object_object_get_ex(rq->args, "cmd", &v)) {
		err_set(&rq->err, -EINVAL, "request has no \"cmd\" member");
		return NULL;
	}
	if (!json_object_is_type(v, json_type_string)) {
		err_set(&rq->err, -EINVAL, "\"cmd\" must be a string");
		return NULL;
	}
	name = json_object_get_string(v);
	c = find_command(rq->st, name);
	if (!c) {
		err_set(&rq->err, -ENOENT,
			"unknown command \"%.64s\"; commands are status, pause, resume, quit, "
			"digest, dirty-log, stats and snapshot-*",
			name);
		return NULL;
	}
	json_object_object_foreach(rq->args, key, val)
	{
		(void)val;
		if (!arg_allowed(c, key)) {
			err_set(&rq->err, -EINVAL, "%s takes no \"%.64s\" argument", c->name, key);
			return NULL;
		}
	}
	return c;
}

static char *render(struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE);

	return s ? strdup(s) : NULL;
}

void control__init_state(struct control_state *st, struct kvm *kvm,
			 const struct control_service *const *services)
{
	memset(st, 0, sizeof(*st));
	st->kvm = kvm;
	st->in_fd = -1;
	while (services && *services && st->nr_services < CONTROL_MAX_SERVICES)
		st->services[st->nr_services++] = *services++;
}

char *control__handle_line(struct control_state *st, const char *line, size_t len)
{
	struct request rq = {.st = st, .kvm = st->kvm};
	const struct command *c;
	struct json_object *out;
	char *reply;
	int ret = -1;

	st->nr_out_fds = 0;

	rq.args = parse_request(&rq, line, len);
	rq.reply = json_object_new_object();
	if (!rq.reply) {
		json_object_put(rq.args);
		return NULL;
	}
	json_object_object_add(rq.reply, "ok", json_object_new_boolean(1));
	if (rq.args) {
		c = check_request(&rq);
		if (c)
			ret = c->fn(&rq);
	}
	out = rq.reply;
	if (ret) {
		st->nr_out_fds = 0; /* descriptors go only with a successful reply */
		json_object_put(rq.reply);
		out = json_object_new_object();
		json_object_object_add(out, "ok", json_object_new_boolean(0));
		json_object_object_add(out, "error", json_object_new_string(rq.err.msg));
	}
	reply = out ? render(out) : NULL;
	json_object_put(out);
	json_object_put(rq.args);
	return reply;
}
