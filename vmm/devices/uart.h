/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A 16550A UART. Transmit goes to the console at once, so the transmitter is
 * always empty (LSR.THRE|TEMT). Receive takes loopback data and the serial
 * input (uart__receive(), from devices/serial-input.c). The register
 * file is plain fixed-width fields so that it can be saved as it is.
 */
#ifndef KVMSNAP_UART_H
#define KVMSNAP_UART_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct kvm;

#define UART_FIFO_SIZE 16

struct uart_regs {
	uint8_t ier, iir, fcr, lcr, mcr, lsr, msr, scr;
	uint8_t dll, dlm;
	uint8_t thri_pending; /* THR-empty interrupt latched, cleared by IIR read or THR write */
	uint8_t rx_count, rx_head;
	uint8_t rx_fifo[UART_FIFO_SIZE];
	uint8_t irq_level; /* last level driven on the IRQ line */
};

struct uart {
	struct kvm *kvm;
	uint16_t base;
	uint8_t irq;
	pthread_mutex_t lock;
	struct uart_regs r;
};

/* Reset the registers and claim ports [base, base + 8). 0 or -errno. */
int uart__init(struct uart *u, struct kvm *kvm, uint16_t base, uint8_t irq);

/*
 * Bytes from the outside (the serial input): as many as the receive FIFO
 * takes, with the receive interrupt raised. Returns how many were taken;
 * the caller offers the rest again once the guest has read some.
 */
size_t uart__receive(struct uart *u, const uint8_t *buf, size_t len);

/* Register access; exposed for unit tests. offset is 0..7, one byte. */
uint8_t uart__read(struct uart *u, unsigned int offset);
void uart__write(struct uart *u, unsigned int offset, uint8_t val);

/*
 * Snapshot state (vmm/devices/uart-state.c): struct uart_regs field by field
 * in a UART_STATE_SIZE-byte payload, as Documentation/state-records.md says.
 */
struct error;

#define UART_STATE_SIZE 0x20

/* Encode the registers into payload (UART_STATE_SIZE bytes). */
void uart__save(struct uart *u, uint8_t *payload);
/* Check a payload without touching any UART. 0 or -EINVAL with a message. */
int uart__check_state(const uint8_t *payload, uint32_t len, struct error *err);
/* Check and load a payload; re-assert the IRQ line if it was high. 0 or -errno. */
int uart__restore(struct uart *u, const uint8_t *payload, uint32_t len, struct error *err);

#endif
