/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * filestat.h - "has this file changed since I last read it?", for the files kubemasq re-reads
 * when they change on disk (the resolv-file, the kube snapshot). A once-a-second stat(2) poll,
 * as dnsmasq does for resolv.conf: cheaper and more portable than inotify, and it sees a file
 * replaced by rename (new inode) as well as one rewritten in place (mtime, size). Header-only:
 * two small functions, no state beyond what the caller keeps.
 */
#pragma once

#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

/* What a file looked like; `valid` false when stat(2) failed (no such file, no access). */
struct filestat {
	bool valid;
	struct stat st;
};

/* Look at `path` now. */
static inline void
filestat_take(struct filestat *fs, const char *path)
{
	fs->valid = stat(path, &fs->st) == 0;
}

/* Does `now` differ from `then`: appeared, vanished, another inode, another size or mtime? */
static inline bool
filestat_changed(const struct filestat *then, const struct filestat *now)
{
	if (then->valid != now->valid)
		return true;
	if (!now->valid)
		return false;
	return now->st.st_mtim.tv_sec != then->st.st_mtim.tv_sec ||
	       now->st.st_mtim.tv_nsec != then->st.st_mtim.tv_nsec ||
	       now->st.st_ino != then->st.st_ino || now->st.st_dev != then->st.st_dev ||
	       now->st.st_size != then->st.st_size;
}
