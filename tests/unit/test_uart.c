// SPDX-License-Identifier: GPL-2.0
/* The 16550 model, driven through its registers with a console behind it. */
#include "../harness.h"

#include <sys/stat.h>

#include <fcntl.h>

#include "vmm/devices/console.h"
#include "vmm/devices/uart.h"
#include "vmm/kvm.h"

FIXTURE(uart)
{
	struct kvm kvm;
	struct console con;
	struct uart u;
	char path[64];
};

FIXTURE_SETUP(uart)
{
	snprintf(self->path, sizeof(self->path), "/tmp/kvmsnap-uart-%d", getpid());
	kvm__init(&self->kvm);
	ASSERT_EQ(console__open(&self->con, self->path, NULL), 0);
	self->kvm.console = &self->con;
	/* No VM: the model runs without KVM; IRQ changes are not sent anywhere. */
	ASSERT_EQ(uart__init(&self->u, NULL, 0x3f8, 4), 0);
	self->u.kvm = &self->kvm;
}

FIXTURE_TEARDOWN(uart)
{
	console__close(&self->con);
	unlink(self->path);
}

static size_t slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n > 0 ? (size_t)n : 0;
}

TEST_F(uart, transmits_and_reports_thre)
{
	char out[64];

	EXPECT_EQ(uart__read(&self->u, 5) & 0x60, 0x60);
	uart__write(&self->u, 0, 'o');
	uart__write(&self->u, 0, 'k');
	EXPECT_EQ(uart__read(&self->u, 5) & 0x60, 0x60);
	slurp(self->path, out, sizeof(out));
	EXPECT_STREQ(out, "ok");
}

TEST_F(uart, divisor_writes_are_never_printed)
{
	char out[64];

	uart__write(&self->u, 3, 0x80); /* DLAB */
	uart__write(&self->u, 0, 0x01); /* 115200 baud: DLL */
	uart__write(&self->u, 1, 0x00); /* DLM */
	EXPECT_EQ(uart__read(&self->u, 0), 0x01);
	EXPECT_EQ(uart__read(&self->u, 1), 0x00);
	uart__write(&self->u, 3, 0x03); /* 8N1, DLAB off */
	EXPECT_EQ(uart__read(&self->u, 3), 0x03);
	uart__write(&self->u, 0, 'x');
	slurp(self->path, out, sizeof(out));
	EXPECT_STREQ(out, "x");
}

TEST_F(uart, scratch_and_ier)
{
	uart__write(&self->u, 7, 0x5a);
	EXPECT_EQ(uart__read(&self->u, 7), 0x5a);
	uart__write(&self->u, 1, 0xff);
	EXPECT_EQ(uart__read(&self->u, 1), 0x0f);
	/* THR empty with THRI enabled: IIR says so once, then the read acks it. */
	EXPECT_EQ(uart__read(&self->u, 2) & 0x0f, 0x02);
	EXPECT_EQ(uart__read(&self->u, 2) & 0x0f, 0x01);
	uart__write(&self->u, 2, 0x01); /* FIFO on */
	EXPECT_EQ(uart__read(&self->u, 2) & 0xc0, 0xc0);
}

TEST_F(uart, loopback_receives_what_it_sends)
{
	char out[8];

	uart__write(&self->u, 4, 0x10 | 0x0b); /* loop, OUT2, RTS, DTR */
	EXPECT_EQ(uart__read(&self->u, 6) & 0xf0, 0xb0);
	uart__write(&self->u, 0, 0xa5);
	EXPECT_EQ(uart__read(&self->u, 5) & 0x01, 0x01);
	EXPECT_EQ(uart__read(&self->u, 0), 0xa5);
	EXPECT_EQ(uart__read(&self->u, 5) & 0x01, 0x00);
	/* Nothing reached the console. */
	EXPECT_EQ(slurp(self->path, out, sizeof(out)), 0);
}

