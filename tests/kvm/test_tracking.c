// SPDX-License-Identifier: GPL-2.0
/*
 * Dirty trackers on a real `kvmsnap run` with the dirtier guest, driven by a
 * fake manager that speaks the snapshot protocol over one connection: a full
 * snapshot into an image slot, its commit, an incremental one, an abort,
 * strict arguments, and dirty logging turned off under a tracker.
 *
 * And a measurement, not an assertion: the dirtier's pages/s with dirty
 * logging on and never fetched (as between snapshots while a tracker is
 * valid) against logging off, in alternating intervals of
 * KVMSNAP_TRACK_MEASURE_SECS seconds (default 3) in the same run.
 */
#include "../lib/vmproc.h"

#define RAM_PAGES (134217728ULL / 4096) /* --mem 128M */
#define UUID	  "0123456789abcdef0123456789abcdef"
#define ID1	  "00000000000000a1"
#define ID2	  "00000000000000a2"
#define ID3	  "00000000000000a3"

FIXTURE(track)
{
	struct vm vm;
	int fd;
};

FIXTURE_SETUP(track)
{
	self->fd = -1;
	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened");
	ASSERT_EQ(VM_SPAWN(&self->vm, "--guest", "dirtier:ws=32M", "--mem", "128M"), 0);
	ASSERT_TRUE(wait_guest_running(self->vm.sock));
	self->fd = ctl_open(self->vm.sock);
	ASSERT_GE(self->fd, 0);
}

FIXTURE_TEARDOWN(track)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->vm.pid > 0)
		EXPECT_EQ(vm_stop(&self->vm), 0);
	else
		vm_stop(&self->vm);
}

/* One request on the session's connection that must succeed; the reply (caller puts it). */
static struct json_object *ok_call(struct th_result *_r, int fd, const char *req)
{
	struct json_object *r = call_fd(fd, req);

	ASSERT_NOT_NULL(r);
	if (ok_of(r) != 1)
		TH_LOG("%s: %s", req, str_of(r, "error") ?: "?");
	ASSERT_EQ(ok_of(r), 1);
	return r;
}

static void ok_put(struct th_result *_r, int fd, const char *req)
{
	json_object_put(ok_call(_r, fd, req));
}

/* A request that must fail with an error containing want. */
static void refused(struct th_result *_r, int fd, const char *req, const char *want)
{
	struct json_object *r = call_fd(fd, req);

	ASSERT_NOT_NULL(r);
	EXPECT_EQ(ok_of(r), 0);
	if (!strstr(str_of(r, "error") ?: "", want))
		TH_LOG("%s: \"%s\", wanted \"%s\"", req, str_of(r, "error") ?: "?", want);
	EXPECT_NOT_NULL(strstr(str_of(r, "error") ?: "", want));
	json_object_put(r);
}

/* The rest of a snapshot after snapshot-log, as the manager does it; end with or without abort. */
static void finish(struct th_result *_r, int fd, bool abort_)
{
	ok_put(_r, fd, "{\"cmd\":\"snapshot-dirty\"}");
	ok_put(_r, fd, "{\"cmd\":\"snapshot-pause\"}");
	ok_put(_r, fd, "{\"cmd\":\"snapshot-dirty\"}");
	ok_put(_r, fd, "{\"cmd\":\"snapshot-state\"}");
	ok_put(_r, fd,
	       abort_ ? "{\"cmd\":\"snapshot-end\",\"abort\":true}" : "{\"cmd\":\"snapshot-end\"}");
}

/* The status's only tracker (the reply in *status, to put). */
static struct json_object *tracker(struct th_result *_r, const char *sock,
				   struct json_object **status)
{
	struct json_object *t;

	*status = call(sock, "{\"cmd\":\"status\"}");
	ASSERT_EQ(ok_of(*status), 1);
	ASSERT_EQ(len_of(get(*status, "tracking")), 1);
	t = at(get(*status, "tracking"), 0);
	EXPECT_STREQ(str_of(t, "uuid"), UUID);
	EXPECT_EQ(u64_of(t, "slot"), 1);
	return t;
}

