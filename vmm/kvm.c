// SPDX-License-Identifier: GPL-2.0
/* /dev/kvm, the VM file descriptor, I/O dispatch and how the VM ends. */
#include "kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dirty-ring.h"
#include "layout.h"
#include "util/util.h"

/* Just below pc.bios: three pages of TSS and one of EPT identity map. */
#define KVM_TSS_GPA	     (BIOS_GPA - 3 * PAGE_SIZE)
#define KVM_IDENTITY_MAP_GPA (BIOS_GPA - 4 * PAGE_SIZE)

struct kvm_cap_need {
	int cap;
	const char *name;
};

#define CAP(x)                             \
	{                                  \
		KVM_CAP_##x, "KVM_CAP_" #x \
	}
static const struct kvm_cap_need kvm_caps_needed[] = {
    CAP(USER_MEMORY),
    CAP(IRQCHIP),
    CAP(PIT2),
    CAP(SET_TSS_ADDR),
    CAP(SET_IDENTITY_MAP_ADDR),
    CAP(EXT_CPUID),
    CAP(MP_STATE),
    CAP(IMMEDIATE_EXIT),
    CAP(READONLY_MEM),
    CAP(GET_TSC_KHZ),
    CAP(IRQ_INJECT_STATUS),
    CAP(SYNC_MMU),
};

void kvm__init(struct kvm *kvm)
{
	memset(kvm, 0, sizeof(*kvm));
	kvm->sys_fd = kvm->vm_fd = kvm->exit_efd = -1;
	mem__init(&kvm->mem);
	pthread_mutex_init(&kvm->lock, NULL);
	pthread_cond_init(&kvm->cond, NULL);
	pthread_cond_init(&kvm->throttle_cond, NULL);
	kvm->state = KVM_STATE_RUNNING;
}

/* Every capability KVM lacks, in one message: "KVM lacks capability A, B, ...". */
static int kvm__check_caps(struct kvm *kvm, struct error *err)
{
	char names[256] = "";
	unsigned int i, missing = 0;
	size_t len = 0;

	for (i = 0; i < ARRAY_SIZE(kvm_caps_needed); i++) {
		if (ioctl(kvm->sys_fd, KVM_CHECK_EXTENSION, kvm_caps_needed[i].cap) > 0)
			continue;
		if (len < sizeof(names))
			len += snprintf(names + len, sizeof(names) - len, "%s%s",
					missing ? ", " : "", kvm_caps_needed[i].name);
		missing++;
	}
	if (!missing)
		return 0;
	return err_set(err, -EOPNOTSUPP, "KVM lacks %s %s, which kvmsnap needs",
		       missing == 1 ? "capability" : "capabilities", names);
}

int kvm__open(struct kvm *kvm, const char *dev_path, struct error *err)
{
	int ret;

	kvm->sys_fd = open(dev_path, O_RDWR | O_CLOEXEC);
	if (kvm->sys_fd < 0) {
		if (errno == ENOENT)
			return err_set(err, -ENOENT,
				       "%s does not exist: KVM is not available here (load "
				       "kvm_intel or kvm_amd, or enable nested virtualization)",
				       dev_path);
		if (errno == EACCES || errno == EPERM)
			return err_set(err, -errno,
				       "cannot open %s: permission denied (join the 'kvm' group or "
				       "run as root)",
				       dev_path);
		return err_errno(err, errno, "cannot open %s", dev_path);
	}
	ret = ioctl(kvm->sys_fd, KVM_GET_API_VERSION, 0);
	if (ret < 0)
		return err_set(err, -ENODEV, "%s is not a KVM device (KVM_GET_API_VERSION: %s)",
			       dev_path, strerror(errno));
	if (ret != KVM_API_VERSION)
		return err_set(err, -EINVAL, "%s: KVM API version %d, kvmsnap needs %d", dev_path,
			       ret, KVM_API_VERSION);
	ret = kvm__check_caps(kvm, err);
	if (ret)
		return ret;
	kvm->run_size = ioctl(kvm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kvm->run_size < (int)sizeof(struct kvm_run))
		return err_set(err, -EINVAL, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	return 0;
}

static int kvm__get_supported_cpuid(struct kvm *kvm, struct error *err)
{
	int nent = 128; /* 75 on a recent host: one ioctl, not two */

	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));

		if (!c)
			return err_errno(err, ENOMEM, "KVM_GET_SUPPORTED_CPUID");
		c->nent = nent;
		if (ioctl(kvm->sys_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			kvm->cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG || nent >= 4096)
			return err_errno(err, errno, "KVM_GET_SUPPORTED_CPUID");
		nent *= 2;
	}
}

