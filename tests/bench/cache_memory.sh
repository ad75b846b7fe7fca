#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Memory per cached answer: how many bytes of resident memory kubemasq spends on each cached
# single-A answer, and how many its cache counts against --cache-bytes. Measures and reports;
# asserts nothing.
#
#   tests/bench/cache_memory.sh [-n NAMES] [-d] [-w] [-f 'KUBEMASQ FLAGS']
#
#   -n  distinct names loaded through the cache (default 200000)
#   -d  also measure dnsmasq (--cache-size=NAMES) the same way
#   -w  upstream answers from a wildcard (* A 10.0.0.1) instead of a zone of NAMES names
#   -f  extra kubemasq flags (default: --cache-bytes=2047M --cache-size=max(2*NAMES, 150))
#
# knotd serves bench.test with h1..hNAMES (one A each); kubemasq (release build, built now)
# forwards to it. VmRSS is read after start, the NAMES names are queried once each through
# kubemasq with dnsperf (-n 1), SIGUSR1's "kubemasq cache: B bytes used of M, entries E" line
# is read back and VmRSS again. Prints one line:
#   cache_memory names=N entries=E rss_empty_kib=.. rss_loaded_kib=.. rss_per_entry_bytes=..
#     cache_bytes_per_entry=.. lost=.. rcodes=.. [dnsmasq_rss_per_entry_bytes=.. ...]
# rss_per_entry_bytes = (RSS loaded - RSS empty) / E; the aim is at most 100.
set -u
. "$(dirname "$0")/lib.sh"

N=200000 DNSMASQ="" WILD="" FLAGS=""
while getopts "n:dwf:" o; do case $o in
	n) N=$OPTARG;; d) DNSMASQ=1;; w) WILD=wildcard;; f) FLAGS=$OPTARG;;
	*) sed -n '7,13p' "$0"; exit 2;; esac; done
size=$((N * 2)); [ "$size" -ge 150 ] || size=150; [ "$size" -le 10000000 ] || size=10000000
FLAGS=${FLAGS:-"--cache-bytes=2047M --cache-size=$size"}

bench_build || exit 1
bench_knotd "$([ -n "$WILD" ] && echo 1 || echo "$N")" $WILD || exit 1
if [ -n "$WILD" ]; then
	awk -v n="$N" 'BEGIN{for(i=1;i<=n;i++) printf "w%d.bench.test A\n", i}' > "$BENCH_W/q.txt"
else
	awk -v n="$N" 'BEGIN{for(i=1;i<=n;i++) printf "h%d.bench.test A\n", i}' > "$BENCH_W/q.txt"
fi

# load PORT -> "completed lost qps rcodes"; every name once, 4 clients, 200 in flight
load() {
	dnsperf -s 127.0.0.1 -p "$1" -d "$BENCH_W/q.txt" -n 1 -c 4 -q 200 -t 10 2>&1 |
		bench_dnsperf_summary
}

# shellcheck disable=SC2086
bench_kubemasq $FLAGS || exit 1
sleep 0.5
rss0=$(bench_rss_kib "$BENCH_PID")
read -r ndone lost qps rcodes < <(load "$BENCH_PORT")
sleep 1
read -r bytes max entries < <(bench_cache_line "$BENCH_PID" "$BENCH_W/kubemasq.log")
rss1=$(bench_rss_kib "$BENCH_PID")
kill -0 "$BENCH_PID" 2>/dev/null || echo "kubemasq died; log: $(tail -3 "$BENCH_W/kubemasq.log")"
line=$(awk -v n="$N" -v e="${entries:-0}" -v r0="$rss0" -v r1="$rss1" -v b="${bytes:-0}" \
	-v m="${max:-0}" -v d="$ndone" -v l="$lost" -v q="$qps" -v rc="$rcodes" 'BEGIN {
	div = e > 0 ? e : n
	printf "cache_memory names=%d entries=%d rss_empty_kib=%d rss_loaded_kib=%d" \
	       " rss_per_entry_bytes=%.1f cache_bytes=%d cache_max_bytes=%d" \
	       " cache_bytes_per_entry=%.1f load_completed=%d lost=%d load_qps=%d rcodes=%s",
	       n, e, r0, r1, (r1 - r0) * 1024 / div, b, m, (e > 0 ? b / e : 0), d, l, q, rc }')
bench_stop "$BENCH_PID"

if [ -n "$DNSMASQ" ] && command -v dnsmasq >/dev/null; then
	bench_dnsmasq 0 || exit 1
	sleep 0.5
	base=$(bench_rss_kib "$BENCH_PID")	# dnsmasq without a cache: its fixed cost
	bench_stop "$BENCH_PID"
	bench_dnsmasq "$N" || exit 1
	sleep 0.5
	d0=$(bench_rss_kib "$BENCH_PID")	# dnsmasq allocates its whole cache at start
	read -r ddone dlost _ drc < <(load "$BENCH_PORT")
	sleep 1
	d1=$(bench_rss_kib "$BENCH_PID")
	ins=$(kill -USR1 "$BENCH_PID"; sleep 0.5; grep -o '[0-9]*/[0-9]* cache insertions' \
		"$BENCH_W/dnsmasq.log" | tail -1 | cut -d/ -f2 | cut -d' ' -f1)
	bench_stop "$BENCH_PID"
	line="$line $(awk -v n="$N" -v b="$base" -v r0="$d0" -v r1="$d1" -v i="${ins:-0}" \
		-v d="$ddone" -v l="$dlost" -v rc="$drc" 'BEGIN {
		printf "dnsmasq_rss_nocache_kib=%d dnsmasq_rss_empty_kib=%d dnsmasq_rss_loaded_kib=%d" \
		       " dnsmasq_rss_per_entry_bytes=%.1f dnsmasq_insertions=%d dnsmasq_lost=%d" \
		       " dnsmasq_rcodes=%s", b, r0, r1, (r1 - b) * 1024 / n, i, l, rc }')"
fi
echo "$line"