TEST_F(uart, fifo_overflow_is_bounded)
{
	unsigned int i;

	uart__write(&self->u, 4, 0x10);
	for (i = 0; i < 100; i++)
		uart__write(&self->u, 0, (uint8_t)i);
	for (i = 0; i < UART_FIFO_SIZE; i++)
		EXPECT_EQ(uart__read(&self->u, 0), i);
	EXPECT_EQ(uart__read(&self->u, 5) & 0x01, 0);
}

/* The serial input: bytes up to the FIFO's size, the receive interrupt, order kept. */
TEST_F(uart, receives_input_with_interrupt)
{
	static const uint8_t in[20] = "0123456789abcdefghij";
	unsigned int i;

	EXPECT_EQ(uart__read(&self->u, 5) & 0x01, 0);
	uart__write(&self->u, 1, 0x01); /* IER: receive interrupt */
	EXPECT_EQ(uart__read(&self->u, 2) & 0x0f, 0x01);
	EXPECT_EQ(uart__receive(&self->u, in, sizeof(in)), 16);
	EXPECT_EQ(uart__read(&self->u, 5) & 0x01, 0x01);
	EXPECT_EQ(uart__read(&self->u, 2) & 0x0f, 0x04);
	for (i = 0; i < 16; i++)
		EXPECT_EQ(uart__read(&self->u, 0), in[i]);
	EXPECT_EQ(uart__read(&self->u, 5) & 0x01, 0);
	EXPECT_EQ(uart__read(&self->u, 2) & 0x0f, 0x01);
	/* The rest, offered again, arrives after the first part. */
	EXPECT_EQ(uart__receive(&self->u, in + 16, 4), 4);
	EXPECT_EQ(uart__read(&self->u, 0), 'g');
}

TEST_F(uart, loopback_takes_no_input)
{
	uart__write(&self->u, 4, 0x10);
	EXPECT_EQ(uart__receive(&self->u, (const uint8_t *)"x", 1), 0);
	EXPECT_EQ(uart__read(&self->u, 5) & 0x01, 0);
}

TEST(console_open_names_the_file)
{
	struct console con;
	struct error err;

	EXPECT_EQ(console__open(&con, "/nonexistent/serial.log", &err), -ENOENT);
	EXPECT_STREQ(err.msg, "--serial /nonexistent/serial.log: No such file or directory");
	EXPECT_EQ(console__open(&con, "none", &err), 0);
	EXPECT_EQ(con.fd, -1);
}

/* A --serial file is never opened through a link, is the owner's, and is capped. */
TEST(serial_file_is_no_link_owner_only_and_capped)
{
	char dir[] = "/tmp/kvmsnap-serial-XXXXXX", file[64], link[64], victim[64];
	static char buf[1024];
	struct console con;
	struct error err = {0};
	struct stat st;
	int i;

	ASSERT_NOT_NULL(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/serial", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	ASSERT_EQ(symlink(victim, link), 0);
	EXPECT_EQ(console__open(&con, link, &err), -ELOOP);
	EXPECT_NOT_NULL(strstr(err.msg, "symbolic link"));
	EXPECT_NE(access(victim, F_OK), 0); /* nothing created through it */
	ASSERT_EQ(console__open(&con, file, &err), 0);
	ASSERT_EQ(stat(file, &st), 0);
	EXPECT_EQ(st.st_mode & 0777, 0600);
	EXPECT_EQ(con.cap, CONSOLE_FILE_MAX);
	con.cap = 4096; /* the same rule, at a size a test can reach */
	memset(buf, 'x', sizeof(buf));
	for (i = 0; i < 10; i++)
		console__write(&con, buf, sizeof(buf));
	console__close(&con);
	ASSERT_EQ(stat(file, &st), 0);
	EXPECT_EQ(st.st_size, 4096);
	unlink(file);
	unlink(link);
	rmdir(dir);
}

TEST_HARNESS_MAIN
