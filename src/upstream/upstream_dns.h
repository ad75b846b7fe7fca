/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * upstream_dns.h - the network forwarder (dnsmasq's --server): UDP with a random ID per query on
 * a random socket of a pool on random source ports, each reused for a few queries (RFC 5452;
 * upstream_dns_impl.h has the numbers), replies accepted only from the server's address and
 * port with the same ID and question, retry on the next server on timeout, TCP when the reply
 * comes truncated, back-off for servers that keep failing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kubemasq/upstream.h"

struct config_sockaddr;

enum upstream_dns_order {
	UPSTREAM_DNS_FASTEST = 0, /* default: the server with the lowest smoothed RTT first */
	UPSTREAM_DNS_STRICT,	  /* --strict-order: in configuration order */
	UPSTREAM_DNS_ALL,	  /* --all-servers: ask all at once, first answer wins */
};

struct upstream_dns_args {
	const struct config_sockaddr *servers; /* borrowed; copied by create() */
	size_t n_servers;
	enum upstream_dns_order order;
	unsigned edns_packet_max; /* advertised to servers, and the UDP receive size */
	uint16_t query_port;	  /* 0 = random ports from [min_port, max_port] */
	uint16_t min_port, max_port;
	unsigned timeout_ms; /* whole query: SERVFAIL after this */
	unsigned retry_ms;   /* one try: then the next server */
	bool log_queries;    /* "forwarded NAME to ADDR" */
	bool bogus_priv;     /* default servers only: private reverse zones -> NXDOMAIN */
	bool domain_needed;  /* default servers only: plain names -> NXDOMAIN */
};

/* resolve() returns 0 (accepted), -ENXIO (bogus-priv / domain-needed: answer NXDOMAIN without
 * forwarding), -ELOOP (every server loops back to us: answer at once, see loop_detect.h),
 * -ENOMEM or -EMFILE (no socket: answer SERVFAIL). */
extern const struct upstream_ops upstream_dns_ops;

/*
 * --dns-loop-detect (loop_detect.h): the forwarder's server_addr and set_looping operations
 * (their contract is in kubemasq/upstream.h), exported for the unit tests. `u` must be a
 * forwarder.
 */
int upstream_dns_server_addr(struct upstream *u, size_t i, struct sockaddr_storage *ss,
			     socklen_t *len);
size_t upstream_dns_set_looping(struct upstream *u, const struct sockaddr_storage *ss, bool looping,
				bool *all_loop);
