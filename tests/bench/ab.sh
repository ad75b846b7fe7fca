#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Before and after: the cache-hit throughput per CPU-second of two kubemasq binaries (say the
# release build of main and of a change), side by side in one run, rounds interleaved (A, B,
# B, A, A, B, ...) so that a machine getting busier or quieter treats both alike. On a shared
# 2-core machine single measurements vary by a third; this is how a change is judged here.
# Measures and reports; asserts nothing.
#
#   tests/bench/ab.sh -a BINARY_A -b BINARY_B [-n NAMES] [-t SECONDS] [-r ROUNDS] [-f 'FLAGS']
#
#   -a, -b  the two kubemasq binaries (build one from a git worktree of the base revision:
#           git worktree add /tmp/base HEAD && meson setup /tmp/base/b /tmp/base
#           --buildtype=release -Db_ndebug=true -Dtests=disabled && ninja -C /tmp/base/b)
#   -n  cached names (default 10000)     -t  seconds per measurement (default 5)
#   -r  rounds (default 6; each runs both)   -f  extra flags for both
#
# One knotd serves hN.bench.test; each kubemasq is warmed with every name once, then queried in a
# loop with dnsperf -c 4 -q 200 (as ../shared/bench/peers.sh). qps_per_core = answers / CPU
# seconds the daemon used (utime+stime). Prints per measurement
#   round=R bin=A|B qps=.. qps_per_core=.. lost=..
# and at the end
#   ab names=N rounds=R a_mean=.. b_mean=.. b_over_a=.. b_wins=W/R
# (b_over_a = mean of B / mean of A; b_wins = rounds in which B did better than A).
set -u
. "$(dirname "$0")/lib.sh"

A="" B="" N=10000 T=5 ROUNDS=6 FLAGS=""
while getopts "a:b:n:t:r:f:" o; do case $o in
	a) A=$OPTARG;; b) B=$OPTARG;; n) N=$OPTARG;; t) T=$OPTARG;; r) ROUNDS=$OPTARG;;
	f) FLAGS=$OPTARG;; *) sed -n '9,15p' "$0"; exit 2;; esac; done
[ -x "$A" ] && [ -x "$B" ] || { sed -n '9,15p' "$0"; exit 2; }
HZ=$(getconf CLK_TCK)

bench_knotd "$N" || exit 1
awk -v n="$N" 'BEGIN{for(i=1;i<=n;i++) printf "h%d.bench.test A\n", i}' > "$BENCH_W/q.txt"
declare -A PORT PID SUM WINS PC
for x in A B; do
	BENCH_KUBEMASQ=$([ $x = A ] && echo "$A" || echo "$B")
	# shellcheck disable=SC2086
	bench_kubemasq $FLAGS || exit 1
	PORT[$x]=$BENCH_PORT PID[$x]=$BENCH_PID SUM[$x]=0
	dnsperf -s 127.0.0.1 -p "$BENCH_PORT" -d "$BENCH_W/q.txt" -n 1 -c 4 -q 200 -t 10 \
		>/dev/null 2>&1
done
WINS=0
for r in $(seq 1 "$ROUNDS"); do
	order="A B"; [ $((r % 2)) -eq 0 ] && order="B A"
	for x in $order; do
		c0=$(bench_cpu_ticks "${PID[$x]}")
		out=$(dnsperf -s 127.0.0.1 -p "${PORT[$x]}" -d "$BENCH_W/q.txt" -l "$T" -c 4 -q 200 2>&1)
		c1=$(bench_cpu_ticks "${PID[$x]}")
		read -r ndone lost qps _ < <(echo "$out" | bench_dnsperf_summary)
		PC[$x]=$(awk -v d="$ndone" -v c=$((c1 - c0)) -v hz="$HZ" \
			'BEGIN{printf "%d", (c > 0 ? d / (c / hz) : 0)}')
		SUM[$x]=$((SUM[$x] + PC[$x]))
		echo "round=$r bin=$x qps=$qps qps_per_core=${PC[$x]} lost=$lost"
	done
	[ "${PC[B]}" -gt "${PC[A]}" ] && WINS=$((WINS + 1))
done
awk -v n="$N" -v r="$ROUNDS" -v a="${SUM[A]}" -v b="${SUM[B]}" -v w="$WINS" 'BEGIN {
	printf "ab names=%d rounds=%d a_mean=%d b_mean=%d b_over_a=%.3f b_wins=%d/%d\n",
	       n, r, a / r, b / r, (a > 0 ? b / a : 0), w, r }'
