// SPDX-License-Identifier: GPL-2.0
/*
 * bzImage payloads decoded on the host with the codecs' own libraries. Each
 * decoder gets the whole input and a fixed output buffer and stops at the
 * end of the first stream; nothing here allocates guest memory.
 */
#include "loader/unpack.h"

#include <errno.h>
#include <lzma.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "lib/align.h"

/* liblzma's decoder memory: the kernel's xz streams use a dictionary of at most 32 MiB. */
#define XZ_MEMLIMIT (256ULL << 20)

/* Magic bytes, as the kernel's lib/decompress.c tells its codecs apart. */
static const struct {
	enum payload_codec codec;
	const char *name;
	const char *magic;
	size_t len;
} codecs[] = {
    {CODEC_GZIP, "gzip", "\x1f\x8b", 2},
    {CODEC_GZIP, "gzip", "\x1f\x9e", 2},
    {CODEC_BZIP2, "bzip2", "BZh", 3},
    {CODEC_LZMA, "lzma", "\x5d\x00\x00", 3},
    {CODEC_XZ, "xz",
     "\xfd"
     "7zXZ\x00",
     6},
    {CODEC_LZO, "lzo", "\x89LZO", 4},
    {CODEC_LZ4, "lz4", "\x02\x21\x4c\x18", 4},
    {CODEC_ZSTD, "zstd", "\x28\xb5\x2f\xfd", 4},
};

enum payload_codec unpack__detect(const void *buf, size_t len)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(codecs); i++)
		if (len >= codecs[i].len && !memcmp(buf, codecs[i].magic, codecs[i].len))
			return codecs[i].codec;
	return CODEC_UNKNOWN;
}

const char *unpack__name(enum payload_codec codec)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(codecs); i++)
		if (codecs[i].codec == codec)
			return codecs[i].name;
	return "unknown";
}

int unpack__supported(enum payload_codec codec)
{
	return codec == CODEC_GZIP || codec == CODEC_LZMA || codec == CODEC_XZ ||
	       codec == CODEC_ZSTD;
}

/* The two ways a stream can fail to end where it should. */
static int stopped_early(const char *name, size_t out_left, struct error *err)
{
	if (!out_left)
		return err_set(err, -EFBIG, "%s payload: unpacks to more than the kernel's size",
			       name);
	return err_set(err, -EBADMSG, "%s payload: truncated: the stream ends early", name);
}

static const char *lzma_why(lzma_ret r)
{
	switch (r) {
	case LZMA_FORMAT_ERROR:
		return "not in the format its magic says";
	case LZMA_OPTIONS_ERROR:
		return "options liblzma does not support";
	case LZMA_DATA_ERROR:
		return "bad data";
	default:
		return "liblzma error";
	}
}

static int run_lzma(enum payload_codec codec, const void *in, size_t in_len, void *out, size_t cap,
		    size_t *len, struct error *err)
{
	const char *name = unpack__name(codec);
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret r;
	int ret = 0;

	r = codec == CODEC_XZ ? lzma_stream_decoder(&s, XZ_MEMLIMIT, 0)
			      : lzma_alone_decoder(&s, XZ_MEMLIMIT);
	if (r != LZMA_OK)
		return err_set(err, -ENOMEM, "%s payload: cannot start the decoder (%d)", name,
			       (int)r);
	s.next_in = in;
	s.avail_in = in_len;
	s.next_out = out;
	s.avail_out = cap;
	do
		r = lzma_code(&s, LZMA_FINISH);
	while (r == LZMA_OK);
	if (r == LZMA_BUF_ERROR)
		ret = stopped_early(name, s.avail_out, err);
	else if (r == LZMA_MEM_ERROR || r == LZMA_MEMLIMIT_ERROR)
		ret = err_set(err, -ENOMEM, "%s payload: needs more than %llu MiB to decode", name,
			      XZ_MEMLIMIT >> 20);
	else if (r != LZMA_STREAM_END)
		ret = err_set(err, -EBADMSG, "%s payload: corrupt (%s)", name, lzma_why(r));
	*len = cap - s.avail_out;
	lzma_end(&s);
	return ret;
}

static int run_gzip(const void *in, size_t in_len, void *out, size_t cap, size_t *len,
		    struct error *err)
{
	z_stream z;
	int r, ret = 0;

	if (in_len > UINT32_MAX || cap > UINT32_MAX)
		return err_set(err, -EFBIG, "gzip payload: larger than 4 GiB");
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) /* 16: gzip framing only */
		return err_set(err, -ENOMEM, "gzip payload: cannot start the decoder");
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)in_len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	do
		r = inflate(&z, Z_FINISH);
	while (r == Z_OK);
	if (r == Z_BUF_ERROR)
		ret = stopped_early("gzip", z.avail_out, err);
	else if (r == Z_MEM_ERROR)
		ret = err_set(err, -ENOMEM, "gzip payload: out of memory");
	else if (r != Z_STREAM_END)
		ret = err_set(err, -EBADMSG, "gzip payload: corrupt (%s)",
			      z.msg ? z.msg : "zlib error");
	*len = cap - z.avail_out;
	inflateEnd(&z);
	return ret;
}

static int run_zstd(const void *in, size_t in_len, void *out, size_t cap, size_t *len,
		    struct error *err)
{
	ZSTD_inBuffer ib = {in, in_len, 0};
	ZSTD_outBuffer ob = {out, cap, 0};
	ZSTD_DCtx *d = ZSTD_createDCtx();
	size_t r, in_pos, out_pos;
	int ret = 0;

	if (!d)
		return err_set(err, -ENOMEM, "zstd payload: cannot start the decoder");
	/* kbuild packs with --ultra -22: windows past the streaming default of 2^27. */
	ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 31);
	for (;;) {
		in_pos = ib.pos;
		out_pos = ob.pos;
		r = ZSTD_decompressStream(d, &ob, &ib);
		if (ZSTD_isError(r)) {
			ret = err_set(err, -EBADMSG, "zstd payload: corrupt (%s)",
				      ZSTD_getErrorName(r));
			break;
		}
		if (!r)
			break; /* the frame is complete */
		if (ib.pos == in_pos && ob.pos == out_pos) {
			ret = stopped_early("zstd", ob.size - ob.pos, err);
			break;
		}
	}
	*len = ob.pos;
	ZSTD_freeDCtx(d);
	return ret;
}

int unpack__run(enum payload_codec codec, const void *in, size_t in_len, void *out, size_t cap,
		size_t *len, struct error *err)
{
	*len = 0;
	switch (codec) {
	case CODEC_XZ:
	case CODEC_LZMA:
		return run_lzma(codec, in, in_len, out, cap, len, err);
	case CODEC_GZIP:
		return run_gzip(in, in_len, out, cap, len, err);
	case CODEC_ZSTD:
		return run_zstd(in, in_len, out, cap, len, err);
	default:
		return err_set(err, -ENOTSUP, "%s payload: kvmsnap does not unpack this codec",
			       unpack__name(codec));
	}
}