TEST_F_TIMEOUT(track, full_commit_incremental_abort, 120)
{
	struct json_object *r, *st, *t;
	int fd = self->fd;

	/* Full: this VM never tracked the slot. */
	r = ok_call(_r, fd, "{\"cmd\":\"snapshot-begin\"}");
	EXPECT_EQ(len_of(get(r, "tracking")), 0);
	json_object_put(r);
	refused(_r, fd, "{\"cmd\":\"snapshot-log\",\"uuid\":\"" UUID "\",\"slot\":1}",
		"\"attempt\" is missing");
	refused(_r, fd,
		"{\"cmd\":\"snapshot-log\",\"uuid\":\"0123456789ABCDEF0123456789abcdef\","
		"\"slot\":1,\"attempt\":\"" ID1 "\"}",
		"\"uuid\" must be a string of 32 lowercase hex digits");
	refused(_r, fd,
		"{\"cmd\":\"snapshot-log\",\"uuid\":\"" UUID "\",\"slot\":2,\"attempt\":\"" ID1
		"\"}",
		"\"slot\" must be 0 or 1");
	refused(_r, fd,
		"{\"cmd\":\"snapshot-log\",\"uuid\":\"" UUID "\",\"slot\":1,\"attempt\":161}",
		"\"attempt\" must be a string of 16 lowercase hex digits");
	refused(_r, fd, "{\"cmd\":\"snapshot-log\",\"slot\":1}", "\"slot\" needs \"uuid\"");
	r = ok_call(_r, fd,
		    "{\"cmd\":\"snapshot-log\",\"uuid\":\"" UUID "\",\"slot\":1,\"attempt\":\"" ID1
		    "\"}");
	EXPECT_EQ(bool_of(r, "incremental"), 0);
	EXPECT_NOT_NULL(strstr(str_of(r, "why") ?: "", "has not tracked slot 1"));
	json_object_put(r);
	finish(_r, fd, false);

	/* Ended: logging stays on, the tracker waits for its commit. */
	t = tracker(_r, self->vm.sock, &st);
	EXPECT_EQ(bool_of(st, "dirty_log"), 1);
	EXPECT_EQ(bool_of(t, "pending"), 1);
	EXPECT_STREQ(str_of(t, "pending_id"), ID1);
	json_object_put(st);
	refused(_r, fd,
		"{\"cmd\":\"snapshot-commit\",\"uuid\":\"" UUID "\",\"slot\":1,\"write_id\":\"" ID2
		"\"}",
		"waiting for the commit of write id " ID1);
	refused(_r, fd,
		"{\"cmd\":\"snapshot-commit\",\"uuid\":\"" UUID "\",\"slot\":0,\"write_id\":\"" ID1
		"\"}",
		"not tracked");
	ok_put(_r, fd,
	       "{\"cmd\":\"snapshot-commit\",\"uuid\":\"" UUID "\",\"slot\":1,\"write_id\":\"" ID1
	       "\"}");
	t = tracker(_r, self->vm.sock, &st);
	EXPECT_EQ(bool_of(t, "valid"), 1);
	EXPECT_EQ(bool_of(t, "pending"), 0);
	EXPECT_STREQ(json_object_get_string(at(get(t, "write_ids"), 0)), ID1);
	json_object_put(st);

	/* The dirtier rewrites its 32M: the incremental snapshot gets them, not all 128M. */
	wait_pages_above(self->vm.sock, guest_pages(self->vm.sock) + 16384, progress_timeout_ms);
	r = ok_call(_r, fd, "{\"cmd\":\"snapshot-begin\"}");
	EXPECT_EQ(len_of(get(r, "tracking")), 1);
	json_object_put(r);
	refused(_r, fd,
		"{\"cmd\":\"snapshot-log\",\"uuid\":\"" UUID "\",\"slot\":1,\"base\":\"" ID1
		"\",\"attempt\":\"" ID1 "\"}",
		"\"attempt\" must differ from \"base\"");
	r = ok_call(_r, fd,
		    "{\"cmd\":\"snapshot-log\",\"uuid\":\"" UUID "\",\"slot\":1,\"base\":\"" ID1
		    "\",\"attempt\":\"" ID2 "\"}");
	EXPECT_EQ(bool_of(r, "incremental"), 1);
	EXPECT_GT(u64_of(r, "pages"), 0);
	EXPECT_LT(u64_of(r, "pages"), RAM_PAGES / 2);
	TH_LOG("incremental: %" PRIu64 " pages of %llu", u64_of(r, "pages"), RAM_PAGES);
	json_object_put(r);
	finish(_r, fd, true);

	/* Aborted: still valid, and the attempt's id is accepted too. */
	t = tracker(_r, self->vm.sock, &st);
	EXPECT_EQ(bool_of(st, "dirty_log"), 1);
	EXPECT_EQ(bool_of(t, "valid"), 1);
	EXPECT_EQ(len_of(get(t, "write_ids")), 2);
	EXPECT_GT(u64_of(t, "pages"), 0);
	json_object_put(st);

	/* Logging off loses KVM's unfetched bits: the tracker is invalid, the next one full. */
	ok_put(_r, fd, "{\"cmd\":\"dirty-log\",\"enable\":false}");
	t = tracker(_r, self->vm.sock, &st);
	EXPECT_EQ(bool_of(t, "valid"), 0);
	EXPECT_STREQ(str_of(t, "why"), "dirty logging was turned off since");
	json_object_put(st);
	ok_put(_r, fd, "{\"cmd\":\"snapshot-begin\"}");
	r = ok_call(_r, fd,
		    "{\"cmd\":\"snapshot-log\",\"uuid\":\"" UUID "\",\"slot\":1,\"base\":\"" ID2
		    "\",\"attempt\":\"" ID3 "\"}");
	EXPECT_EQ(bool_of(r, "incremental"), 0);
	EXPECT_STREQ(str_of(r, "why"), "slot 1: dirty logging was turned off since");
	json_object_put(r);
	/* A failed full snapshot leaves no valid tracker: logging goes off as before. */
	finish(_r, fd, true);
	r = call(self->vm.sock, "{\"cmd\":\"status\"}");
	EXPECT_EQ(bool_of(r, "dirty_log"), 0);
	json_object_put(r);
}

