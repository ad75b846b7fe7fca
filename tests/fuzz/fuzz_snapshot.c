/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_snapshot.c - libFuzzer target: the snapshot reader (--kube-snapshot, and the parser of
 * the API's LIST bodies). The input is the file: read by kube_snapshot_load() from a memfd,
 * into a fresh store, then again into the same store (the re-read of SIGHUP: a replacement by
 * the same objects), then every name the store reported changed is asked of the kube answer
 * code (fuzz_kube.h).
 * Oracles: the sanitizers; a file that does not load the first time does not load the second
 * time either, and changes nothing; the second load of a file reports no change; every kube
 * answer is a walkable response.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube/source/snapshot.h"
#include "fuzz_kube.h"
#include "fuzz_util.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kube_snapshot_result res, res2;
	struct fuzz_kube k;
	char path[64], err[512];
	uint64_t changes;
	int a, b;

	fuzz_file(data, size, path, sizeof(path));
	fuzz_kube_init(&k);
	a = kube_snapshot_load(k.store, path, &res, err, sizeof(err));
	if (a < 0 && k.changes)
		fuzz_fail("a snapshot that did not load (%d: %s) changed %llu names", a, err,
			  (unsigned long long)k.changes);
	changes = k.changes;
	b = kube_snapshot_load(k.store, path, &res2, err, sizeof(err));
	if ((a < 0) != (b < 0))
		fuzz_fail("the same snapshot loaded with %d, then with %d", a, b);
	if (k.changes != changes)
		fuzz_fail("reading the same snapshot again changed %llu names",
			  (unsigned long long)(k.changes - changes));
	fuzz_kube_ask_changed(&k);
	fuzz_kube_done(&k);
	return 0;
}
