/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * daemon.c - the process side of being dnsmasq-compatible: background fork, pid file,
 * dropping root after binding; and the service manager's notify socket. Each function reports
 * its failure as one line for main().
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <libgen.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "kubemasq/log.h"
#include "daemon/daemon.h"

int
daemon_detach(char *err, size_t errlen)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0) {
		snprintf(err, errlen, "cannot fork into the background: %s", strerror(errno));
		return -errno;
	}
	if (pid > 0)
		_exit(0);
	setsid();
	/* A second fork so we can never reacquire a controlling terminal. */
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "cannot fork into the background: %s", strerror(errno));
		return -errno;
	}
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		return 0; /* harmless: we open nothing relative */
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return 0;
}

/* Written to a temporary name and renamed into place, so nobody ever reads an empty file. */
int
daemon_write_pidfile(const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	FILE *f;
	int e;

	if (!path)
		return 0;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "pid file name too long: %s", path);
		return -ENAMETOOLONG;
	}
	f = fopen(tmp, "we");
	if (f) {
		bool ok = fprintf(f, "%d\n", (int)getpid()) > 0;
		ok = fclose(f) == 0 && ok;
		if (ok && rename(tmp, path) == 0)
			return 0;
	}
	e = errno;
	unlink(tmp);
	snprintf(err, errlen, "cannot write pid file %s: %s", path, strerror(e));
	return -e;
}

void
daemon_check_pidfile_removable(const char *path)
{
	char *copy = path ? strdup(path) : NULL;

	if (copy && access(dirname(copy), W_OK) < 0)
		log_warn(
			"the pid file %s will stay behind at exit: this user cannot write to its "
			"folder (give the folder to the --user, as /run/kubemasq in the packaging)",
			path);
	free(copy);
}

void
daemon_remove_pidfile(const char *path)
{
	if (path && unlink(path) < 0 && errno != ENOENT)
		log_warn("cannot remove pid file %s: %s", path, strerror(errno));
}

int
daemon_drop_privileges(const char *user, const char *group, char *err, size_t errlen)
{
	struct passwd *pw;
	gid_t gid;

	if (getuid() != 0 || !user)
		return 0;
	pw = getpwnam(user);
	if (!pw) {
		snprintf(err, errlen, "unknown user or group: %s", user);
		return -ENOENT;
	}
	gid = pw->pw_gid;
	if (group) {
		struct group *gr = getgrnam(group);
		if (!gr) {
			snprintf(err, errlen, "unknown user or group: %s", group);
			return -ENOENT;
		}
		gid = gr->gr_gid;
	}
	if (pw->pw_uid == 0 && gid == 0)
		return 0; /* -u root: stay as we are, as dnsmasq does */
	if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(pw->pw_uid) < 0) {
		snprintf(err, errlen, "cannot change to user %s: %s", user, strerror(errno));
		return -errno;
	}
	return 0;
}

/* $NOTIFY_SOCKET -> its address; returns the address length or a negative errno. */
static int
daemon_notify_address(const char *path, struct sockaddr_un *sa)
{
	size_t n = strlen(path);

	/* "vsock:..." (a VM's manager) and relative paths are not for a service on a host. */
	if ((path[0] != '/' && path[0] != '@') || n < 2 || n >= sizeof(sa->sun_path))
		return -EAFNOSUPPORT;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n);
	if (path[0] == '@')
		sa->sun_path[0] = '\0'; /* abstract: the name is the bytes after the NUL */
	return (int)(offsetof(struct sockaddr_un, sun_path) + n);
}

int
daemon_notify(const char *state)
{
	static bool warned;
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	int len, fd, r = 0;

	if (!path || !path[0])
		return 0;
	len = daemon_notify_address(path, &sa);
	if (len < 0) {
		r = len;
		goto fail;
	}
	/* Non-blocking: a manager that stopped reading must not stall the event loop. */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, (socklen_t)len) <
	    0)
		r = -errno;
	close(fd);
	if (r == 0)
		return 0;
fail:
	if (!warned)
		log_warn("cannot tell the service manager %s through NOTIFY_SOCKET=%s: %s", state,
			 path, strerror(-r));
	warned = true;
	return r;
}
