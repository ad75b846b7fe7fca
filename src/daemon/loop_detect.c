/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * loop_detect.c - the probes of --dns-loop-detect (loop_detect.h). A round: collect the
 * distinct server addresses of every forwarder in the router, keep out of service those known
 * to loop, send each address one probe from a socket of the round's own (the kernel picks its
 * port; replies are never read: a server that answers is not looping, and the socket closes
 * with the round), then wait --upstream-timeout for probes to come back through
 * loop_detect_seen(). Servers are remembered by address, not by forwarder, since resolv.c
 * replaces the forwarder of the default servers whenever the resolv-file changes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "kubemasq/defs.h"
#include "kubemasq/dnsmsg.h"
#include "kubemasq/hash.h"
#include "kubemasq/log.h"
#include "kubemasq/netaddr.h"
#include "kubemasq/upstream.h"
#include "lib/config.h"
#include "lib/router.h"
#include "lib/stats.h"
#include "daemon/loop_detect.h"

/* Distinct server addresses probed in one round, and remembered as looping: far more than any
 * configuration names; beyond it servers go unprobed, and the log says so. */
#define LOOP_DETECT_MAX 256

struct loop_detect_server {
	struct sockaddr_storage ss;
	socklen_t len;
	uint64_t uid;	/* its probe in the current round */
	bool came_back; /* ... arrived at our listener */
};

struct loop_detect {
	struct event_base *base;
	const struct config *cfg;
	struct router *router;
	struct stats *stats;
	struct event *kick;   /* a round from the loop (loop_detect_probe) */
	struct event *window; /* the end of the round */
	int fd[2];	      /* the round's sockets: IPv4, IPv6; -1 when not open */
	bool round;	      /* probes are out: loop_detect_seen() looks */
	bool overflow_logged;
	struct loop_detect_server probes[LOOP_DETECT_MAX];
	size_t n_probes;
	struct loop_detect_server looping[LOOP_DETECT_MAX]; /* uid unused */
	size_t n_looping;
	char text[NETADDR_TEXT_MAX]; /* a server's address for the log */
};

static const char loop_detect_hex[] = "0123456789abcdef";

void
loop_detect_name(uint64_t uid, uint8_t out[LOOP_DETECT_NAME_LEN])
{
	out[0] = 16;
	for (int i = 0; i < 16; i++)
		out[1 + i] = (uint8_t)loop_detect_hex[(uid >> (60 - 4 * i)) & 0xf];
	memcpy(out + 17, "\4test", 6); /* with the root label */
}

bool
loop_detect_parse(const uint8_t *name, size_t len, uint64_t *uid)
{
	uint64_t v = 0;

	if (len != LOOP_DETECT_NAME_LEN || name[0] != 16 || memcmp(name + 17, "\4test", 6) != 0)
		return false;
	for (int i = 0; i < 16; i++) {
		const char *d = memchr(loop_detect_hex, name[1 + i], 16);

		if (!d)
			return false;
		v = v << 4 | (uint64_t)(d - loop_detect_hex);
	}
	*uid = v;
	return true;
}

/* --- the servers --- */

/* Same family, address and port (an IPv6 scope is part of the address). */
static bool
loop_detect_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;

	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return a->ss_family == AF_INET6 && a6->sin6_port == b6->sin6_port &&
	       a6->sin6_scope_id == b6->sin6_scope_id &&
	       memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0;
}

static struct loop_detect_server *
loop_detect_find(struct loop_detect_server *v, size_t n, const struct sockaddr_storage *ss)
{
	for (size_t i = 0; i < n; i++)
		if (loop_detect_same(&v[i].ss, ss))
			return &v[i];
	return NULL;
}

struct loop_detect_mark {
	const struct sockaddr_storage *ss;
	bool looping;
	size_t matched;	 /* servers at that address in the router's forwarders */
	size_t all_loop; /* forwarders left without a server */
};

static void
loop_detect_mark_one(struct upstream *u, void *arg)
{
	struct loop_detect_mark *mk = arg;
	bool all = false;

	mk->matched += upstream_set_looping(u, mk->ss, mk->looping, &all);
	mk->all_loop += all;
}

/* Take the servers at `ss` out of service in every forwarder, or put them back. */
static struct loop_detect_mark
loop_detect_mark(struct loop_detect *ld, const struct sockaddr_storage *ss, bool looping)
{
	struct loop_detect_mark mk = {.ss = ss, .looping = looping};

	router_foreach(ld->router, loop_detect_mark_one, &mk);
	return mk;
}

