// SPDX-License-Identifier: GPL-2.0
/*
 * The control socket server: listen, accept, poll and line framing. It runs
 * on the main thread and never blocks on a client: sockets are non-blocking,
 * each client has its own line buffer, and a client that does not read its
 * replies only stops being read from.
 */
#include "control/control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/util.h"

#define IN_CAP (CONTROL_LINE_MAX + 1) /* a longest line and its newline */
_Static_assert(CONTROL_LINE_MAX == 65536, "the overlong-line error names the limit");
#define ACCEPT_BACKOFF_NS (100 * 1000000ULL) /* after EMFILE and the like */

struct client {
	int fd;	   /* -1: free slot */
	int id;	   /* unique per connection, unlike fd */
	uid_t uid; /* the peer's, from SO_PEERCRED at accept */
	int in_fd; /* a descriptor that came with the request being read, or -1 */
	char *in;
	size_t in_len;
	size_t in_scan; /* in[0..in_scan) holds no newline */
	char *out;
	size_t out_len, out_off, out_cap;
	bool eof;     /* nothing more to read */
	bool closing; /* close once the output is flushed */
	bool dead;    /* the peer cannot receive: replies are dropped */
};

struct server {
	struct kvm *kvm;
	int listen_fd;
	uint64_t accept_after_ns; /* 0, or when to try accept() again */
	struct control_state st;
	int next_id;
	struct client clients[CONTROL_MAX_CLIENTS];
};

/* ---- listening ---- */

static int fill_addr(struct sockaddr_un *sa, const char *path, struct error *err)
{
	size_t len = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (!len)
		return err_set(err, -EINVAL, "the control socket path is empty");
	if (len >= sizeof(sa->sun_path))
		return err_set(err, -ENAMETOOLONG,
			       "control socket path %s is too long (%zu bytes, at most %zu)", path,
			       len, sizeof(sa->sun_path) - 1);
	memcpy(sa->sun_path, path, len);
	return 0;
}

/* 0 if nobody listens on the socket file at path, -EADDRINUSE if someone does. */
static int probe_socket(const struct sockaddr_un *sa, const char *path, struct error *err)
{
	int fd, ret, e;

	/* Non-blocking: a live listener with a full backlog must not hang us. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_errno(err, errno, "cannot create a socket");
	ret = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	e = ret ? errno : 0;
	close(fd);
	if (e == ECONNREFUSED || e == ENOENT)
		return 0;
	if (!e || e == EAGAIN || e == EINPROGRESS)
		return err_set(err, -EADDRINUSE, "control socket %s is in use by another process",
			       path);
	return err_errno(err, e, "cannot check control socket %s", path);
}

/* Refuse a live socket or a non-socket at path; remove a stale socket. */
static int clear_path(const struct sockaddr_un *sa, const char *path, struct error *err)
{
	struct stat st;
	int ret;

	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		return err_errno(err, errno, "cannot check control socket %s", path);
	}
	if (!S_ISSOCK(st.st_mode))
		return err_set(err, -EEXIST, "%s exists and is not a socket", path);
	ret = probe_socket(sa, path, err);
	if (ret)
		return ret;
	if (unlink(path) && errno != ENOENT)
		return err_errno(err, errno, "cannot remove stale control socket %s", path);
	pr_debug("removed stale control socket %s", path);
	return 0;
}

int control__listen(const char *path, struct error *err)
{
	struct sockaddr_un sa;
	mode_t old_mask;
	int fd, ret;

	ret = fill_addr(&sa, path, err);
	if (!ret)
		ret = clear_path(&sa, path, err);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_errno(err, errno, "cannot create the control socket");
	/* Owner only from the start: bind() creates the file under the umask. */
	old_mask = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_mask);
	if (ret) {
		if (errno == EADDRINUSE)
			ret = err_set(err, -EADDRINUSE,
				      "control socket %s is in use by another process", path);
		else
			ret = err_errno(err, errno, "cannot bind control socket %s", path);
		close(fd);
		return ret;
	}
	/* Owner only: the socket can stop the VM and read its memory digests. */
	if (listen(fd, 16)) {
		ret = err_errno(err, errno, "cannot listen on control socket %s", path);
		close(fd);
		unlink(path);
		return ret;
	}
	return fd;
}

/* ---- clients ---- */

static bool has_output(const struct client *c)
{
	return c->out_off < c->out_len;
}

static bool can_read(const struct client *c)
{
	return !c->eof && !c->closing && (c->dead || !has_output(c));
}

static void client_drop(struct server *srv, struct client *c)
{
	unsigned int k;

	/* Whatever the connection owned ends with it: a snapshot session is aborted. */
	for (k = 0; k < srv->st.nr_services; k++)
		if (srv->st.services[k]->client_gone)
			srv->st.services[k]->client_gone(&srv->st, c->id);
	if (c->fd >= 0)
		close(c->fd);
	if (c->in_fd >= 0)
		close(c->in_fd);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->in_fd = -1;
}

