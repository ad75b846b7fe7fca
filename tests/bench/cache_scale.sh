#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Does the cache-hit path slow down as the cache grows? Hit throughput per CPU-second of
# kubemasq with a small set of cached names against a large one, measured in the same run,
# rounds interleaved. Measures and reports; asserts nothing.
#
#   tests/bench/cache_scale.sh [-s SMALL] [-l LARGE] [-t SECONDS] [-r ROUNDS] [-f 'FLAGS']
#
#   -s  cached names of the small instance (default 10000)
#   -l  cached names of the large instance (default 1000000)
#   -t  seconds per measurement (default 8)     -r  rounds (default 2)
#   -f  extra kubemasq flags (default --cache-size=2000000, or 2*LARGE if more)
#
# One knotd serves bench.test with h1..hLARGE (one A each). Two kubemasq (release build, built
# now) forward to it; each is warmed with its names once (dnsperf -n 1; the warm-up's rcodes
# and SIGUSR1's entry count are printed so a warm-up that did not cache everything shows),
# then queried in a loop over the same names for SECONDS with dnsperf (-c 4 -q 200, as
# ../shared/bench/peers.sh). qps_per_core = queries completed / CPU seconds kubemasq used
# (utime+stime from /proc/PID/stat), the figure that contention on a 2-core machine disturbs
# least. Prints per measurement
#   round=R names=N qps=.. qps_per_core=.. cpu_s=.. lost=.. rcodes=..
# and at the end
#   cache_scale small=N large=N qps_per_core_small=.. qps_per_core_large=.. ratio=..
# (means over the rounds; ratio = large / small, the aim is at least 0.9).
set -u
. "$(dirname "$0")/lib.sh"

SMALL=10000 LARGE=1000000 T=8 ROUNDS=2 FLAGS=""
while getopts "s:l:t:r:f:" o; do case $o in
	s) SMALL=$OPTARG;; l) LARGE=$OPTARG;; t) T=$OPTARG;; r) ROUNDS=$OPTARG;; f) FLAGS=$OPTARG;;
	*) sed -n '7,13p' "$0"; exit 2;; esac; done
size=$((LARGE * 2)); [ "$size" -ge 2000000 ] || size=2000000; [ "$size" -le 10000000 ] || size=10000000
FLAGS=${FLAGS:-"--cache-size=$size"}
HZ=$(getconf CLK_TCK)

bench_build || exit 1
bench_knotd "$LARGE" || exit 1
declare -A PORT PID
for n in "$SMALL" "$LARGE"; do
	awk -v n="$n" 'BEGIN{for(i=1;i<=n;i++) printf "h%d.bench.test A\n", i}' > "$BENCH_W/q$n.txt"
	# shellcheck disable=SC2086
	bench_kubemasq $FLAGS || exit 1
	mv "$BENCH_W/kubemasq.log" "$BENCH_W/kubemasq$n.log"	# the open fd follows the file
	PORT[$n]=$BENCH_PORT PID[$n]=$BENCH_PID
	read -r ndone lost qps rc < <(dnsperf -s 127.0.0.1 -p "$BENCH_PORT" -d "$BENCH_W/q$n.txt" \
		-n 1 -c 4 -q 200 -t 10 2>&1 | bench_dnsperf_summary)
	read -r bytes _ entries < <(bench_cache_line "$BENCH_PID" "$BENCH_W/kubemasq$n.log")
	echo "warmup names=$n completed=$ndone lost=$lost rcodes=$rc cache_entries=$entries" \
		"cache_bytes=$bytes rss_kib=$(bench_rss_kib "$BENCH_PID")"
done

declare -A SUM
for r in $(seq 1 "$ROUNDS"); do
	for n in "$SMALL" "$LARGE"; do
		pid=${PID[$n]}
		c0=$(bench_cpu_ticks "$pid")
		out=$(dnsperf -s 127.0.0.1 -p "${PORT[$n]}" -d "$BENCH_W/q$n.txt" -l "$T" -c 4 -q 200 2>&1)
		c1=$(bench_cpu_ticks "$pid")
		read -r ndone lost qps rc < <(echo "$out" | bench_dnsperf_summary)
		pc=$(awk -v d="$ndone" -v c=$((c1 - c0)) -v hz="$HZ" 'BEGIN{printf "%d", (c > 0 ? d / (c / hz) : 0)}')
		SUM[$n]=$((${SUM[$n]:-0} + pc))
		echo "round=$r names=$n qps=$qps qps_per_core=$pc cpu_s=$(awk -v c=$((c1 - c0)) -v hz="$HZ" \
			'BEGIN{printf "%.2f", c / hz}') lost=$lost rss_kib=$(bench_rss_kib "$pid") rcodes=$rc"
	done
done
awk -v s="$SMALL" -v l="$LARGE" -v a="${SUM[$SMALL]}" -v b="${SUM[$LARGE]}" -v r="$ROUNDS" 'BEGIN {
	printf "cache_scale small=%d large=%d qps_per_core_small=%d qps_per_core_large=%d ratio=%.3f\n",
	       s, l, a / r, b / r, (a > 0 ? b / a : 0) }'
