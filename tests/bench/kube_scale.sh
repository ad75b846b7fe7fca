#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The kube store at cluster scale: a generated snapshot of SERVICES services and ENDPOINTS
# endpoints (gen_cluster.py) served by kubemasq --kube-snapshot. Reports how long the snapshot
# takes to load, the memory the loaded cluster costs per endpoint, and the answer throughput
# per CPU-second for cluster names against cache hits for ordinary names, in the same run.
# Measures and reports; asserts nothing.
#
#   tests/bench/kube_scale.sh [-n SERVICES] [-e ENDPOINTS] [-s SEED] [-q PER_KIND]
#                             [-t SECONDS] [-r ROUNDS]
#
#   -n  services (default 10000)       -e  endpoints in all slices (default 100000)
#   -s  generator seed (default 1)     -q  query names of each of the 6 kinds (default 10000)
#   -t  seconds per measurement (8)    -r  rounds (default 2)
#
# Load: a watcher (kube_start) starts kubemasq with --kube-snapshot, timestamps its log lines to
# the millisecond as they appear and asks kubernetes.default.svc.<zone> A until it answers.
#   load_ms    start of the process -> the first answer with an address (kubemasq reads the
#              snapshot before it opens its sockets, so this is the whole load)
#   read_ms    the "kube: serving" line -> the "kube: read" line: the in-process read, parse
#              and store fill (the log stamps only to the second, so the watcher stamps lines)
#   load_cpu_s the CPU time kubemasq used up to the first answer
# Memory: VmRSS after the load (before any query) minus VmRSS of a kubemasq serving an empty
# snapshot, divided by ENDPOINTS: what a user sees. It includes the JSON parse's memory, freed
# but kept by glibc (VmHWM shows the parse peak). So the script then has glibc return freed
# memory (malloc_trim(0) called through gdb, when gdb is there) in both processes and measures
# again: rss_per_endpoint_trimmed is what the loaded store holds (services, slices, the PTR
# index, malloc overhead). The unit test test_kube_store's test_ks_big counts malloc'd bytes
# of the store alone (218 B/endpoint for 10,000 services x 10 endpoints, short names),
# printed beside it.
# Throughput: qps_per_core = answers / CPU seconds kubemasq used (utime+stime), as in
# cache_scale.sh, with dnsperf -c 4 -q 200 over a query file that mixes, in equal shares,
# A of ClusterIP services, A of headless services (all their ready endpoints), SRV of named
# ports, PTR of ClusterIPs, A of ready endpoints' hostnames and NXDOMAIN names (-q of each,
# fewer where the cluster has fewer). kubemasq caches kube answers too (for --kube-ttl, 5 s
# by default), so one figure is not enough:
#   store           a kubemasq with --cache-size=0: every query is answered from the store
#   first           the first pass over the file on a caching kubemasq: store answer + insert
#   cached          the file repeated on that kubemasq: cache hits, plus a store answer and
#                   a re-insert for every name whose 5 s TTL ran out
#   cached_ttl3600  the same on a kubemasq with --kube-ttl=3600: kube answers as pure hits
# against
#   hits            ordinary names (hN.bench.test A from knotd, as many as the kube query
#                   file has lines) cached by the caching kubemasq: pure cache hits
# and, at the end, the store path by kind of query (kind=..., SECONDS/2 each).
# Prints
#   load ... / memory ... / memory_trimmed ... / first ... / round=R what=.. qps_per_core=..
#   kind=K ... / kube_scale services=.. endpoints=.. load_ms=.. read_ms=..
#              rss_per_endpoint_bytes=.. rss_per_endpoint_trimmed_bytes=..
#              qps_per_core_{first,store,cached,cached_ttl3600,hits}=..
#              store_vs_hits=.. cached_vs_hits=.. cached_ttl3600_vs_hits=..
# (means over the rounds; the aim is store_vs_hits >= 1: cluster names no slower than hits).
set -u
. "$(dirname "$0")/lib.sh"

