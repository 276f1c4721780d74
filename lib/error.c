// SPDX-License-Identifier: GPL-2.0
/* The error convention; see error.h. */
#include "lib/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int err_vset(struct error *err, int code, const char *fmt, va_list ap)
{
	if (!err)
		return code;
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return code;
}

int err_set(struct error *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	code = err_vset(err, code, fmt, ap);
	va_end(ap);
	return code;
}

/* Append s to the NUL-terminated msg of size cap, truncating. */
static void msg_append(char *msg, size_t cap, const char *s)
{
	size_t pos = strlen(msg);

	while (*s && pos + 1 < cap)
		msg[pos++] = *s++;
	msg[pos] = '\0';
}

int err_prefix(struct error *err, const char *fmt, ...)
{
	char old[sizeof(err->msg)];
	va_list ap;

	if (!err)
		return -EINVAL;
	memcpy(old, err->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	msg_append(err->msg, sizeof(err->msg), ": ");
	msg_append(err->msg, sizeof(err->msg), old);
	return err->code;
}

int err_errno(struct error *err, int errno_value, const char *fmt, ...)
{
	int code = errno_value > 0 ? -errno_value : (errno_value ? errno_value : -EIO);
	va_list ap;

	if (!err)
		return code;
	va_start(ap, fmt);
	err_vset(err, code, fmt, ap);
	va_end(ap);
	msg_append(err->msg, sizeof(err->msg), ": ");
	msg_append(err->msg, sizeof(err->msg), strerror(-code));
	return code;
}
