// SPDX-License-Identifier: GPL-2.0
/*
 * VM-wide payload codecs: the two 8259 PICs, the IOAPIC, the PIT and the
 * clock, each one field table (vmm/state/field.h) with the offsets of
 * Documentation/state-records.md.
 * KVM_SET_IRQCHIP and KVM_SET_PIT2 check almost nothing, so the decoders
 * reject what the kernel's own models can never hold.
 */
#include "state/state.h"
#include "state/field.h"

#include <errno.h>
#include <string.h>

#define PIT_CHANNEL_SIZE  0x18
#define PIT_MODE_UNSET	  0xff /* what a PIT reset leaves until the guest programs a mode */
#define PIT_VALID_FLAGS	  (KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON)
#define CLOCK_VALID_FLAGS (KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)

/* The 8259 model stores these from single bits or small counters. */
#define PIC(o, m)	  SF_U(struct kvm_pic_state, #m, o, 1, m)
#define PIC_MAX(o, m, mx) SF_MAX(struct kvm_pic_state, #m, o, 1, m, mx)
static const struct state_field pic_fields[] = {
    PIC(0x0, last_irr),
    PIC(0x1, irr),
    PIC(0x2, imr),
    PIC(0x3, isr),
    PIC_MAX(0x4, priority_add, 7),
    PIC(0x5, irq_base),
    PIC_MAX(0x6, read_reg_select, 1),
    PIC_MAX(0x7, poll, 1),
    PIC_MAX(0x8, special_mask, 1),
    PIC_MAX(0x9, init_state, 3),
    PIC_MAX(0xa, auto_eoi, 1),
    PIC_MAX(0xb, rotate_on_auto_eoi, 1),
    PIC_MAX(0xc, special_fully_nested_mode, 1),
    PIC_MAX(0xd, init4, 1),
    PIC(0xe, elcr),
    PIC(0xf, elcr_mask),
};
const struct state_table pic_layout = SF_TABLE_OF(NULL, VM_STATE_PIC_SIZE, pic_fields);

/*
 * A redirection entry is stored as its architectural 64-bit value (vector
 * 7:0, delivery mode 10:8, destination mode 11, delivery status 12, polarity
 * 13, remote IRR 14, trigger mode 15, mask 16, destination 63:56), which is
 * what the `bits` member of KVM's union holds on x86.
 * IOREGSEL is an 8-bit register, the ID 4 bits, and there are 24 pins.
 */
static const struct state_field ioapic_fields[] = {
    SF_U(struct kvm_ioapic_state, "base_address", 0x00, 8, base_address),
    SF_MAX(struct kvm_ioapic_state, "ioregsel", 0x08, 4, ioregsel, 0xff),
    SF_MAX(struct kvm_ioapic_state, "id", 0x0c, 4, id, 0xf),
    SF_MAX(struct kvm_ioapic_state, "irr", 0x10, 4, irr, (1u << KVM_IOAPIC_NUM_PINS) - 1),
    SF_RSVD(0x14, 4),
    SF_ARRAY(struct kvm_ioapic_state, "redirtbl", 0x18, 8, KVM_IOAPIC_NUM_PINS, redirtbl),
};
const struct state_table ioapic_layout = SF_TABLE_OF(NULL, VM_STATE_IOAPIC_SIZE, ioapic_fields);

/* Access modes are 0..3, read/write states 0..4 (RW_STATE_WORD1 = 4). */
#define CH(o, w, m)	 SF_U(struct kvm_pit_channel_state, #m, o, w, m)
#define CH_MAX(o, m, mx) SF_MAX(struct kvm_pit_channel_state, #m, o, 1, m, mx)
static const struct state_field pit_channel_fields[] = {
    SF_MAX(struct kvm_pit_channel_state, "count", 0x00, 4, count, 0x10000),
    CH(0x04, 2, latched_count),
    CH_MAX(0x06, count_latched, 3),
    CH_MAX(0x07, status_latched, 1),
    CH(0x08, 1, status),
    CH_MAX(0x09, read_state, 4),
    CH_MAX(0x0a, write_state, 4),
    CH(0x0b, 1, write_latch),
    CH_MAX(0x0c, rw_mode, 3),
    CH(0x0d, 1, mode), /* 0..7 or PIT_MODE_UNSET: vm_state__decode_pit() */
    CH_MAX(0x0e, bcd, 1),
    CH_MAX(0x0f, gate, 1),
    CH(0x10, 8, count_load_time),
};
static const struct state_table pit_channel_layout =
    SF_TABLE_OF("channel", PIT_CHANNEL_SIZE, pit_channel_fields);

