/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_util.h - what the libFuzzer targets share: silencing the daemon's log (a target must run
 * thousands of inputs a second, and a warning per input would be most of the work), handing an
 * input to code that only reads files (a memfd, named by its /proc path, so nothing touches the
 * disk), the oracle "this is a DNS message we could send" that the DNS targets apply to every
 * answer they see, and asking the kube answer code about names a store says changed.
 *
 * A finding is an abort() with one line on stderr saying which oracle failed; libFuzzer saves
 * the input as crash-<sha1>.
 */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kubemasq/dnsmsg.h"
#include "kubemasq/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Stop with one line naming the broken promise: libFuzzer reports the abort as a finding. */
#define fuzz_fail(...)                                                                             \
	do {                                                                                       \
		fprintf(stderr, "fuzz oracle: " __VA_ARGS__);                                      \
		fputc('\n', stderr);                                                               \
		abort();                                                                           \
	} while (0)

/* Drop every log line: LOG_EMERG is 0, and lines with a priority above the level are dropped. */
static inline void
fuzz_quiet(void)
{
	log_set_level(-1);
}

/*
 * Put data[0..size) in the process's one memfd (made on first use) and write its path into
 * path[0..cap), for code that takes a file name: kubeconfig_load, kube_snapshot_load, a
 * conf-file. The file is replaced by each call. Exits on failure: without it nothing can run.
 */
static inline const char *
fuzz_file(const uint8_t *data, size_t size, char *path, size_t cap)
{
	static int fd = -1;
	size_t off = 0;

	if (fd < 0 && (fd = memfd_create("fuzz-input", MFD_CLOEXEC)) < 0) {
		perror("memfd_create");
		exit(1);
	}
	if (ftruncate(fd, 0) < 0) {
		perror("ftruncate");
		exit(1);
	}
	while (off < size) {
		ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);

		if (n <= 0) {
			perror("pwrite");
			exit(1);
		}
		off += (size_t)n;
	}
	snprintf(path, cap, "/proc/self/fd/%d", fd);
	return path;
}

/*
 * The promise every answer kubemasq sends keeps: a response (QR=1) with one question, every
 * record walkable within the length. `what` names the answer's source in the failure line.
 */
static inline void
fuzz_check_answer(const uint8_t *pkt, size_t len, const char *what)
{
	struct dnsmsg_iter it;
	struct dnsmsg_rr rr;
	int r;

	if (len < DNS_HDR_LEN)
		fuzz_fail("%s: %zu bytes, shorter than a header", what, len);
	if (!dnsmsg_qr(pkt))
		fuzz_fail("%s: QR is not set", what);
	if (dnsmsg_qdcount(pkt) > 1)
		fuzz_fail("%s: %u questions", what, dnsmsg_qdcount(pkt));
	if (dnsmsg_iter_init(&it, pkt, len) < 0)
		fuzz_fail("%s: the question cannot be walked", what);
	while ((r = dnsmsg_iter_next(&it, &rr)) == 0)
		;
	if (r != -ENOENT)
		fuzz_fail("%s: a record cannot be walked (%d)", what, r);
}
