// SPDX-License-Identifier: GPL-2.0
/*
 * The control protocol without KVM: request parsing and every error reply,
 * status/digest/stats/pause/resume on a VM that has memory regions but no
 * vCPUs or slots, the dirty-page merge of aliasing ranges, random input, and
 * the server's framing on a real socket with control__serve() in a thread.
 */
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "../harness.h"
#include "../lib/vmproc.h"
#include "control/control.h"
#include "digest.h"
#include "kvm.h"
#include "live-snapshot/session.h"
#include "pc.h"
#include "snapshot/bitmap.h"
#include "util/util.h"

/* A VM without KVM: memory regions and a control state, no vCPUs or slots. */
struct bare_vm {
	struct kvm kvm;
	struct control_state st;
};

static int vm_init(struct bare_vm *vm)
{
	struct pc_config cfg = {.ram_size = 8 << 20, .vram_size = 1 << 20, .nr_cpus = 1};

	kvm__init(&vm->kvm);
	vm->kvm.ram_size = cfg.ram_size;
	snprintf(vm->kvm.guest_desc, sizeof(vm->kvm.guest_desc), "unit/test");
	vm->kvm.exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	control__init_state(&vm->st, &vm->kvm, NULL);
	return pc__setup_memory(&vm->kvm.mem, &cfg, NULL);
}

static void vm_exit(struct bare_vm *vm)
{
	kvm__exit(&vm->kvm);
}

/* The parsed reply to one request line; NULL if it is not one JSON object. */
static struct json_object *ask_len(struct bare_vm *vm, const char *line, size_t len)
{
	char *reply = control__handle_line(&vm->st, line, len);
	struct json_object *o;

	if (!reply)
		return NULL;
	/* The reply is one line: no newline inside. */
	o = strchr(reply, '\n') ? NULL : json_tokener_parse(reply);
	free(reply);
	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static struct json_object *ask(struct bare_vm *vm, const char *line)
{
	return ask_len(vm, line, strlen(line));
}

TEST(status_without_vcpus)
{
	static const char *const names[] = {"pc.ram", "vga.vram", "pc.bios", "acpi.tables"};
	struct json_object *r, *regions, *ram;
	struct bare_vm vm;
	size_t i;

	ASSERT_EQ(vm_init(&vm), 0);
	r = ask(&vm, "{\"cmd\":\"status\"}");
	ASSERT_NOT_NULL(r);
	EXPECT_EQ(ok_of(r), 1);
	EXPECT_STREQ(str_of(r, "state"), "running");
	EXPECT_EQ(u64_of(r, "vcpus"), 0);
	EXPECT_EQ(u64_of(r, "mem"), 8 << 20);
	EXPECT_STREQ(str_of(r, "guest"), "unit/test");
	EXPECT_FALSE(json_object_get_boolean(get(r, "dirty_log")));
	regions = get(r, "regions");
	ASSERT_EQ(json_object_array_length(regions), 4);
	for (i = 0; i < 4; i++)
		EXPECT_STREQ(str_of(at(regions, i), "name"), names[i]);
	ram = at(regions, 0);
	EXPECT_EQ(u64_of(ram, "size"), 8 << 20);
	EXPECT_STREQ(json_object_get_string(at(get(ram, "flags"), 0)), "ram");
	/* RAM is split around the legacy hole: two ranges, offset = gpa. */
	ASSERT_EQ(json_object_array_length(get(ram, "ranges")), 2);
	EXPECT_EQ(u64_of(at(get(ram, "ranges"), 1), "gpa"), 0x100000);
	EXPECT_EQ(u64_of(at(get(ram, "ranges"), 1), "offset"), 0x100000);
	EXPECT_STREQ(json_object_get_string(at(get(at(regions, 2), "flags"), 0)), "readonly");
	EXPECT_EQ(json_object_array_length(get(at(regions, 1), "flags")), 0);
	json_object_put(r);
	vm_exit(&vm);
}

struct bad_case {
	const char *line;
	const char *error; /* a substring of the expected error */
};

TEST(malformed_requests)
{
	static const struct bad_case cases[] = {
	    {"", "empty request"},
	    {"   \t", "empty request"},
	    {"garbage", "not valid JSON"},
	    {"\x01\xff\xfe\x80", "not valid JSON"},
	    {"{\"cmd\":\"st\xff\"}", "not valid JSON"},
	    {"{\"cmd\":\"status\"", "not valid JSON"},
	    {"{\"cmd\":\"status\",}", "not valid JSON"},
	    {"{\"cmd\":\"status\"} {}", "more after"},
	    {"{\"cmd\":\"status\"}x", "more after"},
	    {"[1,2]", "must be a JSON object"},
	    {"5", "must be a JSON object"},
	    {"\"status\"", "must be a JSON object"},
	    {"null", "must be a JSON object"},
	    {"{}", "no \"cmd\""},
	    {"{\"cmd\":5}", "\"cmd\" must be a string"},
	    {"{\"cmd\":null}", "\"cmd\" must be a string"},
	    {"{\"cmd\":[\"status\"]}", "\"cmd\" must be a string"},
	    {"{\"cmd\":\"frobnicate\"}", "unknown command \"frobnicate\""},
	    {"{\"cmd\":\"STATUS\"}", "unknown command"},
	    {"{\"cmd\":\"status\",\"verbose\":true}", "status takes no \"verbose\""},
	    {"{\"cmd\":\"dirty-log\"}", "needs \"enable\""},
	    {"{\"cmd\":\"dirty-log\",\"enable\":\"yes\"}", "\"enable\" must be true or false"},
	    {"{\"cmd\":\"dirty-log\",\"enable\":1}", "\"enable\" must be true or false"},
	    {"{\"cmd\":\"dirty-log\",\"enable\":true,\"x\":1}", "takes no \"x\""},
	    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
	     "]]"
	     "]]]]]]]]]]]]]]]]",
	     "not valid JSON"},
	};
	struct bare_vm vm;
	size_t i;

