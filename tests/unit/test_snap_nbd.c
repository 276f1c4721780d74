// SPDX-License-Identifier: GPL-2.0
/*
 * The image writer into an NBD export, against a real server (nbdkit on a
 * Unix socket, started and stopped by each test) and the fake VM: a good
 * snapshot, then the faults nbdkit can inject at a chosen moment (EIO and
 * ENOSPC from the error filter, a slow server, a stalled one, the server
 * killed mid-pass or at the flush before the `complete` header) and the
 * exports refused before anything is written. After a fault the VM is
 * resumed with logging off (its dirty bits handed back), and the image,
 * read again over a new connection, is `writing`, never complete.
 */
#include "../harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include "../lib/fakevm.h"
#include "../lib/nbdkit.h"
#include "snapshot/image.h"
#include "snapshot/nbd.h"
#include "snapshot/writer.h"

FIXTURE(nbd)
{
	struct fake_vm f;
	struct snap_image img;
	struct nbdkit k;
	unsigned int trigger_fetch; /* on_fetch: the fetch that acts */
	char trigger[32];	    /* on_fetch: the file it creates, or "" to kill the server */
	bool started;		    /* the fake VM's mutator runs */
};

FIXTURE_SETUP(nbd)
{
	const char *why = "";

	self->img.fd = -1;
	TEST_REQUIRE(nbdkit_available(&why), "%s", why);
	ASSERT_EQ(nbdkit_init(&self->k), 0);
	/* Holes: pc.ram's every other MiB never touched, written as zeros. */
	ASSERT_EQ(fake_vm_init(&self->f, true), 0);
	self->f.hook_arg = self;
}

FIXTURE_TEARDOWN(nbd)
{
	if (self->started)
		fake_vm_stop(&self->f);
	snap_image_close(&self->img);
	nbdkit_cleanup(&self->k);
	unsetenv("KVMSNAP_NBD_TIMEOUT_MS");
}

