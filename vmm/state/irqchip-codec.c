// SPDX-License-Identifier: GPL-2.0
/*
 * VM-wide payload codecs: the two 8259 PICs, the IOAPIC, the PIT and the
 * clock, field by field at the offsets of Documentation/state-records.md.
 * KVM_SET_IRQCHIP and KVM_SET_PIT2 check almost nothing, so the decoders
 * reject what the kernel's own models can never hold.
 */
#include "state/state.h"

#include <errno.h>
#include <string.h>

#include "lib/le.h"

#define PIT_CHANNEL_SIZE  0x18
#define PIT_MODE_UNSET	  0xff /* what a PIT reset leaves until the guest programs a mode */
#define PIT_VALID_FLAGS	  (KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON)
#define CLOCK_VALID_FLAGS (KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)

struct byte_field {
	const char *name;
	uint8_t off, max;
};

static int check_bytes(uint32_t type, const uint8_t *p, const struct byte_field *f, unsigned int n,
		       struct error *err)
{
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = vm_state__check_max(type, f[i].name, p[f[i].off], f[i].max, err);
		if (ret)
			return ret;
	}
	return 0;
}

void vm_state__encode_pic(const struct kvm_pic_state *s, uint8_t *p)
{
	p[0x0] = s->last_irr;
	p[0x1] = s->irr;
	p[0x2] = s->imr;
	p[0x3] = s->isr;
	p[0x4] = s->priority_add;
	p[0x5] = s->irq_base;
	p[0x6] = s->read_reg_select;
	p[0x7] = s->poll;
	p[0x8] = s->special_mask;
	p[0x9] = s->init_state;
	p[0xa] = s->auto_eoi;
	p[0xb] = s->rotate_on_auto_eoi;
	p[0xc] = s->special_fully_nested_mode;
	p[0xd] = s->init4;
	p[0xe] = s->elcr;
	p[0xf] = s->elcr_mask;
}

int vm_state__decode_pic(uint32_t type, const uint8_t *p, uint32_t len, struct kvm_pic_state *s,
			 struct error *err)
{
	/* The 8259 model stores these from single bits or small counters. */
	static const struct byte_field f[] = {
	    {"priority_add", 0x4, 7},
	    {"read_reg_select", 0x6, 1},
	    {"poll", 0x7, 1},
	    {"special_mask", 0x8, 1},
	    {"init_state", 0x9, 3},
	    {"auto_eoi", 0xa, 1},
	    {"rotate_on_auto_eoi", 0xb, 1},
	    {"special_fully_nested_mode", 0xc, 1},
	    {"init4", 0xd, 1},
	};
	int ret;

	ret = vm_state__check_len(type, len, VM_STATE_PIC_SIZE, err);
	if (!ret)
		ret = check_bytes(type, p, f, sizeof(f) / sizeof(f[0]), err);
	if (!ret && (p[0x5] & 7))
		ret = err_set(err, -EINVAL, "%s record: irq_base 0x%02x is not a multiple of 8",
			       vm_state__type_name(type), p[0x5]);
	if (ret)
		return ret;
	memset(s, 0, sizeof(*s));
	s->last_irr = p[0x0];
	s->irr = p[0x1];
	s->imr = p[0x2];
	s->isr = p[0x3];
	s->priority_add = p[0x4];
	s->irq_base = p[0x5];
	s->read_reg_select = p[0x6];
	s->poll = p[0x7];
	s->special_mask = p[0x8];
	s->init_state = p[0x9];
	s->auto_eoi = p[0xa];
	s->rotate_on_auto_eoi = p[0xb];
	s->special_fully_nested_mode = p[0xc];
	s->init4 = p[0xd];
	s->elcr = p[0xe];
	s->elcr_mask = p[0xf];
	return 0;
}

/*
 * A redirection entry is stored as its architectural 64-bit value (vector
 * 7:0, delivery mode 10:8, destination mode 11, delivery status 12, polarity
 * 13, remote IRR 14, trigger mode 15, mask 16, destination 63:56), which is
 * what the `bits` member of KVM's union holds on x86.
 */
