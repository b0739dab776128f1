/* tpaho.h - make paho.mqtt.c quick enough for a test suite.
 *
 * Paho 1.3.12's receive thread waits in poll() for up to one second on a
 * snapshot of its sockets, then sleeps 100 ms with usleep() when nothing was
 * ready; a socket opened meanwhile (a new connection) is not watched until
 * both return.  A connect took up to 2 s and destroying the last client
 * 100-200 ms, which makes a suite that connects hundreds of times crawl.
 * Paho also never sets TCP_NODELAY, so a packet written while the client's
 * previous small one (say a PUBACK) is unacknowledged waits for the peer's
 * delayed ACK: 40 ms for each admin command of these tests.
 *
 * tpaho.c therefore defines poll(), usleep() and connect() for the test
 * process.  Once tpaho_tune() was called (tclient_new() does), a call made
 * from inside the paho library has its wait capped at a few milliseconds
 * (paho's loops re-check their state, so this costs only wake-ups) and a
 * TCP socket it connects gets TCP_NODELAY.  Every other call, and every call
 * before tpaho_tune(), behaves as the C library's.  Note for tests of a
 * paho-based library: in a process that also uses tclient, that library's
 * paho is tuned as well.
 */
#ifndef MQIM_TPAHO_H
#define MQIM_TPAHO_H

/* Switch the tuning on for the rest of the process; idempotent. */
void tpaho_tune(void);

#endif
