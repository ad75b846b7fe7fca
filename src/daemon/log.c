/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * log.c - where the daemon's lines go: syslog (dnsmasq's default, facility daemon or the one
 * --log-facility names), stderr ("-") or an appended file (any other value, reopened on
 * SIGUSR2 for logrotate). Also the monotonic clock and the rate limiter for lines a peer
 * could otherwise make us print without bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kubemasq/log.h"
#include "lib/clock.h"

enum log_sink { LOG_SINK_STDERR, LOG_SINK_SYSLOG, LOG_SINK_FILE };

static struct {
	enum log_sink sink;
	bool foreground;
	int level;
	char *path;
	FILE *file;
} log_state = {.sink = LOG_SINK_STDERR, .level = LOG_INFO};

/* clang-format off */
static const struct {
	const char *name;
	int facility;
} log_facilities[] = {
	{ "auth", LOG_AUTH },     { "authpriv", LOG_AUTHPRIV }, { "cron", LOG_CRON },
	{ "daemon", LOG_DAEMON }, { "ftp", LOG_FTP },           { "kern", LOG_KERN },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },     { "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 },     { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },     { "lpr", LOG_LPR },
	{ "mail", LOG_MAIL },     { "news", LOG_NEWS },         { "syslog", LOG_SYSLOG },
	{ "user", LOG_USER },     { "uucp", LOG_UUCP },
};
/* clang-format on */

static int
log_facility_lookup(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(log_facilities); i++)
		if (strcmp(log_facilities[i].name, name) == 0)
			return log_facilities[i].facility;
	return -1;
}

static int
log_open_file(void)
{
	FILE *f = fopen(log_state.path, "ae");
	if (!f)
		return -errno;
	setvbuf(f, NULL, _IOLBF, 0);
	if (log_state.file)
		fclose(log_state.file);
	log_state.file = f;
	return 0;
}

int
log_open(const char *facility, bool foreground)
{
	const char *env = getenv("KUBEMASQ_DEBUG");

	if (env && *env && strcmp(env, "0") != 0)
		log_state.level = LOG_DEBUG;
	log_close();
	log_state.foreground = foreground;
	if (facility && strcmp(facility, "-") == 0) {
		log_state.sink = LOG_SINK_STDERR;
		return 0;
	}
	if (facility && strchr(facility, '/')) {
		log_state.path = strdup(facility);
		if (!log_state.path)
			return -ENOMEM;
		log_state.sink = LOG_SINK_FILE;
		return log_open_file();
	}
	int fac = facility ? log_facility_lookup(facility) : LOG_DAEMON;
	if (fac < 0)
		return -EINVAL;
	openlog("kubemasq", LOG_PID | LOG_NDELAY, fac);
	log_state.sink = LOG_SINK_SYSLOG;
	return 0;
}

int
log_reopen(void)
{
	if (log_state.sink != LOG_SINK_FILE)
		return 0;
	return log_open_file();
}

void
log_close(void)
{
	if (log_state.file)
		fclose(log_state.file);
	log_state.file = NULL;
	free(log_state.path);
	log_state.path = NULL;
	if (log_state.sink == LOG_SINK_SYSLOG)
		closelog();
	log_state.sink = LOG_SINK_STDERR;
}

void
log_set_level(int prio)
{
	log_state.level = prio;
}

/* stderr and file lines carry a timestamp and the name, as dnsmasq's log-facility file does. */
static void
log_write_stream(FILE *f, const char *line)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
	fprintf(f, "%s kubemasq[%d]: %s\n", stamp, (int)getpid(), line);
}

static void log_vmsg(int prio, const char *fmt, va_list ap) PRINTF_LIKE(2, 0);

static void
log_vmsg(int prio, const char *fmt, va_list ap)
{
	char line[1024];

	if (prio > log_state.level)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	switch (log_state.sink) {
	case LOG_SINK_SYSLOG:
		syslog(prio, "%s", line);
		if (log_state.foreground)
			log_write_stream(stderr, line);
		break;
	case LOG_SINK_FILE:
		if (log_state.file) {
			log_write_stream(log_state.file, line);
			break;
		}
		/* the file could not be reopened; stderr beats losing the line */
		__attribute__((fallthrough));
	case LOG_SINK_STDERR:
		log_write_stream(stderr, line);
		break;
	}
}

void
log_msg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(prio, fmt, ap);
	va_end(ap);
}

void
log_ratelimited(struct log_ratelimit *rl, int prio, const char *fmt, ...)
{
	msec_t now = clock_now_ms();
	va_list ap;

	if (rl->interval_ms && now - rl->last >= rl->interval_ms) {
		msec_t refill = (now - rl->last) / rl->interval_ms;
		rl->tokens = (unsigned)MIN((msec_t)rl->burst, rl->tokens + refill);
		rl->last = now;
	}
	if (rl->tokens == 0) {
		rl->suppressed++;
		return;
	}
	rl->tokens--;
	va_start(ap, fmt);
	log_vmsg(prio, fmt, ap);
	va_end(ap);
	if (rl->suppressed) {
		log_msg(prio, "(%lu similar messages suppressed)", rl->suppressed);
		rl->suppressed = 0;
	}
}

void
log_errbuf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
