#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The long fuzzing run recorded in tests/fuzz/README.md: every target in turn, at the lowest
# priority, for SECONDS each, keeping each target's grown corpus, log and crashes in OUT/TARGET
# (run it again with the same OUT to resume from those corpora).
#
#   tests/fuzz/long_run.sh BUILD_DIR OUT SECONDS [TARGET...]
#
# BUILD_DIR is a build configured with -Dfuzz=enabled (README.md). OUT/summary gets one line
# per target: its exit status and wall time; OUT/TARGET.txt the final statistics.
set -u
[ $# -ge 3 ] || { sed -n '3,10p' "$0"; exit 2; }
build=$1 out=$2 seconds=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || set -- query reply tcp api_framer api_watch snapshot kubeconfig conf
mkdir -p "$out"
for t in "$@"; do
	start=$(date +%s)
	nice -n 19 "$here/run.sh" -t "$seconds" -k "$out/$t" "$build/tests/fuzz/fuzz_$t" "$t" \
		>"$out/$t.txt" 2>&1
	rc=$?
	echo "$t exit=$rc seconds=$(($(date +%s) - start))" >>"$out/summary"
done
