# SPDX-License-Identifier: GPL-2.0-or-later
# Shared pieces of the cache benchmarks (sourced by bash, not run): a scratch directory and a
# trap that stops every process started here, free loopback ports, a knotd upstream serving a
# zone of N names (or a wildcard), the release build of kubemasq, and readers for a process's
# RSS, its CPU ticks and kubemasq's SIGUSR1 cache line. Loopback only, never port 53.
# shellcheck shell=bash disable=SC2034

BENCH_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_PY=/usr/bin/python3
BENCH_PIDS=()
BENCH_W=$(mktemp -d /tmp/kmbench.XXXXXX)

bench_cleanup() {
	local p
	for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$BENCH_W"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

bench_free_port() {
	"$BENCH_PY" -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Wait until something listens on UDP 127.0.0.1:$1 (up to $2 seconds, default 60).
bench_wait_udp() {
	local i
	for i in $(seq 1 $((${2:-60} * 10))); do
		ss -lunH "sport = :$1" | grep -q . && return 0
		sleep 0.1
	done
	echo "nothing listens on udp port $1" >&2
	return 1
}

# bench_knotd NAMES [wildcard]: serve bench.test from knotd on a free port, set BENCH_UP to
# "127.0.0.1#PORT". The zone holds hN A 10.x.y.z for N in 1..NAMES; with "wildcard" it also
# holds "* A 10.0.0.1", so every name under bench.test gets a positive single-A answer.
bench_knotd() {
	local n=$1 port
	port=$(bench_free_port)
	# shellcheck disable=SC2016
	{ echo '$ORIGIN bench.test.'; echo '$TTL 3600'
	  echo '@ SOA ns hostmaster 1 3600 600 86400 300'; echo '@ NS ns'; echo 'ns A 127.0.0.1'
	  [ "${2:-}" != wildcard ] || echo '* A 10.0.0.1'
	  awk -v n="$n" 'BEGIN{for(i=1;i<=n;i++) printf "h%d A 10.%d.%d.%d\n", i, int(i/65536)%256, int(i/256)%256, i%256}'
	} > "$BENCH_W/bench.test.zone"
	cat > "$BENCH_W/knot.conf" <<K
server:
    listen: 127.0.0.1@$port
    rundir: $BENCH_W
database:
    storage: $BENCH_W
template:
  - id: default
    storage: $BENCH_W
    file: "%s.zone"
zone:
  - domain: bench.test
K
	knotd -c "$BENCH_W/knot.conf" >"$BENCH_W/knot.log" 2>&1 &
	BENCH_PIDS+=($!)
	bench_wait_udp "$port" 120 || return 1
	# knotd listens before a big zone is loaded: wait for it to answer the last name
	local i
	for i in $(seq 1 600); do
		dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 "h$n.bench.test" A 2>/dev/null |
			grep -q '^10\.' && break
		sleep 0.2
	done
	BENCH_UP="127.0.0.1#$port"
}

# The release build (build-release, or $KUBEMASQ_BUILD), built now so it is current.
bench_build() {
	local b=${KUBEMASQ_BUILD:-$BENCH_TOP/build-release}
	case $b in /*) ;; *) b=$BENCH_TOP/$b;; esac
	[ -f "$b/build.ninja" ] || meson setup "$b" "$BENCH_TOP" --buildtype=release \
		-Db_ndebug=true -Dtests=disabled >/dev/null || return 1
	ninja -C "$b" kubemasq >/dev/null || { ninja -C "$b" kubemasq; return 1; }
	BENCH_KUBEMASQ=$b/kubemasq
}

# bench_kubemasq FLAGS...: start kubemasq on a free port forwarding to $BENCH_UP, logging to
# $BENCH_W/kubemasq.log; sets BENCH_PORT and BENCH_PID.
bench_kubemasq() {
	BENCH_PORT=$(bench_free_port)
	"$BENCH_KUBEMASQ" --keep-in-foreground --port="$BENCH_PORT" --listen-address=127.0.0.1 \
		--no-resolv --server="$BENCH_UP" --log-facility=- "$@" \
		>"$BENCH_W/kubemasq.log" 2>&1 &
	BENCH_PID=$!
	BENCH_PIDS+=($!)
	bench_wait_udp "$BENCH_PORT" 10
}

# bench_dnsmasq CACHE_SIZE: the same for dnsmasq (log in $BENCH_W/dnsmasq.log).
bench_dnsmasq() {
	BENCH_PORT=$(bench_free_port)
	dnsmasq -k --port="$BENCH_PORT" --listen-address=127.0.0.1 --bind-interfaces --no-resolv \
		--no-hosts --server="$BENCH_UP" --cache-size="$1" --dns-forward-max=1000 \
		--log-facility=- >"$BENCH_W/dnsmasq.log" 2>&1 &
	BENCH_PID=$!
	BENCH_PIDS+=($!)
	bench_wait_udp "$BENCH_PORT" 10
}

bench_stop() {	# bench_stop PID: stop one process started here and reap it
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

bench_rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
bench_hwm_kib() { awk '/^VmHWM/{print $2}' "/proc/$1/status"; }
bench_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# bench_cache_line PID LOG: send SIGUSR1 and print the newest "kubemasq cache:" line's
# fields as "bytes max entries" (waits up to 5 s for the line to appear).
bench_cache_line() {
	local before i
	before=$(grep -c 'kubemasq cache:' "$2")
	kill -USR1 "$1"
	for _ in $(seq 1 50); do
		[ "$(grep -c 'kubemasq cache:' "$2")" -gt "$before" ] && break
		sleep 0.1
	done
	grep 'kubemasq cache:' "$2" | tail -1 |
		sed -E 's/.*cache: ([0-9]+) bytes used of ([0-9]+), entries ([0-9]+).*/\1 \2 \3/'
}

# bench_dnsperf_summary: dnsperf's output on stdin -> "completed lost qps rcodes"
bench_dnsperf_summary() {
	awk '/Queries completed/ {d = $3} /Queries lost/ {l = $3} /Queries per second/ {q = $4}
	     /Response codes/ {$1 = ""; $2 = ""; gsub(/ /, ""); rc = $0}
	     END {printf "%s %s %d %s\n", d, l, q, rc}'
}