/* A sparse backing file for the file and eval plugins. */
static int make_disk(struct _fixture_nbd *self, uint64_t size)
{
	char path[160];
	int fd = open(nbdkit_file(&self->k, "disk", path, sizeof(path)),
		      O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	int ret = fd >= 0 && !ftruncate(fd, (off_t)size) ? 0 : -1;

	if (fd >= 0)
		close(fd);
	return ret;
}

/* The image on the export, made for the fake VM; the mutator started. */
static void prepare(struct _fixture_nbd *self, struct th_result *_r)
{
	struct error err = {0};

	if (snap_image_prepare(self->k.uri, &self->f.vm.cfg, NULL, &self->img, &err))
		TH_LOG("prepare: %s", err.msg);
	ASSERT_TRUE(snap_image_is_open(&self->img));
	EXPECT_NE(self->img.nbd, NULL);
	self->f.img = &self->img;
	ASSERT_EQ(fake_vm_start(&self->f), 0);
	self->started = true;
}

/* Fault injection at the chosen fetch: create the trigger file, or kill the server. */
static void fire_on_fetch(struct fake_vm *f, unsigned int n)
{
	struct _fixture_nbd *self = f->hook_arg;

	if (n != self->trigger_fetch)
		return;
	if (self->trigger[0])
		nbdkit_touch(&self->k, self->trigger);
	else
		nbdkit_kill(&self->k);
}

/* The VM was let go as after any failed write: resumed, logging off. */
static void expect_vm_released(struct _fixture_nbd *self, struct th_result *_r)
{
	EXPECT_TRUE(self->f.finished);
	EXPECT_FALSE(self->f.paused);
	EXPECT_FALSE(self->f.logging);
}

/* The image read again over a new connection: `writing`, and verify refuses it. */
static void expect_writing(struct _fixture_nbd *self, struct th_result *_r)
{
	struct snap_image img = {.fd = -1};
	struct snap_verify_result vr;
	struct error err = {0};

	snap_image_close(&self->img);
	ASSERT_EQ(snap_image_open(self->k.uri, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	EXPECT_EQ(img.hdr.state, SNAP_STATE_WRITING);
	EXPECT_NE(snap_image_verify(&img, false, &vr, &err), 0);
	TH_LOG("verify: %s", err.msg);
	snap_image_close(&img);
}

/* Every data slot of the export equals the memory copied at the pause. */
static void expect_memory_at_pause(struct _fixture_nbd *self, struct th_result *_r)
{
	struct snap_image img = {.fd = -1};
	struct snap_verify_result vr;
	struct error err = {0};
	unsigned int r;

	snap_image_close(&self->img);
	ASSERT_EQ(snap_image_open(self->k.uri, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	EXPECT_EQ(img.hdr.state, SNAP_STATE_COMPLETE);
	for (r = 0; r < FAKE_NR_REGIONS; r++) {
		const struct snap_section *s = snap_layout_section(&img.layout, r);
		uint8_t *buf = malloc(fake_regions[r].size);

		ASSERT_NOT_NULL(buf);
		EXPECT_EQ(snap_image_pread(&img, buf, fake_regions[r].size, s->data_off, &err), 0);
		EXPECT_EQ(memcmp(buf, self->f.expect[r], fake_regions[r].size), 0);
		free(buf);
	}
	EXPECT_EQ(snap_image_verify(&img, true, &vr, &err), 0);
	EXPECT_TRUE(vr.digests_checked);
	snap_image_close(&img);
}

TEST_F(nbd, snapshot_into_a_memory_export_is_the_memory_at_the_pause)
{
	struct snap_options o = {.max_downtime_ms = 5};
	struct snap_report rep;
	struct error err = {0};

	ASSERT_EQ(NBDKIT_START(&self->k, "memory", "64M"), 0);
	prepare(self, _r);
	ASSERT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	TH_LOG("%u passes, downtime %llu us, %s", rep.nr_passes,
	       (unsigned long long)rep.downtime_us, rep.io_engine);
	EXPECT_STREQ(rep.io_engine, "libnbd");
	EXPECT_TRUE(self->f.finished);
	expect_memory_at_pause(self, _r);
}

/*
 * An export full of old data (nbdkit's pattern plugin, made writable by the
 * cow filter), formatted with force, and a guest that never touched half of
 * pc.ram: those pages must still be written as zeros. Unlike a new file, an
 * export is never taken to read as zeros.
 */
TEST_F(nbd, untouched_pages_overwrite_old_data_on_an_export)
{
	struct snap_target_opts topts = {.force = true};
	struct snap_options o = {.max_downtime_ms = 5};
	struct snap_report rep;
	struct error err = {0};

	ASSERT_EQ(NBDKIT_START(&self->k, "--filter=cow", "pattern", "64M"), 0);
	ASSERT_EQ(snap_image_create(self->k.uri, &self->f.vm.cfg, &topts, &self->img, &err), 0);
	EXPECT_EQ(self->img.hdr.flags & SNAP_HDR_DATA_ZERO, 0);
	self->f.img = &self->img;
	self->f.quiet = true; /* the holes stay holes */
	ASSERT_EQ(fake_vm_start(&self->f), 0);
	self->started = true;
	ASSERT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	expect_memory_at_pause(self, _r);
}

/* error filter on pwrite, armed by its file at the chosen fetch: pass 2 fails. */
static void fault_mid_pass(struct _fixture_nbd *self, struct th_result *_r, const char *errno_name,
			   const char *msg)
{
	struct snap_options o = {.threshold = 1, .max_passes = 10};
	char fault[32], file[200];
	struct snap_report rep;
	struct error err = {0};
	int ret;

	snprintf(fault, sizeof(fault), "error-pwrite=%s", errno_name);
	snprintf(file, sizeof(file), "error-pwrite-file=%s/armed", self->k.dir);
	ASSERT_EQ(NBDKIT_START(&self->k, "--filter=error", "memory", "64M", fault,
			       "error-pwrite-rate=100%", file),
		  0);
	prepare(self, _r);
	self->trigger_fetch = 2;
	strcpy(self->trigger, "armed");
	self->f.on_fetch = fire_on_fetch;
	ret = snap_write(&self->img, &self->f.vm, &o, &rep, &err);
	TH_LOG("error: %s", err.msg);
	EXPECT_LT(ret, 0);
	EXPECT_GE(self->f.fetches, 2);
	EXPECT_NOT_NULL(strstr(err.msg, msg));
	EXPECT_NOT_NULL(strstr(err.msg, self->k.uri));
	expect_vm_released(self, _r);
	expect_writing(self, _r);
}

TEST_F(nbd, eio_partway_through_a_pass_leaves_writing)
{
	fault_mid_pass(self, _r, "EIO", "Input/output error");
}

TEST_F(nbd, enospc_partway_through_a_pass_leaves_writing)
{
	fault_mid_pass(self, _r, "ENOSPC", "No space left on device");
}

/* A server that answers slowly still gets a good snapshot, and the report stays true. */
TEST_F(nbd, slow_target_converges_or_stops_at_its_limits)
{
	struct snap_options o = {.max_downtime_ms = 5, .max_passes = 6};
	struct snap_report rep;
	struct error err = {0};

	ASSERT_EQ(NBDKIT_START(&self->k, "--filter=delay", "memory", "64M", "delay-write=20ms"), 0);
	prepare(self, _r);
	ASSERT_EQ(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	TH_LOG("%u passes, %s, %s, downtime %llu us, final pass %llu us", rep.nr_passes,
	       rep.converged ? "converged" : "did not converge",
	       rep.stop_reason ? rep.stop_reason : "", (unsigned long long)rep.downtime_us,
	       (unsigned long long)rep.passes[rep.nr_passes - 1].duration_us);
	ASSERT_NOT_NULL(rep.stop_reason);
	EXPECT_TRUE(rep.converged || strstr(rep.stop_reason, "pass limit"));
	/* The downtime covers the final pass, written while the VM was paused. */
	EXPECT_GE(rep.downtime_us, rep.passes[rep.nr_passes - 1].duration_us);
	EXPECT_LE(rep.nr_passes, 7); /* 6, and the final one */
	expect_memory_at_pause(self, _r);
}

/* The server killed (SIGKILL) at the chosen fetch, restarted over the same file. */
TEST_F(nbd, server_killed_mid_pass_leaves_writing)
{
	struct snap_options o = {.threshold = 1, .max_passes = 10};
	char disk[160];
	struct snap_report rep;
	struct error err = {0};

	nbdkit_file(&self->k, "disk", disk, sizeof(disk));
	ASSERT_EQ(make_disk(self, 64 << 20), 0);
	ASSERT_EQ(NBDKIT_START(&self->k, "file", disk), 0);
	prepare(self, _r);
	self->trigger_fetch = 2;
	self->f.on_fetch = fire_on_fetch;
	EXPECT_LT(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	TH_LOG("error: %s", err.msg);
	EXPECT_NOT_NULL(strstr(err.msg, "connection was lost"));
	expect_vm_released(self, _r);
	ASSERT_EQ(NBDKIT_START(&self->k, "file", disk), 0);
	expect_writing(self, _r);
}

/* At the pause: the server dies at the next flush, the one after the last data. */
static void kill_at_next_flush(struct fake_vm *f)
{
	struct _fixture_nbd *self = f->hook_arg;

	nbdkit_kill_at_flush(&self->k, nbdkit_flushes(&self->k) + 1);
}

TEST_F(nbd, server_killed_before_the_complete_header_leaves_writing)
{
	struct snap_options o = {.max_downtime_ms = 5};
	char disk[160];
	struct snap_report rep;
	struct error err = {0};
	unsigned int before;

	ASSERT_EQ(nbdkit_start_scripted(&self->k, 64 << 20, true), 0);
	prepare(self, _r);
	self->f.on_pause = kill_at_next_flush;
	before = nbdkit_flushes(&self->k);
	EXPECT_LT(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	TH_LOG("error: %s", err.msg);
	/* The header went `writing` with a flush; the next flush, after the data, was the last. */
	EXPECT_GE(nbdkit_flushes(&self->k), before + 2);
	EXPECT_NOT_NULL(strstr(err.msg, "connection was lost"));
	expect_vm_released(self, _r);
	nbdkit_kill(&self->k); /* reaped */
	ASSERT_EQ(NBDKIT_START(&self->k, "file", nbdkit_file(&self->k, "disk", disk, sizeof(disk))),
		  0);
	expect_writing(self, _r);
}

/* Writes stall from the chosen fetch on: the request's deadline ends the snapshot. */
TEST_F_TIMEOUT(nbd, stalled_server_times_out_and_leaves_writing, 60)
{
	struct snap_options o = {.threshold = 1, .max_passes = 10};
	struct snap_report rep;
	struct error err = {0};
	char disk[160];

	setenv("KVMSNAP_NBD_TIMEOUT_MS", "2000", 1);
	ASSERT_EQ(nbdkit_start_scripted(&self->k, 64 << 20, true), 0);
	prepare(self, _r);
	self->trigger_fetch = 2;
	strcpy(self->trigger, "stall");
	self->f.on_fetch = fire_on_fetch;
	EXPECT_LT(snap_write(&self->img, &self->f.vm, &o, &rep, &err), 0);
	TH_LOG("error: %s", err.msg);
	EXPECT_NOT_NULL(strstr(err.msg, "did not answer within 2000 ms"));
	expect_vm_released(self, _r);
	/* Its requests sleep on: read the image through another server over the same file. */
	nbdkit_kill(&self->k);
	ASSERT_EQ(NBDKIT_START(&self->k, "file", nbdkit_file(&self->k, "disk", disk, sizeof(disk))),
		  0);
	expect_writing(self, _r);
}

/* ---- refused before anything is written ---- */

/* The export's first 64 KiB are still zero: nothing was written. */
static void expect_untouched(struct _fixture_nbd *self, struct th_result *_r)
{
	static uint8_t buf[64 << 10], zero[64 << 10];
	struct snap_nbd *n;
	struct error err = {0};
	uint64_t size;

	ASSERT_EQ(snap_nbd_open(self->k.uri, false, &n, &size, &err), 0);
	EXPECT_EQ(snap_nbd_pread(n, buf, sizeof(buf), 0, &err), 0);
	EXPECT_EQ(memcmp(buf, zero, sizeof(buf)), 0);
	snap_nbd_close(n);
}

static int create(struct _fixture_nbd *self, bool force, struct error *err)
{
	struct snap_target_opts topts = {.force = force};

	return snap_image_create(self->k.uri, &self->f.vm.cfg, &topts, &self->img, err);
}

TEST_F(nbd, short_export_is_refused_naming_both_sizes)
{
	struct error err = {0};

	ASSERT_EQ(NBDKIT_START(&self->k, "memory", "1M"), 0);
	EXPECT_EQ(create(self, false, &err), -ENOSPC);
	TH_LOG("%s", err.msg);
	EXPECT_NOT_NULL(strstr(err.msg, "1 MiB"));
	EXPECT_NOT_NULL(strstr(err.msg, "NBD export is smaller than the"));
	EXPECT_FALSE(snap_image_is_open(&self->img));
	expect_untouched(self, _r);
}

TEST_F(nbd, read_only_export_is_refused)
{
	struct error err = {0};

	ASSERT_EQ(NBDKIT_START(&self->k, "-r", "memory", "64M"), 0);
	EXPECT_EQ(create(self, false, &err), -EROFS);
	TH_LOG("%s", err.msg);
	EXPECT_NOT_NULL(strstr(err.msg, "read-only"));
	expect_untouched(self, _r);
}

TEST_F(nbd, server_without_flush_is_refused)
{
	struct error err = {0};

	ASSERT_EQ(nbdkit_start_scripted(&self->k, 64 << 20, false), 0);
	EXPECT_EQ(create(self, false, &err), -EOPNOTSUPP);
	TH_LOG("%s", err.msg);
	EXPECT_NOT_NULL(strstr(err.msg, "does not support flush"));
	expect_untouched(self, _r);
}

TEST_F(nbd, refused_connection_is_one_clear_line)
{
	struct error err = {0};
	char uri[200];

	snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s/nobody-listens", self->k.dir);
	EXPECT_LT(snap_image_create(uri, &self->f.vm.cfg, NULL, &self->img, &err), 0);
	TH_LOG("%s", err.msg);
	EXPECT_NOT_NULL(strstr(err.msg, "cannot connect"));
	EXPECT_NULL(strchr(err.msg, '\n'));
	EXPECT_LT(snap_image_open(uri, SNAP_OPEN_RDONLY, NULL, &self->img, &err), 0);
	EXPECT_NOT_NULL(strstr(err.msg, "cannot connect"));
}

/* Someone's data on an export is overwritten only with force. */
TEST_F(nbd, export_with_foreign_data_needs_force)
{
	struct error err = {0};

	ASSERT_EQ(NBDKIT_START(&self->k, "data", "1 2 3 4", "size=64M"), 0);
	EXPECT_EQ(create(self, false, &err), -EEXIST);
	TH_LOG("%s", err.msg);
	EXPECT_NOT_NULL(strstr(err.msg, "--force"));
	EXPECT_EQ(create(self, true, &err), 0);
	EXPECT_EQ(self->img.hdr.state, SNAP_STATE_EMPTY);
}

TEST_HARNESS_MAIN
