// SPDX-License-Identifier: GPL-2.0
/*
 * The seccomp allowlists; see seccomp.h. Each entry is one syscall,
 * optionally with one argument check; Documentation/security.md says why
 * each is there. A missed syscall fails with EPERM rather than killing the
 * process: the caller then reports a clear error and the guest survives.
 */
#include "sandbox/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <string.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "util/util.h"

/* The profiles an entry belongs to. */
#define VM  (1U << SECCOMP_VM)
#define MGR (1U << SECCOMP_MANAGER)
#define KPR (1U << SECCOMP_KEEPER)
#define ALL (VM | MGR | KPR)

enum arg_check {
	ANY,
	ARG_EQ,	       /* arg[idx] == val */
	ARG_MASKED_EQ, /* (arg[idx] & mask) == val */
	ARG_OWN_PID,   /* arg[idx] == getpid() */
};

struct allow {
	int nr;
	unsigned int profiles;
	enum arg_check check;
	unsigned int idx;
	scmp_datum_t mask, val;
};

/* Threads only: clone without these flags would make a new process. */
#define THREAD_FLAGS (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD)
/* openat: read-only, creating and truncating nothing. */
#define OPEN_WRITE_FLAGS (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND)

#define ALLOW(name, p)                                              \
	{                                                           \
		.nr = SCMP_SYS(name), .profiles = (p), .check = ANY \
	}
#define ALLOW_IF(name, p, chk, i, m, v)                                                         \
	{                                                                                       \
		.nr = SCMP_SYS(name), .profiles = (p), .check = (chk), .idx = (i), .mask = (m), \
		.val = (v)                                                                      \
	}

/*
 * What the sanitizer runtime does at exit (LeakSanitizer's stop-the-world:
 * a helper task that ptraces every thread, /proc/PID/{maps,task} read, its
 * own stack) and when it reports, in every profile. Sanitizer builds only.
 */
#define SANITIZER_EXTRA                                                                    \
	ALLOW(clone, ALL), ALLOW(ptrace, ALL), ALLOW(wait4, ALL), ALLOW(openat, ALL),      \
	    ALLOW(getdents64, ALL), ALLOW(sched_getaffinity, ALL), ALLOW(prctl, ALL),      \
	    ALLOW(sigaltstack, ALL), ALLOW(gettid, ALL), ALLOW(sched_yield, ALL),          \
	    ALLOW(nanosleep, ALL), ALLOW(clock_nanosleep, ALL), ALLOW(readlink, ALL),      \
	    ALLOW(fstat, ALL), ALLOW(writev, ALL), ALLOW(lseek, ALL), ALLOW(getppid, ALL), \
	    ALLOW(tgkill, ALL), ALLOW(open, ALL), ALLOW(readlinkat, ALL), ALLOW(getdents, ALL),