static void
loop_detect_forget(struct loop_detect *ld, struct loop_detect_server *l)
{
	*l = ld->looping[--ld->n_looping];
	ld->stats->servers_looping = ld->n_looping;
}

static const char *
loop_detect_text(struct loop_detect *ld, const struct sockaddr_storage *ss)
{
	return netaddr_text(ss, NETADDR_PORT, ld->text, sizeof(ld->text));
}

/* What to tell the operator: systemd-resolved's stub is the usual culprit. */
static const char *
loop_detect_advice(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *v4 = (const void *)ss;

	/* 127.0.0.53 and 127.0.0.54, the stub and its proxy-only twin */
	if (ss->ss_family == AF_INET && v4->sin_port == htons(53) &&
	    (v4->sin_addr.s_addr == htonl(0x7f000035) || v4->sin_addr.s_addr == htonl(0x7f000036)))
		return "If this is systemd-resolved's stub on a node running kubemasq on port 53 "
		       "(or in a pod with dnsPolicy: Default), point --resolv-file (or the "
		       "kubelet's --resolv-conf) at /run/systemd/resolve/resolv.conf";
	return "Remove it from --server and the resolv-file, or make it forward elsewhere";
}

/* Our probe to `p` came back. */
static void
loop_detect_found(struct loop_detect *ld, struct loop_detect_server *p)
{
	struct loop_detect_mark mk;

	p->came_back = true;
	if (loop_detect_find(ld->looping, ld->n_looping, &p->ss)) {
		log_info("server %s still loops back to kubemasq (dns-loop-detect): not used",
			 loop_detect_text(ld, &p->ss));
		return;
	}
	if (ld->n_looping < LOOP_DETECT_MAX) {
		ld->looping[ld->n_looping++] = *p;
		ld->stats->servers_looping = ld->n_looping;
	}
	mk = loop_detect_mark(ld, &p->ss, true);
	log_warn("server %s loops back to kubemasq itself (dns-loop-detect): not used. %s",
		 loop_detect_text(ld, &p->ss), loop_detect_advice(&p->ss));
	if (mk.all_loop)
		log_warn("every server of %zu forwarder%s loops: the names routed there get "
			 "REFUSED at once until the servers change (SIGHUP, the resolv-file)",
			 mk.all_loop, mk.all_loop == 1 ? "" : "s");
}

/* --- a round --- */

struct loop_detect_collect {
	struct loop_detect *ld;
	size_t skipped;
};

static void
loop_detect_collect_one(struct upstream *u, void *arg)
{
	struct loop_detect_collect *c = arg;
	struct loop_detect *ld = c->ld;
	struct loop_detect_server s = {0};

	for (size_t i = 0; upstream_server_addr(u, i, &s.ss, &s.len) == 0; i++) {
		if (loop_detect_find(ld->probes, ld->n_probes, &s.ss))
			continue;
		if (ld->n_probes == LOOP_DETECT_MAX) {
			c->skipped++;
			continue;
		}
		ld->probes[ld->n_probes++] = s;
	}
}

static void
loop_detect_close(struct loop_detect *ld)
{
	for (int i = 0; i < 2; i++) {
		if (ld->fd[i] >= 0)
			close(ld->fd[i]);
		ld->fd[i] = -1;
	}
}

/* Send the probe of `p`; 0 or a negative errno (it cannot come back then). */
static int
loop_detect_send(struct loop_detect *ld, struct loop_detect_server *p)
{
	int fam = p->ss.ss_family == AF_INET6 ? 1 : 0;
	uint8_t name[LOOP_DETECT_NAME_LEN], pkt[64];
	struct dnsmsg_question q = {.qname = name,
				    .qname_len = sizeof(name),
				    .qtype = DNS_TYPE_TXT,
				    .qclass = DNS_CLASS_IN};
	uint64_t rnd[2];
	int len;

	hash_random_key(rnd);
	p->uid = rnd[0];
	p->came_back = false;
	loop_detect_name(p->uid, name);
	len = dnsmsg_build_query(pkt, sizeof(pkt), (uint16_t)rnd[1], &q, false, false, 0);
	if (len < 0)
		return len;
	if (ld->fd[fam] < 0)
		ld->fd[fam] = socket(fam ? AF_INET6 : AF_INET,
				     SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ld->fd[fam] < 0)
		return -errno;
	if (sendto(ld->fd[fam], pkt, (size_t)len, 0, (const struct sockaddr *)&p->ss, p->len) < 0)
		return -errno;
	return 0;
}

