// SPDX-License-Identifier: GPL-2.0
/* kvmsnap ctl: send one request to a control socket and print the reply. */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "builtin.h"
#include "control/conn.h"
#include "control/control.h"
#include "util/util.h"

#define CTL_TIMEOUT_S 30

struct ctl_opts {
	const char *path;
	const char *cmd;
	const char *arg;
	bool json;
};

static const char *const ctl_commands[] = {
    "status", "pause", "resume", "quit", "digest", "stats", "dirty-log",
};

static void ctl_usage(FILE *f, const struct parse_opt *opts)
{
	fprintf(f, "usage: kvmsnap ctl PATH COMMAND [ARG] [--json]\n"
		   "\n"
		   "Send one request to the control socket of `kvmsnap run --control PATH` and\n"
		   "print the reply.\n"
		   "\n"
		   "commands:\n"
		   "  status            state, vCPUs, memory and the memory regions\n"
		   "  pause             park every vCPU; prints how long that took\n"
		   "  resume            let the paused vCPUs run again\n"
		   "  quit              end the VM (kvmsnap run then exits with status 0)\n"
		   "  digest            XXH3-64 digest of every memory region\n"
		   "  stats             guest progress; with dirty logging on, the pages each\n"
		   "                    region dirtied since the previous stats\n"
		   "  dirty-log on|off  turn KVM dirty-page logging on or off\n"
		   "\n");
	parse_options__usage(f, opts);
	exit_status__usage(f, EXIT_STATUS_REQUEST);
}

static bool known_command(const char *cmd)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ctl_commands); i++)
		if (!strcmp(ctl_commands[i], cmd))
			return true;
	return false;
}

/* 0, 1 after --help, or -EINVAL (reported). */
static int ctl_parse(int argc, char **argv, struct ctl_opts *o)
{
	const struct parse_opt opts[] = {
	    OPT_ARG("PATH", &o->path),
	    OPT_ARG("COMMAND", &o->cmd),
	    OPT_ARG("ARG", &o->arg),
	    OPT_BOOL(0, "json", &o->json, "print the reply verbatim: one JSON object"),
	    OPT_END(),
	};
	int ret;

	ret = builtin__parse_options(argc, argv, "ctl", opts, ctl_usage);
	if (ret)
		return ret;
	if (!o->cmd) {
		pr_err("ctl: give a control socket PATH and a COMMAND (see kvmsnap ctl --help)");
		return -EINVAL;
	}
	if (!known_command(o->cmd)) {
		pr_err("ctl: unknown command '%s'; commands are status, pause, resume, quit, "
		       "digest, stats and dirty-log",
		       o->cmd);
		return -EINVAL;
	}
	if (!strcmp(o->cmd, "dirty-log")) {
		if (!o->arg || (strcmp(o->arg, "on") && strcmp(o->arg, "off"))) {
			pr_err("ctl: dirty-log needs on or off");
			return -EINVAL;
		}
	} else if (o->arg) {
		pr_err("ctl: %s takes no argument, got '%s'", o->cmd, o->arg);
		return -EINVAL;
	}
	return 0;
}

/* The request line with its newline, in malloc'd memory; NULL when out of memory. */
static char *ctl_request(const struct ctl_opts *o)
{
	struct json_object *req = json_object_new_object();
	const char *s;
	char *line = NULL;

	if (!req)
		return NULL;
	json_object_object_add(req, "cmd", json_object_new_string(o->cmd));
	if (o->arg)
		json_object_object_add(req, "enable",
				       json_object_new_boolean(!strcmp(o->arg, "on")));
	s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	if (s && asprintf(&line, "%s\n", s) < 0)
		line = NULL;
	json_object_put(req);
	return line;
}

/* ---- human-readable rendering ---- */

static struct json_object *member(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return v;
}

static uint64_t u64_of(struct json_object *o, const char *key)
{
	return json_object_get_uint64(member(o, key));
}

