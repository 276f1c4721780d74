// SPDX-License-Identifier: GPL-2.0
/* 16550A UART model: the registers that drivers and polling loops use. */
#include "devices/uart.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "devices/console.h"
#include "kvm.h"

enum {
	UART_RBR_THR = 0, /* DLAB=1: DLL */
	UART_IER = 1,	  /* DLAB=1: DLM */
	UART_IIR_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
};

#define LCR_DLAB     0x80
#define MCR_LOOP     0x10
#define LSR_DR	     0x01
#define LSR_THRE     0x20
#define LSR_TEMT     0x40
#define IER_RDI	     0x01
#define IER_THRI     0x02
#define IIR_NO_INT   0x01
#define IIR_THRI     0x02
#define IIR_RDI	     0x04
#define IIR_FIFO_ON  0xc0
#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02

/*
 * Drive the IRQ line from the registers. The I/O APIC takes COM1's ISA
 * interrupt edge-triggered, so the guest hears only rising edges. A new
 * event (a character received, the transmitter emptied with THRI on) that
 * finds the line already high is pulsed low and high again: a driver that
 * left its handler with an interrupt still pending (Linux's 8250 stops
 * after a fixed number of passes, and transmit is instant here) would
 * otherwise never hear of it, and its output or input would stall.
 */
static void uart__drive_irq(struct uart *u, bool event)
{
	struct uart_regs *r = &u->r;
	struct kvm_irq_level irq;
	uint8_t iir = IIR_NO_INT;

	if ((r->ier & IER_RDI) && r->rx_count)
		iir = IIR_RDI;
	else if ((r->ier & IER_THRI) && r->thri_pending)
		iir = IIR_THRI;
	r->iir = iir | ((r->fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0);
	r->lsr = LSR_THRE | LSR_TEMT | (r->rx_count ? LSR_DR : 0);

	irq.irq = u->irq;
	irq.level = !(iir & IIR_NO_INT);
	if (!u->kvm || u->kvm->vm_fd < 0)
		return;
	if (irq.level == r->irq_level && !(event && irq.level))
		return;
	/* A failed injection only loses an interrupt; polling guests still work. */
	if (irq.level == r->irq_level) {
		irq.level = 0;
		(void)!ioctl(u->kvm->vm_fd, KVM_IRQ_LINE, &irq);
		irq.level = 1;
	}
	r->irq_level = irq.level;
	(void)!ioctl(u->kvm->vm_fd, KVM_IRQ_LINE, &irq);
}

static void uart__update_irq(struct uart *u)
{
	uart__drive_irq(u, false);
}

static void uart__rx_push(struct uart *u, uint8_t c)
{
	struct uart_regs *r = &u->r;

	if (r->rx_count < UART_FIFO_SIZE) {
		r->rx_fifo[(r->rx_head + r->rx_count) % UART_FIFO_SIZE] = c;
		r->rx_count++;
	}
}

size_t uart__receive(struct uart *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&u->lock);
	/* A guest in loopback mode hears only itself. */
	if (!(u->r.mcr & MCR_LOOP))
		for (; n < len && u->r.rx_count < UART_FIFO_SIZE; n++)
			uart__rx_push(u, buf[n]);
	uart__drive_irq(u, n > 0 && (u->r.ier & IER_RDI));
	pthread_mutex_unlock(&u->lock);
	return n;
}

static void uart__transmit(struct uart *u, uint8_t c)
{
	if (u->r.mcr & MCR_LOOP)
		uart__rx_push(u, c);
	else if (u->kvm && u->kvm->console)
		console__write(u->kvm->console, &c, 1);
	u->r.thri_pending = 1;
}

