/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * netaddr.h - socket addresses as dnsmasq prints them in its logs: "192.0.2.1", "::1#5353".
 */
#pragma once

#include <stddef.h>
#include <sys/socket.h>

#define NETADDR_TEXT_MAX 64 /* an IPv6 address, '#' and a port, with room to spare */

enum netaddr_port {
	NETADDR_NO_PORT,	/* "IP" (clients in "query[A] x from IP") */
	NETADDR_PORT,		/* "IP#PORT" (server statistics) */
	NETADDR_PORT_UNLESS_53, /* "IP" for port 53, else "IP#PORT" ("forwarded x to ...") */
};

/* Writes the text into buf (cap >= NETADDR_TEXT_MAX) and returns buf; "?" for an address
 * family other than IPv4 and IPv6. */
const char *netaddr_text(const struct sockaddr_storage *ss, enum netaddr_port port, char *buf,
			 size_t cap);