	ASSERT_EQ(vm_init(&vm), 0);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct json_object *r = ask(&vm, cases[i].line);
		const char *err;

		ASSERT_NOT_NULL(r);
		EXPECT_EQ(ok_of(r), 0);
		err = str_of(r, "error");
		EXPECT_NOT_NULL(err);
		if (err && !strstr(err, cases[i].error))
			TH_LOG("case %zu: \"%s\" does not mention \"%s\"", i, err, cases[i].error);
		EXPECT_TRUE(!err || strstr(err, cases[i].error));
		EXPECT_EQ(json_object_object_length(r), 2);
		json_object_put(r);
	}
	vm_exit(&vm);
}

TEST(nul_byte_and_unterminated_input)
{
	static const char line[] = "{\"cmd\":\"status\"}\0junk";
	struct json_object *r;
	struct bare_vm vm;

	ASSERT_EQ(vm_init(&vm), 0);
	r = ask_len(&vm, line, sizeof(line) - 1);
	ASSERT_NOT_NULL(r);
	EXPECT_EQ(ok_of(r), 0);
	EXPECT_NOT_NULL(strstr(str_of(r, "error"), "NUL"));
	json_object_put(r);
	/* Not NUL-terminated: only len bytes count. */
	r = ask_len(&vm, "{\"cmd\":\"status\"}XYZ", 16);
	ASSERT_NOT_NULL(r);
	EXPECT_EQ(ok_of(r), 1);
	json_object_put(r);
	/* Trailing whitespace and a CR (a client sending CRLF) are fine. */
	r = ask(&vm, "  {\"cmd\":\"status\"} \r");
	ASSERT_NOT_NULL(r);
	EXPECT_EQ(ok_of(r), 1);
	json_object_put(r);
	vm_exit(&vm);
}

