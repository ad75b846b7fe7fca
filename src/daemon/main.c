/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * main.c - wiring: argv -> configuration -> upstreams and router -> cache -> query engine ->
 * listeners -> (fork, pid file, drop privileges) -> event loop, and the signals dnsmasq users
 * know: SIGTERM/SIGINT exit 0 (after --shutdown-delay: shutdown.h), SIGUSR1 statistics, SIGUSR2
 * reopen the log, SIGHUP re-read the resolv-file and the snapshot, clear the cache and probe the
 * servers for loops (--dns-loop-detect: loop_detect.h). Signals are handled from the first
 * moment: one that arrives during the start-up (a long snapshot load, the fork) is remembered
 * and acted on once the event loop runs. Startup errors print one line and exit 1.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "kubemasq/log.h"
#include "lib/cache.h"
#include "lib/config.h"
#include "lib/router.h"
#include "lib/stats.h"
#include "upstream/local_records.h"
#include "upstream/upstream_kube.h"
#include "daemon/daemon.h"
#include "daemon/loop_detect.h"
#include "daemon/metrics_http.h"
#include "daemon/query.h"
#include "daemon/report.h"
#include "daemon/resolv.h"
#include "daemon/server.h"
#include "daemon/setup.h"
#include "daemon/shutdown.h"

static const int main_sigs[] = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP};

struct main_ctx {
	struct config cfg;
	struct event_base *base;
	struct router *router;
	struct resolv_watch *resolv;
	struct cache *cache;
	struct query_engine *qe;
	struct loop_detect *loop; /* NULL without --dns-loop-detect */
	struct server *server;
	struct shutdown *shutdown;
	struct metrics *metrics; /* NULL without --metrics-address */
	struct stats stats;
	struct event *sig[ARRAY_SIZE(main_sigs)];
	int exit_signal;
};

static void
main_upstream_reload(struct upstream *u, void *ctx UNUSED)
{
	upstream_reload(u);
}

/* The parser checks record options with the local records' own reader (ldns). */
static const struct config_hooks main_config_hooks = {
	.check_record = local_records_check_option,
};

/* The SIGUSR1 report's lines go to the log. */
static void
main_report_line(void *ctx UNUSED, const char *line)
{
	log_info("%s", line);
}

static void
main_signal(evutil_socket_t sig, short what UNUSED, void *arg)
{
	struct main_ctx *m = arg;

	switch (sig) {
	case SIGUSR1:
		report_write(&(struct report_sources){.stats = &m->stats,
						      .cache = m->cache,
						      .cache_size = m->cfg.cache_size,
						      .dump_cache = m->cfg.log_queries,
						      .router = m->router},
			     main_report_line, NULL);
		break;
	case SIGUSR2:
		if (log_reopen() < 0)
			log_err("cannot reopen log file %s", m->cfg.log_facility);
		break;
	case SIGHUP:
		resolv_watch_reload(m->resolv);
		loop_detect_probe(m->loop);
		router_foreach(m->router, main_upstream_reload, NULL);
		local_records_reload(m->router);
		if (m->cache) {
			cache_clear(m->cache);
			log_info("cleared cache");
		}
		break;
	default:
		if (!shutdown_stopping(m->shutdown)) {
			daemon_notify("STOPPING=1");
			m->exit_signal = (int)sig;
		}
		shutdown_begin(m->shutdown, sig == SIGINT ? "SIGINT" : "SIGTERM");
	}
}

/* Signals received before libevent's handlers replaced main_early_signal(): the start-up
 * (setup, the first snapshot load, the fork) runs before the loop, and the default action of
 * each of these signals would end the process. The fork copies them into the child. */
static volatile sig_atomic_t main_early[ARRAY_SIZE(main_sigs)];

static void
main_early_signal(int sig)
{
	for (size_t i = 0; i < ARRAY_SIZE(main_sigs); i++)
		if (main_sigs[i] == sig)
			main_early[i] = 1;
}

