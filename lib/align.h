/* SPDX-License-Identifier: GPL-2.0 */
/* Alignment and small arithmetic helpers, for vmm/ and snapshot/ alike. */
#ifndef KVMSNAP_ALIGN_H
#define KVMSNAP_ALIGN_H

/* a must be a power of two; the result has the type of x. */
#define ALIGN_UP(x, a)	   (((x) + (a)-1) & ~((__typeof__(x))(a)-1))
#define ALIGN_DOWN(x, a)   ((x) & ~((__typeof__(x))(a)-1))
#define IS_ALIGNED(x, a)   (((x) & ((__typeof__(x))(a)-1)) == 0)
#define MIN(a, b)	   ((a) < (b) ? (a) : (b))
#define MAX(a, b)	   ((a) > (b) ? (a) : (b))
#define ARRAY_SIZE(a)	   (sizeof(a) / sizeof((a)[0]))
#define DIV_ROUND_UP(n, d) (((n) + (d)-1) / (d))

#endif