/* The VM notices a closed connection on its next poll: wait until the session is gone. */
static bool wait_no_session(const char *sock)
{
	unsigned int waited;

	for (waited = 0; waited < progress_timeout_ms; waited += 20) {
		struct json_object *r = call(sock, "{\"cmd\":\"stats\"}");
		bool gone = ok_of(r) == 1 && bool_of(r, "snapshot") == 0;

		json_object_put(r);
		if (gone)
			return true;
		sleep_ms(20);
	}
	return false;
}

/* A manager that goes away mid-snapshot: the tracker keeps its pages and stays valid. */
TEST_F_TIMEOUT(track, client_gone_keeps_the_tracker, 120)
{
	struct json_object *r, *st, *t;
	uint64_t pages;
	int fd = self->fd;

	ok_put(_r, fd, "{\"cmd\":\"snapshot-begin\"}");
	json_object_put(ok_call(_r, fd,
				"{\"cmd\":\"snapshot-log\",\"uuid\":\"" UUID
				"\",\"slot\":1,\"attempt\":\"" ID1 "\"}"));
	finish(_r, fd, false);
	ok_put(_r, fd,
	       "{\"cmd\":\"snapshot-commit\",\"uuid\":\"" UUID "\",\"slot\":1,\"write_id\":\"" ID1
	       "\"}");
	wait_pages_above(self->vm.sock, guest_pages(self->vm.sock) + 16384, progress_timeout_ms);
	ok_put(_r, fd, "{\"cmd\":\"snapshot-begin\"}");
	r = ok_call(_r, fd,
		    "{\"cmd\":\"snapshot-log\",\"uuid\":\"" UUID "\",\"slot\":1,\"base\":\"" ID1
		    "\",\"attempt\":\"" ID2 "\"}");
	EXPECT_EQ(bool_of(r, "incremental"), 1);
	pages = u64_of(r, "pages");
	json_object_put(r);
	ok_put(_r, fd, "{\"cmd\":\"snapshot-pause\"}");
	close(fd);
	self->fd = -1;
	ASSERT_TRUE(wait_no_session(self->vm.sock));
	t = tracker(_r, self->vm.sock, &st);
	EXPECT_EQ(bool_of(st, "dirty_log"), 1);
	EXPECT_STREQ(str_of(st, "state"), "running");
	EXPECT_EQ(bool_of(t, "valid"), 1);
	EXPECT_GE(u64_of(t, "pages"), pages);
	json_object_put(st);
}

/* ---- the measurement ---- */

static unsigned int measure_secs(void)
{
	const char *s = getenv("KVMSNAP_TRACK_MEASURE_SECS");
	int n = s ? atoi(s) : 0;

	return n > 0 && n <= 60 ? (unsigned int)n : 3;
}

/*
 * stats pages_per_sec over the interval since the previous stats, or since
 * dirty-log on (which restarts it without fetching). stats fetches the log
 * only after it has read the counters, so an "on" interval saw no fetch.
 */
static uint64_t rate(struct th_result *_r, const char *sock)
{
	struct json_object *r = call(sock, "{\"cmd\":\"stats\"}");
	uint64_t pps;

	ASSERT_EQ(ok_of(r), 1);
	pps = u64_of(r, "pages_per_sec");
	json_object_put(r);
	return pps;
}

TEST_F_TIMEOUT(track, measure_logging_on_without_fetch, 600)
{
	unsigned int secs = measure_secs(), round;
	double on = 0, off = 0;
	uint64_t pps;

	for (round = 0; round < 3; round++) {
		/* Off: an interval from one stats to the next. */
		ASSERT_TRUE(call_ok(self->vm.sock, "{\"cmd\":\"dirty-log\",\"enable\":false}"));
		rate(_r, self->vm.sock);
		sleep_ms(secs * 1000);
		pps = rate(_r, self->vm.sock);
		off += (double)pps;
		fprintf(stderr, "# round %u: dirty logging off: %" PRIu64 " pages/s\n", round, pps);
		/* On, never fetched: from dirty-log on to the next stats. */
		ASSERT_TRUE(call_ok(self->vm.sock, "{\"cmd\":\"dirty-log\",\"enable\":true}"));
		sleep_ms(secs * 1000);
		pps = rate(_r, self->vm.sock);
		on += (double)pps;
		fprintf(stderr, "# round %u: dirty logging on, no fetch: %" PRIu64 " pages/s\n",
			round, pps);
	}
	ASSERT_TRUE(call_ok(self->vm.sock, "{\"cmd\":\"dirty-log\",\"enable\":false}"));
	fprintf(stderr,
		"# dirtier:ws=32M, 1 vCPU, 3 x %u s each: off %.0f pages/s, on %.0f pages/s, "
		"on/off %.3f\n",
		secs, off / 3, on / 3, off > 0 ? on / off : 0);
}

TEST_HARNESS_MAIN
