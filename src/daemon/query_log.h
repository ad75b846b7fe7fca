/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * query_log.h - the lines --log-queries writes about one query (query.c calls these only when
 * the option is on), in dnsmasq's wording.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct config;
struct dnsmsg_query;

/* --log-queries=extra: the prefix of every line about one query, dnsmasq's "SERIAL ADDR/PORT "
 * (the serial ties a query's lines together), into buf. */
void query_log_prefix(char *buf, size_t cap, uint32_t serial, const struct sockaddr_storage *peer);

/* "PREFIXquery[TYPE] NAME from ADDR"; prefix is --log-queries=extra's or "". */
void query_log_query(const char *prefix, const struct dnsmsg_query *dq,
		     const struct sockaddr_storage *peer);

/* One log line per answer record of `pkt`, in dnsmasq's "reply NAME is VALUE" wording (in
 * zone-file form with --log-queries=extra), or the rcode / NODATA when there are none. `what` is
 * "reply", "cached" or "cached-stale"; `prefix` is --log-queries=extra's or "". */
void query_log_reply(const struct config *cfg, const char *prefix, const char *what,
		     const uint8_t *pkt, size_t len, uint16_t qtype);
