/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * daemon.h - becoming a daemon the dnsmasq way: fork into the background unless -k/-d, write
 * the pid file, and after the sockets are bound drop from root to --user/--group; and telling
 * a service manager (systemd's Type=notify) when it is ready and when it stops.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Fork into the background: the parent exits 0 once the child is running. Returns 0 in the
 * child, a negative errno with one line in err on failure (the parent never returns). */
int daemon_detach(char *err, size_t errlen);

/* Write our pid to `path` (NULL: nothing). Returns 0 or a negative errno with err set. */
int daemon_write_pidfile(const char *path, char *err, size_t errlen);

/* After dropping privileges: warn now if daemon_remove_pidfile() will not be allowed later. */
void daemon_check_pidfile_removable(const char *path);

/* Remove the pid file; logs a warning if that is no longer permitted. NULL-safe. */
void daemon_remove_pidfile(const char *path);

/* When running as root, become `user` (and `group`, or the user's primary group); dnsmasq's
 * -u/-g. No-op for other users. Returns 0 or a negative errno with err set. */
int daemon_drop_privileges(const char *user, const char *group, char *err, size_t errlen);

/*
 * Send one state line ("READY=1", "STOPPING=1", ...) to the service manager: a datagram to the
 * AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace), the
 * sd_notify(3) protocol without libsystemd. Never blocks. Returns 0 when sent or when
 * NOTIFY_SOCKET is unset (no manager is listening), a negative errno otherwise; the first failure
 * is also logged, since nobody else would notice why the manager kept waiting.
 */
int daemon_notify(const char *state);
