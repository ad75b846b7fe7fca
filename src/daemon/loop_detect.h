/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * loop_detect.h - dnsmasq's --dns-loop-detect: find the servers that send our queries back to
 * us. A pod with dnsPolicy: Default on a node whose resolv.conf names systemd-resolved's
 * 127.0.0.53 forwards to its own loopback, which in the pod's network namespace is kubemasq
 * itself; without this every name forwarded there waits for the whole upstream timeout.
 *
 * At start, on SIGHUP and whenever the server list changes (resolv.c), every forwarder server
 * in the router is sent one probe: a TXT query for "<16 hex digits>.test", the digits a random
 * 64-bit number of its own (dnsmasq's form, "<hex>.test", with twice its 32 bits, so that no
 * client can guess a probe, and a dnsmasq on the way never takes ours for its own). A probe
 * that arrives at our own listener (query.c asks loop_detect_seen() on the miss path while a
 * round of probes is out) is dropped, as dnsmasq drops it, and its server is taken out of
 * service in every forwarder (the set_looping operation) and logged with what to do; a
 * forwarder whose servers all loop answers REFUSED at once. A round ends after
 * --upstream-timeout; a server found looping before stays out of service during the next
 * round and comes back if its probe did not return by the end of it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct config;
struct router;
struct stats;
struct loop_detect;

/* The length of a probe's wire name: \x10, 16 hex digits, \x04 "test", the root. */
#define LOOP_DETECT_NAME_LEN 23

/* Write the probe name of `uid` (uncompressed wire form, lower case) into out. Pure. */
void loop_detect_name(uint64_t uid, uint8_t out[LOOP_DETECT_NAME_LEN]);

/* Is the lower-cased wire name `name` (len bytes) a probe name? Then its uid in *uid. Pure. */
bool loop_detect_parse(const uint8_t *name, size_t len, uint64_t *uid);

/* Everything borrowed: it outlives the detector. `stats` gets the loop counters
 * (loop_probes_back, servers_looping). NULL on ENOMEM. */
struct loop_detect *loop_detect_new(struct event_base *base, const struct config *cfg,
				    struct router *router, struct stats *stats);

/* NULL-safe. Servers taken out of service stay so (the forwarders are freed next). */
void loop_detect_free(struct loop_detect *ld);

/* Start a round of probes from the event loop, soon (a round under way is replaced). The
 * signature of a callback, so that resolv.c can call it after a swap. NULL-safe. */
void loop_detect_probe(void *ld);

/*
 * The query engine's question for a TXT query of lower-cased wire name `name` that missed the
 * cache: true when it is one of the current round's probes come back (the caller drops it:
 * answering would send it round the loop again), false for any other query. Costs one
 * comparison while no round is out.
 */
bool loop_detect_seen(struct loop_detect *ld, const uint8_t *name, size_t len);