static const struct state_field pit_fields[] = {
    SF_SUB(struct kvm_pit_state2, "channels", 0x00, PIT_CHANNEL_SIZE, 3, channels[0],
	   struct kvm_pit_channel_state, pit_channel_layout),
    SF_BITS(struct kvm_pit_state2, "flags", 0x48, 4, flags, PIT_VALID_FLAGS),
    SF_RSVD(0x4c, 4),
};
const struct state_table pit_layout = SF_TABLE_OF(NULL, VM_STATE_PIT_SIZE, pit_fields);

static const struct state_field clock_fields[] = {
    SF_U(struct vm_clock, "clock", 0x00, 8, data.clock),
    SF_BITS(struct vm_clock, "flags", 0x08, 4, data.flags, CLOCK_VALID_FLAGS),
    SF_U(struct vm_clock, "tsc_khz", 0x0c, 4, tsc_khz),
    SF_U(struct vm_clock, "realtime", 0x10, 8, data.realtime),
    SF_U(struct vm_clock, "host_tsc", 0x18, 8, data.host_tsc),
};
const struct state_table clock_layout = SF_TABLE_OF(NULL, VM_STATE_CLOCK_SIZE, clock_fields);

void vm_state__encode_pic(const struct kvm_pic_state *s, uint8_t *p)
{
	state_put(&pic_layout, s, p);
}

int vm_state__decode_pic(uint32_t type, const uint8_t *p, uint32_t len, struct kvm_pic_state *s,
			 struct error *err)
{
	int ret = state_decode(type, &pic_layout, p, len, s, sizeof(*s), err);

	if (!ret && (s->irq_base & 7))
		ret = err_set(err, -EINVAL, "%s record: irq_base 0x%02x is not a multiple of 8",
			      vm_state__type_name(type), s->irq_base);
	return ret;
}

void vm_state__encode_ioapic(const struct kvm_ioapic_state *s, uint8_t *p)
{
	state_put(&ioapic_layout, s, p);
}

int vm_state__decode_ioapic(const uint8_t *p, uint32_t len, struct kvm_ioapic_state *s,
			    struct error *err)
{
	return state_decode(VM_STATE_IOAPIC, &ioapic_layout, p, len, s, sizeof(*s), err);
}

void vm_state__encode_pit(const struct kvm_pit_state2 *s, uint8_t *p)
{
	state_put(&pit_layout, s, p);
}

int vm_state__decode_pit(const uint8_t *p, uint32_t len, struct kvm_pit_state2 *s,
			 struct error *err)
{
	unsigned int i;
	int ret;

	ret = state_decode(VM_STATE_PIT, &pit_layout, p, len, s, sizeof(*s), err);
	for (i = 0; !ret && i < 3; i++)
		if (s->channels[i].mode > 7 && s->channels[i].mode != PIT_MODE_UNSET)
			ret = err_set(
			    err, -EINVAL,
			    "PIT record: channel %u mode %u is neither 0..7 nor 0xff (unset)", i,
			    s->channels[i].mode);
	return ret;
}

void vm_state__encode_clock(const struct vm_clock *c, uint8_t *p)
{
	state_put(&clock_layout, c, p);
}

int vm_state__decode_clock(const uint8_t *p, uint32_t len, struct vm_clock *c, struct error *err)
{
	return state_decode(VM_STATE_CLOCK, &clock_layout, p, len, c, sizeof(*c), err);
}
