/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one error convention of kvmsnap, in vmm/ and snapshot/ alike:
 *
 *  - A function that can fail returns 0 (or a count) on success and a
 *    negative errno on failure, and then fills *err with one line that
 *    names the cause ("vcpus: the image has 2, the VM 1").
 *  - It never prints and never exits. Only the code at the top prints the
 *    message, once: a command's entry point (builtin-*.c), the control
 *    server (into the reply), or a vCPU thread (into the VM's exit reason).
 *  - A caller that adds context uses err_prefix(): "image x.img: " + cause.
 *
 * err may be NULL where the caller only wants the code.
 */
#ifndef KVMSNAP_ERROR_H
#define KVMSNAP_ERROR_H

#define ERROR_MSG_MAX 320

struct error {
	int code; /* negative errno */
	char msg[ERROR_MSG_MAX];
};

/* Fill err and return code (a negative errno). */
int err_set(struct error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Put "prefix: " (printf-style) before the message already in err; return err->code. */
int err_prefix(struct error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* err_set(err, -errno_value, "what: strerror"): for a failed system call. */
int err_errno(struct error *err, int errno_value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
