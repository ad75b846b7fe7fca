#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Run one libFuzzer target on a copy of its seed corpus (the repository's corpus is never
# written) for a fixed time, and fail with the crash input printed if it finds anything.
#
#   tests/fuzz/run.sh [-t SECONDS] [-k DIR] FUZZ_EXE TARGET
#
# TARGET names tests/fuzz/corpus/TARGET and the dictionary. -t: run time, default
# $FUZZ_SECONDS or 10 (the test suite's run). -k DIR: work in DIR and keep it (the grown
# corpus, the log, any crash), for long runs and for resuming them; otherwise a temporary
# directory that is removed. The last lines printed are libFuzzer's final statistics.
set -eu

seconds=${FUZZ_SECONDS:-10}
keep=""
while getopts t:k: opt; do
	case $opt in
	t) seconds=$OPTARG ;;
	k) keep=$OPTARG ;;
	*) sed -n '3,11p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# = 2 ] || { sed -n '3,11p' "$0"; exit 2; }
exe=$1 target=$2
here=$(cd "$(dirname "$0")" && pwd)

case $target in
query | reply | tcp) dict=dns.dict ;;
api_framer | api_watch | snapshot) dict=json.dict ;;
kubeconfig) dict=kubeconfig.dict ;;
conf) dict=conf.dict ;;
*) echo "run.sh: unknown target $target" >&2; exit 2 ;;
esac

if [ -n "$keep" ]; then
	mkdir -p "$keep/corpus"
	work=$(cd "$keep" && pwd) # absolute: the conf target changes directory
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/kubemasq-fuzz-$target.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	mkdir "$work/corpus"
fi
cp "$here/corpus/$target/"* "$work/corpus/"
mkdir -p "$work/crashes"

# UBSan reports are findings too: without halt_on_error it prints and carries on.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
status=0
"$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-dict="$here/$dict" -artifact_prefix="$work/crashes/" "$work/corpus" \
	>"$work/log" 2>&1 || status=$?

# libFuzzer's final lines: the last status line (cov, ft, corp, exec/s) and the stats.
grep -E '^#[0-9]+.*(DONE|cov:)' "$work/log" | tail -n 1
grep -E '^stat::' "$work/log" || true
echo "corpus: $(ls "$work/corpus" | wc -l) inputs, $(du -sk "$work/corpus" | cut -f1) KiB"
if [ "$status" != 0 ] || [ -n "$(ls "$work/crashes")" ]; then
	echo "FINDING in $target (exit $status):"
	tail -n 60 "$work/log"
	for f in "$work/crashes"/*; do
		[ -e "$f" ] || continue
		echo "--- $f ($(wc -c <"$f") bytes):"
		od -A x -t x1z "$f" | head -n 40
	done
	exit 1
fi
