/* proxy.c - a bounded loopback TCP proxy that misbehaves on purpose; see
 * proxy.h.
 *
 * One thread polls the listening socket and both sides of every
 * connection.  What is read from one side becomes pieces in that
 * direction's queue, each with the time it may be written; pieces are
 * written in queue order, so a direction's byte order is kept while its
 * timing is not.  The upstream connect is non-blocking, so a broker that is
 * stopped or behind a lossy link never stalls the other connections.
 *
 * State: the struct proxy, its connection table and queues; p->mu guards
 * all of it (the thread drops it only while it sleeps in poll()).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proxy.h"

#define CONNECT_TIMEOUT_MS 10000
#define TICK_MS 20
#define READ_CHUNK 16384

struct piece {
	struct piece *next;
	int64_t due;          /* monotonic ms */
	size_t len, off;
	unsigned char data[];
};

/* One direction: read from fd[i], written to fd[1 - i]. */
struct dir {
	struct piece *head, *tail;
	size_t queued;
	int64_t last_due;
	bool eof;             /* the reading side closed: close once drained */
	bool want_out;        /* the writing side was full: wait for POLLOUT */
};

struct pconn {
	bool used;
	bool connecting;      /* upstream connect in progress */
	bool silent;
	int fd[2];            /* 0: the client's side, 1: the broker's */
	struct dir d[2];      /* 0: up (client->broker), 1: down */
	int64_t connect_until;
	int64_t cut_at;       /* 0: never */
};

struct proxy {
	pthread_mutex_t mu;
	pthread_t th;
	bool stop;
	int lfd;
	int port;
	int target;
	uint64_t rng;
	int delay_ms, jitter_ms, split_max;
	int cut_min, cut_max;
	bool frozen[2];
	struct proxy_stats st;
	struct pconn conns[PROXY_MAX_CONNS];
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: a small repeatable generator. */
static uint64_t rnd(struct proxy *p)
{
	p->rng ^= p->rng >> 12;
	p->rng ^= p->rng << 25;
	p->rng ^= p->rng >> 27;
	return p->rng * 2685821657736338717ULL;
}

/* Uniform in [lo, hi]. */
static int rnd_range(struct proxy *p, int lo, int hi)
{
	if (hi <= lo)
		return lo;
	return lo + (int)(rnd(p) % (uint64_t)(hi - lo + 1));
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL, 0);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void dir_clear(struct dir *d)
{
	struct piece *pc = d->head;
	while (pc) {
		struct piece *next = pc->next;
		free(pc);
		pc = next;
	}
	memset(d, 0, sizeof *d);
}

static void close_fd(int *fd, bool reset)
{
	if (*fd < 0)
		return;
	if (reset) {
		struct linger lg = { 1, 0 };
		setsockopt(*fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	}
	close(*fd);
	*fd = -1;
}

static void conn_close(struct proxy *p, struct pconn *c, bool reset)
{
	close_fd(&c->fd[0], reset);
	close_fd(&c->fd[1], reset);
	dir_clear(&c->d[0]);
	dir_clear(&c->d[1]);
	memset(c, 0, sizeof *c);
	c->fd[0] = c->fd[1] = -1;
	if (p->st.open)
		p->st.open--;
}

/* Queue what was read in direction i, cut into pieces when asked. */
static int enqueue(struct proxy *p, struct pconn *c, int i, const unsigned char *buf, size_t n)
{
	struct dir *d = &c->d[i];
	int64_t now = now_ms();
	size_t done = 0;
	while (done < n) {
		size_t len = n - done;
		if (p->split_max > 0 && len > (size_t)p->split_max)
			len = (size_t)rnd_range(p, 1, p->split_max);
		else if (p->split_max > 0)
			len = (size_t)rnd_range(p, 1, (int)len);
		struct piece *pc = malloc(sizeof *pc + len);
		if (!pc)
			return -1;
		pc->next = NULL;
		pc->len = len;
		pc->off = 0;
		memcpy(pc->data, buf + done, len);
		int64_t due = now;
		if (p->delay_ms > 0 || p->jitter_ms > 0)
			due += rnd_range(p, p->delay_ms - p->jitter_ms, p->delay_ms + p->jitter_ms);
		if (due < d->last_due)
			due = d->last_due;   /* one TCP stream: never overtake */
		d->last_due = due;
		pc->due = due;
		if (d->tail)
			d->tail->next = pc;
		else
			d->head = pc;
		d->tail = pc;
		d->queued += len;
		done += len;
	}
	return 0;
}

/* Write the due pieces of direction i.  Returns -1 when the writing side
 * failed (the connection must go). */
static int flush(struct proxy *p, struct pconn *c, int i, int64_t now)
{
	struct dir *d = &c->d[i];
	int out = c->fd[1 - i];
	d->want_out = false;
	if (c->silent || c->connecting || p->frozen[i] || out < 0)
		return 0;
	while (d->head && d->head->due <= now) {
		struct piece *pc = d->head;
		ssize_t w = send(out, pc->data + pc->off, pc->len - pc->off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				d->want_out = true;
				return 0;
			}
			if (errno == EINTR)
				continue;
			return -1;
		}
		pc->off += (size_t)w;
		d->queued -= (size_t)w;
		if (i == 0)
			p->st.up += (uint64_t)w;
		else
			p->st.down += (uint64_t)w;
		if (pc->off < pc->len) {
			d->want_out = true;
			return 0;
		}
		d->head = pc->next;
		if (!d->head)
			d->tail = NULL;
		free(pc);
	}
	return 0;
}

static struct pconn *conn_slot(struct proxy *p)
{
	for (int i = 0; i < PROXY_MAX_CONNS; i++)
		if (!p->conns[i].used)
			return &p->conns[i];
	return NULL;
}

static void start_cut_clock(struct proxy *p, struct pconn *c, int64_t now)
{
	c->cut_at = p->cut_max > 0 ? now + rnd_range(p, p->cut_min, p->cut_max) : 0;
}

static void do_accept(struct proxy *p, int64_t now)
{
	for (;;) {
		int fd = accept(p->lfd, NULL, NULL);
		if (fd < 0)
			return;
		struct pconn *c = conn_slot(p);
		int up = c ? socket(AF_INET, SOCK_STREAM, 0) : -1;
		if (!c || up < 0) {
			close(fd);
			if (up >= 0)
				close(up);
			continue;
		}
		set_nonblock(fd);
		set_nonblock(up);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p->target) };
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int rc = connect(up, (struct sockaddr *)&sa, sizeof sa);
		if (rc != 0 && errno != EINPROGRESS) {
			close(fd);
			close(up);
			continue;
		}
		memset(c, 0, sizeof *c);
		c->used = true;
		c->fd[0] = fd;
		c->fd[1] = up;
		c->connecting = rc != 0;
		c->connect_until = now + CONNECT_TIMEOUT_MS;
		start_cut_clock(p, c, now);
		p->st.accepted++;
		p->st.open++;
	}
}