TEST(pause_resume_quit_without_vcpus)
{
	struct json_object *r;
	struct bare_vm vm;

	ASSERT_EQ(vm_init(&vm), 0);
	r = ask(&vm, "{\"cmd\":\"resume\"}");
	EXPECT_STREQ(str_of(r, "error"), "not paused");
	json_object_put(r);
	r = ask(&vm, "{\"cmd\":\"pause\"}");
	EXPECT_EQ(ok_of(r), 1);
	EXPECT_TRUE(json_object_is_type(get(r, "latency_us"), json_type_int));
	json_object_put(r);
	r = ask(&vm, "{\"cmd\":\"pause\"}");
	EXPECT_STREQ(str_of(r, "error"), "already paused");
	json_object_put(r);
	r = ask(&vm, "{\"cmd\":\"status\"}");
	EXPECT_STREQ(str_of(r, "state"), "paused");
	json_object_put(r);
	r = ask(&vm, "{\"cmd\":\"resume\"}");
	EXPECT_EQ(ok_of(r), 1);
	json_object_put(r);
	r = ask(&vm, "{\"cmd\":\"quit\"}");
	EXPECT_EQ(ok_of(r), 1);
	json_object_put(r);
	EXPECT_TRUE(kvm__has_exited(&vm.kvm));
	EXPECT_EQ(vm.kvm.exit_status, 0);
	r = ask(&vm, "{\"cmd\":\"pause\"}");
	EXPECT_STREQ(str_of(r, "error"), "the VM is shutting down");
	json_object_put(r);
	vm_exit(&vm);
}

TEST(digest_follows_memory)
{
	struct json_object *r1, *r2, *g1, *g2;
	struct mem_region *ram;
	char hex[DIGEST_HEX_SIZE];
	struct bare_vm vm;
	size_t i;

	/* Known vectors: XXH3-64 of nothing, and the rendering. */
	EXPECT_STREQ(digest__format(digest__buf("", 0), hex), "2d06800538d394c2");
	EXPECT_STREQ(digest__format(0xab, hex), "00000000000000ab");

	ASSERT_EQ(vm_init(&vm), 0);
	r1 = ask(&vm, "{\"cmd\":\"digest\"}");
	ASSERT_EQ(ok_of(r1), 1);
	EXPECT_STREQ(str_of(r1, "algorithm"), "xxh3-page-tree");
	EXPECT_FALSE(json_object_get_boolean(get(r1, "paused")));
	g1 = get(r1, "regions");
	ASSERT_EQ(json_object_array_length(g1), vm.kvm.mem.nr_regions);
	for (i = 0; i < vm.kvm.mem.nr_regions; i++) {
		const char *d = str_of(at(g1, i), "digest");

		EXPECT_STREQ(str_of(at(g1, i), "name"), vm.kvm.mem.regions[i].name);
		EXPECT_STREQ(d, digest__format(digest__region(&vm.kvm.mem.regions[i]), hex));
		EXPECT_EQ(strspn(d, "0123456789abcdef"), 16);
	}
	ram = mem__find_region(&vm.kvm.mem, "pc.ram");
	ASSERT_NOT_NULL(ram);
	((volatile char *)ram->host)[ram->size - 1] ^= 1; /* the very last byte counts */
	r2 = ask(&vm, "{\"cmd\":\"digest\"}");
	g2 = get(r2, "regions");
	EXPECT_STRNE(str_of(at(g1, 0), "digest"), str_of(at(g2, 0), "digest"));
	for (i = 1; i < vm.kvm.mem.nr_regions; i++)
		EXPECT_STREQ(str_of(at(g1, i), "digest"), str_of(at(g2, i), "digest"));
	json_object_put(r1);
	json_object_put(r2);
	vm_exit(&vm);
}

