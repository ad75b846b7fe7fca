/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * server.h - the DNS front end: UDP and TCP listeners on every listen address (or the
 * wildcard addresses, answering from the address each query came to), UDP in batches
 * (recvmmsg/sendmmsg), TCP with 2-byte framing, pipelining, answers in completion order, a cap
 * on connections, flow control (reading pauses while a client's answers go unread), answers
 * after a half-close, and an idle timeout that only progress puts off.
 */
#pragma once

#include <stddef.h>

struct event_base;
struct config;
struct query_engine;
struct stats;

struct server;

/*
 * Open and bind every listening socket (before privileges are dropped) and register them
 * with `base`. Returns NULL with one line in err on failure (address in use, no such
 * interface, ...). All arguments are borrowed and must outlive the server.
 */
struct server *server_new(struct event_base *base, const struct config *cfg,
			  struct query_engine *qe, struct stats *stats, char *err, size_t errlen);

/*
 * Stop taking queries (the end of --shutdown-delay): TCP listeners close, so new connections
 * are refused; UDP sockets are no longer read, and where a listener has a socket of its own
 * for sending (server.c, server_udp_sender) its receiving socket closes. What is in flight
 * still gets its answer: the UDP sending sockets and the open TCP connections stay until
 * server_free(). NULL-safe; a second call does nothing.
 */
void server_stop_listening(struct server *s);

/* Close every listener and connection. NULL-safe. Pending TCP answers are dropped. */
void server_free(struct server *s);