static int client_queue(struct client *c, const char *s, size_t len)
{
	size_t need;

	if (c->dead)
		return 0;
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	need = c->out_len + len + 1;
	if (need > c->out_cap) {
		char *p = realloc(c->out, need);

		if (!p)
			return -ENOMEM;
		c->out = p;
		c->out_cap = need;
	}
	memcpy(c->out + c->out_len, s, len);
	c->out[c->out_len + len] = '\n';
	c->out_len += len + 1;
	return 0;
}

static void client_flush(struct client *c)
{
	while (has_output(c) && !c->dead) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			/* Gone (EPIPE, ECONNRESET): still run what it already sent. */
			c->dead = true;
			c->out_off = c->out_len = 0;
			return;
		}
		c->out_off += n;
	}
}

static void client_read(struct client *c)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = {.iov_base = c->in + c->in_len, .iov_len = IN_CAP - c->in_len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	do {
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n > 0) {
		/* Keep the first descriptor a request brings (a stream's pipe); close the rest. */
		unsigned int nr = c->in_fd >= 0;

		take_fds(&msg, &c->in_fd, 1, &nr);
	}
	if (n > 0)
		c->in_len += n;
	else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
		c->eof = true; /* a partial last line is dropped */
}

/*
 * Send a reply that carries descriptors. The queue is empty here (requests are
 * handled only then), so the descriptors go with the first bytes; what does
 * not fit the socket at once is queued as usual.
 */
static bool client_send_fds(struct client *c, const char *reply, const int *fds, unsigned int nr)
{
	char cbuf[CMSG_SPACE(sizeof(int) * CONTROL_MAX_FDS)] = {0};
	size_t len = strlen(reply);
	struct iovec iov[2] = {{(void *)reply, len}, {(void *)"\n", 1}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2, .msg_control = cbuf};
	struct cmsghdr *cm;
	ssize_t n;

	msg.msg_controllen = CMSG_SPACE(sizeof(int) * nr);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * nr);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * nr);
	do {
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return false;
	if ((size_t)n < len + 1) {
		const char *rest = (size_t)n < len ? reply + n : "";

		client_queue(c, rest, strlen(rest));
	}
	return true;
}

static void client_reply(struct client *c, const char *reply)
{
	static const char oom[] = "{\"ok\":false,\"error\":\"out of memory\"}";

	if ((reply && !client_queue(c, reply, strlen(reply))) || !client_queue(c, oom, strlen(oom)))
		return;
	c->closing = true;
}

/* Handle complete lines for as long as the replies go out at once. */
static void client_process(struct server *srv, struct client *c)
{
	while ((c->dead || !has_output(c)) && !c->closing) {
		char *nl = memchr(c->in + c->in_scan, '\n', c->in_len - c->in_scan);
		size_t used;
		char *reply;

		if (!nl) {
			c->in_scan = c->in_len;
			if (c->in_len < IN_CAP)
				return;
			client_reply(c, "{\"ok\":false,\"error\":\"request line longer than "
					"65536 bytes; closing the connection\"}");
			c->closing = true;
			client_flush(c);
			return;
		}
		used = nl - c->in + 1;
		srv->st.client = c->id;
		srv->st.client_uid = c->uid;
		srv->st.in_fd = c->in_fd;
		reply = control__handle_line(&srv->st, c->in, used - 1);
		/* A descriptor the request did not take goes with it. */
		if (srv->st.in_fd >= 0)
			close(srv->st.in_fd);
		srv->st.in_fd = c->in_fd = -1;
		if (!reply || !srv->st.nr_out_fds ||
		    !client_send_fds(c, reply, srv->st.out_fds, srv->st.nr_out_fds))
			client_reply(c, reply);
		free(reply);
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
		c->in_scan = 0;
		client_flush(c);
	}
}

static bool client_done(const struct client *c)
{
	if (has_output(c) && !c->dead)
		return false;
	if (c->closing)
		return true;
	/* After EOF, lines still buffered wait only for output to drain. */
	return c->eof && !memchr(c->in, '\n', c->in_len);
}

static void client_service(struct server *srv, struct client *c, short revents)
{
	if (has_output(c))
		client_flush(c);
	if (can_read(c) && (revents & (POLLIN | POLLHUP | POLLERR)))
		client_read(c);
	client_process(srv, c);
	if (client_done(c))
		client_drop(srv, c);
}

static struct client *client_slot(struct server *srv)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(srv->clients); i++)
		if (srv->clients[i].fd < 0)
			return &srv->clients[i];
	return NULL;
}