uint8_t uart__read(struct uart *u, unsigned int offset)
{
	struct uart_regs *r = &u->r;
	uint8_t val = 0xff;

	pthread_mutex_lock(&u->lock);
	switch (offset) {
	case UART_RBR_THR:
		if (r->lcr & LCR_DLAB) {
			val = r->dll;
		} else if (r->rx_count) {
			val = r->rx_fifo[r->rx_head];
			r->rx_head = (r->rx_head + 1) % UART_FIFO_SIZE;
			r->rx_count--;
		} else {
			val = 0;
		}
		break;
	case UART_IER:
		val = (r->lcr & LCR_DLAB) ? r->dlm : r->ier;
		break;
	case UART_IIR_FCR:
		val = r->iir;
		/* Reading IIR acknowledges a THR-empty interrupt. */
		if ((r->iir & 0x0f) == IIR_THRI)
			r->thri_pending = 0;
		break;
	case UART_LCR:
		val = r->lcr;
		break;
	case UART_MCR:
		val = r->mcr;
		break;
	case UART_LSR:
		val = r->lsr;
		break;
	case UART_MSR:
		/* In loopback, the modem inputs follow the outputs (RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD). */
		if (r->mcr & MCR_LOOP)
			val = (uint8_t)(((r->mcr & 0x02) << 3) | ((r->mcr & 0x01) << 5) |
					((r->mcr & 0x04) << 4) | ((r->mcr & 0x08) << 4));
		else
			val = r->msr;
		break;
	case UART_SCR:
		val = r->scr;
		break;
	}
	uart__update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return val;
}

void uart__write(struct uart *u, unsigned int offset, uint8_t val)
{
	struct uart_regs *r = &u->r;
	bool event = false;

	pthread_mutex_lock(&u->lock);
	switch (offset) {
	case UART_RBR_THR:
		/* With DLAB set this is the divisor latch: never data to print. */
		if (r->lcr & LCR_DLAB) {
			r->dll = val;
		} else {
			uart__transmit(u, val);
			event = (r->ier & IER_THRI) != 0;
		}
		break;
	case UART_IER:
		if (r->lcr & LCR_DLAB) {
			r->dlm = val;
		} else {
			/* Enabling THRI with an empty transmitter raises it at once. */
			if ((val & IER_THRI) && !(r->ier & IER_THRI))
				r->thri_pending = 1;
			r->ier = val & 0x0f;
		}
		break;
	case UART_IIR_FCR:
		r->fcr = val & 0xc9;
		if (val & FCR_CLEAR_RX)
			r->rx_count = r->rx_head = 0;
		break;
	case UART_LCR:
		r->lcr = val;
		break;
	case UART_MCR:
		r->mcr = val & 0x1f;
		break;
	case UART_LSR:
	case UART_MSR:
		break; /* read-only */
	case UART_SCR:
		r->scr = val;
		break;
	}
	uart__drive_irq(u, event);
	pthread_mutex_unlock(&u->lock);
}

static void uart__io(struct kvm_cpu *cpu, uint64_t addr, uint8_t *data, uint32_t size,
		     bool is_write, void *opaque)
{
	struct uart *u = opaque;
	unsigned int off = (unsigned int)(addr - u->base);

	(void)cpu;
	/* Wider accesses touch only the addressed register, as on an 8-bit bus. */
	if (is_write)
		uart__write(u, off, data[0]);
	else {
		memset(data, 0, size);
		data[0] = uart__read(u, off);
	}
}

int uart__init(struct uart *u, struct kvm *kvm, uint16_t base, uint8_t irq)
{
	memset(u, 0, sizeof(*u));
	u->kvm = kvm;
	u->base = base;
	u->irq = irq;
	pthread_mutex_init(&u->lock, NULL);
	u->r.iir = IIR_NO_INT;
	u->r.lsr = LSR_THRE | LSR_TEMT;
	u->r.msr = 0xb0; /* DCD, DSR, CTS: a terminal is there */
	u->r.dll = 0x0c; /* 9600 baud */
	if (!kvm)
		return 0;
	return kvm__register_pio(kvm, base, 8, uart__io, u);
}
