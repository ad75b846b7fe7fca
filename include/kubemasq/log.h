/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * log.h - the daemon's logging: syslog, stderr or a file (dnsmasq's --log-facility), plus a
 * rate limiter for lines that a peer could otherwise make us print without bound.
 * Pure modules never log above debug; they return errors and the caller logs once.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

#include "kubemasq/defs.h"

/* Where log lines go. `facility` is dnsmasq's --log-facility value: NULL (syslog, facility
 * daemon), a syslog facility name ("local0", "daemon", ...), "-" (stderr) or a path (a file,
 * appended to). `foreground` also copies lines to stderr when the sink is syslog, as dnsmasq -d
 * does. Returns 0, -EINVAL for an unknown facility name, or a negative errno from open(2). */
int log_open(const char *facility, bool foreground);

/* Reopen the log file (SIGUSR2), so logrotate can move it. No-op for syslog/stderr. */
int log_reopen(void);

void log_close(void);

/* Lines at or above this priority are dropped (default LOG_INFO; LOG_DEBUG with KUBEMASQ_DEBUG=1). */
void log_set_level(int prio);

void log_msg(int prio, const char *fmt, ...) PRINTF_LIKE(2, 3);

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* A token bucket per call site: at most `burst` lines, refilled at one per `interval_ms`.
 * Lines dropped are counted and reported on the next line that passes ("(N similar suppressed)"). */
struct log_ratelimit {
	msec_t interval_ms;
	unsigned burst;
	unsigned tokens;
	msec_t last;
	unsigned long suppressed;
};

/* clang-format off */
#define LOG_RATELIMIT_INIT(interval, b) { .interval_ms = (interval), .burst = (b), .tokens = (b) }
/* clang-format on */

void log_ratelimited(struct log_ratelimit *rl, int prio, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* One line of error text into err[0..errlen) for the caller to report (NULL or 0: nothing);
 * the pattern of every `char *err, size_t errlen` parameter in the tree. */
void log_errbuf(char *err, size_t errlen, const char *fmt, ...) PRINTF_LIKE(3, 4);
