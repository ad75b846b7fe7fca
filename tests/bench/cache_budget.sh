#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Does --cache-bytes hold under a flood? kubemasq with a 64M budget takes millions of unique
# names that all get positive answers (a wildcard upstream: the harsher case, every answer is
# cached until the budget evicts it); its resident memory is sampled during and after the
# flood. Measures and reports; asserts nothing.
#
#   tests/bench/cache_budget.sh [-n NAMES] [-b BYTES] [-i SECONDS] [-f 'FLAGS']
#
#   -n  unique names in the flood (default 5000000)
#   -b  --cache-bytes (default 64M; K/M/G suffixes as kubemasq takes them)
#   -i  sampling interval in seconds (default 3)
#   -f  extra kubemasq flags (default --cache-size=10000000)
#
# knotd serves bench.test with "* A 10.0.0.1"; kubemasq (release build, built now) forwards to
# it. VmRSS of the empty daemon is read, then dnsperf sends every name once (-n 1 -c 4 -q 200).
# Every interval a line "sample t=S rss_kib=.. cache_bytes=.. entries=.. evictions=.." (VmRSS
# and SIGUSR1's "kubemasq cache:" line); at the end
#   cache_budget names=N budget_bytes=.. rss_empty_kib=.. rss_peak_kib=.. (VmHWM)
#     rss_final_kib=.. limit_kib=.. peak_over_limit=.. cache_bytes_max_seen=.. entries=..
#     completed=.. lost=.. qps=.. rcodes=..
# limit_kib = (budget + empty RSS) * 1.10, the aim: the peak stays under it (ratio < 1).
set -u
. "$(dirname "$0")/lib.sh"

N=5000000 BUDGET=64M IV=3 FLAGS="--cache-size=10000000"
while getopts "n:b:i:f:" o; do case $o in
	n) N=$OPTARG;; b) BUDGET=$OPTARG;; i) IV=$OPTARG;; f) FLAGS=$OPTARG;;
	*) sed -n '9,14p' "$0"; exit 2;; esac; done
budget_bytes=$(numfmt --from=iec "$BUDGET") || exit 2

bench_build || exit 1
bench_knotd 1 wildcard || exit 1
awk -v n="$N" -v s="$RANDOM" 'BEGIN{for(i=1;i<=n;i++) printf "f%d-%d.bench.test A\n", s, i}' \
	> "$BENCH_W/q.txt"
# shellcheck disable=SC2086
bench_kubemasq --cache-bytes="$BUDGET" $FLAGS || exit 1
sleep 0.5
rss0=$(bench_rss_kib "$BENCH_PID")
dnsperf -s 127.0.0.1 -p "$BENCH_PORT" -d "$BENCH_W/q.txt" -n 1 -c 4 -q 200 -t 10 \
	>"$BENCH_W/dnsperf.txt" 2>&1 &
dp=$!
BENCH_PIDS+=("$dp")
start=$(date +%s) maxb=0 maxr=0
sample() {
	local rss bytes entries ev
	rss=$(bench_rss_kib "$BENCH_PID") || return 1
	read -r bytes _ entries < <(bench_cache_line "$BENCH_PID" "$BENCH_W/kubemasq.log")
	ev=$(grep 'kubemasq cache:' "$BENCH_W/kubemasq.log" | tail -1 | sed -E 's/.*evictions ([0-9]+).*/\1/')
	[ "${bytes:-0}" -le "$maxb" ] || maxb=$bytes
	[ "$rss" -le "$maxr" ] || maxr=$rss
	echo "sample t=$(($(date +%s) - start)) rss_kib=$rss cache_bytes=$bytes entries=$entries evictions=$ev"
	ENTRIES=$entries
}
while kill -0 "$dp" 2>/dev/null; do
	sleep "$IV"
	kill -0 "$BENCH_PID" 2>/dev/null || { echo "kubemasq died: $(tail -3 "$BENCH_W/kubemasq.log")"; exit 1; }
	sample
done
wait "$dp"
sleep 1
sample
hwm=$(bench_hwm_kib "$BENCH_PID")
rss1=$(bench_rss_kib "$BENCH_PID")
read -r ndone lost qps rc < <(bench_dnsperf_summary < "$BENCH_W/dnsperf.txt")
awk -v n="$N" -v b="$budget_bytes" -v r0="$rss0" -v hwm="$hwm" -v r1="$rss1" -v mb="$maxb" \
	-v e="${ENTRIES:-0}" -v d="$ndone" -v l="$lost" -v q="$qps" -v rc="$rc" -v ms="$maxr" 'BEGIN {
	limit = (b / 1024 + r0) * 1.10
	printf "cache_budget names=%d budget_bytes=%d rss_empty_kib=%d rss_peak_kib=%d" \
	       " rss_peak_sampled_kib=%d rss_final_kib=%d limit_kib=%d peak_over_limit=%.3f" \
	       " cache_bytes_max_seen=%d entries=%d completed=%d lost=%d qps=%d rcodes=%s\n",
	       n, b, r0, hwm, ms, r1, limit, hwm / limit, mb, e, d, l, q, rc }'
