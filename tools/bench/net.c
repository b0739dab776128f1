/* net.c - non-blocking TCP connections on one level-triggered epoll loop.
 *
 * Each connection has an input and an output buffer.  Reads drain the
 * socket into the input buffer and hand it to on_data in one call; writes
 * queued by callbacks are only marked dirty and go out in one write() per
 * connection at the end of the turn (bloop_flush), so a burst of acks and
 * publishes costs one system call.  EPOLLOUT is asked for only while a
 * connect is under way or the kernel refused part of a write.
 *
 * Thread rules: a loop and its connections belong to one thread.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "bench.h"

#define MAX_EVENTS   256
#define IN_MIN       4096
#define IN_MAX       (4u << 20)  /* larger than any packet we expect */
#define READ_ROUNDS  8           /* reads per connection per turn at most */

int bloop_init(struct bloop *l)
{
	memset(l, 0, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->now = mono_ns();
	return l->epfd < 0 ? -1 : 0;
}

void bloop_free(struct bloop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
	free(l->dirty);
	l->dirty = NULL;
	l->ndirty = l->dirty_cap = 0;
}

static int set_events(struct bconn *c, int op)
{
	struct epoll_event ev = { .events = EPOLLIN | (c->want_out ? EPOLLOUT : 0u),
				  .data.ptr = c };
	return epoll_ctl(c->loop->epfd, op, c->fd, &ev);
}

int bconn_open(struct bconn *c, struct bloop *l, const struct bconn_ops *ops, int port)
{
	c->loop = l;
	c->ops = ops;
	c->in_len = c->out_len = c->out_off = 0;
	c->dirty = false;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
		int e = errno;
		close(c->fd);
		c->fd = -1;
		errno = e;
		return -1;
	}
	c->connecting = true;
	c->want_out = true;
	if (set_events(c, EPOLL_CTL_ADD) != 0) {
		int e = errno;
		close(c->fd);
		c->fd = -1;
		errno = e;
		return -1;
	}
	l->open++;
	return 0;
}

static bool grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return true;
	size_t ncap = *cap ? *cap : IN_MIN;
	while (ncap < need)
		ncap *= 2;
	uint8_t *nb = realloc(*buf, ncap);
	if (!nb)
		return false;
	*buf = nb;
	*cap = ncap;
	return true;
}

uint8_t *bconn_reserve(struct bconn *c, size_t n)
{
	if (c->out_off && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (!grow(&c->out, &c->out_cap, c->out_len + n))
		return NULL;
	return c->out + c->out_len;
}

void bconn_commit(struct bconn *c, size_t n)
{
	c->out_len += n;
	if (!c->dirty && c->fd >= 0) {
		struct bloop *l = c->loop;
		if (l->ndirty == l->dirty_cap) {
			size_t ncap = l->dirty_cap ? l->dirty_cap * 2 : 64;
			struct bconn **nd = realloc(l->dirty, ncap * sizeof(*nd));
			if (!nd)
				return; /* stays queued; goes out with the next commit */
			l->dirty = nd;
			l->dirty_cap = ncap;
		}
		l->dirty[l->ndirty++] = c;
		c->dirty = true;
	}
}

void bconn_consume(struct bconn *c, size_t n)
{
	if (n >= c->in_len) {
		c->in_len = 0;
		return;
	}
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

void bconn_close(struct bconn *c, int err)
{
	if (c->fd < 0)
		return;
	epoll_ctl(c->loop->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->connecting = false;
	c->want_out = false;
	c->out_len = c->out_off = 0;
	c->loop->open--;
	if (c->ops && c->ops->on_closed)
		c->ops->on_closed(c, err);
}

void bconn_free(struct bconn *c)
{
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
	c->in_cap = c->out_cap = c->in_len = c->out_len = c->out_off = 0;
}

int bconn_flush(struct bconn *c)
{
	if (c->fd < 0 || c->connecting)
		return 0;
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->want_out) {
				c->want_out = true;
				set_events(c, EPOLL_CTL_MOD);
			}
			return 0;
		}
		bconn_close(c, n < 0 ? errno : EPIPE);
		return -1;
	}
	c->out_off = c->out_len = 0;
	if (c->want_out && !c->connecting) {
		c->want_out = false;
		set_events(c, EPOLL_CTL_MOD);
	}
	return 0;
}

void bloop_flush(struct bloop *l)
{
	/* flush_one may close a connection, whose callback may queue more */
	for (size_t i = 0; i < l->ndirty; i++) {
		struct bconn *c = l->dirty[i];
		c->dirty = false;
		if (c->fd >= 0 && !c->connecting)
			bconn_flush(c);
	}
	l->ndirty = 0;
}

static void handle_connect(struct bconn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err) {
		bconn_close(c, err);
		return;
	}
	c->connecting = false;
	if (c->ops->on_connected)
		c->ops->on_connected(c);
	if (c->fd >= 0 && c->out_len == 0 && c->want_out) {
		c->want_out = false;
		set_events(c, EPOLL_CTL_MOD);
	}
}

static void handle_read(struct bconn *c)
{
	int err = 0;
	bool got = false;
	for (int round = 0; round < READ_ROUNDS && c->fd >= 0; round++) {
		if (c->in_cap - c->in_len < IN_MIN / 2 && c->in_cap < IN_MAX)
			grow(&c->in, &c->in_cap, c->in_cap ? c->in_cap * 2 : IN_MIN);
		if (c->in_cap == c->in_len)
			break; /* full: parse first, the rest waits in the kernel */
		ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n > 0) {
			c->in_len += (size_t)n;
			got = true;
			if ((size_t)n < c->in_cap - (c->in_len - (size_t)n))
				break; /* drained */
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		err = n == 0 ? ECONNRESET : errno;
		break;
	}
	if (got && c->ops->on_data)
		c->ops->on_data(c);
	if (err)
		bconn_close(c, err);
}

static void dispatch(struct epoll_event *ev)
{
	struct bconn *c = ev->data.ptr;
	if (c->fd < 0)
		return;
	if (c->connecting) {
		if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			handle_connect(c);
		return;
	}
	if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		handle_read(c);
	if (c->fd >= 0 && (ev->events & EPOLLOUT))
		bconn_flush(c);
}

int bloop_turn(struct bloop *l, int timeout_ms)
{
	struct epoll_event evs[MAX_EVENTS];
	bloop_flush(l);
	int n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout_ms);
	l->now = mono_ns();
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	for (int i = 0; i < n; i++)
		dispatch(&evs[i]);
	bloop_flush(l);
	return n;
}
