/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The serial input: with --serial stdio, what arrives on kvmsnap's stdin
 * goes to COM1's receiver, when stdin is a terminal, a pipe, a socket or a
 * file. A terminal is put in raw mode (no echo, no line editing; Ctrl-C
 * still ends kvmsnap) until the VM ends. A thread reads stdin and waits for
 * room in the receive FIFO, so piped input is never dropped.
 */
#ifndef KVMSNAP_SERIAL_INPUT_H
#define KVMSNAP_SERIAL_INPUT_H

#include <pthread.h>
#include <stdbool.h>
#include <termios.h>

#include "lib/error.h"

struct uart;

struct serial_input {
	int fd;	     /* stdin, or -1: no input */
	int stop_fd; /* eventfd that ends the thread */
	struct uart *uart;
	pthread_t thread;
	bool started;
	bool tty_saved;
	struct termios saved;
};

/* Make si safe to stop. */
void serial_input__init(struct serial_input *si);

/*
 * Look at stdin; when it can be read, keep it, make its eventfd, and put a
 * terminal in raw mode. 0 (also when there is nothing to read: /dev/null,
 * a closed stdin) or -errno with *err set. Call before the lock-down.
 */
int serial_input__open(struct serial_input *si, struct error *err);

/* Start feeding uart. Without input, nothing. 0 or -errno. */
int serial_input__start(struct serial_input *si, struct uart *uart);

/* Stop the thread, restore the terminal, close what open made. */
void serial_input__stop(struct serial_input *si);

#endif
