/* tpaho.c - poll(), usleep() and connect() tuned for paho; see tpaho.h.
 *
 * Global state: one flag, set once by tpaho_tune() and read by paho's
 * threads, hence atomic.
 */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tpaho.h"

#define WAIT_CAP_MS 2

static atomic_bool tuned;

void tpaho_tune(void)
{
	atomic_store(&tuned, true);
}

/* True when the code at ret (a return address) lies in the paho library
 * and the tuning is on. */
static bool tune_caller(const void *ret)
{
	Dl_info info;
	if (!atomic_load(&tuned) || !dladdr(ret, &info) || !info.dli_fname)
		return false;
	const char *base = strrchr(info.dli_fname, '/');
	base = base ? base + 1 : info.dli_fname;
	return strncmp(base, "libpaho-mqtt3", 13) == 0;
}

__attribute__((visibility("default")))
int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	if (tune_caller(__builtin_return_address(0)) &&
	    (timeout < 0 || timeout > WAIT_CAP_MS))
		timeout = WAIT_CAP_MS;
	if (timeout < 0)
		return ppoll(fds, nfds, NULL, NULL);
	struct timespec ts = { timeout / 1000, (long)(timeout % 1000) * 1000000L };
	return ppoll(fds, nfds, &ts, NULL);
}

__attribute__((visibility("default")))
int usleep(useconds_t usec)
{
	if (tune_caller(__builtin_return_address(0)) && usec > WAIT_CAP_MS * 1000u)
		usec = WAIT_CAP_MS * 1000u;
	struct timespec ts = { usec / 1000000u, (long)(usec % 1000000u) * 1000L };
	return nanosleep(&ts, NULL);
}

__attribute__((visibility("default")))
int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) &&
	    tune_caller(__builtin_return_address(0))) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	return (int)syscall(SYS_connect, fd, addr, len);
}