TEST(stats_and_dirty_log_without_vm)
{
	struct json_object *r;
	struct bare_vm vm;

	ASSERT_EQ(vm_init(&vm), 0);
	vm.kvm.start_ns = now_ns() - 50 * 1000000ULL;
	r = ask(&vm, "{\"cmd\":\"stats\"}");
	ASSERT_EQ(ok_of(r), 1);
	EXPECT_EQ(u64_of(r, "pages"), 0);
	EXPECT_GE(u64_of(r, "interval_ms"), 50);
	EXPECT_EQ(json_object_array_length(get(r, "cpus")), 0);
	EXPECT_FALSE(json_object_get_boolean(get(r, "dirty_log")));
	EXPECT_NULL(get(r, "dirty"));
	json_object_put(r);
	r = ask(&vm, "{\"cmd\":\"stats\"}");
	EXPECT_LT(u64_of(r, "interval_ms"), 50); /* since the previous stats */
	json_object_put(r);
	/* No slots: turning logging on fails cleanly, off is already the case. */
	r = ask(&vm, "{\"cmd\":\"dirty-log\",\"enable\":true}");
	EXPECT_EQ(ok_of(r), 0);
	EXPECT_NOT_NULL(strstr(str_of(r, "error"), "dirty logging"));
	json_object_put(r);
	r = ask(&vm, "{\"cmd\":\"dirty-log\",\"enable\":false}");
	EXPECT_EQ(ok_of(r), 1);
	json_object_put(r);
	vm_exit(&vm);
}

/*
 * snapshot-commit needs no session and no KVM: its arguments, the uid rule,
 * and a tracker made pending by hand (as snapshot-end would), in status.
 */
