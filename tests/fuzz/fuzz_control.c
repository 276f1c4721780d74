// SPDX-License-Identifier: GPL-2.0
/*
 * Control requests: control__handle_line() on a VM without KVM, set up as
 * tests/unit/test_control_proto.c does (memory regions, no vCPUs or slots,
 * no services). The input is one request line, at most CONTROL_LINE_MAX
 * bytes as the server allows. Each input gets a fresh VM, so that a quit or
 * a pause does not change what the next input sees; the reply must be one
 * JSON object on one line.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <sys/eventfd.h>

#include "control/control.h"
#include "fuzz.h"
#include "kvm.h"
#include "pc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pc_config cfg = {.ram_size = 2 << 20, .vram_size = 64 << 10, .nr_cpus = 1};
	static struct kvm kvm;
	struct control_state st;
	struct json_object *o;
	char *reply;

	if (size > CONTROL_LINE_MAX)
		return 0;
	kvm__init(&kvm);
	kvm.ram_size = cfg.ram_size;
	snprintf(kvm.guest_desc, sizeof(kvm.guest_desc), "fuzz/control");
	kvm.exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	control__init_state(&st, &kvm, NULL);
	if (kvm.exit_efd < 0 || pc__setup_memory(&kvm.mem, &cfg, NULL))
		abort(); /* the set-up, not the input: nothing can be fuzzed */
	reply = control__handle_line(&st, (const char *)data, size);
	if (!reply)
		abort(); /* NULL only when out of memory */
	/* One line, one JSON object. */
	o = strchr(reply, '\n') ? NULL : json_tokener_parse(reply);
	if (!o || !json_object_is_type(o, json_type_object))
		abort();
	json_object_put(o);
	free(reply);
	kvm__exit(&kvm);
	return 0;
}
