// SPDX-License-Identifier: GPL-2.0
/*
 * Eager restore reads only what the snapshot holds: a page the snapshot
 * recorded as the zero page (its digest-table entry, trusted once the table
 * matches the footer) is left unread where the new VM's memory is a hole.
 * A 256 MiB guest that touched 8 MiB restores with a fraction of its RAM
 * read, and goes on: the dirtier checks every page's stamp as it rewrites
 * it, and a wrong page would end it with status 6.
 */
#include "../lib/snapimg.h"
#include "../lib/vmproc.h"

#define MEM   "256M"
#define MEM_B (256ULL << 20)
#define GUEST "dirtier:ws=8M,rate=20"

TEST_TIMEOUT(sparse_guest_reads_a_fraction, 180)
{
	struct vm vm, back;
	char dir[64], img[96], out[OUT_MAX], err[OUT_MAX];
	struct json_object *j;
	uint64_t pages, bytes, deadline;

	TEST_REQUIRE(have_kvm(), "/dev/kvm cannot be opened");
	ASSERT_NE(snapimg_mkdtemp(dir, sizeof(dir), "sparse"), NULL);
	snprintf(img, sizeof(img), "%s/vm.img", dir);
	ASSERT_EQ(VM_SPAWN(&vm, "--guest", GUEST, "--mem", MEM), 0);
	ASSERT_TRUE(wait_guest_running(vm.sock));
	ASSERT_EQ(RUN_CLI(out, err, "snapshot", img, "--control", vm.sock), 0);
	EXPECT_EQ(vm_stop(&vm), 0);

	ASSERT_EQ(VM_SPAWN_CMD(&back, "restore", img, "--json"), 0);
	/* The line comes once the VM runs, about when its socket answers. */
	for (deadline = ms_now() + 30000; ms_now() < deadline; sleep_ms(20)) {
		slurp(back.out, out);
		if (strchr(out, '\n'))
			break;
	}
	j = parse_object(out);
	ASSERT_NE(j, NULL);
	bytes = u64_of(j, "bytes_read");
	TH_LOG("eager restore read %llu bytes of a %s guest", (unsigned long long)bytes, MEM);
	EXPECT_GT(bytes, 8ULL << 20); /* the working set, at least */
	EXPECT_LT(bytes, MEM_B / 4);
	json_object_put(j);
	/* It goes on, checking the stamps of the pages it rewrites. */
	pages = guest_pages(back.sock);
	EXPECT_GT(wait_pages_above(back.sock, pages + 2 * 2048, 60000), pages + 2 * 2048);
	EXPECT_EQ(vm_stop(&back), 0);
	rm_tree(dir);
}

TEST_HARNESS_MAIN
