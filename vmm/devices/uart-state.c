// SPDX-License-Identifier: GPL-2.0
/*
 * The UART's snapshot state: struct uart_regs field by field (payload layout
 * in Documentation/state-records.md, record UART). The checks match what
 * uart.c can ever store, so a corrupt record is refused, not loaded.
 */
#include "devices/uart.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm.h"
#include "lib/le.h"
#include "snapshot/snapshot.h"

#define OFF_IER		 0x00
#define OFF_IIR		 0x01
#define OFF_FCR		 0x02
#define OFF_LCR		 0x03
#define OFF_MCR		 0x04
#define OFF_LSR		 0x05
#define OFF_MSR		 0x06
#define OFF_SCR		 0x07
#define OFF_DLL		 0x08
#define OFF_DLM		 0x09
#define OFF_THRI_PENDING 0x0a
#define OFF_RX_COUNT	 0x0b
#define OFF_RX_HEAD	 0x0c
#define OFF_IRQ_LEVEL	 0x0d
#define OFF_RESERVED	 0x0e /* 2 bytes */
#define OFF_RX_FIFO	 0x10 /* UART_FIFO_SIZE bytes */

/* What uart.c stores: IER keeps 4 bits, FCR bits 7:6, 3 and 0, MCR 5 bits. */
#define IER_MASK  0x0f
#define FCR_MASK  0xc9
#define MCR_MASK  0x1f
#define IIR_ID	  0x0f
#define IIR_FIFOS 0xc0
#define LSR_MASK  0x61 /* DR, THRE, TEMT */

void uart__save(struct uart *u, uint8_t *p)
{
	struct uart_regs r;

	pthread_mutex_lock(&u->lock);
	r = u->r;
	pthread_mutex_unlock(&u->lock);

	memset(p, 0, UART_STATE_SIZE);
	p[OFF_IER] = r.ier;
	p[OFF_IIR] = r.iir;
	p[OFF_FCR] = r.fcr;
	p[OFF_LCR] = r.lcr;
	p[OFF_MCR] = r.mcr;
	p[OFF_LSR] = r.lsr;
	p[OFF_MSR] = r.msr;
	p[OFF_SCR] = r.scr;
	p[OFF_DLL] = r.dll;
	p[OFF_DLM] = r.dlm;
	p[OFF_THRI_PENDING] = r.thri_pending;
	p[OFF_RX_COUNT] = r.rx_count;
	p[OFF_RX_HEAD] = r.rx_head;
	p[OFF_IRQ_LEVEL] = r.irq_level;
	memcpy(p + OFF_RX_FIFO, r.rx_fifo, UART_FIFO_SIZE);
}

static int bad(struct error *err, const char *field, unsigned int v)
{
	return err_set(err, -EINVAL, "UART record: %s 0x%02x is not a value the UART can hold",
			field, v);
}

int uart__check_state(const uint8_t *p, uint32_t len, struct error *err)
{
	uint8_t iir_id;

	if (len != UART_STATE_SIZE)
		return err_set(err, -EINVAL, "UART record: payload is %u bytes, expected %u", len,
				UART_STATE_SIZE);
	if (p[OFF_IER] & ~IER_MASK)
		return bad(err, "ier", p[OFF_IER]);
	iir_id = p[OFF_IIR] & IIR_ID;
	if ((p[OFF_IIR] & ~(IIR_ID | IIR_FIFOS)) || (iir_id != 1 && iir_id != 2 && iir_id != 4))
		return bad(err, "iir", p[OFF_IIR]);
	if (p[OFF_FCR] & ~FCR_MASK)
		return bad(err, "fcr", p[OFF_FCR]);
	if (p[OFF_MCR] & ~MCR_MASK)
		return bad(err, "mcr", p[OFF_MCR]);
	if (p[OFF_LSR] & ~LSR_MASK)
		return bad(err, "lsr", p[OFF_LSR]);
	if (p[OFF_THRI_PENDING] > 1)
		return bad(err, "thri_pending", p[OFF_THRI_PENDING]);
	if (p[OFF_RX_COUNT] > UART_FIFO_SIZE)
		return bad(err, "rx_count", p[OFF_RX_COUNT]);
	if (p[OFF_RX_HEAD] >= UART_FIFO_SIZE)
		return bad(err, "rx_head", p[OFF_RX_HEAD]);
	if (p[OFF_IRQ_LEVEL] > 1)
		return bad(err, "irq_level", p[OFF_IRQ_LEVEL]);
	if (get_le16(p + OFF_RESERVED))
		return bad(err, "reserved", get_le16(p + OFF_RESERVED));
	return 0;
}

int uart__restore(struct uart *u, const uint8_t *p, uint32_t len, struct error *err)
{
	struct kvm_irq_level irq;
	struct uart_regs r;
	int ret, e;

	ret = uart__check_state(p, len, err);
	if (ret)
		return ret;
	memset(&r, 0, sizeof(r));
	r.ier = p[OFF_IER];
	r.iir = p[OFF_IIR];
	r.fcr = p[OFF_FCR];
	r.lcr = p[OFF_LCR];
	r.mcr = p[OFF_MCR];
	r.lsr = p[OFF_LSR];
	r.msr = p[OFF_MSR];
	r.scr = p[OFF_SCR];
	r.dll = p[OFF_DLL];
	r.dlm = p[OFF_DLM];
	r.thri_pending = p[OFF_THRI_PENDING];
	r.rx_count = p[OFF_RX_COUNT];
	r.rx_head = p[OFF_RX_HEAD];
	r.irq_level = p[OFF_IRQ_LEVEL];
	memcpy(r.rx_fifo, p + OFF_RX_FIFO, UART_FIFO_SIZE);

	pthread_mutex_lock(&u->lock);
	u->r = r;
	pthread_mutex_unlock(&u->lock);

	/*
	 * KVM keeps each line's level per source outside KVM_GET_IRQCHIP, so a
	 * new VM has every line low. Raise ours again, or a level-triggered
	 * interrupt would not come back after the guest's EOI.
	 */
	if (!r.irq_level || !u->kvm || u->kvm->vm_fd < 0)
		return 0;
	irq.irq = u->irq;
	irq.level = 1;
	if (ioctl(u->kvm->vm_fd, KVM_IRQ_LINE, &irq) < 0) {
		e = errno;
		return err_set(err, -e, "UART: KVM_IRQ_LINE %u: %s", u->irq, strerror(e));
	}
	return 0;
}