static void reject(int fd)
{
	static const char msg[] = "{\"ok\":false,\"error\":\"too many control clients "
				  "(at most 8 at once); try again later\"}\n";

	/* Best effort: a tiny reply to a fresh socket does not block. */
	if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		pr_debug("control: cannot tell a client it was refused: %s", strerror(errno));
	close(fd);
}

/* Who is on the other end; (uid_t)-1, which no check accepts, if unknown. */
static uid_t peer_uid(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || len != sizeof(cred))
		return (uid_t)-1;
	return cred.uid;
}

static void accept_clients(struct server *srv)
{
	int i, fd;

	for (i = 0; i < 16; i++) {
		struct client *c;

		fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				pr_warn("control socket: cannot accept a client: %s",
					strerror(errno));
				srv->accept_after_ns = now_ns() + ACCEPT_BACKOFF_NS;
			}
			return; /* EAGAIN, ECONNABORTED, EINTR: nothing (more) to do now */
		}
		c = client_slot(srv);
		if (!c) {
			reject(fd);
			continue;
		}
		c->in = malloc(IN_CAP);
		if (!c->in) {
			pr_warn("control socket: out of memory for a client");
			close(fd);
			continue;
		}
		c->fd = fd;
		c->in_fd = -1;
		c->id = ++srv->next_id;
		c->uid = peer_uid(fd);
	}
}

/* ---- the loop ---- */

static short client_events(const struct client *c)
{
	short ev = 0;

	if (has_output(c) && !c->dead)
		ev |= POLLOUT;
	if (can_read(c))
		ev |= POLLIN;
	return ev;
}

static int serve_once(struct server *srv)
{
	struct pollfd pfd[2 + CONTROL_MAX_CLIENTS];
	struct client *owner[2 + CONTROL_MAX_CLIENTS];
	int n = 0, timeout = -1, ret, i;
	uint64_t now;
	size_t k;

	pfd[n++] = (struct pollfd){.fd = srv->kvm->exit_efd, .events = POLLIN};
	if (srv->kvm->exit_efd < 0)
		timeout = 100; /* nothing to wake us: look now and then */
	if (srv->listen_fd >= 0 && srv->accept_after_ns) {
		now = now_ns();
		if (now >= srv->accept_after_ns)
			srv->accept_after_ns = 0;
		else
			timeout = (srv->accept_after_ns - now) / 1000000 + 1;
	}
	pfd[n++] =
	    (struct pollfd){.fd = srv->accept_after_ns ? -1 : srv->listen_fd, .events = POLLIN};
	for (k = 0; k < ARRAY_SIZE(srv->clients); k++) {
		struct client *c = &srv->clients[k];

		if (c->fd < 0)
			continue;
		owner[n] = c;
		pfd[n++] = (struct pollfd){.fd = c->fd, .events = client_events(c)};
	}
	ret = poll(pfd, n, timeout);
	if (ret < 0)
		return errno == EINTR ? 0 : -errno;
	/* exit_efd stays readable and is not ours to consume: the caller checks. */
	if (pfd[1].revents & POLLIN)
		accept_clients(srv);
	for (i = 2; i < n; i++)
		if (pfd[i].revents)
			client_service(srv, owner[i], pfd[i].revents);
	return 0;
}

static void serve_cleanup(struct server *srv, const char *path)
{
	size_t k;

	for (k = 0; k < ARRAY_SIZE(srv->clients); k++) {
		struct client *c = &srv->clients[k];

		if (c->fd < 0)
			continue;
		client_flush(c); /* e.g. the reply to quit, if it is still queued */
		client_drop(srv, c);
	}
	if (srv->listen_fd >= 0) {
		close(srv->listen_fd);
		if (path && unlink(path) && errno != ENOENT)
			pr_warn("cannot remove control socket %s: %s", path, strerror(errno));
	}
}

int control__serve(struct kvm *kvm, int listen_fd, const char *path,
		   const struct control_service *const *services)
{
	struct server srv = {.kvm = kvm, .listen_fd = listen_fd};
	size_t k;
	int ret = 0;

	control__init_state(&srv.st, kvm, services);
	for (k = 0; k < ARRAY_SIZE(srv.clients); k++)
		srv.clients[k].fd = -1;
	/* Accepted sockets inherit nothing, but accept() must never block. */
	if (listen_fd >= 0)
		fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);

	while (!kvm__has_exited(kvm)) {
		ret = serve_once(&srv);
		if (ret) {
			/* The exit reason is what `run` prints as it ends. */
			kvm__request_exit(kvm, EXIT_VMM_ERROR,
					  "the control socket failed: poll: %s", strerror(-ret));
			break;
		}
	}
	serve_cleanup(&srv, path);
	for (k = 0; k < srv.st.nr_services; k++)
		if (srv.st.services[k]->exit)
			srv.st.services[k]->exit(&srv.st);
	return ret;
}
