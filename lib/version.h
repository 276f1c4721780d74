/* SPDX-License-Identifier: GPL-2.0 */
#ifndef KVMSNAP_VERSION_H
#define KVMSNAP_VERSION_H

/* The one version string: `kvmsnap --version` and the images' platform metadata. */
#define KVMSNAP_VERSION "0.1.0"

#endif
