/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The control socket: a UNIX stream socket speaking one JSON object per line,
 * request and reply. Documentation/vmm.md describes the protocol.
 *
 *   {"cmd":"status"}                        state, vCPUs, memory, regions,
 *                                           dirty trackers
 *   {"cmd":"pause"} / {"cmd":"resume"}      park or release every vCPU
 *   {"cmd":"quit"}                          end the VM with status 0
 *   {"cmd":"digest"}                        XXH3-64 of every region
 *   {"cmd":"dirty-log","enable":BOOL}       KVM dirty logging on or off
 *   {"cmd":"stats"}                         guest progress; pages dirtied per
 *                                           region since the previous stats or
 *                                           since dirty logging was turned on
 *
 * Every reply is {"ok":true,...} or {"ok":false,"error":"..."}.
 */
#ifndef KVMSNAP_CONTROL_H
#define KVMSNAP_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kvm.h"

/* Longest request line, without its newline; a longer one closes the connection. */
#define CONTROL_LINE_MAX (64 * 1024)
/* Clients served at once; one more is told so and disconnected. */
#define CONTROL_MAX_CLIENTS 8

/*
 * Create, bind and listen on path. A stale socket file (nobody listening) is
 * replaced; a live one or a non-socket file is refused. Returns the
 * listening fd (close-on-exec), or -errno with *err set.
 */
int control__listen(const char *path, struct error *err);

/*
 * Serve clients on the calling (main) thread until the VM has exited, then
 * close listen_fd and unlink path. listen_fd may be -1: then only wait for the
 * VM to exit. Returns 0, or -errno after a fatal poll error; the VM has then
 * been asked to exit too, so the caller can tear it down as usual.
 */
struct control_service;
int control__serve(struct kvm *kvm, int listen_fd, const char *path,
		   const struct control_service *const *services);

#define CONTROL_MAX_FDS	     20 /* descriptors one reply can carry */
#define CONTROL_MAX_SERVICES 4

struct control_state;
struct command;

/*
 * More commands than the built-in ones, from another part of the VMM (the
 * live-snapshot session): control/ calls them without knowing them, so it
 * depends on nothing that depends on it. Commands follow control/request.h.
 */
struct control_service {
	const struct command *commands;
	unsigned int nr_commands;
	/* A connection has gone: end whatever it owned (may be NULL). */
	void (*client_gone)(struct control_state *st, int client);
	/* The server is shutting down (may be NULL). */
	void (*exit)(struct control_state *st);
};

/* What the commands remember between requests (one per server). */
struct control_state {
	struct kvm *kvm;
	uint64_t stats_ns;    /* when stats last ran; 0: never */
	uint64_t stats_pages; /* total guest progress pages then */
	int client;	      /* the connection the current request came on */
	uid_t client_uid;     /* its peer's uid (SO_PEERCRED) */
	int in_fd;	      /* a descriptor sent with the request, or -1; take it by setting -1 */
	int out_fds[CONTROL_MAX_FDS]; /* to send with the reply (SCM_RIGHTS) */
	unsigned int nr_out_fds;
	const struct control_service *services[CONTROL_MAX_SERVICES];
	unsigned int nr_services;
	/*
	 * What holds the VM's pause state and dirty log ("a snapshot"), or
	 * NULL: while set, pause, resume, dirty-log and the dirty counts of
	 * stats are refused, so no other client steals the holder's pages.
	 */
	const char *claimed_by;
	void *snap; /* the live-snapshot session's state, NULL if none */
};

/* services: NULL-terminated (may be NULL); at most CONTROL_MAX_SERVICES. */
void control__init_state(struct control_state *st, struct kvm *kvm,
			 const struct control_service *const *services);

/*
 * Handle one request line (len bytes, no newline, need not be NUL-terminated)
 * and return the reply line, without newline, in malloc'd memory; NULL only
 * when out of memory. Needs no KVM for status, digest and stats on a VM
 * without vCPUs or slots; commands that need a running VM then fail cleanly.
 */
char *control__handle_line(struct control_state *st, const char *line, size_t len);

#endif