TEST(snapshot_commit_without_kvm)
{
	static const struct control_service *const services[] = {&snapshot_session__service, NULL};
	static const struct bad_case bad[] = {
	    {"{\"cmd\":\"snapshot-commit\"}", "snapshot-commit: \"uuid\" is missing"},
	    {"{\"cmd\":\"snapshot-commit\",\"uuid\":\"11111111111111111111111111111111\",\"slot\":"
	     "1}",
	     "\"write_id\" is missing"},
	    {"{\"cmd\":\"snapshot-commit\",\"uuid\":\"11111111111111111111111111111111\",\"write_"
	     "id\":"
	     "\"00000000000000a1\"}",
	     "\"slot\" is missing"},
	    {"{\"cmd\":\"snapshot-commit\",\"uuid\":\"11111111111111111111111111111111\",\"slot\":"
	     "\"1\","
	     "\"write_id\":\"00000000000000a1\"}",
	     "\"slot\" must be 0 or 1"},
	    {"{\"cmd\":\"snapshot-commit\",\"uuid\":\"11111111111111111111111111111111\",\"slot\":"
	     "1,"
	     "\"write_id\":\"00000000000000A1\"}",
	     "\"write_id\" must be a string of 16 lowercase hex digits"},
	    {"{\"cmd\":\"snapshot-commit\",\"uuid\":\"11111111111111111111111111111111\\u0000\","
	     "\"slot\":1,\"write_id\":\"00000000000000a1\"}",
	     "\"uuid\" must be a string of 32 lowercase hex digits"},
	    {"{\"cmd\":\"snapshot-commit\",\"uuid\":\"11111111111111111111111111111111\",\"slot\":"
	     "1,"
	     "\"write_id\":\"00000000000000a1\",\"base\":\"00000000000000a0\"}",
	     "takes no \"base\""},
	    {"{\"cmd\":\"snapshot-commit\",\"uuid\":\"11111111111111111111111111111111\",\"slot\":"
	     "0,"
	     "\"write_id\":\"00000000000000a1\"}",
	     "slot 0 of that image is not tracked"},
	    {"{\"cmd\":\"snapshot-commit\",\"uuid\":\"11111111111111111111111111111111\",\"slot\":"
	     "1,"
	     "\"write_id\":\"00000000000000a2\"}",
	     "waiting for the commit of write id 00000000000000a1, not 00000000000000a2"},
	};
	const char *commit =
	    "{\"cmd\":\"snapshot-commit\",\"uuid\":\"11111111111111111111111111111111\","
	    "\"slot\":1,\"write_id\":\"00000000000000a1\"}";
	struct dirty_tag tag = {.slot = 1, .write_id = 0xa1};
	uint64_t words[MEM_MAX_REGIONS];
	char why[DIRTY_TRACK_WHY_MAX];
	struct json_object *r, *t;
	struct dirty_tracker *tr;
	struct mem_region *reg;
	struct bare_vm vm;
	bool incremental;
	unsigned int i;

	ASSERT_EQ(vm_init(&vm), 0);
	control__init_state(&vm.st, &vm.kvm, services);
	mem__for_each_region (&vm.kvm.mem, reg)
		words[reg - vm.kvm.mem.regions] = mem__region_bitmap_bytes(reg) / 8;
	ASSERT_EQ(dirty_track__set_shape(&vm.kvm.mem.track, vm.kvm.mem.nr_regions, words, NULL), 0);
	memset(tag.uuid, 0x11, sizeof(tag.uuid));
	ASSERT_EQ(dirty_track__begin(&vm.kvm.mem.track, &tag, NULL, &tr, &incremental, why,
				     sizeof(why), NULL),
		  0);
	EXPECT_FALSE(incremental);
	ASSERT_TRUE(dirty_track__end(&vm.kvm.mem.track, &tag));
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		r = ask(&vm, bad[i].line);
		ASSERT_NOT_NULL(r);
		EXPECT_EQ(ok_of(r), 0);
		if (!strstr(str_of(r, "error") ?: "", bad[i].error))
			TH_LOG("%s: \"%s\", wanted \"%s\"", bad[i].line, str_of(r, "error"),
			       bad[i].error);
		EXPECT_NOT_NULL(strstr(str_of(r, "error") ?: "", bad[i].error));
		json_object_put(r);
	}
	/* Another user may not. */
	vm.st.client_uid = geteuid() + 1;
	r = ask(&vm, commit);
	EXPECT_EQ(ok_of(r), 0);
	EXPECT_NOT_NULL(strstr(str_of(r, "error"), "only root or the VM's own user"));
	json_object_put(r);
	vm.st.client_uid = geteuid();
	r = ask(&vm, "{\"cmd\":\"status\"}");
	ASSERT_EQ(json_object_array_length(get(r, "tracking")), 1);
	t = at(get(r, "tracking"), 0);
	EXPECT_STREQ(str_of(t, "uuid"), "11111111111111111111111111111111");
	EXPECT_EQ(json_object_get_boolean(get(t, "pending")), 1);
	EXPECT_EQ(json_object_get_boolean(get(t, "valid")), 0);
	EXPECT_STREQ(str_of(t, "pending_id"), "00000000000000a1");
	json_object_put(r);
	r = ask(&vm, commit);
	EXPECT_EQ(ok_of(r), 1);
	json_object_put(r);
	r = ask(&vm, "{\"cmd\":\"status\"}");
	t = at(get(r, "tracking"), 0);
	EXPECT_EQ(json_object_get_boolean(get(t, "valid")), 1);
	EXPECT_EQ(json_object_get_boolean(get(t, "pending")), 0);
	EXPECT_STREQ(json_object_get_string(at(get(t, "write_ids"), 0)), "00000000000000a1");
	json_object_put(r);
	/* A second commit: nothing is pending any more. */
	r = ask(&vm, commit);
	EXPECT_NOT_NULL(strstr(str_of(r, "error"), "waiting for no commit"));
	json_object_put(r);
	vm_exit(&vm);
}

static void set_bit64(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ULL << (i % 64);
}

