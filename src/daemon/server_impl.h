/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * server_impl.h - what the two halves of the front end share: server.c (listeners, UDP) and
 * server_tcp.c (TCP connections). Not for other modules: they see server.h only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/util.h>

#include "kubemasq/log.h"

struct evconnlistener;
struct server_tcp_conn;

#define SERVER_MAX_LISTENERS 64

struct server_udp {
	struct server *srv;
	int fd;	     /* receives; watched by the event loop */
	int send_fd; /* answers leave here: see server_udp_sender() */
	bool wildcard;
	bool can_wait; /* blocking, with a receive timeout: server_udp_waitable() */
	struct event *ev;
};

struct server {
	struct event_base *base;
	const struct config *cfg;
	struct query_engine *qe;
	struct stats *stats;
	struct server_udp udp[SERVER_MAX_LISTENERS];
	size_t n_udp;
	struct evconnlistener *tcp[SERVER_MAX_LISTENERS];
	size_t n_tcp;
	struct server_tcp_conn *conns; /* open connections */
	unsigned n_conns;
	struct timeval tcp_idle_tv;	/* --tcp-idle-timeout */
	const struct timeval *tcp_idle; /* the same as a libevent common timeout, if it has one */
	struct log_ratelimit rl_tcp_cap;
	struct log_ratelimit rl_send;
};

/* Set up what every TCP connection shares (the idle deadline); from server_new(). */
void server_tcp_init(struct server *s);

/* The listener's callback: take connection `fd` (closed here when refused or on failure). */
void server_tcp_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		       void *arg);

/* Close every connection; the engine must have released every pending query before. */
void server_tcp_close_all(struct server *s);
