/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_kubeconfig.c - libFuzzer target: the kubeconfig reader (--kubeconfig). The input is the
 * file, read by kubeconfig_load() from a memfd (so relative paths in it resolve under
 * /proc/self/fd, where nothing is read: the reader only records them).
 * Oracles: the sanitizers; no leak after kubeconfig_done(); on an error the struct holds
 * nothing and the error line is set; on success a server is named (the reader refuses a
 * context without one) and the decoded *_data lengths match what is there.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube/source/kubeconfig.h"
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
	static const struct kubeconfig zero;
	struct kubeconfig kc = {0};
	char path[64], err[512] = "";
	int r;

	fuzz_file(data, size, path, sizeof(path));
	r = kubeconfig_load(&kc, path, err, sizeof(err));
	if (r < 0) {
		if (memcmp(&kc, &zero, sizeof(kc)) != 0)
			fuzz_fail("kubeconfig_load failed (%d) and left something in the struct",
				  r);
		if (!err[0])
			fuzz_fail("kubeconfig_load failed (%d) without an error line", r);
		return 0;
	}
	if (!kc.server)
		fuzz_fail("kubeconfig_load succeeded without a server");
	if ((kc.ca_data && !kc.ca_data_len) || (kc.cert_data && !kc.cert_data_len) ||
	    (kc.key_data && !kc.key_data_len))
		fuzz_fail("decoded data of length 0");
	kubeconfig_done(&kc);
	if (memcmp(&kc, &zero, sizeof(kc)) != 0)
		fuzz_fail("kubeconfig_done left something in the struct");
	return 0;
}
