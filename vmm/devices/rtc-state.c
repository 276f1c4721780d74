// SPDX-License-Identifier: GPL-2.0
/*
 * The CMOS RTC's snapshot state: the index register and the 128 bytes of
 * CMOS RAM as one field table (payload layout in
 * Documentation/state-records.md, record RTC). The time itself is not in
 * it: the RTC reads the host's clock. The checks match what rtc.c can ever
 * store, so a corrupt record is refused, not loaded.
 */
#include "devices/rtc.h"

#include <errno.h>
#include <string.h>

#include "lib/error.h"
#include "state/field.h"
#include "state/state.h"

#define INDEX_MAX 0x7f /* bit 7 of the index port masks NMIs and is not kept */
#define REG_A	  0x0a
#define REG_A_UIP 0x80 /* read-only, never set */
#define REG_C	  0x0c
#define REG_D	  0x0d
#define REG_D_VRT 0x80

static const struct state_field rtc_fields[] = {
    SF_MAX(struct rtc_state, "index", 0x00, 1, index, INDEX_MAX),
    SF_RSVD(0x01, 3),
    SF_BITS(struct rtc_state, "flags", 0x04, 4, flags, 0),
    SF_BLOBS(struct rtc_state, "cmos", 0x08, RTC_CMOS_SIZE, 1, cmos),
};
const struct state_table rtc_layout = SF_TABLE_OF(NULL, RTC_STATE_SIZE, rtc_fields);

void rtc__save(struct rtc *rtc, uint8_t *p)
{
	struct rtc_state s;

	memset(&s, 0, sizeof(s));
	pthread_mutex_lock(&rtc->lock);
	s.index = rtc->index;
	memcpy(s.cmos, rtc->cmos, sizeof(s.cmos));
	pthread_mutex_unlock(&rtc->lock);
	state_put(&rtc_layout, &s, p);
}

/* The bytes rtc.c never stores: the time registers (read from the host) and C and D. */
static int check_cmos(const uint8_t *cmos, struct error *err)
{
	static const uint8_t zero[] = {0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, REG_C, 0x32};
	unsigned int i;

	for (i = 0; i < sizeof(zero); i++)
		if (cmos[zero[i]])
			return err_set(err, -EINVAL,
				       "RTC record: cmos[0x%02x] is 0x%02x, the RTC keeps 0 there",
				       zero[i], cmos[zero[i]]);
	if (cmos[REG_A] & REG_A_UIP)
		return err_set(err, -EINVAL, "RTC record: register A 0x%02x has UIP set",
			       cmos[REG_A]);
	if (cmos[REG_D] != REG_D_VRT)
		return err_set(err, -EINVAL, "RTC record: register D is 0x%02x, not 0x%02x",
			       cmos[REG_D], REG_D_VRT);
	return 0;
}

static int decode(const uint8_t *p, uint32_t len, struct rtc_state *s, struct error *err)
{
	int ret = state_decode(VM_STATE_RTC, &rtc_layout, p, len, s, sizeof(*s), err);

	return ret ? ret : check_cmos(s->cmos, err);
}

int rtc__check_state(const uint8_t *p, uint32_t len, struct error *err)
{
	struct rtc_state s;

	return decode(p, len, &s, err);
}

int rtc__restore(struct rtc *rtc, const uint8_t *p, uint32_t len, struct error *err)
{
	struct rtc_state s;
	int ret = decode(p, len, &s, err);

	if (ret)
		return ret;
	pthread_mutex_lock(&rtc->lock);
	rtc->index = s.index;
	memcpy(rtc->cmos, s.cmos, sizeof(rtc->cmos));
	pthread_mutex_unlock(&rtc->lock);
	return 0;
}