SVCS=10000 EPS=100000 SEED=1 PER_KIND=10000 T=8 ROUNDS=2
while getopts "n:e:s:q:t:r:" o; do case $o in
	n) SVCS=$OPTARG;; e) EPS=$OPTARG;; s) SEED=$OPTARG;; q) PER_KIND=$OPTARG;;
	t) T=$OPTARG;; r) ROUNDS=$OPTARG;; *) sed -n '9,14p' "$0"; exit 2;; esac; done
HZ=$(getconf CLK_TCK)
ZONE=cluster.local

# kube_start NAME SNAPSHOT WANT FLAGS...: start kubemasq on a free port with that snapshot and
# watch its load; sets PORT[NAME], PID[NAME] and LOAD[NAME] ("load_ms read_ms load_cpu_s").
# kubemasq waits on a fifo until the watcher has started (a Python start-up is not load
# time); the watcher then timestamps the log's kube lines as they appear and asks
# kubernetes.default.svc.$ZONE A until the answer has an address (WANT=addr) or is NOERROR or
# NXDOMAIN (WANT=any, the empty snapshot).
declare -A PORT PID LOAD
kube_start() {
	local name=$1 snap=$2 want=$3 port log=$BENCH_W/kubemasq-$1.log go=$BENCH_W/go-$1
	shift 3
	port=$(bench_free_port)
	mkfifo "$go" || return 1
	( read -r _ <"$go"; exec "$BENCH_KUBEMASQ" --keep-in-foreground --port="$port" \
		--listen-address=127.0.0.1 --no-resolv --server="$BENCH_UP" --log-facility=- \
		--kube-snapshot="$snap" "$@" >"$log" 2>&1 ) &
	PID[$name]=$!
	BENCH_PIDS+=($!)
	PORT[$name]=$port
	LOAD[$name]=$("$BENCH_PY" - "$go" "$log" "$port" "$want" "$HZ" "$ZONE" "$!" <<'PY'
import os, sys, time
import dns.exception, dns.message, dns.query, dns.rcode
go, log, port, want, hz, zone, pid = sys.argv[1:8]
q = dns.message.make_query("kubernetes.default.svc.%s." % zone, "A")
marks, seen = {}, 0
t0 = time.time()
with open(go, "w") as f:
    f.write("go\n")
deadline = t0 + 600
def ticks():
    with open("/proc/%s/stat" % pid) as f:
        f = f.read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
while time.time() < deadline and os.path.exists("/proc/%s/stat" % pid):
    try:
        with open(log, "rb") as f:
            f.seek(seen)
            data = f.read()
    except FileNotFoundError:
        data = b""
    nl = data.rfind(b"\n") + 1
    seen += nl
    for line in data[:nl].decode(errors="replace").splitlines():
        for key in ("kube: serving", "kube: read ", "started"):
            if key in line and key not in marks:
                marks[key] = time.time()
    if "started" in marks:
        try:
            r = dns.query.udp(q, "127.0.0.1", timeout=0.05, port=int(port))
            if r.answer if want == "addr" else r.rcode() != dns.rcode.SERVFAIL:
                now, cpu = time.time(), ticks() / int(hz)
                rd = marks.get("kube: read ", now) - marks.get("kube: serving", t0)
                print("%d %d %.2f" % ((now - t0) * 1000, rd * 1000, cpu))
                sys.exit(0)
        except (dns.exception.Timeout, OSError):
            pass
    time.sleep(0.001)
sys.exit("kubemasq on port %s did not answer" % port)
PY
	) || { cat "$log" >&2; return 1; }
}