static const char *str_of(struct json_object *o, const char *key)
{
	const char *s = json_object_get_string(member(o, key));

	return s ? s : "?";
}

static const char *yes_no(struct json_object *o, const char *key)
{
	return json_object_get_boolean(member(o, key)) ? "yes" : "no";
}

static const char *on_off(struct json_object *o, const char *key)
{
	return json_object_get_boolean(member(o, key)) ? "on" : "off";
}

static size_t nr_items(struct json_object *a)
{
	return json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

static void print_region(struct json_object *r)
{
	struct json_object *flags = member(r, "flags"), *ranges = member(r, "ranges");
	char sz[32];
	size_t i;

	printf("region %s: %s", str_of(r, "name"), format_size(u64_of(r, "size"), sz, sizeof(sz)));
	for (i = 0; i < nr_items(flags); i++)
		printf("%s%s", i ? " " : ", ",
		       json_object_get_string(json_object_array_get_idx(flags, i)));
	for (i = 0; i < nr_items(ranges); i++) {
		struct json_object *rg = json_object_array_get_idx(ranges, i);
		uint64_t gpa = u64_of(rg, "gpa"), size = u64_of(rg, "size");

		printf("%s0x%" PRIx64 "-0x%" PRIx64, i ? ", " : "; at ", gpa, gpa + size - 1);
	}
	printf("\n");
}

/* One dirty tracker: "tracking UUID slot N: valid, 12 pages since write id X". */
static void print_tracker(struct json_object *t)
{
	struct json_object *ids = member(t, "write_ids");
	size_t i;

	printf("tracking %s slot %" PRIu64 ": ", str_of(t, "uuid"), u64_of(t, "slot"));
	if (json_object_get_boolean(member(t, "pending")))
		printf("pending commit of %s, ", str_of(t, "pending_id"));
	if (json_object_get_boolean(member(t, "valid")))
		printf("valid, ");
	else
		printf("invalid (%s), ", str_of(t, "why"));
	printf("%" PRIu64 " pages dirty", u64_of(t, "pages"));
	for (i = 0; i < nr_items(ids); i++)
		printf("%s%s", i ? ", " : "; write ids ",
		       json_object_get_string(json_object_array_get_idx(ids, i)));
	printf("\n");
}

static void print_status(struct json_object *r)
{
	struct json_object *regions = member(r, "regions"), *tracking = member(r, "tracking");
	uint64_t up = u64_of(r, "uptime_ms");
	char sz[32];
	size_t i;

	printf("state:     %s\n", str_of(r, "state"));
	printf("guest:     %s\n", str_of(r, "guest"));
	printf("vcpus:     %" PRIu64 "\n", u64_of(r, "vcpus"));
	printf("mem:       %s\n", format_size(u64_of(r, "mem"), sz, sizeof(sz)));
	printf("uptime:    %" PRIu64 ".%03" PRIu64 " s\n", up / 1000, up % 1000);
	printf("dirty log: %s\n", on_off(r, "dirty_log"));
	if (u64_of(r, "throttle_pct"))
		printf("throttle:  %" PRIu64 "%% (a snapshot holds the vCPUs)\n",
		       u64_of(r, "throttle_pct"));
	for (i = 0; i < nr_items(regions); i++)
		print_region(json_object_array_get_idx(regions, i));
	for (i = 0; i < nr_items(tracking); i++)
		print_tracker(json_object_array_get_idx(tracking, i));
}

static void print_digest(struct json_object *r)
{
	struct json_object *regions = member(r, "regions");
	size_t i;

	printf("algorithm: %s\n", str_of(r, "algorithm"));
	printf("paused:    %s\n", yes_no(r, "paused"));
	for (i = 0; i < nr_items(regions); i++) {
		struct json_object *g = json_object_array_get_idx(regions, i);

		printf("%-12s %s\n", str_of(g, "name"), str_of(g, "digest"));
	}
}

static void print_stats(struct json_object *r)
{
	struct json_object *cpus = member(r, "cpus"), *dirty = member(r, "dirty");
	size_t i;

	printf("pages:     %" PRIu64 "\n", u64_of(r, "pages"));
	printf("passes:    %" PRIu64 "\n", u64_of(r, "passes"));
	printf("interval:  %" PRIu64 " ms\n", u64_of(r, "interval_ms"));
	printf("pages/s:   %" PRIu64 "\n", u64_of(r, "pages_per_sec"));
	for (i = 0; i < nr_items(cpus); i++) {
		struct json_object *c = json_object_array_get_idx(cpus, i);

		printf("cpu %" PRIu64 ": pages %" PRIu64 ", passes %" PRIu64 ", ready %s, "
		       "%" PRIu64 " exits\n",
		       u64_of(c, "cpu"), u64_of(c, "pages"), u64_of(c, "passes"),
		       yes_no(c, "ready"), u64_of(c, "exits"));
	}
	printf("dirty log: %s\n", on_off(r, "dirty_log"));
	for (i = 0; i < nr_items(dirty); i++) {
		struct json_object *d = json_object_array_get_idx(dirty, i);

		printf("dirty %s: %" PRIu64 " pages\n", str_of(d, "region"), u64_of(d, "pages"));
	}
}

static void ctl_print(const char *cmd, struct json_object *r)
{
	if (!strcmp(cmd, "status"))
		print_status(r);
	else if (!strcmp(cmd, "pause"))
		printf("paused in %" PRIu64 " us\n", u64_of(r, "latency_us"));
	else if (!strcmp(cmd, "resume"))
		printf("resumed\n");
	else if (!strcmp(cmd, "quit"))
		printf("quit requested\n");
	else if (!strcmp(cmd, "digest"))
		print_digest(r);
	else if (!strcmp(cmd, "stats"))
		print_stats(r);
	else if (!strcmp(cmd, "dirty-log"))
		printf("dirty log: %s\n", on_off(r, "dirty_log"));
}

/* Returns the exit status for the reply line. */
static int ctl_show(const struct ctl_opts *o, const char *line, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *r = NULL, *ok;
	int ret = EXIT_FAILED;

	if (tok)
		r = json_tokener_parse_ex(tok, line, (int)len);
	if (!r || !json_object_is_type(r, json_type_object) ||
	    !json_object_object_get_ex(r, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean)) {
		pr_err("control socket %s sent a reply that is not a kvmsnap reply: %.*s", o->path,
		       (int)MIN(len, 200), line);
		goto out;
	}
	if (o->json)
		printf("%.*s\n", (int)len, line);
	if (!json_object_get_boolean(ok)) {
		pr_err("%s", str_of(r, "error"));
		goto out;
	}
	if (!o->json)
		ctl_print(o->cmd, r);
	ret = EXIT_OK;
out:
	json_object_put(r);
	if (tok)
		json_tokener_free(tok);
	return ret;
}

int cmd_ctl(int argc, char **argv)
{
	struct ctl_opts o = {0};
	struct ctl_conn conn;
	char *req = NULL, *reply = NULL, err[320];
	int ret;

	ret = ctl_parse(argc, argv, &o);
	if (ret)
		return ret > 0 ? EXIT_OK : EXIT_USAGE;
	req = ctl_request(&o);
	if (!req) {
		pr_err("out of memory");
		return EXIT_FAILED;
	}
	ret = ctl_conn__open(&conn, o.path, CTL_TIMEOUT_S, err, sizeof(err));
	if (!ret)
		ret = ctl_conn__exchange(&conn, req, &reply, NULL, 0, NULL, err, sizeof(err));
	if (ret)
		pr_err("%s", err);
	else
		ret = ctl_show(&o, reply, strlen(reply));
	ctl_conn__close(&conn);
	ret = ret ? EXIT_FAILED : EXIT_OK;
	free(req);
	free(reply);
	fflush(stdout);
	return ret;
}