/* The first thing main() does: from here on no signal of ours is fatal. */
static void
main_early_signals(void)
{
	struct sigaction sa = {.sa_handler = main_early_signal};

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(main_sigs); i++)
		sigaction(main_sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/*
 * libevent's handlers replace the early ones signal by signal (evsignal_add() installs its own
 * with sigaction), so each signal is caught by exactly one of the two; the ones the early
 * handler caught are then made active, and the loop acts on them in its first round.
 */
static int
main_signals(struct main_ctx *m)
{
	for (size_t i = 0; i < ARRAY_SIZE(main_sigs); i++) {
		m->sig[i] = evsignal_new(m->base, main_sigs[i], main_signal, m);
		if (!m->sig[i] || event_add(m->sig[i], NULL) < 0)
			return -ENOMEM;
	}
	for (size_t i = 0; i < ARRAY_SIZE(main_sigs); i++)
		if (main_early[i]) {
			main_early[i] = 0;
			event_active(m->sig[i], EV_SIGNAL, 1);
		}
	return 0;
}

static struct cache *
main_cache(const struct config *cfg)
{
	struct cache_limits lim = {
		.max_bytes = cfg->cache_bytes,
		.max_entries = cfg->cache_size_set ? cfg->cache_size : 0,
		.min_ttl = cfg->min_cache_ttl,
		.max_ttl = cfg->max_cache_ttl,
		.neg_ttl = cfg->neg_ttl,
		.max_neg_ttl = cfg->max_neg_ttl,
		.no_negcache = cfg->no_negcache,
		.max_client_ttl = cfg->max_ttl,
		.stale = cfg->use_stale_cache,
		.stale_max = cfg->stale_cache_max,
		.stale_ttl = cfg->stale_ttl,
		.refresh = cfg->prefetch,
	};

	if (cfg->cache_size_set && cfg->cache_size == 0)
		return NULL; /* --cache-size=0: no cache, as dnsmasq */
	return cache_new(&lim);
}

/*
 * libevent's default base. EVENT_BASE_FLAG_PRECISE_TIMER would make epoll use a timerfd, which
 * costs a timerfd_settime() before every epoll_wait(): one more syscall per recvmmsg batch on
 * the hit path (counted: tests/bench/README.md, "No precise timers"). The coarse clock it
 * leaves may fire a timer a tick early; upstream_dns.c re-arms such timers, so
 * --upstream-timeout still holds.
 */
static struct event_base *
main_event_base(void)
{
	return event_base_new();
}

/* The HTTP endpoint, once the DNS listeners are bound: /ready means "listening" from then on. */
static int
main_metrics(struct main_ctx *m, char *err, size_t errlen)
{
	struct metrics_sources src = {
		.cfg = &m->cfg,
		.stats = &m->stats,
		.cache = m->cache,
		.router = m->router,
		.shutdown = m->shutdown,
	};

	if (!m->cfg.metrics_address)
		return 0;
	m->metrics = metrics_new(m->base, &src, err, errlen);
	return m->metrics ? 0 : -1;
}

/* --dns-loop-detect: probes once the loop runs (a probe sent before we listen could not come
 * back), again on SIGHUP and whenever the resolv-file's servers change. */
static int
main_loop_detect(struct main_ctx *m, char *err, size_t errlen)
{
	if (!m->cfg.dns_loop_detect)
		return 0;
	m->loop = loop_detect_new(m->base, &m->cfg, m->router, &m->stats);
	if (!m->loop) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	query_engine_set_loop_detect(m->qe, m->loop);
	resolv_watch_on_swap(m->resolv, loop_detect_probe, m->loop);
	loop_detect_probe(m->loop);
	return 0;
}

/* Everything up to a bound, listening server; returns 0 or -1 with err set. */
static int
main_setup(struct main_ctx *m, char *err, size_t errlen)
{
	struct upstream *defaults = NULL;

	if (!m->cfg.no_resolv && config_read_resolv(&m->cfg, m->cfg.resolv_file, err, errlen) < 0) {
		log_warn("%s", err); /* dnsmasq carries on and retries on SIGHUP */
		err[0] = '\0';
	}
	m->base = main_event_base();
	if (!m->base) {
		snprintf(err, errlen, "cannot create the event loop");
		return -1;
	}
	m->router = setup_router(m->base, &m->cfg, &defaults, err, errlen);
	if (!m->router)
		return -1;
	m->resolv = resolv_watch_new(m->base, &m->cfg, m->router, defaults);
	if (!m->resolv) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	m->cache = main_cache(&m->cfg);
	if (!m->cache && !(m->cfg.cache_size_set && m->cfg.cache_size == 0)) {
		snprintf(err, errlen, "cannot create the cache");
		return -1;
	}
	m->qe = query_engine_new(m->base, &m->cfg, m->router, m->cache, &m->stats);
	if (!m->qe) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	setup_hooks(m->router, query_engine_hooks(m->qe));
	m->server = server_new(m->base, &m->cfg, m->qe, &m->stats, err, errlen);
	if (!m->server || main_loop_detect(m, err, errlen) < 0)
		return -1;
	m->shutdown = shutdown_new(m->base, &m->cfg, m->server, m->qe);
	if (!m->shutdown) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return main_metrics(m, err, errlen);
}

static int
main_become_daemon(struct main_ctx *m, char *err, size_t errlen)
{
	if (!m->cfg.keep_in_foreground && !m->cfg.no_daemon && daemon_detach(err, errlen) < 0)
		return -1;
	if (daemon_write_pidfile(m->cfg.pid_file, err, errlen) < 0)
		return -1;
	if (daemon_drop_privileges(m->cfg.user, m->cfg.group, err, errlen) < 0)
		return -1;
	daemon_check_pidfile_removable(m->cfg.pid_file);
	return main_signals(m) < 0 ? -1 : 0;
}

static void
main_teardown(struct main_ctx *m)
{
	if (m->router)
		setup_hooks(m->router, NULL); /* no upstream may reach the engine from here on */
	metrics_free(m->metrics);	      /* it reads the engine, the cache and the router */
	shutdown_free(m->shutdown);
	query_engine_free(m->qe); /* first: it releases what waits on TCP connections */
	loop_detect_free(m->loop);
	server_free(m->server);
	resolv_watch_free(m->resolv); /* before the router: retired forwarders */
	router_free(m->router);
	cache_free(m->cache);
	for (size_t i = 0; i < ARRAY_SIZE(m->sig); i++)
		if (m->sig[i])
			event_free(m->sig[i]);
	if (m->base)
		event_base_free(m->base);
	config_done(&m->cfg);
	log_close();
}

int
main(int argc, char **argv)
{
	static struct main_ctx m;
	char err[1024] = "";

	main_early_signals();
	/* The cache allocates its slabs in chunks of up to 64 KiB; above this threshold glibc maps
	 * each chunk on its own and returns it on free, so RSS follows the byte budget instead of
	 * keeping freed chunks of one size class that another class cannot reuse (measured under a
	 * flood of new names: tests/bench/README.md, "The mmap threshold"). */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024);
	int r = config_parse(&m.cfg, argc, argv, &main_config_hooks, stdout, err, sizeof(err));

	if (r != 0) {
		if (r < 0)
			fprintf(stderr, "kubemasq: %s\n", err);
		config_done(&m.cfg);
		return r < 0 ? 1 : 0;
	}
	if (m.cfg.test_only) {
		fprintf(stderr, "kubemasq: syntax check OK.\n");
		config_done(&m.cfg);
		return 0;
	}
	if (log_open(m.cfg.log_facility, m.cfg.no_daemon) < 0) {
		fprintf(stderr, "kubemasq: bad --log-facility: %s\n", m.cfg.log_facility);
		config_done(&m.cfg);
		return 1;
	}
	if (main_setup(&m, err, sizeof(err)) < 0 || main_become_daemon(&m, err, sizeof(err)) < 0) {
		fprintf(stderr, "kubemasq: %s\n", err);
		log_err("%s", err);
		main_teardown(&m);
		return 1;
	}
	if (!m.cache)
		log_info("started, version %s cache disabled", KUBEMASQ_VERSION);
	else if (m.cfg.cache_size_set)
		log_info("started, version %s cachesize %u, cache budget %llu bytes",
			 KUBEMASQ_VERSION, m.cfg.cache_size, (unsigned long long)m.cfg.cache_bytes);
	else
		log_info("started, version %s cache budget %llu bytes", KUBEMASQ_VERSION,
			 (unsigned long long)m.cfg.cache_bytes);
	daemon_notify("READY=1");
	event_base_dispatch(m.base);
	log_info("exiting on receipt of %s", m.exit_signal == SIGINT ? "SIGINT" : "SIGTERM");
	daemon_remove_pidfile(m.cfg.pid_file);
	main_teardown(&m);
	return 0;
}