/* Read what side s has; returns -1 when the connection must go. */
static int do_read(struct proxy *p, struct pconn *c, int s)
{
	unsigned char buf[READ_CHUNK];
	ssize_t n = recv(c->fd[s], buf, sizeof buf, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n <= 0) {
		if (c->silent) {
			/* Behind a dead mapping the other side never hears of it. */
			close_fd(&c->fd[s], false);
			return c->fd[1 - s] < 0 ? -1 : 0;
		}
		c->d[s].eof = true;
		return 0;
	}
	if (c->silent)
		return 0;
	return enqueue(p, c, s, buf, (size_t)n);
}

static void conn_step(struct proxy *p, struct pconn *c, const struct pollfd *pf, int64_t now)
{
	if (c->cut_at && now >= c->cut_at && !c->silent) {
		p->st.cut++;
		conn_close(p, c, rnd(p) & 1);
		return;
	}
	if (c->connecting) {
		int err = 0;
		socklen_t len = sizeof err;
		if (pf[1].revents & (POLLOUT | POLLERR | POLLHUP)) {
			getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len);
			if (err) {
				conn_close(p, c, false);
				return;
			}
			c->connecting = false;
		} else if (now >= c->connect_until) {
			conn_close(p, c, false);
			return;
		} else {
			return;
		}
	}
	for (int s = 0; s < 2; s++) {
		if (c->fd[s] >= 0 && (pf[s].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    do_read(p, c, s) != 0) {
			conn_close(p, c, false);
			return;
		}
	}
	for (int i = 0; i < 2; i++) {
		if (flush(p, c, i, now) != 0) {
			conn_close(p, c, false);
			return;
		}
	}
	for (int i = 0; i < 2; i++) {
		if (!c->silent && c->d[i].eof && !c->d[i].head) {
			conn_close(p, c, false);
			return;
		}
	}
}

/* Events wanted on side s of c. */
static short want(const struct proxy *p, const struct pconn *c, int s)
{
	short ev = 0;
	if (c->fd[s] < 0)
		return 0;
	if (c->connecting)
		return s == 1 ? POLLOUT : 0;
	if (c->silent)
		return POLLIN;
	const struct dir *in = &c->d[s];
	if (!p->frozen[s] && !in->eof && in->queued < PROXY_MAX_QUEUED)
		ev |= POLLIN;
	if (c->d[1 - s].want_out && !p->frozen[1 - s])
		ev |= POLLOUT;
	return ev;
}

