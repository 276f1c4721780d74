/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The compressed payload of a bzImage, unpacked on the host. The codecs are
 * the kernel's own (lib/decompress.c), told apart by their magic bytes;
 * kvmsnap unpacks those that a Debian library decodes (xz and lzma with
 * liblzma, gzip with zlib, zstd with libzstd). The rest are left to the
 * kernel's decompressor in the guest.
 */
#ifndef KVMSNAP_LOADER_UNPACK_H
#define KVMSNAP_LOADER_UNPACK_H

#include <stddef.h>

#include "lib/error.h"

enum payload_codec {
	CODEC_UNKNOWN,
	CODEC_GZIP,
	CODEC_BZIP2,
	CODEC_LZMA,
	CODEC_XZ,
	CODEC_LZO,
	CODEC_LZ4,
	CODEC_ZSTD,
};

/* The codec that buf starts with, by its magic; CODEC_UNKNOWN if none. */
enum payload_codec unpack__detect(const void *buf, size_t len);

/* "xz", "gzip", ...; "unknown" for CODEC_UNKNOWN. */
const char *unpack__name(enum payload_codec codec);

/* Whether unpack__run() decodes codec. */
int unpack__supported(enum payload_codec codec);

/*
 * Decode the one stream at the start of in (bytes after it, such as the
 * 4-byte size that kbuild appends, are ignored) into out, which holds cap
 * bytes. 0 and *len; -EFBIG if the stream holds more than cap bytes;
 * -EBADMSG if it is corrupt or ends early; -ENOTSUP for a codec that
 * unpack__supported() refuses; -ENOMEM. *err names the cause
 * ("xz payload: ...").
 */
int unpack__run(enum payload_codec codec, const void *in, size_t in_len, void *out, size_t cap,
		size_t *len, struct error *err);

#endif
