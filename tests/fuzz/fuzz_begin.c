// SPDX-License-Identifier: GPL-2.0
/*
 * The manager's check of the snapshot-begin reply: snapshot_begin__check()
 * on the JSON text and the descriptors that came with it. The input is
 *
 *   byte 0          how many descriptors (0 to SNAP_MAX_REGIONS + 2)
 *   bytes 1-18      one byte per descriptor: bit 0 a regular file, bit 1
 *                   sealed, bit 2 writable, bits 3-7 its size: 0 bytes, or
 *                   2^(11 + n) bytes, or (n = 31) UINT64_MAX
 *   the rest        the reply, as the VM sent it (parsed with json-c)
 */
#include <json-c/json.h>

#include "fuzz.h"
#include "live-snapshot/begin.h"

#define NR_FD_BYTES (SNAP_MAX_REGIONS + 2)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot_fd_info fds[NR_FD_BYTES];
	struct snapshot_begin *out;
	struct json_tokener *tok;
	struct json_object *reply;
	struct error err;
	unsigned int nr_fds, i;

	if (size < 1 + NR_FD_BYTES)
		return 0;
	nr_fds = data[0] % (NR_FD_BYTES + 1);
	for (i = 0; i < NR_FD_BYTES; i++) {
		uint8_t b = data[1 + i], n = b >> 3;

		fds[i].regular = b & 1;
		fds[i].size_sealed = b & 2;
		fds[i].writable = b & 4;
		fds[i].size = !n ? 0 : n == 31 ? UINT64_MAX : 1ULL << (11 + n);
	}
	data += 1 + NR_FD_BYTES;
	size -= 1 + NR_FD_BYTES;

	tok = json_tokener_new();
	if (!tok)
		return 0;
	reply =
	    json_tokener_parse_ex(tok, (const char *)data, (int)FUZZ_MIN(size, (size_t)INT32_MAX));
	json_tokener_free(tok);
	if (!reply)
		return 0;
	out = malloc(sizeof(*out));
	if (out)
		snapshot_begin__check(reply, fds, nr_fds, out, &err);
	free(out);
	json_object_put(reply);
	return 0;
}