# measure NAME QUERYFILE DNSPERF_ARGS...: one dnsperf run; prints
# "completed lost qps qps_per_core cpu_s rcodes"
measure() {
	local pid=${PID[$1]} port=${PORT[$1]} file=$2 c0 c1 out
	shift 2
	c0=$(bench_cpu_ticks "$pid")
	out=$(dnsperf -s 127.0.0.1 -p "$port" -d "$file" -c 4 -q 200 -t 10 "$@" 2>&1)
	c1=$(bench_cpu_ticks "$pid")
	read -r ndone lost qps rc < <(echo "$out" | bench_dnsperf_summary)
	awk -v d="$ndone" -v l="$lost" -v q="$qps" -v c=$((c1 - c0)) -v hz="$HZ" -v rc="$rc" \
		'BEGIN{printf "%d %d %d %d %.2f %s\n", d, l, q, (c > 0 ? d / (c / hz) : 0),
		       c / hz, rc}'
}

# trim PID: have the process return the heap memory it freed (glibc's malloc_trim, called
# through gdb); prints 1 if it could. Only for measuring: kubemasq does not do it itself.
trim() {
	command -v gdb >/dev/null || return 0
	# shellcheck disable=SC2016
	timeout 60 gdb -p "$1" -batch -ex 'call (int)malloc_trim(0)' 2>/dev/null |
		grep -q '^\$1 = ' && echo 1
}
per_ep() { awk -v a="$1" -v b="$2" -v e="$EPS" 'BEGIN{printf "%.1f", (a - b) * 1024 / e}'; }
qps_line() {	# qps_line WHAT DAEMON FILE DNSPERF_ARGS...: one measurement, printed; sets PC
	local what=$1 d=$2 f=$3 ndone lost qps cpu rc
	shift 3
	read -r ndone lost qps PC cpu rc < <(measure "$d" "$f" "$@")
	echo "what=$what qps=$qps qps_per_core=$PC cpu_s=$cpu completed=$ndone lost=$lost" \
		"rss_kib=$(bench_rss_kib "${PID[$d]}") rcodes=$rc"
}

bench_build || exit 1
t0=$(date +%s%N)
"$BENCH_PY" "$(dirname "$0")/gen_cluster.py" -n "$SVCS" -e "$EPS" -s "$SEED" \
	-o "$BENCH_W/cluster.json" -q "$BENCH_W/qkube.txt" --queries-dir "$BENCH_W" \
	--queries-per-kind "$PER_KIND" || exit 1
echo '{"apiVersion": "v1", "items": [], "kind": "List", "metadata": {"resourceVersion": ""}}' \
	>"$BENCH_W/empty.json"
NQ=$(wc -l <"$BENCH_W/qkube.txt")
echo "generated services=$SVCS endpoints=$EPS seed=$SEED" \
	"bytes=$(stat -c %s "$BENCH_W/cluster.json")" \
	"gen_s=$(( ($(date +%s%N) - t0) / 1000000000 )) query_names=$NQ" \
	"($(for k in clusterip headless srv ptr hostname nxdomain; do
		printf '%s=%d ' "$k" "$(wc -l <"$BENCH_W/$k.txt")"; done))"
bench_knotd "$NQ" || exit 1
awk -v n="$NQ" 'BEGIN{for(i=1;i<=n;i++) printf "h%d.bench.test A\n", i}' >"$BENCH_W/qhits.txt"

# load and memory: one at a time, so the loads do not share the CPUs with each other
kube_start empty "$BENCH_W/empty.json" any || exit 1
kube_start store "$BENCH_W/cluster.json" addr --cache-size=0 || exit 1
kube_start cache "$BENCH_W/cluster.json" addr || exit 1
kube_start long "$BENCH_W/cluster.json" addr --kube-ttl=3600 || exit 1
for k in store cache long; do
	read -r lms rms lcpu <<<"${LOAD[$k]}"
	echo "load daemon=$k load_ms=$lms read_ms=$rms load_cpu_s=$lcpu" \
		"rss_kib=$(bench_rss_kib "${PID[$k]}") hwm_kib=$(bench_hwm_kib "${PID[$k]}")" \
		"counts=\"$(grep -o 'kube: read .*' "$BENCH_W/kubemasq-$k.log" | head -1 |
			cut -d: -f3-)\""
