// SPDX-License-Identifier: GPL-2.0
/*
 * The snapshot manager against a hostile VM: a fake VM process (a thread
 * serving the control protocol on a UNIX socket) that lies in its
 * snapshot-begin reply, sends bad descriptors, garbage state or bitmap bits
 * past a region's end, truncates a reply or hangs up at any step. The
 * manager must refuse with one line naming the cause and a negative errno,
 * never crash, never read or write out of bounds (run under ASan), and
 * never leave an image that could pass for a good one. No KVM needed.
 */
#include "../harness.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "devices/uart.h"
#include "live-snapshot/manager.h"
#include "snapshot/image.h"
#include "snapshot/stream.h"
#include "state/state.h"
#include "util/memfd.h"

#define RAM_SIZE  (4ULL << 20)
#define VRAM_SIZE ((1ULL << 20) + (12 << 10)) /* 259 pages: a partial last bitmap word */
#define NR	  2

enum fd_mode { FD_OK, FD_SHORT, FD_UNSEALED, FD_WRITABLE, FD_PIPE };
enum stream_lie {
	LIE_NONE,
	LIE_REGION,	 /* pages of a region that does not exist */
	LIE_PAST_END,	 /* a run past the end of its region */
	LIE_SHORT_PAGES, /* the stream ends in the middle of a record's pages */
	LIE_NO_STATE,	 /* END without the VM state */
	LIE_TWO_STATES,
	LIE_BAD_STATE, /* a well-formed state that restore would refuse */
	LIE_MAGIC,     /* a record without its magic */
};

struct fake {
	char dir[64], sock[96], img[96];
	int listen_fd;
	pthread_t thr;
	/* The script. */
	const char *begin_json; /* the reply to snapshot-begin, or NULL for a good one */
	unsigned int close_at;	/* hang up on the Nth request (1-based); 0: never */
	bool truncate_begin;	/* half of the snapshot-begin reply, then hang up */
	enum fd_mode fd_mode;
	bool garbage_bytes, bad_record, tail_bits;
	enum stream_lie stream_lie; /* --via-stream: how the stream goes wrong */
	int stream_fd;
	/* What happened. */
	unsigned int requests;
	bool got_end;
	/* The VM's memory and shared area. */
	int mem_fd[NR], shm_fd;
	uint8_t *mem[NR], *shm;
	uint64_t size[NR], bitmap_off[NR], state_off, state_cap, shm_size;
};

static const char *const ids[NR] = {"pc.ram", "vga.vram"};