TEST(dirty_merge_counts_region_pages_once)
{
	/* 200 region pages, three ranges: two alias page 0.., one starts at page 100. */
	struct mem_range whole = {.gpa = 0x100000, .size = 200 * PAGE_SIZE, .offset = 0};
	struct mem_range window = {.gpa = 0xb8000, .size = 8 * PAGE_SIZE, .offset = 0};
	struct mem_range tail = {
	    .gpa = 0x400000, .size = 70 * PAGE_SIZE, .offset = 100 * PAGE_SIZE};
	uint64_t region[4] = {0}, bw[4] = {0}, bn[1] = {0}, bt[2] = {0};

	set_bit64(bw, 0);
	set_bit64(bw, 7);
	set_bit64(bw, 150);
	set_bit64(bn, 0); /* same region page as whole's bit 0 */
	set_bit64(bn, 3);
	bn[0] |= 0xffULL << 8; /* past the 8-page window: not pages, ignored */
	set_bit64(bt, 50);     /* region page 150 again */
	set_bit64(bt, 69);     /* region page 169 */
	bt[1] |= 1ULL << 6;    /* range page 70: past the range, ignored */
	mem__merge_range_bitmap(region, &whole, bw);
	mem__merge_range_bitmap(region, &window, bn);
	mem__merge_range_bitmap(region, &tail, bt);
	EXPECT_EQ(snap_bitmap_count(region, 200), 5); /* 0, 3, 7, 150, 169 */
	EXPECT_EQ(region[2] >> 22 & 1, 1);	      /* 150 = 128 + 22 */
	EXPECT_EQ(region[2] >> 41 & 1, 1);	      /* 169 = 128 + 41 */
	EXPECT_EQ(snap_bitmap_count(region, 8), 3);
	EXPECT_EQ(snap_bitmap_count(region, 0), 0);
}

TEST(random_lines_get_one_line_replies)
{
	struct bare_vm vm;
	char line[256];
	unsigned int seed = 12345, i;
	size_t j, len;

	ASSERT_EQ(vm_init(&vm), 0);
	for (i = 0; i < 20000; i++) {
		struct json_object *r;

		len = rand_r(&seed) % sizeof(line);
		for (j = 0; j < len; j++)
			line[j] = (char)rand_r(&seed);
		/* Every other line: a mangled valid request, for deeper paths. */
		if (i & 1 && len > 20)
			memcpy(line, "{\"cmd\":\"dirty-log\",", 19);
		r = ask_len(&vm, line, len);
		ASSERT_NOT_NULL(r);
		ASSERT_GE(ok_of(r), 0);
		json_object_put(r);
	}
	vm_exit(&vm);
}

/* ---- the server, on a real socket ---- */

struct srv {
	struct bare_vm vm;
	char dir[64], path[128];
	int listen_fd;
	pthread_t thread;
	int ret;
};

static void *serve_thread(void *arg)
{
	struct srv *s = arg;

	s->ret = control__serve(&s->vm.kvm, s->listen_fd, s->path, NULL);
	return NULL;
}

static int srv_start(struct srv *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/kvmsnap-ctlu-XXXXXX");
	if (!mkdtemp(s->dir) || vm_init(&s->vm))
		return -1;
	snprintf(s->path, sizeof(s->path), "%s/ctl.sock", s->dir);
	s->listen_fd = control__listen(s->path, NULL);
	if (s->listen_fd < 0)
		return -1;
	return pthread_create(&s->thread, NULL, serve_thread, s) ? -1 : 0;
}

/* End the VM and the server; 0 if it returned 0 and removed the socket. */
static int srv_stop(struct srv *s)
{
	struct stat st;
	int ret;

	kvm__request_exit(&s->vm.kvm, 0, "test over");
	pthread_join(s->thread, NULL);
	ret = s->ret || !lstat(s->path, &st) ? -1 : 0;
	vm_exit(&s->vm);
	rmdir(s->dir);
	return ret;
}

static struct json_object *recv_reply(int fd)
{
	char *line = recv_line(fd);
	struct json_object *o = line ? json_tokener_parse(line) : NULL;

	free(line);
	return o;
}

static int ok_reply(int fd)
{
	struct json_object *o = recv_reply(fd);
	int ok = o ? ok_of(o) : -1;

	json_object_put(o);
	return ok;
}

