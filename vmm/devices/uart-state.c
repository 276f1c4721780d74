// SPDX-License-Identifier: GPL-2.0
/*
 * The UART's snapshot state: struct uart_regs as one field table (payload
 * layout in Documentation/state-records.md, record UART). The checks match
 * what uart.c can ever store, so a corrupt record is refused, not loaded.
 */
#include "devices/uart.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm.h"
#include "snapshot/snapshot.h"
#include "state/field.h"
#include "state/state.h"

/* What uart.c stores: IER keeps 4 bits, FCR bits 7:6, 3 and 0, MCR 5 bits. */
#define IER_MASK  0x0f
#define FCR_MASK  0xc9
#define MCR_MASK  0x1f
#define IIR_ID	  0x0f
#define IIR_FIFOS 0xc0
#define LSR_MASK  0x61 /* DR, THRE, TEMT */

#define REG(o, m)	   SF_U(struct uart_regs, #m, o, 1, m)
#define REG_MAX(o, m, mx)  SF_MAX(struct uart_regs, #m, o, 1, m, mx)
#define REG_BITS(o, m, bt) SF_BITS(struct uart_regs, #m, o, 1, m, bt)
static const struct state_field uart_fields[] = {
    REG_BITS(0x00, ier, IER_MASK),
    REG_BITS(0x01, iir, IIR_ID | IIR_FIFOS), /* and an ID of 1, 2 or 4: decode() */
    REG_BITS(0x02, fcr, FCR_MASK),
    REG(0x03, lcr),
    REG_BITS(0x04, mcr, MCR_MASK),
    REG_BITS(0x05, lsr, LSR_MASK),
    REG(0x06, msr),
    REG(0x07, scr),
    REG(0x08, dll),
    REG(0x09, dlm),
    REG_MAX(0x0a, thri_pending, 1),
    REG_MAX(0x0b, rx_count, UART_FIFO_SIZE),
    REG_MAX(0x0c, rx_head, UART_FIFO_SIZE - 1),
    REG_MAX(0x0d, irq_level, 1),
    SF_RSVD(0x0e, 2),
    SF_BLOBS(struct uart_regs, "rx_fifo", 0x10, UART_FIFO_SIZE, 1, rx_fifo),
};
const struct state_table uart_layout = SF_TABLE_OF(NULL, UART_STATE_SIZE, uart_fields);

void uart__save(struct uart *u, uint8_t *p)
{
	struct uart_regs r;

	pthread_mutex_lock(&u->lock);
	r = u->r;
	pthread_mutex_unlock(&u->lock);
	state_put(&uart_layout, &r, p);
}

static int decode(const uint8_t *p, uint32_t len, struct uart_regs *r, struct error *err)
{
	int ret = state_decode(VM_STATE_UART, &uart_layout, p, len, r, sizeof(*r), err);
	uint8_t id;

	if (ret)
		return ret;
	id = r->iir & IIR_ID;
	if (id != 1 && id != 2 && id != 4)
		return err_set(err, -EINVAL,
			       "UART record: iir 0x%02x is not a value the UART can hold", r->iir);
	return 0;
}

int uart__check_state(const uint8_t *p, uint32_t len, struct error *err)
{
	struct uart_regs r;

	return decode(p, len, &r, err);
}

int uart__restore(struct uart *u, const uint8_t *p, uint32_t len, struct error *err)
{
	struct kvm_irq_level irq;
	struct uart_regs r;
	int ret, e;

	ret = decode(p, len, &r, err);
	if (ret)
		return ret;

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