static const struct allow allowlist[] = {
    /* I/O on descriptors opened before the lock-down */
    ALLOW(read, VM | MGR | KPR), ALLOW(write, VM | MGR | KPR), ALLOW(pread64, VM | MGR),
    ALLOW(pwrite64, VM | MGR), ALLOW(lseek, VM | MGR),
    /* VM: SEEK_DATA on its memfds */ ALLOW(close, VM | MGR | KPR),
    ALLOW(newfstatat, VM | MGR | KPR), ALLOW(fcntl, VM), ALLOW(ioctl, VM),
    ALLOW_IF(ioctl, MGR, ARG_EQ, 1, 0, TCGETS), /* isatty() of stdio */
    /* --every: each checkpoint checks the descriptors the VM sends */
    ALLOW_IF(fcntl, MGR, ARG_EQ, 1, 0, F_GETFL), ALLOW_IF(fcntl, MGR, ARG_EQ, 1, 0, F_GET_SEALS),
    ALLOW(fdatasync, MGR), ALLOW(fsync, MGR), ALLOW(io_uring_setup, MGR),
    ALLOW(io_uring_enter, MGR),
    /* memory */
    ALLOW(brk, VM | MGR | KPR), ALLOW(mmap, VM | MGR | KPR), ALLOW(munmap, VM | MGR | KPR),
    ALLOW(mprotect, VM | MGR), ALLOW(mremap, VM | MGR), ALLOW(madvise, VM | MGR),
    ALLOW(memfd_create, VM), ALLOW(ftruncate, VM),
    ALLOW_IF(openat, VM, ARG_MASKED_EQ, 2, OPEN_WRITE_FLAGS, O_RDONLY),
    /* the control socket */
    ALLOW(poll, VM | MGR), ALLOW(accept4, VM), ALLOW(recvmsg, VM | MGR), ALLOW(sendmsg, VM),
    ALLOW(sendto, VM | MGR), ALLOW(getsockopt, VM),
    /* an NBD image: libnbd's send() and recv() on the socket it connected before */
    ALLOW(recvfrom, VM | MGR),
    /* threads, signals, time, ids */
    /* the manager's page-hashing workers (snapshot/hashq.h) are threads too */
    ALLOW_IF(clone, VM | MGR, ARG_MASKED_EQ, 0, THREAD_FLAGS, THREAD_FLAGS), ALLOW(futex, VM | MGR),
    ALLOW(set_robust_list, VM | MGR), ALLOW(rseq, VM | MGR),
    /* the engine's stage prefault worker lowers itself to SCHED_IDLE (snapshot/stage.h) */
    ALLOW_IF(sched_setscheduler, VM | MGR, ARG_EQ, 1, 0, SCHED_IDLE),
    ALLOW_IF(prctl, VM, ARG_EQ, 0, 0, PR_SET_NAME), /* pthread_setname_np() */
    ALLOW_IF(tgkill, VM | MGR, ARG_OWN_PID, 0, 0, 0),
    ALLOW_IF(kill, VM, ARG_EQ, 1, 0, SIGTERM), /* the --snapshot child */
    ALLOW(wait4, VM), ALLOW(rt_sigaction, VM | MGR | KPR), ALLOW(rt_sigprocmask, VM | MGR | KPR),
    ALLOW(rt_sigreturn, VM | MGR | KPR), ALLOW(rt_sigtimedwait, VM),
    ALLOW(restart_syscall, VM | MGR | KPR), ALLOW(clock_gettime, VM | MGR),
    ALLOW(getrandom, VM | MGR), ALLOW(getpid, VM | MGR | KPR), ALLOW(geteuid, VM),
    ALLOW(exit, VM | MGR | KPR), ALLOW(exit_group, VM | MGR | KPR),
    /* the keeper's one job */
    ALLOW(unlink, KPR), ALLOW(unlinkat, KPR), ALLOW(rmdir, KPR),
#ifdef KVMSNAP_SANITIZE
    SANITIZER_EXTRA
#endif
};

static int add_rule(scmp_filter_ctx ctx, const struct allow *a)
{
	struct scmp_arg_cmp cmp;

	switch (a->check) {
	case ANY:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, a->nr, 0);
	case ARG_EQ:
		cmp = (struct scmp_arg_cmp){a->idx, SCMP_CMP_EQ, a->val, 0};
		break;
	case ARG_MASKED_EQ:
		cmp = (struct scmp_arg_cmp){a->idx, SCMP_CMP_MASKED_EQ, a->mask, a->val};
		break;
	case ARG_OWN_PID:
		cmp = (struct scmp_arg_cmp){a->idx, SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0};
		break;
	}
	return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, a->nr, 1, &cmp);
}

int seccomp__install(enum seccomp_profile profile, struct error *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	unsigned int i;
	int ret = 0;

	if (!ctx)
		return err_set(err, -ENOMEM, "seccomp: cannot create a filter");
	ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	/* ENOSYS makes glibc fall back to clone(), whose flags the filter can see. */
	if (!ret && (profile == SECCOMP_VM || profile == SECCOMP_MANAGER))
		ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	for (i = 0; !ret && i < ARRAY_SIZE(allowlist); i++)
		if (allowlist[i].profiles & (1U << profile))
			ret = add_rule(ctx, &allowlist[i]);
	if (ret) {
		err_set(err, ret, "seccomp: cannot build the filter: %s", strerror(-ret));
		goto out;
	}
	ret = seccomp_load(ctx);
	if (ret)
		err_set(err, ret, "seccomp: cannot install the filter: %s", strerror(-ret));
out:
	seccomp_release(ctx);
	return ret;
}
