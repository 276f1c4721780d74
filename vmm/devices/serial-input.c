// SPDX-License-Identifier: GPL-2.0
/* stdin to the UART's receiver; see serial-input.h. */
#include "devices/serial-input.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/uart.h"
#include "util/util.h"

#define FIFO_WAIT_MS 1 /* between offers while the FIFO is full */

void serial_input__init(struct serial_input *si)
{
	memset(si, 0, sizeof(*si));
	si->fd = si->stop_fd = -1;
}

/* Raw, but with signals: Ctrl-C stays kvmsnap's way out. */
static void make_raw(struct serial_input *si)
{
	struct termios t;

	if (tcgetattr(si->fd, &si->saved) < 0)
		return;
	si->tty_saved = true;
	t = si->saved;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ECHONL | IEXTEN);
	t.c_iflag &= ~(tcflag_t)(IXON | ICRNL | INLCR | IGNCR);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	tcsetattr(si->fd, TCSANOW, &t);
}

int serial_input__open(struct serial_input *si, struct error *err)
{
	struct stat st;

	if (fstat(STDIN_FILENO, &st) < 0)
		return 0; /* no stdin at all */
	if (!isatty(STDIN_FILENO) && !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode) &&
	    !S_ISREG(st.st_mode))
		return 0; /* /dev/null and other devices: nothing to type */
	si->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (si->stop_fd < 0)
		return err_errno(err, errno, "serial input: eventfd");
	si->fd = STDIN_FILENO;
	if (isatty(si->fd))
		make_raw(si);
	return 0;
}

/*
 * Offer buf to the UART until it has taken all of it, or stop is asked.
 * The wait is poll()'s timeout: nanosleep is not in the VM's seccomp
 * allowlist.
 */
static bool feed(struct serial_input *si, const uint8_t *buf, size_t len)
{
	struct pollfd p = {.fd = si->stop_fd, .events = POLLIN};
	size_t done = 0;

	for (;;) {
		done += uart__receive(si->uart, buf + done, len - done);
		if (done == len)
			return true;
		if (poll(&p, 1, FIFO_WAIT_MS) > 0)
			return false;
	}
}

static void *serial_input__thread(void *arg)
{
	struct serial_input *si = arg;
	struct pollfd p[2] = {{.fd = si->fd, .events = POLLIN},
			      {.fd = si->stop_fd, .events = POLLIN}};
	uint8_t buf[256];
	ssize_t n;

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		n = read(si->fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* end of input: the guest just hears no more */
		if (!feed(si, buf, (size_t)n))
			break;
	}
	return NULL;
}

int serial_input__start(struct serial_input *si, struct uart *uart)
{
	int ret;

	if (si->fd < 0)
		return 0;
	si->uart = uart;
	ret = pthread_create(&si->thread, NULL, serial_input__thread, si);
	if (ret)
		return -ret;
	si->started = true;
	return 0;
}

void serial_input__stop(struct serial_input *si)
{
	uint64_t one = 1;

	if (si->started) {
		if (write(si->stop_fd, &one, sizeof(one)) < 0)
			pr_warn("serial input: cannot stop the reader: %s", strerror(errno));
		pthread_join(si->thread, NULL);
		si->started = false;
	}
	if (si->tty_saved) {
		tcsetattr(si->fd, TCSANOW, &si->saved);
		si->tty_saved = false;
	}
	if (si->stop_fd >= 0)
		close(si->stop_fd);
	si->stop_fd = si->fd = -1;
}
