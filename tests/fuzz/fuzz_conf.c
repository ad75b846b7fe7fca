/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_conf.c - libFuzzer target: conf-file lines (--conf-file), through config_parse() as main()
 * calls it: `kubemasq --conf-file=FILE`, the input being FILE (a memfd). Every line goes through
 * dnsmasq's quoting and comments to the option table's value parsers, then the whole
 * configuration is checked as at start-up.
 * The working directory is an empty temporary directory, and an input naming anything under
 * /proc, /dev or /sys is skipped: conf-file= and conf-dir= lines open what they name, and the
 * target must not read its own pipes or devices (a FIFO would block, /dev/zero never ends a
 * line). Other files of the machine are fair game: they are read, never written.
 * Oracles: the sanitizers; no leak after config_done(); an error comes with its line of text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/config.h"
#include "upstream/local_records.h"
#include "fuzz_util.h"

static FILE *fuzz_null;

/* as main(): record options are checked by the local records' reader */
static const struct config_hooks fuzz_conf_hooks = {
	.check_record = local_records_check_option,
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/kubemasq-fuzz-conf.XXXXXX";

	(void)argc;
	(void)argv;
	fuzz_quiet();
	fuzz_null = fopen("/dev/null", "w");
	if (!fuzz_null || !mkdtemp(dir) || chdir(dir) < 0 || rmdir(dir) < 0) {
		perror("set-up");
		abort();
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const skip[] = {"/proc", "/dev", "/sys"};
	char path[64], arg[96], err[1024] = "";
	char *argv[] = {"kubemasq", arg, NULL};
	struct config cfg;
	int r;

	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (memmem(data, size, skip[i], strlen(skip[i])))
			return -1;
	fuzz_file(data, size, path, sizeof(path));
	snprintf(arg, sizeof(arg), "--conf-file=%s", path);
	r = config_parse(&cfg, 2, argv, &fuzz_conf_hooks, fuzz_null, err, sizeof(err));
	if (r < 0 && !err[0])
		fuzz_fail("config_parse failed (%d) without an error line", r);
	config_done(&cfg);
	return 0;
}