/* True when the peer closed: EOF (or a reset) within 5 s. */
static bool closed_by_peer(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;

	return poll(&p, 1, 5000) == 1 && recv(fd, &c, 1, 0) <= 0;
}

TEST(server_framing)
{
	static const char three[] = "{\"cmd\":\"status\"}\n{\"cmd\":\"stats\"}\n{}\n";
	static const char split[] = "{\"cmd\":\"digest\"}\n";
	struct srv s;
	size_t i;
	int fd;

	ASSERT_EQ(srv_start(&s), 0);
	fd = ctl_open(s.path);
	ASSERT_GE(fd, 0);
	/* Three requests in one write: three replies, in order. */
	ASSERT_EQ(send_all(fd, three, strlen(three)), 0);
	EXPECT_EQ(ok_reply(fd), 1);
	EXPECT_EQ(ok_reply(fd), 1);
	EXPECT_EQ(ok_reply(fd), 0);
	/* One request a byte at a time. */
	for (i = 0; i < strlen(split); i++) {
		ASSERT_EQ(send_all(fd, split + i, 1), 0);
		usleep(1000);
	}
	EXPECT_EQ(ok_reply(fd), 1);
	/* A blank line gets an error reply; the connection stays usable. */
	ASSERT_EQ(send_all(fd, "\n{\"cmd\":\"status\"}\r\n", 19), 0);
	EXPECT_EQ(ok_reply(fd), 0);
	EXPECT_EQ(ok_reply(fd), 1);
	close(fd);
	EXPECT_EQ(srv_stop(&s), 0);
}

TEST(server_overlong_line_closes_connection)
{
	size_t len = CONTROL_LINE_MAX + 1;
	char *big = malloc(len + 1);
	struct json_object *r;
	struct srv s;
	int fd;

	ASSERT_NOT_NULL(big);
	ASSERT_EQ(srv_start(&s), 0);
	/* Exactly CONTROL_LINE_MAX bytes is still a line (here: invalid JSON). */
	memset(big, ' ', len);
	memcpy(big, "{\"cmd\":\"status\"}", 16);
	big[CONTROL_LINE_MAX] = '\n';
	fd = ctl_open(s.path);
	ASSERT_EQ(send_all(fd, big, CONTROL_LINE_MAX + 1), 0);
	EXPECT_EQ(ok_reply(fd), 1);
	/* One byte more: an error, then the server hangs up. */
	memset(big, 'x', len);
	big[len] = '\n';
	send_all(fd, big, len + 1); /* may fail half-way once the server hung up */
	r = recv_reply(fd);
	if (r) {
		EXPECT_EQ(ok_of(r), 0);
		EXPECT_NOT_NULL(strstr(str_of(r, "error"), "longer than"));
	}
	json_object_put(r);
	EXPECT_TRUE(closed_by_peer(fd));
	close(fd);
	/* The server still answers. */
	fd = ctl_open(s.path);
	ASSERT_EQ(send_all(fd, "{\"cmd\":\"status\"}\n", 17), 0);
	EXPECT_EQ(ok_reply(fd), 1);
	close(fd);
	free(big);
	EXPECT_EQ(srv_stop(&s), 0);
}