/* A state area that restore accepts: one vCPU, irqchip, PIT, clock, UART (iir as given). */
static size_t build_state_iir(uint8_t *buf, size_t cap, uint8_t iir)
{
	struct snap_state_writer w;
	struct kvm_regs regs = {.rflags = 2};
	struct cpu_sregs sregs = {0};
	struct kvm_fpu fpu = {0};
	struct kvm_lapic_state lapic = {0};
	struct kvm_vcpu_events ev = {0};
	struct kvm_mp_state mp = {0};
	struct kvm_debugregs dr = {0};
	struct cpu_progress prog = {0};
	struct kvm_pic_state pic = {0};
	struct kvm_ioapic_state ioapic = {0};
	struct kvm_pit_state2 pit = {0};
	struct vm_clock clock = {0};
	struct uart u;
	struct error err;
	size_t used = 0;

	snap_state_init(&w, buf, cap);
	cpu_state__encode_regs(&regs, snap_state_add(&w, VM_STATE_REGS, 0, VM_STATE_REGS_SIZE));
	cpu_state__encode_sregs(&sregs, snap_state_add(&w, VM_STATE_SREGS, 0, VM_STATE_SREGS_SIZE));
	cpu_state__encode_fpu(&fpu, snap_state_add(&w, VM_STATE_FPU, 0, VM_STATE_FPU_SIZE));
	cpu_state__encode_msrs(NULL, 0,
			       snap_state_add(&w, VM_STATE_MSRS, 0, cpu_state__msrs_size(0)));
	cpu_state__encode_lapic(&lapic, snap_state_add(&w, VM_STATE_LAPIC, 0, VM_STATE_LAPIC_SIZE));
	cpu_state__encode_events(&ev, snap_state_add(&w, VM_STATE_EVENTS, 0, VM_STATE_EVENTS_SIZE));
	cpu_state__encode_mp_state(
	    &mp, snap_state_add(&w, VM_STATE_MP_STATE, 0, VM_STATE_MP_STATE_SIZE));
	cpu_state__encode_debugregs(
	    &dr, snap_state_add(&w, VM_STATE_DEBUGREGS, 0, VM_STATE_DEBUGREGS_SIZE));
	cpu_state__encode_progress(
	    &prog, snap_state_add(&w, VM_STATE_PROGRESS, 0, VM_STATE_PROGRESS_SIZE));
	vm_state__encode_pic(&pic, snap_state_add(&w, VM_STATE_PIC_MASTER, 0, VM_STATE_PIC_SIZE));
	vm_state__encode_pic(&pic, snap_state_add(&w, VM_STATE_PIC_SLAVE, 0, VM_STATE_PIC_SIZE));
	vm_state__encode_ioapic(&ioapic,
				snap_state_add(&w, VM_STATE_IOAPIC, 0, VM_STATE_IOAPIC_SIZE));
	vm_state__encode_pit(&pit, snap_state_add(&w, VM_STATE_PIT, 0, VM_STATE_PIT_SIZE));
	vm_state__encode_clock(&clock, snap_state_add(&w, VM_STATE_CLOCK, 0, VM_STATE_CLOCK_SIZE));
	memset(&u, 0, sizeof(u));
	pthread_mutex_init(&u.lock, NULL);
	u.r.iir = iir;
	u.r.lsr = 0x60;
	uart__save(&u, snap_state_add(&w, VM_STATE_UART, 0, UART_STATE_SIZE));
	return snap_state_finish(&w, &used, &err) ? 0 : used;
}

static size_t build_state(uint8_t *buf, size_t cap)
{
	return build_state_iir(buf, cap, 1); /* no interrupt pending */
}

static void build_state_bad_uart(uint8_t *buf, size_t cap)
{
	build_state_iir(buf, cap, 0);
}

static int send_line(int fd, const char *line, const int *fds, unsigned int nr)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * (NR + 1))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = (void *)line, .iov_len = strlen(line)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nr) {
		struct cmsghdr *c;

		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nr);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nr);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nr);
	}
	return sendmsg(fd, &msg, MSG_NOSIGNAL) == (ssize_t)iov.iov_len ? 0 : -1;
}

/* A request line; a descriptor that comes with it lands in *in_fd. */
static char *read_line(int fd, int *in_fd)
{
	static char buf[4096];
	size_t n = 0;

	while (n + 1 < sizeof(buf)) {
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = {.iov_base = buf + n, .iov_len = 1};
		struct msghdr msg = {.msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf)};
		struct cmsghdr *cm;

		if (recvmsg(fd, &msg, 0) != 1)
			return NULL;
		cm = CMSG_FIRSTHDR(&msg);
		if (cm && cm->cmsg_type == SCM_RIGHTS)
			memcpy(in_fd, CMSG_DATA(cm), sizeof(int));
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return buf;
}