void vm_state__encode_ioapic(const struct kvm_ioapic_state *s, uint8_t *p)
{
	unsigned int i;

	put_le64(p + 0x00, s->base_address);
	put_le32(p + 0x08, s->ioregsel);
	put_le32(p + 0x0c, s->id);
	put_le32(p + 0x10, s->irr);
	put_le32(p + 0x14, 0);
	for (i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		put_le64(p + 0x18 + 8 * i, s->redirtbl[i].bits);
}

int vm_state__decode_ioapic(const uint8_t *p, uint32_t len, struct kvm_ioapic_state *s,
			    struct error *err)
{
	unsigned int i;
	int ret;

	ret = vm_state__check_len(VM_STATE_IOAPIC, len, VM_STATE_IOAPIC_SIZE, err);
	/* IOREGSEL is an 8-bit register, the ID 4 bits, and there are 24 pins. */
	if (!ret)
		ret =
		    vm_state__check_max(VM_STATE_IOAPIC, "ioregsel", get_le32(p + 0x08), 0xff, err);
	if (!ret)
		ret = vm_state__check_max(VM_STATE_IOAPIC, "id", get_le32(p + 0x0c), 0xf, err);
	if (!ret)
		ret = vm_state__check_max(VM_STATE_IOAPIC, "irr", get_le32(p + 0x10),
					  (1u << KVM_IOAPIC_NUM_PINS) - 1, err);
	if (!ret)
		ret = vm_state__check_max(VM_STATE_IOAPIC, "reserved", get_le32(p + 0x14), 0, err);
	if (ret)
		return ret;
	memset(s, 0, sizeof(*s));
	s->base_address = get_le64(p + 0x00);
	s->ioregsel = get_le32(p + 0x08);
	s->id = get_le32(p + 0x0c);
	s->irr = get_le32(p + 0x10);
	for (i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		s->redirtbl[i].bits = get_le64(p + 0x18 + 8 * i);
	return 0;
}

void vm_state__encode_pit(const struct kvm_pit_state2 *s, uint8_t *p)
{
	unsigned int i;

	for (i = 0; i < 3; i++) {
		const struct kvm_pit_channel_state *c = &s->channels[i];
		uint8_t *q = p + i * PIT_CHANNEL_SIZE;

		put_le32(q + 0x00, c->count);
		put_le16(q + 0x04, c->latched_count);
		q[0x06] = c->count_latched;
		q[0x07] = c->status_latched;
		q[0x08] = c->status;
		q[0x09] = c->read_state;
		q[0x0a] = c->write_state;
		q[0x0b] = c->write_latch;
		q[0x0c] = c->rw_mode;
		q[0x0d] = c->mode;
		q[0x0e] = c->bcd;
		q[0x0f] = c->gate;
		put_le64(q + 0x10, (uint64_t)c->count_load_time);
	}
	put_le32(p + 0x48, s->flags);
	put_le32(p + 0x4c, 0);
}

int vm_state__decode_pit(const uint8_t *p, uint32_t len, struct kvm_pit_state2 *s,
			 struct error *err)
{
	/* Access modes are 0..3, read/write states 0..4 (RW_STATE_WORD1 = 4). */
	static const struct byte_field f[] = {
	    {"count_latched", 0x06, 3}, {"status_latched", 0x07, 1}, {"read_state", 0x09, 4},
	    {"write_state", 0x0a, 4},	{"rw_mode", 0x0c, 3},	     {"bcd", 0x0e, 1},
	    {"gate", 0x0f, 1},
	};
	unsigned int i;
	int ret;

	ret = vm_state__check_len(VM_STATE_PIT, len, VM_STATE_PIT_SIZE, err);
	for (i = 0; !ret && i < 3; i++) {
		const uint8_t *q = p + i * PIT_CHANNEL_SIZE;

		ret = vm_state__check_max(VM_STATE_PIT, "channel count", get_le32(q), 0x10000, err);
		if (!ret)
			ret = check_bytes(VM_STATE_PIT, q, f, sizeof(f) / sizeof(f[0]), err);
		if (!ret && q[0x0d] > 7 && q[0x0d] != PIT_MODE_UNSET)
			ret = err_set(
			    err, -EINVAL,
			    "PIT record: channel %u mode %u is neither 0..7 nor 0xff (unset)", i,
			    q[0x0d]);
	}
	if (!ret && (get_le32(p + 0x48) & ~(uint32_t)PIT_VALID_FLAGS))
		ret = err_set(err, -EINVAL, "PIT record: unknown flags 0x%x",
			       get_le32(p + 0x48) & ~(uint32_t)PIT_VALID_FLAGS);
	if (!ret)
		ret = vm_state__check_max(VM_STATE_PIT, "reserved", get_le32(p + 0x4c), 0, err);
	if (ret)
		return ret;
	memset(s, 0, sizeof(*s));
	for (i = 0; i < 3; i++) {
		struct kvm_pit_channel_state *c = &s->channels[i];
		const uint8_t *q = p + i * PIT_CHANNEL_SIZE;

		c->count = get_le32(q + 0x00);
		c->latched_count = get_le16(q + 0x04);
		c->count_latched = q[0x06];
		c->status_latched = q[0x07];
		c->status = q[0x08];
		c->read_state = q[0x09];
		c->write_state = q[0x0a];
		c->write_latch = q[0x0b];
		c->rw_mode = q[0x0c];
		c->mode = q[0x0d];
		c->bcd = q[0x0e];
		c->gate = q[0x0f];
		c->count_load_time = (int64_t)get_le64(q + 0x10);
	}
	s->flags = get_le32(p + 0x48);
	return 0;
}

void vm_state__encode_clock(const struct vm_clock *c, uint8_t *p)
{
	put_le64(p + 0x00, c->data.clock);
	put_le32(p + 0x08, c->data.flags);
	put_le32(p + 0x0c, c->tsc_khz);
	put_le64(p + 0x10, c->data.realtime);
	put_le64(p + 0x18, c->data.host_tsc);
}

int vm_state__decode_clock(const uint8_t *p, uint32_t len, struct vm_clock *c,
			   struct error *err)
{
	int ret = vm_state__check_len(VM_STATE_CLOCK, len, VM_STATE_CLOCK_SIZE, err);

	if (!ret && (get_le32(p + 0x08) & ~(uint32_t)CLOCK_VALID_FLAGS))
		ret = err_set(err, -EINVAL, "CLOCK record: unknown flags 0x%x",
			       get_le32(p + 0x08) & ~(uint32_t)CLOCK_VALID_FLAGS);
	if (ret)
		return ret;
	memset(c, 0, sizeof(*c));
	c->data.clock = get_le64(p + 0x00);
	c->data.flags = get_le32(p + 0x08);
	c->tsc_khz = get_le32(p + 0x0c);
	c->data.realtime = get_le64(p + 0x10);
	c->data.host_tsc = get_le64(p + 0x18);
	return 0;
}
