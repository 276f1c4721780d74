// SPDX-License-Identifier: GPL-2.0
/*
 * pagewriter: store a round number at guest-physical addresses that the host
 * lists in a mailbox (struct pagewriter_mailbox), round after round, for the
 * dirty-log test (tests/kvm/test_dirty_log.c). The host knows exactly which
 * pages a round writes, so it can check the dirty log page by page.
 *
 * Only vCPU 0 works; the others spin in ring 3 and write nothing. Between
 * rounds vCPU 0 only reads memory, so a round's dirty log holds the listed
 * pages, the mailbox and nothing else outside the guest image and the boot
 * structures.
 */
#include "rt.h"

static inline uint64_t load_acquire(const volatile uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void store_release(volatile uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

void guest_main(unsigned int cpu, const struct kvmsnap_bootinfo *bi)
{
	uint64_t gpa = bi->params[PAGEWRITER_P_MAILBOX];
	volatile struct pagewriter_mailbox *mb;
	uint64_t last = 0, round, nr, i;

	if (cpu != 0) {
		rt_msg_write(MSGPORT_READY, 1);
		rt_halt(); /* pause loop: no stores */
	}
	if (!gpa)
		gpa = bi->free_start;
	if (gpa & (RT_PAGE_SIZE - 1))
		rt_exit(RT_EXIT_BAD_PARAMS);
	mb = (volatile struct pagewriter_mailbox *)(uintptr_t)gpa;
	rt_msg_write(MSGPORT_READY, 1);
	store_release(&mb->ready, PAGEWRITER_READY);

	for (;;) {
		while ((round = load_acquire(&mb->go)) == last)
			rt_pause();
		nr = mb->nr;
		if (nr > PAGEWRITER_MAX_GPAS)
			rt_fail(gpa);
		for (i = 0; i < nr; i++)
			*(volatile uint64_t *)(uintptr_t)mb->gpa[i] = round;
		store_release(&mb->done, round);
		last = round;
	}
}
