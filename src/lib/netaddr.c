/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * netaddr.c - socket addresses to text for log and statistics lines, in dnsmasq's spelling.
 */
#include <stdio.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "kubemasq/netaddr.h"

const char *
netaddr_text(const struct sockaddr_storage *ss, enum netaddr_port port, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];
	const struct sockaddr_in *v4 = (const void *)ss;
	const struct sockaddr_in6 *v6 = (const void *)ss;
	unsigned p;

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
		p = ntohs(v4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
		p = ntohs(v6->sin6_port);
	} else {
		snprintf(buf, cap, "?");
		return buf;
	}
	if (port == NETADDR_NO_PORT || (port == NETADDR_PORT_UNLESS_53 && p == 53))
		snprintf(buf, cap, "%s", ip);
	else
		snprintf(buf, cap, "%s#%u", ip, p);
	return buf;
}