/* The descriptor to send for fd, as the script wants it. */
static int give(struct fake *f, int fd)
{
	char path[64];

	if (f->fd_mode == FD_WRITABLE)
		return dup(fd);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static void reply_begin(struct fake *f, int c)
{
	char line[2048];
	int fds[NR + 1], pipefd[2] = {-1, -1};
	unsigned int i;

	if (f->begin_json) {
		snprintf(line, sizeof(line), "%s\n", f->begin_json);
	} else {
		snprintf(
		    line, sizeof(line),
		    "{\"ok\":true,\"machine\":\"kvmsnap-pc-1\",\"vcpus\":1,\"mem\":%llu,"
		    "\"vram\":%llu,\"regions\":[{\"id\":\"%s\",\"size\":%llu,\"bitmap_off\":%llu},"
		    "{\"id\":\"%s\",\"size\":%llu,\"bitmap_off\":%llu}],\"shm_size\":%llu,"
		    "\"state_off\":%llu,\"state_cap\":%llu,\"metadata\":\"guest=fake\\n\"}\n",
		    (unsigned long long)RAM_SIZE, (unsigned long long)VRAM_SIZE, ids[0],
		    (unsigned long long)f->size[0], (unsigned long long)f->bitmap_off[0], ids[1],
		    (unsigned long long)f->size[1], (unsigned long long)f->bitmap_off[1],
		    (unsigned long long)f->shm_size, (unsigned long long)f->state_off,
		    (unsigned long long)f->state_cap);
	}
	if (f->truncate_begin) {
		line[strlen(line) / 2] = '\0';
		send_line(c, line, NULL, 0);
		return;
	}
	fds[0] = give(f, f->shm_fd);
	for (i = 0; i < NR; i++)
		fds[1 + i] = give(f, f->mem_fd[i]);
	if (f->fd_mode == FD_SHORT) { /* half of what is announced */
		close(fds[1]);
		fds[1] = memfd__create_sealed("short", f->size[0] / 2, NULL);
	}
	if (f->fd_mode == FD_UNSEALED) {
		close(fds[2]);
		fds[2] = memfd_create("unsealed", MFD_CLOEXEC);
		if (ftruncate(fds[2], (off_t)f->size[1]))
			fds[2] = -1;
	}
	if (f->fd_mode == FD_PIPE && !pipe(pipefd)) {
		close(fds[1]);
		fds[1] = pipefd[0];
	}
	send_line(c, line, fds, NR + 1);
	for (i = 0; i < NR + 1; i++)
		close(fds[i]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
}

/* Dirty a few pages (and, if asked, every bit past the end of each region). */
static unsigned int dirty_some(struct fake *f)
{
	unsigned int i, n = 0;

	for (i = 0; i < NR; i++) {
		uint64_t *bm = (uint64_t *)(void *)(f->shm + f->bitmap_off[i]);
		uint64_t pages = f->size[i] / 4096, words = (pages + 63) / 64;

		memset(bm, 0, words * 8);
		bm[0] |= 0x5;
		n += 2;
		f->mem[i][0] ^= 0xff;
		if (f->tail_bits) /* every bit of the last word, past the region's end too */
			bm[words - 1] = ~0ULL;
	}
	return n;
}

static void reply_begin_stream(struct fake *f, int c)
{
	char line[1024];

	snprintf(line, sizeof(line),
		 "{\"ok\":true,\"machine\":\"kvmsnap-pc-1\",\"vcpus\":1,\"mem\":%llu,"
		 "\"vram\":%llu,\"regions\":[{\"id\":\"%s\",\"size\":%llu},"
		 "{\"id\":\"%s\",\"size\":%llu}],\"metadata\":\"guest=fake\\n\"}\n",
		 (unsigned long long)RAM_SIZE, (unsigned long long)VRAM_SIZE, ids[0],
		 (unsigned long long)f->size[0], ids[1], (unsigned long long)f->size[1]);
	send_line(c, line, NULL, 0);
}

static void stream_rec(struct fake *f, uint32_t type, uint32_t region, uint64_t first,
		       uint64_t count, const void *payload, size_t len)
{
	struct snap_rec r = {.type = type, .region = region, .first = first, .count = count};
	uint8_t hdr[SNAP_REC_SIZE];

	snap_rec_encode(&r, hdr);
	if (f->stream_lie == LIE_MAGIC && type == SNAP_REC_PAGES)
		hdr[0] ^= 0xff;
	/* MSG_NOSIGNAL: the manager hangs up on a lie, and a SIGPIPE would end the test. */
	if (send(f->stream_fd, hdr, sizeof(hdr), MSG_NOSIGNAL) != sizeof(hdr) ||
	    (len && send(f->stream_fd, payload, len, MSG_NOSIGNAL) != (ssize_t)len))
		TH_LOG("fake VM: the manager stopped reading");
}

/* The VM side of --via-stream, lying as the script says. */
static void send_stream(struct fake *f)
{
	static uint8_t state[64 << 10];
	struct snap_report rep = {.nr_passes = 1, .converged = true};
	uint8_t end[SNAP_REC_END_SIZE];
	size_t used = build_state(state, sizeof(state));
	unsigned int i;
	uint64_t p;

	stream_rec(f, SNAP_REC_PASS, 0, 1, 0, NULL, 0);
	for (i = 0; i < NR; i++) {
		uint64_t pages = f->size[i] / 4096;

		for (p = 0; p < pages; p += 256) {
			uint64_t n = pages - p < 256 ? pages - p : 256;
			uint32_t region = f->stream_lie == LIE_REGION ? 7 : i;

			if (f->stream_lie == LIE_PAST_END)
				n += 1000;
			if (f->stream_lie == LIE_SHORT_PAGES) {
				stream_rec(f, SNAP_REC_PAGES, i, p, n, f->mem[i], n * 4096 / 2);
				goto out;
			}
			stream_rec(f, SNAP_REC_PAGES, region, p, n, f->mem[i] + p * 4096, n * 4096);
			if (f->stream_lie == LIE_REGION || f->stream_lie == LIE_PAST_END ||
			    f->stream_lie == LIE_MAGIC)
				goto out;
		}
	}
	if (f->stream_lie == LIE_BAD_STATE)
		used = build_state_iir(state, sizeof(state), 0);
	if (f->stream_lie != LIE_NO_STATE)
		stream_rec(f, SNAP_REC_STATE, 0, 0, used, state, used);
	if (f->stream_lie == LIE_TWO_STATES)
		stream_rec(f, SNAP_REC_STATE, 0, 0, used, state, used);
	snap_rec_end_encode(&rep, end);
	stream_rec(f, SNAP_REC_END, 0, 0, 0, end, sizeof(end));
out:
	close(f->stream_fd);
	f->stream_fd = -1;
}

static void *fake_vm(void *arg)
{
	struct fake *f = arg;
	int c = accept(f->listen_fd, NULL, NULL);
	char *line, out[256];

	while (c >= 0 && (line = read_line(c, &f->stream_fd))) {
		struct json_object *rq = json_tokener_parse(line), *cmd;
		const char *name = "";

		if (rq && json_object_object_get_ex(rq, "cmd", &cmd))
			name = json_object_get_string(cmd);
		f->requests++;
		if (f->close_at && f->requests == f->close_at) {
			json_object_put(rq);
			break;
		}
		if (!strcmp(name, "snapshot-begin") && f->stream_fd >= 0) {
			reply_begin_stream(f, c);
		} else if (!strcmp(name, "snapshot-stream")) {
			send_stream(f);
			send_line(c, "{\"ok\":true}\n", NULL, 0);
		} else if (!strcmp(name, "snapshot-begin")) {
			reply_begin(f, c);
		} else if (!strcmp(name, "snapshot-dirty")) {
			snprintf(out, sizeof(out), "{\"ok\":true,\"pages\":%u}\n", dirty_some(f));
			send_line(c, out, NULL, 0);
		} else if (!strcmp(name, "snapshot-pause")) {
			send_line(c, "{\"ok\":true,\"latency_us\":1}\n", NULL, 0);
		} else if (!strcmp(name, "snapshot-state")) {
			size_t used = build_state(f->shm + f->state_off, f->state_cap);

			if (f->garbage_bytes)
				memset(f->shm + f->state_off + 64, 0x5a, 64);
			if (f->bad_record) /* a UART with no interrupt identification: well-formed, wrong */
				build_state_bad_uart(f->shm + f->state_off, f->state_cap);
			snprintf(out, sizeof(out), "{\"ok\":true,\"used\":%zu}\n", used);
			send_line(c, out, NULL, 0);
		} else {
			f->got_end |= !strcmp(name, "snapshot-end");
			send_line(c, "{\"ok\":true}\n", NULL, 0);
		}
		json_object_put(rq);
		if (f->truncate_begin)
			break;
	}
	if (c >= 0)
		close(c);
	return NULL;
}

FIXTURE(hostile)
{
	struct fake f;
};

FIXTURE_SETUP(hostile)
{
	struct fake *f = &self->f;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint64_t off = 0;
	unsigned int i;

	f->stream_fd = -1;
	strcpy(f->dir, "/tmp/kvmsnap-hostile-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/ctl", f->dir);
	snprintf(f->img, sizeof(f->img), "%s/img", f->dir);
	f->size[0] = RAM_SIZE;
	f->size[1] = VRAM_SIZE;
	for (i = 0; i < NR; i++) {
		f->bitmap_off[i] = off;
		off += ((f->size[i] / 4096 + 63) / 64) * 8 + 64;
		f->mem_fd[i] = memfd__create_sealed(ids[i], f->size[i], NULL);
		ASSERT_GE(f->mem_fd[i], 0);
		f->mem[i] =
		    mmap(NULL, f->size[i], PROT_READ | PROT_WRITE, MAP_SHARED, f->mem_fd[i], 0);
		ASSERT_NE(f->mem[i], MAP_FAILED);
		memset(f->mem[i], 0x11 * (i + 1), f->size[i]);
	}
	f->state_off = (off + 4095) & ~4095ULL;
	f->state_cap = snap_state_area_size(1);
	f->shm_size = f->state_off + f->state_cap;
	f->shm_fd = memfd__create_sealed("shm", f->shm_size, NULL);
	ASSERT_GE(f->shm_fd, 0);
	f->shm = mmap(NULL, f->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, f->shm_fd, 0);
	ASSERT_NE(f->shm, MAP_FAILED);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ASSERT_EQ(listen(f->listen_fd, 1), 0);
}

FIXTURE_TEARDOWN(hostile)
{
	char cmd[128];

	if (self->f.listen_fd > 0)
		close(self->f.listen_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", self->f.dir);
	if (system(cmd))
		TH_LOG("cannot remove %s", self->f.dir);
}

/* One snapshot against the scripted fake VM: the manager's return value, message in err. */
static int take_mode(struct fake *f, bool stream, struct error *err)
{
	struct manager_opts o = {.image = f->img,
				 .control = f->sock,
				 .snap = {.max_passes = 3, .threshold = 1 << 20},
				 .stream = stream};
	struct snap_report rep;
	int ret;

	pthread_create(&f->thr, NULL, fake_vm, f);
	memset(err, 0, sizeof(*err));
	ret = manager__take_snapshot(&o, &rep, NULL, err);
	pthread_join(f->thr, NULL);
	TH_LOG("manager: %d %s", ret, err->msg);
	return ret;
}

static int take(struct fake *f, struct error *err)
{
	return take_mode(f, false, err);
}

static uint32_t image_state(const char *path, uint64_t *generation)
{
	struct snap_image img = {.fd = -1};
	struct error err;
	uint32_t state;

	if (snap_image_open(path, SNAP_OPEN_RDONLY, NULL, &img, &err))
		return 99;
	state = img.hdr.state;
	*generation = img.hdr.generation;
	snap_image_close(&img);
	return state;
}

TEST_F(hostile, an_honest_fake_vm_gets_a_complete_image)
{
	struct error err;
	uint64_t gen = 0;

	ASSERT_EQ(take(&self->f, &err), 0);
	EXPECT_TRUE(self->f.got_end);
	EXPECT_EQ(image_state(self->f.img, &gen), SNAP_STATE_COMPLETE);
	EXPECT_EQ(gen, 1);
}

/* Refused before the image is opened: a good image there stays good. */
static void expect_refused(struct _fixture_hostile *self, const char *why, struct th_result *_r)
{
	struct error err;
	uint64_t gen = 0;
	struct fake good = self->f;

	/* A complete image first, from an honest run. */
	good.begin_json = NULL;
	good.fd_mode = FD_OK;
	good.close_at = 0;
	good.truncate_begin = good.garbage_bytes = good.bad_record = false;
	ASSERT_EQ(take(&good, &err), 0);
	ASSERT_EQ(take(&self->f, &err), -EPROTO);
	EXPECT_NOT_NULL(strstr(err.msg, why));
	EXPECT_EQ(image_state(self->f.img, &gen), SNAP_STATE_COMPLETE);
	EXPECT_EQ(gen, 1);
}

TEST_F(hostile, a_state_area_that_wraps_is_refused)
{
	self->f.begin_json =
	    "{\"ok\":true,\"machine\":\"kvmsnap-pc-1\",\"vcpus\":1,\"mem\":4194304,\"vram\":"
	    "1048576,"
	    "\"regions\":[{\"id\":\"pc.ram\",\"size\":4194304,\"bitmap_off\":0},"
	    "{\"id\":\"vga.vram\",\"size\":1048576,\"bitmap_off\":192}],\"shm_size\":53248,"
	    "\"state_off\":18446744073709547520,\"state_cap\":49152,\"metadata\":\"\"}";
	expect_refused(self, "does not fit a shared area", _r);
}

TEST_F(hostile, a_bitmap_past_the_state_area_is_refused)
{
	self->f.begin_json =
	    "{\"ok\":true,\"machine\":\"kvmsnap-pc-1\",\"vcpus\":1,\"mem\":4194304,\"vram\":"
	    "1048576,"
	    "\"regions\":[{\"id\":\"pc.ram\",\"size\":4194304,\"bitmap_off\":0},"
	    "{\"id\":\"vga.vram\",\"size\":1048576,\"bitmap_off\":40000}],\"shm_size\":53248,"
	    "\"state_off\":4096,\"state_cap\":49152,\"metadata\":\"\"}";
	expect_refused(self, "is not inside the shared area", _r);
}

TEST_F(hostile, a_missing_or_mistyped_member_is_refused)
{
	self->f.begin_json = "{\"ok\":true,\"machine\":\"kvmsnap-pc-1\",\"vcpus\":\"one\","
			     "\"metadata\":\"\",\"regions\":[{},{}]}";
	expect_refused(self, "vcpus", _r);
}

TEST_F(hostile, a_short_memfd_is_refused)
{
	self->f.fd_mode = FD_SHORT;
	expect_refused(self, "announced", _r);
}

TEST_F(hostile, an_unsealed_memfd_is_refused)
{
	self->f.fd_mode = FD_UNSEALED;
	expect_refused(self, "not sealed", _r);
}

TEST_F(hostile, a_writable_descriptor_is_refused)
{
	self->f.fd_mode = FD_WRITABLE;
	expect_refused(self, "writable", _r);
}

TEST_F(hostile, a_pipe_for_memory_is_refused)
{
	self->f.fd_mode = FD_PIPE;
	expect_refused(self, "not a memfd or file", _r);
}

static void expect_state_refused(struct fake *f, const char *why, struct th_result *_r)
{
	struct error err;
	uint64_t gen = 0;

	EXPECT_LT(take(f, &err), 0);
	EXPECT_NOT_NULL(strstr(err.msg, "restore would refuse"));
	EXPECT_NOT_NULL(strstr(err.msg, why));
	EXPECT_TRUE(f->got_end); /* the VM was told to resume */
	EXPECT_EQ(image_state(f->img, &gen), SNAP_STATE_WRITING);
}

TEST_F(hostile, garbage_state_never_completes_the_image)
{
	self->f.garbage_bytes = true;
	expect_state_refused(&self->f, "checksum", _r);
}

TEST_F(hostile, a_well_formed_but_wrong_record_never_completes_the_image)
{
	self->f.bad_record = true;
	expect_state_refused(&self->f, "UART record: iir", _r);
}

TEST_F(hostile, bitmap_bits_past_a_region_are_ignored)
{
	struct snap_image img = {.fd = -1};
	struct snap_verify_result vr;
	struct error err;

	self->f.tail_bits = true;
	ASSERT_EQ(take(&self->f, &err), 0);
	ASSERT_EQ(snap_image_open(self->f.img, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	EXPECT_EQ(snap_image_verify(&img, true, &vr, &err), 0);
	EXPECT_EQ(vr.bad_digests, 0);
	snap_image_close(&img);
}

TEST_F(hostile, a_truncated_reply_is_an_error)
{
	struct error err;
	uint64_t gen = 0;

	self->f.truncate_begin = true;
	EXPECT_LT(take(&self->f, &err), 0);
	EXPECT_NE(err.msg[0], '\0');
	EXPECT_EQ(image_state(self->f.img, &gen), 99); /* never created */
}

/* The VM hangs up at each step in turn: an error each time, never a complete image. */
TEST_F(hostile, a_disconnect_at_each_step_is_an_error)
{
	unsigned int step;

	for (step = 1; step <= 7; step++) {
		struct error err;
		uint64_t gen = 0;
		uint32_t st;

		self->f.close_at = step;
		self->f.requests = 0;
		self->f.got_end = false;
		EXPECT_LT(take(&self->f, &err), 0);
		EXPECT_NE(err.msg[0], '\0');
		st = image_state(self->f.img, &gen);
		EXPECT_NE(st, SNAP_STATE_COMPLETE);
		TH_LOG("hang-up at request %u: image state %u", step, st);
	}
}

/* ---- --via-stream: the VM writes page records; each lie is refused ---- */

TEST_F(hostile, an_honest_stream_gets_a_complete_image)
{
	struct snap_image img = {.fd = -1};
	struct snap_verify_result vr;
	struct error err;

	ASSERT_EQ(take_mode(&self->f, true, &err), 0);
	EXPECT_TRUE(self->f.got_end);
	ASSERT_EQ(snap_image_open(self->f.img, SNAP_OPEN_RDONLY, NULL, &img, &err), 0);
	EXPECT_EQ(img.hdr.state, SNAP_STATE_COMPLETE);
	EXPECT_EQ(snap_image_verify(&img, true, &vr, &err), 0);
	snap_image_close(&img);
}

FIXTURE(lie)
{
	struct _fixture_hostile h;
};

FIXTURE_VARIANT(lie)
{
	enum stream_lie lie;
	const char *why;
};
FIXTURE_VARIANT_ADD(lie, region){.lie = LIE_REGION, .why = "pages of region 7"};
FIXTURE_VARIANT_ADD(lie, past_end){.lie = LIE_PAST_END, .why = "which has"};
FIXTURE_VARIANT_ADD(lie, short_pages){.lie = LIE_SHORT_PAGES, .why = "before its last record"};
FIXTURE_VARIANT_ADD(lie, no_state){.lie = LIE_NO_STATE, .why = "without the VM state"};
FIXTURE_VARIANT_ADD(lie, two_states){.lie = LIE_TWO_STATES, .why = "two VM states"};
FIXTURE_VARIANT_ADD(lie, bad_state){.lie = LIE_BAD_STATE, .why = "restore would refuse"};
FIXTURE_VARIANT_ADD(lie, magic){.lie = LIE_MAGIC, .why = "magic"};

FIXTURE_SETUP(lie)
{
	_setup_hostile(&self->h, NULL, _r);
}

FIXTURE_TEARDOWN(lie)
{
	_teardown_hostile(&self->h, NULL, _r);
}

TEST_F(lie, is_refused_and_the_image_stays_writing)
{
	struct error err;
	uint64_t gen = 0;

	self->h.f.stream_lie = variant->lie;
	EXPECT_LT(take_mode(&self->h.f, true, &err), 0);
	EXPECT_NOT_NULL(strstr(err.msg, variant->why));
	EXPECT_TRUE(self->h.f.got_end); /* the session was ended */
	EXPECT_EQ(image_state(self->h.f.img, &gen), SNAP_STATE_WRITING);
}

TEST_HARNESS_MAIN