/* A VM ioctl; on failure, -errno and *err is "REQUEST: strerror". */
#define VM_IOCTL(kvm, req, arg, err)                              \
	({                                                        \
		int _r = ioctl((kvm)->vm_fd, (req), (arg));       \
		_r < 0 ? err_errno((err), errno, "%s", #req) : 0; \
	})

int kvm__create_vm(struct kvm *kvm, struct error *err)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	uint64_t idmap = KVM_IDENTITY_MAP_GPA;
	int ret;

	kvm->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (kvm->exit_efd < 0)
		return err_errno(err, errno, "eventfd");
	kvm->vm_fd = ioctl(kvm->sys_fd, KVM_CREATE_VM, 0);
	if (kvm->vm_fd < 0)
		return err_errno(err, errno, "KVM_CREATE_VM");
	/* Before any slot logs: KVM_CLEAR_DIRTY_LOG where offered (mem.c). */
	mem__enable_manual_protect(&kvm->mem, kvm->vm_fd);
	ret = VM_IOCTL(kvm, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA, err);
	if (!ret)
		ret = VM_IOCTL(kvm, KVM_SET_IDENTITY_MAP_ADDR, &idmap, err);
	if (!ret)
		ret = VM_IOCTL(kvm, KVM_CREATE_IRQCHIP, 0, err);
	if (!ret)
		ret = VM_IOCTL(kvm, KVM_CREATE_PIT2, &pit, err);
	if (!ret)
		ret = kvm__get_supported_cpuid(kvm, err);
	kvm->start_ns = now_ns();
	return ret;
}

static int register_io(struct io_handler *tab, unsigned int *nr, uint64_t base, uint64_t len,
		       io_handler_fn fn, void *opaque)
{
	unsigned int i;

	if (*nr >= KVM_MAX_IO_HANDLERS)
		return -ENOSPC;
	for (i = 0; i < *nr; i++)
		if (base < tab[i].base + tab[i].len && tab[i].base < base + len)
			return -EEXIST;
	tab[*nr] = (struct io_handler){.base = base, .len = len, .fn = fn, .opaque = opaque};
	(*nr)++;
	return 0;
}

int kvm__register_pio(struct kvm *kvm, uint16_t base, uint16_t len, io_handler_fn fn, void *opaque)
{
	return register_io(kvm->pio, &kvm->nr_pio, base, len, fn, opaque);
}

int kvm__register_mmio(struct kvm *kvm, uint64_t base, uint64_t len, io_handler_fn fn, void *opaque)
{
	return register_io(kvm->mmio, &kvm->nr_mmio, base, len, fn, opaque);
}

static void dispatch(struct kvm_cpu *cpu, struct io_handler *tab, unsigned int nr, uint64_t addr,
		     uint8_t *data, uint32_t size, bool is_write)
{
	unsigned int i;

	for (i = 0; i < nr; i++) {
		if (addr >= tab[i].base && addr - tab[i].base < tab[i].len) {
			tab[i].fn(cpu, addr, data, size, is_write, tab[i].opaque);
			return;
		}
	}
	/* Nothing decodes it: reads float high, writes vanish, as on a real bus. */
	if (!is_write)
		memset(data, 0xff, size);
}

void kvm__emulate_pio(struct kvm_cpu *cpu, uint16_t port, uint8_t *data, uint32_t size,
		      bool is_write)
{
	dispatch(cpu, cpu->kvm->pio, cpu->kvm->nr_pio, port, data, size, is_write);
}

void kvm__emulate_mmio(struct kvm_cpu *cpu, uint64_t addr, uint8_t *data, uint32_t size,
		       bool is_write)
{
	dispatch(cpu, cpu->kvm->mmio, cpu->kvm->nr_mmio, addr, data, size, is_write);
}

void kvm__request_exit(struct kvm *kvm, int status, const char *fmt, ...)
{
	uint64_t one = 1;
	bool first;
	va_list ap;

	pthread_mutex_lock(&kvm->lock);
	first = !kvm->exited;
	if (first) {
		kvm->exited = true;
		kvm->exit_status = status;
		kvm->state = KVM_STATE_EXITING;
		va_start(ap, fmt);
		vsnprintf(kvm->exit_reason, sizeof(kvm->exit_reason), fmt, ap);
		va_end(ap);
		pthread_cond_broadcast(&kvm->cond);
	}
	pthread_mutex_unlock(&kvm->lock);
	if (first && write(kvm->exit_efd, &one, sizeof(one)) < 0)
		pr_warn("exit eventfd: %s", strerror(errno));
}

bool kvm__has_exited(struct kvm *kvm)
{
	bool ret;

	pthread_mutex_lock(&kvm->lock);
	ret = kvm->exited;
	pthread_mutex_unlock(&kvm->lock);
	return ret;
}

uint64_t kvm__progress_pages(struct kvm *kvm)
{
	struct kvm_cpu *cpu;
	uint64_t total = 0;
	unsigned int i;

	kvm__for_each_cpu (kvm, cpu, i)
		total += __atomic_load_n(&cpu->progress.pages, __ATOMIC_RELAXED);
	return total;
}

void kvm__exit(struct kvm *kvm)
{
	unsigned int i;

	dirty_ring__exit(kvm); /* its maps are the vCPUs' */
	for (i = 0; kvm->cpus && i < kvm->nr_cpus; i++) {
		struct kvm_cpu *cpu = kvm->cpus[i];

		if (!cpu)
			continue;
		if (cpu->run)
			munmap(cpu->run, kvm->run_size);
		if (cpu->fd >= 0)
			close(cpu->fd);
		free(cpu);
	}
	free(kvm->cpus);
	kvm->cpus = NULL;
	mem__exit(&kvm->mem);
	free(kvm->cpuid);
	kvm->cpuid = NULL;
	if (kvm->vm_fd >= 0)
		close(kvm->vm_fd);
	if (kvm->sys_fd >= 0)
		close(kvm->sys_fd);
	if (kvm->exit_efd >= 0)
		close(kvm->exit_efd);
	kvm->vm_fd = kvm->sys_fd = kvm->exit_efd = -1;
}
