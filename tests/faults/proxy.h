/* proxy.h - a bounded loopback TCP proxy that misbehaves on purpose.
 *
 * The fault suite puts it between libmqim clients and the broker to make
 * what this kernel's missing `tc netem` would make, and a few things netem
 * cannot: delays with jitter, writes split into small pieces, connections
 * cut at random moments, links that go silent without closing (a dead NAT
 * mapping), and frozen directions.
 *
 * It listens on 127.0.0.1 (a free port) and forwards every accepted
 * connection to 127.0.0.1:target.  One thread runs it (poll), started by
 * proxy_new() and joined by proxy_free().  Every control function may be
 * called from any thread; a change applies to the connections open now and
 * to later ones, except proxy_silence(), which only hits the open ones.
 *
 * Bounds: at most PROXY_MAX_CONNS connections at once (more are refused by
 * closing them), at most PROXY_MAX_QUEUED bytes waiting per direction of a
 * connection (past it the proxy stops reading that side: TCP backpressure).
 *
 * Byte order within one direction of one connection is always kept (it is
 * one TCP stream); what varies is when each piece arrives, so the two
 * directions, and different connections, are delivered in orders that a
 * plain loopback never produces.
 */
#ifndef MQIM_FAULT_PROXY_H
#define MQIM_FAULT_PROXY_H

#include <stdbool.h>
#include <stdint.h>

#define PROXY_MAX_CONNS  64
#define PROXY_MAX_QUEUED (256 * 1024)

struct proxy;

struct proxy_stats {
	unsigned accepted;     /* connections accepted */
	unsigned cut;          /* connections closed by proxy_cut() */
	unsigned silenced;     /* connections made silent */
	unsigned open;         /* connections open now (silent ones included) */
	uint64_t up, down;     /* bytes forwarded client->broker, broker->client */
};

/* Listen on a free port of 127.0.0.1 and forward to 127.0.0.1:target_port.
 * seed makes the random choices repeatable.  NULL on error (with a message
 * on stderr).  Free with proxy_free(). */
struct proxy *proxy_new(int target_port, uint64_t seed);

/* Close every connection, stop the thread, free p.  NULL is allowed. */
void proxy_free(struct proxy *p);

/* The port clients connect to; this function can't fail. */
int proxy_port(const struct proxy *p);

/* Hold each piece read for delay_ms +- jitter_ms (uniform) before writing
 * it on.  split_max > 0 also cuts what is read into pieces of 1..split_max
 * bytes, each written separately with its own delay.  0, 0, 0: no delay. */
void proxy_set_delay(struct proxy *p, int delay_ms, int jitter_ms, int split_max);

/* Give every connection a lifetime drawn uniformly from [min_ms, max_ms]
 * (from now for open ones, from accept for new ones); when it ends both
 * sides are closed, half of the time with a TCP reset.  0, 0: no cuts. */
void proxy_set_cut(struct proxy *p, int min_ms, int max_ms);

/* Every connection open now goes silent: whatever either side sends is
 * read and thrown away, nothing is written, nothing is closed (when one
 * side closes, the other is left open, half-open as behind a NAT whose
 * mapping died).  New connections are forwarded normally. */
void proxy_silence(struct proxy *p);

/* Stop (true) or resume (false) forwarding client->broker (up) and
 * broker->client (down), on every connection, open or new.  Nothing is
 * read from a frozen side: bytes wait in the kernel, then go on. */
void proxy_freeze(struct proxy *p, bool up, bool down);

/* Back to plain forwarding: no delay, no cuts, nothing frozen (silent
 * connections stay silent). */
void proxy_pass(struct proxy *p);

/* Counters so far; this function can't fail. */
void proxy_stats(struct proxy *p, struct proxy_stats *out);

#endif