/* Servers known to loop that no forwarder names any more are forgotten; the others stay out
 * of service while this round probes them again. */
static void
loop_detect_recheck(struct loop_detect *ld)
{
	for (size_t i = 0; i < ld->n_looping;) {
		struct loop_detect_server *l = &ld->looping[i];

		if (!loop_detect_find(ld->probes, ld->n_probes, &l->ss)) {
			loop_detect_forget(ld, l);
			continue;
		}
		loop_detect_mark(ld, &l->ss, true);
		i++;
	}
}

static void
loop_detect_round(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct loop_detect *ld = arg;
	struct loop_detect_collect c = {.ld = ld};
	struct timeval tv = {.tv_sec = ld->cfg->upstream_timeout_ms / 1000,
			     .tv_usec = (long)(ld->cfg->upstream_timeout_ms % 1000) * 1000};
	size_t sent = 0;
	int rc;

	loop_detect_close(ld); /* a round under way ends here: its probes are forgotten */
	ld->n_probes = 0;
	router_foreach(ld->router, loop_detect_collect_one, &c);
	if (c.skipped && !ld->overflow_logged) {
		log_warn("dns-loop-detect: more than %d servers, %zu not probed", LOOP_DETECT_MAX,
			 c.skipped);
		ld->overflow_logged = true;
	}
	loop_detect_recheck(ld);
	for (size_t i = 0; i < ld->n_probes; i++) {
		rc = loop_detect_send(ld, &ld->probes[i]);
		if (rc == 0)
			sent++;
		else
			log_debug("dns-loop-detect: cannot probe %s: %s",
				  loop_detect_text(ld, &ld->probes[i].ss), strerror(-rc));
	}
	ld->round = ld->n_probes > 0;
	if (ld->round) {
		log_info("dns-loop-detect: probing %zu server%s", sent, sent == 1 ? "" : "s");
		event_base_update_cache_time(ld->base);
		evtimer_add(ld->window, &tv);
	}
}

/* The round is over: servers known to loop whose probe did not come back are back. */
static void
loop_detect_window(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct loop_detect *ld = arg;

	for (size_t i = 0; i < ld->n_looping;) {
		struct loop_detect_server *l = &ld->looping[i];
		struct loop_detect_server *p = loop_detect_find(ld->probes, ld->n_probes, &l->ss);

		if (p && p->came_back) {
			i++;
			continue;
		}
		loop_detect_mark(ld, &l->ss, false);
		log_info("server %s no longer loops back to kubemasq (dns-loop-detect): used again",
			 loop_detect_text(ld, &l->ss));
		loop_detect_forget(ld, l);
	}
	ld->round = false;
	ld->n_probes = 0;
	loop_detect_close(ld);
}

bool
loop_detect_seen(struct loop_detect *ld, const uint8_t *name, size_t len)
{
	uint64_t uid;

	if (!ld->round || !loop_detect_parse(name, len, &uid))
		return false;
	for (size_t i = 0; i < ld->n_probes; i++) {
		struct loop_detect_server *p = &ld->probes[i];

		if (p->uid != uid)
			continue;
		ld->stats->loop_probes_back++;
		if (!p->came_back)
			loop_detect_found(ld, p);
		return true;
	}
	return false;
}

void
loop_detect_probe(void *arg)
{
	struct loop_detect *ld = arg;

	if (ld)
		event_active(ld->kick, EV_TIMEOUT, 1);
}

struct loop_detect *
loop_detect_new(struct event_base *base, const struct config *cfg, struct router *router,
		struct stats *stats)
{
	struct loop_detect *ld = calloc(1, sizeof(*ld));

	if (!ld)
		return NULL;
	ld->base = base;
	ld->cfg = cfg;
	ld->router = router;
	ld->stats = stats;
	ld->fd[0] = ld->fd[1] = -1;
	ld->kick = event_new(base, -1, 0, loop_detect_round, ld);
	ld->window = evtimer_new(base, loop_detect_window, ld);
	if (!ld->kick || !ld->window) {
		loop_detect_free(ld);
		return NULL;
	}
	return ld;
}

void
loop_detect_free(struct loop_detect *ld)
{
	if (!ld)
		return;
	if (ld->kick)
		event_free(ld->kick);
	if (ld->window)
		event_free(ld->window);
	loop_detect_close(ld);
	free(ld);
}