/* Milliseconds until something is due (a piece, a cut, a connect timeout). */
static int next_timeout(const struct proxy *p, int64_t now)
{
	int64_t next = now + TICK_MS;
	for (int k = 0; k < PROXY_MAX_CONNS; k++) {
		const struct pconn *c = &p->conns[k];
		if (!c->used)
			continue;
		if (c->cut_at && c->cut_at < next)
			next = c->cut_at;
		for (int i = 0; i < 2; i++)
			if (c->d[i].head && !p->frozen[i] && !c->d[i].want_out && c->d[i].head->due < next)
				next = c->d[i].head->due;
	}
	return next > now ? (int)(next - now) : 0;
}

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;
	struct pollfd pfd[1 + 2 * PROXY_MAX_CONNS];

	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		int64_t now = now_ms();
		pfd[0] = (struct pollfd){ p->lfd, POLLIN, 0 };
		for (int k = 0; k < PROXY_MAX_CONNS; k++) {
			struct pconn *c = &p->conns[k];
			for (int s = 0; s < 2; s++) {
				struct pollfd *f = &pfd[1 + 2 * k + s];
				f->fd = c->used && c->fd[s] >= 0 ? c->fd[s] : -1;
				f->events = c->used ? want(p, c, s) : 0;
				f->revents = 0;
			}
		}
		int timeout = next_timeout(p, now);
		pthread_mutex_unlock(&p->mu);
		int n = poll(pfd, 1 + 2 * PROXY_MAX_CONNS, timeout);
		pthread_mutex_lock(&p->mu);
		if (n < 0 && errno != EINTR)
			break;
		now = now_ms();
		if (n > 0 && (pfd[0].revents & POLLIN))
			do_accept(p, now);
		for (int k = 0; k < PROXY_MAX_CONNS; k++)
			if (p->conns[k].used)
				conn_step(p, &p->conns[k], &pfd[1 + 2 * k], now);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct proxy *proxy_new(int target_port, uint64_t seed)
{
	struct proxy *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	p->target = target_port;
	p->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
	for (int k = 0; k < PROXY_MAX_CONNS; k++)
		p->conns[k].fd[0] = p->conns[k].fd[1] = -1;
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof sa;
	if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    listen(p->lfd, 64) != 0 || getsockname(p->lfd, (struct sockaddr *)&sa, &len) != 0) {
		fprintf(stderr, "proxy: cannot listen: %s\n", strerror(errno));
		goto fail;
	}
	set_nonblock(p->lfd);
	p->port = ntohs(sa.sin_port);
	if (pthread_create(&p->th, NULL, proxy_main, p) != 0) {
		fprintf(stderr, "proxy: cannot start its thread\n");
		goto fail;
	}
	return p;
fail:
	if (p->lfd >= 0)
		close(p->lfd);
	pthread_mutex_destroy(&p->mu);
	free(p);
	return NULL;
}

void proxy_free(struct proxy *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->th, NULL);
	for (int k = 0; k < PROXY_MAX_CONNS; k++)
		if (p->conns[k].used)
			conn_close(p, &p->conns[k], false);
	close(p->lfd);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

int proxy_port(const struct proxy *p)
{
	return p->port;
}

void proxy_set_delay(struct proxy *p, int delay_ms, int jitter_ms, int split_max)
{
	pthread_mutex_lock(&p->mu);
	p->delay_ms = delay_ms > 0 ? delay_ms : 0;
	p->jitter_ms = jitter_ms > 0 ? (jitter_ms > p->delay_ms ? p->delay_ms : jitter_ms) : 0;
	p->split_max = split_max > 0 ? split_max : 0;
	pthread_mutex_unlock(&p->mu);
}

void proxy_set_cut(struct proxy *p, int min_ms, int max_ms)
{
	pthread_mutex_lock(&p->mu);
	p->cut_min = min_ms > 0 ? min_ms : 0;
	p->cut_max = max_ms > p->cut_min ? max_ms : p->cut_min;
	int64_t now = now_ms();
	for (int k = 0; k < PROXY_MAX_CONNS; k++)
		if (p->conns[k].used)
			start_cut_clock(p, &p->conns[k], now);
	pthread_mutex_unlock(&p->mu);
}

void proxy_silence(struct proxy *p)
{
	pthread_mutex_lock(&p->mu);
	for (int k = 0; k < PROXY_MAX_CONNS; k++) {
		struct pconn *c = &p->conns[k];
		if (!c->used || c->silent)
			continue;
		c->silent = true;
		c->cut_at = 0;
		dir_clear(&c->d[0]);
		dir_clear(&c->d[1]);
		p->st.silenced++;
	}
	pthread_mutex_unlock(&p->mu);
}

void proxy_freeze(struct proxy *p, bool up, bool down)
{
	pthread_mutex_lock(&p->mu);
	p->frozen[0] = up;
	p->frozen[1] = down;
	pthread_mutex_unlock(&p->mu);
}

void proxy_pass(struct proxy *p)
{
	pthread_mutex_lock(&p->mu);
	p->delay_ms = p->jitter_ms = p->split_max = 0;
	p->cut_min = p->cut_max = 0;
	p->frozen[0] = p->frozen[1] = false;
	for (int k = 0; k < PROXY_MAX_CONNS; k++)
		p->conns[k].cut_at = 0;
	pthread_mutex_unlock(&p->mu);
}

void proxy_stats(struct proxy *p, struct proxy_stats *out)
{
	pthread_mutex_lock(&p->mu);
	*out = p->st;
	pthread_mutex_unlock(&p->mu);
}
