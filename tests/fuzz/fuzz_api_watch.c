/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_api_watch.c - libFuzzer target: a WATCH body from the API server, through the real
 * chunk callback (api_watch_chunk): framing, JSON, the event types, and each object's conversion
 * into the store (kube_snapshot_apply_object / _delete_object, the object parser the LIST and
 * the snapshot share). The source is made by kube_api_new() for a plain-HTTP URL and never
 * runs its loop, so nothing connects; the target hands it a 200 response whose body arrives in
 * pieces. Input: the first byte picks the collection (low two bits: namespaces, services,
 * endpointslices, pods) and the piece size (next three bits); the rest is the body.
 * Then every name the store reported changed is asked of the kube answer code (fuzz_kube.h).
 * Oracles: the sanitizers, no leak once the source and the store are freed, and every kube
 * answer a walkable response.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>

#include "kube/source/api.h"
#include "kube/source/api_impl.h"
#include "kube/source/auth.h"
#include "fuzz_kube.h"
#include "fuzz_util.h"

static struct event_base *fuzz_base;
static struct kube_auth *fuzz_auth;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct kube_auth_config acfg = {.api_url = "http://127.0.0.1:1"};
	char err[512];

	(void)argc;
	(void)argv;
	fuzz_quiet();
	fuzz_base = event_base_new();
	if (!fuzz_base || kube_auth_new(&fuzz_auth, &acfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "set-up failed: %s\n", err);
		abort();
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t pieces[8] = {1, 5, 17, 64, 333, 4096, 65536, 1u << 20};
	struct fuzz_kube k;
	struct kube_api *a;
	struct kube_api_config cfg = {
		.base = fuzz_base, .auth = fuzz_auth, .pods = true, .zone_text = "cluster.local"};
	struct evhttp_request *req;
	struct api_coll *c;
	size_t piece, off = 1;

	if (size < 1)
		return -1;
	fuzz_kube_init(&k);
	cfg.store = k.store;
	if (kube_api_new(&a, &cfg) < 0 || !(req = evhttp_request_new(NULL, NULL)))
		fuzz_fail("out of memory setting up");
	c = &a->coll[data[0] & 3];
	piece = pieces[(data[0] >> 2) & 7];
	/* as api.c leaves a collection whose WATCH got its 200 */
	c->state = API_WATCHING;
	c->streaming = true;
	req->response_code = 200;
	while (off < size && !c->aborted) {
		size_t n = size - off < piece ? size - off : piece;

		if (evbuffer_add(evhttp_request_get_input_buffer(req), data + off, n) < 0)
			fuzz_fail("out of memory");
		api_watch_chunk(req, c);
		if (evbuffer_get_length(evhttp_request_get_input_buffer(req)))
			fuzz_fail("api_watch_chunk left %zu bytes unread",
				  evbuffer_get_length(evhttp_request_get_input_buffer(req)));
		off += n;
	}
	evhttp_request_free(req);
	kube_api_free(a);
	fuzz_kube_ask_changed(&k);
	fuzz_kube_done(&k);
	return 0;
}
