#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# kube_churn.sh - what a cluster change costs the daemon beside a big cache (issue 12's
# benchmark): Service changes through the test API server, with SMALL and with LARGE external
# names cached, daemon CPU per change for each and their ratio. Measures and reports; never
# asserts a time. Loopback only; every process started is stopped.
#
# usage: tests/bench/kube_churn.sh [-s SMALL] [-l LARGE] [-c CHANGES] [-R RATE] [-r ROUNDS] [-n SERVICES] [-k port|ip] [-b BINARY]
#
#   -s, -l  external names cached by the two daemons (default 10000 and 1000000)
#   -c  Service changes per round (default 200)   -R  changes per second (default 100)
#   -r  rounds (default 3)   -n  services in the generated cluster (default 100)
#   -k  what each change does to a Service: port (default: a new port number; the store reports
#       the service's name) or ip (a new ClusterIP, as a delete and re-create: its name and the
#       old and new reverse names)
#   -b  measure this kubemasq binary instead of building the current source, e.g. the release
#       build of an older revision: git archive REV | tar -x -C /tmp/old && meson setup
#       /tmp/old/b /tmp/old --buildtype=release -Db_ndebug=true -Dtests=disabled && ninja -C /tmp/old/b
#
# knotd serves a wildcard bench.test (every hN.bench.test has an A); tests/kubeapi/kubeapi.py
# serves a generated cluster (gen_cluster.py); kube_churn_bench.py runs both daemons, fills
# them with dnsperf, makes the changes and reads each daemon's CPU time (ns, summed over its
# threads' /proc/PID/task/TID/schedstat) from before the first change of a round to when the
# last change is answered. Prints per daemon and round
#   kube_churn round=R names=N kind=K changes=C seen=True wall_s=.. cpu_ms=.. cpu_per_change_ms=.. idle_cpu_ms=..
# and at the end
#   kube_churn small=N large=N ... cpu_per_change_ms_small=.. cpu_per_change_ms_large=.. ratio=..
# (means over the rounds; ratio = large / small; idle_cpu_ms: the same wall time with no change).
set -u
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

small=10000 large=1000000 changes=200 rate=100 rounds=3 services=100 kind=port bin=""
while getopts s:l:c:R:r:n:k:b: o; do
	case $o in
	s) small=$OPTARG ;;
	l) large=$OPTARG ;;
	c) changes=$OPTARG ;;
	R) rate=$OPTARG ;;
	r) rounds=$OPTARG ;;
	n) services=$OPTARG ;;
	k) kind=$OPTARG ;;
	b) bin=$OPTARG ;;
	*) sed -n 's/^# usage: //p' "$0" >&2; exit 2 ;;
	esac
done

if [ -n "$bin" ]; then
	BENCH_KUBEMASQ=$bin
else
	bench_build || exit 1
fi
bench_knotd 1 wildcard || exit 1
echo "kube_churn binary=$BENCH_KUBEMASQ load=$(cut -d' ' -f1-3 /proc/loadavg)"
"$BENCH_PY" "$BENCH_TOP/tests/bench/kube_churn_bench.py" --kubemasq "$BENCH_KUBEMASQ" \
	--upstream "$BENCH_UP" --small "$small" --large "$large" --changes "$changes" \
	--rate "$rate" --rounds "$rounds" --services "$services" --kind "$kind"
echo "kube_churn load_after=$(cut -d' ' -f1-3 /proc/loadavg)"