TEST(server_client_limit_and_hangups)
{
	int fds[CONTROL_MAX_CLIENTS], extra, fd;
	struct json_object *r;
	struct srv s;
	size_t i;

	ASSERT_EQ(srv_start(&s), 0);
	for (i = 0; i < ARRAY_SIZE(fds); i++) {
		fds[i] = ctl_open(s.path);
		ASSERT_GE(fds[i], 0);
		/* A reply proves the server took this one in. */
		ASSERT_EQ(send_all(fds[i], "{\"cmd\":\"status\"}\n", 17), 0);
		ASSERT_EQ(ok_reply(fds[i]), 1);
	}
	extra = ctl_open(s.path);
	ASSERT_GE(extra, 0);
	r = recv_reply(extra);
	ASSERT_NOT_NULL(r);
	EXPECT_EQ(ok_of(r), 0);
	EXPECT_NOT_NULL(strstr(str_of(r, "error"), "too many"));
	json_object_put(r);
	EXPECT_TRUE(closed_by_peer(extra));
	close(extra);
	/* Every one still answers; then one leaves mid-line and a new one fits. */
	for (i = 0; i < ARRAY_SIZE(fds); i++) {
		ASSERT_EQ(send_all(fds[i], "{\"cmd\":\"stats\"}\n", 16), 0);
		EXPECT_EQ(ok_reply(fds[i]), 1);
	}
	ASSERT_EQ(send_all(fds[0], "{\"cmd\":\"sta", 11), 0);
	close(fds[0]);
	/* A client that sends a request and leaves at once: the server survives it. */
	fd = ctl_open(s.path);
	ASSERT_EQ(send_all(fd, "{\"cmd\":\"digest\"}\n", 17), 0);
	close(fd);
	usleep(100000);
	fd = ctl_open(s.path);
	ASSERT_EQ(send_all(fd, "{\"cmd\":\"status\"}\n", 17), 0);
	EXPECT_EQ(ok_reply(fd), 1);
	close(fd);
	for (i = 1; i < ARRAY_SIZE(fds); i++)
		close(fds[i]);
	EXPECT_EQ(srv_stop(&s), 0);
}

TEST(server_quit_ends_serve)
{
	struct stat st;
	struct srv s;
	int fd;

	ASSERT_EQ(srv_start(&s), 0);
	fd = ctl_open(s.path);
	ASSERT_EQ(send_all(fd, "{\"cmd\":\"quit\"}\n", 15), 0);
	EXPECT_EQ(ok_reply(fd), 1);
	/* The server closes every client and removes the socket. */
	EXPECT_TRUE(closed_by_peer(fd));
	close(fd);
	pthread_join(s.thread, NULL);
	EXPECT_EQ(s.ret, 0);
	EXPECT_NE(lstat(s.path, &st), 0);
	EXPECT_EQ(s.vm.kvm.exit_status, 0);
	vm_exit(&s.vm);
	rmdir(s.dir);
}

TEST(listen_refuses_live_and_foreign_paths)
{
	char dir[] = "/tmp/kvmsnap-ctlu-XXXXXX", path[64], longp[200];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct error err;
	int fd, fd2, stale;

	ASSERT_NOT_NULL(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	fd = control__listen(path, NULL);
	ASSERT_GE(fd, 0);
	EXPECT_EQ(control__listen(path, &err), -EADDRINUSE); /* live */
	EXPECT_NOT_NULL(strstr(err.msg, "is in use by another process"));
	close(fd);
	/* Closed but still on disk: stale, replaced. */
	fd = control__listen(path, NULL);
	EXPECT_GE(fd, 0);
	close(fd);
	/* A socket file that was never listened on is stale too. */
	unlink(path);
	stale = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ASSERT_EQ(bind(stale, (struct sockaddr *)&sa, sizeof(sa)), 0);
	fd2 = control__listen(path, NULL);
	EXPECT_GE(fd2, 0);
	close(fd2);
	close(stale);
	unlink(path);
	/* A regular file is never removed. */
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ASSERT_GE(fd, 0);
	close(fd);
	EXPECT_EQ(control__listen(path, &err), -EEXIST);
	EXPECT_NOT_NULL(strstr(err.msg, " exists and is not a socket"));
	EXPECT_EQ(access(path, F_OK), 0);
	unlink(path);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	longp[0] = '/';
	EXPECT_EQ(control__listen(longp, &err), -ENAMETOOLONG);
	EXPECT_NOT_NULL(strstr(err.msg, "is too long (199 bytes, at most 107)"));
	EXPECT_EQ(control__listen("", &err), -EINVAL);
	EXPECT_STREQ(err.msg, "the control socket path is empty");
	rmdir(dir);
}

TEST_HARNESS_MAIN