done
rss_empty=$(bench_rss_kib "${PID[empty]}") rss_loaded=$(bench_rss_kib "${PID[store]}")
echo "memory rss_empty_kib=$rss_empty rss_loaded_kib=$rss_loaded" \
	"rss_per_endpoint_bytes=$(per_ep "$rss_loaded" "$rss_empty")" \
	"unit_test_malloc_per_endpoint_bytes=218"
# what the loaded store itself holds: the same after the freed parse memory is returned
rss_empty_t=NA rss_loaded_t=NA per_t=NA
if [ -n "$(trim "${PID[empty]}")" ] && [ -n "$(trim "${PID[store]}")" ]; then
	rss_empty_t=$(bench_rss_kib "${PID[empty]}") rss_loaded_t=$(bench_rss_kib "${PID[store]}")
	per_t=$(per_ep "$rss_loaded_t" "$rss_empty_t")
	trim "${PID[cache]}" >/dev/null
	trim "${PID[long]}" >/dev/null
fi
echo "memory_trimmed rss_empty_kib=$rss_empty_t rss_loaded_kib=$rss_loaded_t" \
	"rss_per_endpoint_bytes=$per_t"
bench_stop "${PID[empty]}"

# first pass: every name once, answered from the store and inserted into the cache
echo -n "first "; qps_line kube_first cache "$BENCH_W/qkube.txt" -n 1; FIRST=$PC
echo -n "first "; qps_line kube_first_ttl3600 long "$BENCH_W/qkube.txt" -n 1
echo -n "first "; qps_line hits_warmup cache "$BENCH_W/qhits.txt" -n 1
read -r bytes _ entries < <(bench_cache_line "${PID[cache]}" "$BENCH_W/kubemasq-cache.log")
echo "first cache_entries=$entries cache_bytes=$bytes (kube names + ordinary names: $((2 * NQ)))"

declare -A SUM
for r in $(seq 1 "$ROUNDS"); do
	for w in store cached cached_ttl3600 hits; do
		case $w in
		store) d=store f=qkube.txt;; cached) d=cache f=qkube.txt;;
		cached_ttl3600) d=long f=qkube.txt;; hits) d=cache f=qhits.txt;;
		esac
		echo -n "round=$r "; qps_line "$w" "$d" "$BENCH_W/$f" -l "$T"
		SUM[$w]=$((${SUM[$w]:-0} + PC))
	done
done
# the store path by kind of query, to see where its time goes
for k in clusterip headless srv ptr hostname nxdomain; do
	echo -n "kind=$k "; qps_line store_$k store "$BENCH_W/$k.txt" -l $(((T + 1) / 2))
done
read -r lms rms _ <<<"${LOAD[store]}"
awk -v s="$SVCS" -v e="$EPS" -v lms="$lms" -v rms="$rms" -v a="$rss_loaded" -v b="$rss_empty" \
    -v pt="$per_t" -v st="${SUM[store]}" -v ca="${SUM[cached]}" -v cl="${SUM[cached_ttl3600]}" \
    -v hi="${SUM[hits]}" -v r="$ROUNDS" -v fi="$FIRST" 'BEGIN {
	printf "kube_scale services=%d endpoints=%d load_ms=%d read_ms=%d ", s, e, lms, rms
	printf "rss_per_endpoint_bytes=%.1f rss_per_endpoint_trimmed_bytes=%s ",
	       (a - b) * 1024 / e, pt
	printf "qps_per_core_first=%d qps_per_core_store=%d qps_per_core_cached=%d ", fi, st / r,
	       ca / r
	printf "qps_per_core_cached_ttl3600=%d qps_per_core_hits=%d ", cl / r, hi / r
	printf "store_vs_hits=%.3f cached_vs_hits=%.3f cached_ttl3600_vs_hits=%.3f\n",
	       (hi > 0 ? st / hi : 0), (hi > 0 ? ca / hi : 0), (hi > 0 ? cl / hi : 0) }'
