#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# kube_api.sh - the live kube source at scale (issue 5's benchmark): start-to-ready time, peak
# RSS during the initial list and during a re-list, and DNS programming latency at a fixed
# event rate, against tests/kubeapi/kubeapi.py serving a generated cluster. Measures and
# reports; never asserts a time. Loopback only; every process started is stopped.
#
# usage: tests/bench/kube_api.sh [-n SERVICES] [-e ENDPOINTS] [-E EVENTS] [-R RATE]
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

services=10000 endpoints=100000 events=1000 rate=100
while getopts n:e:E:R: o; do
	case $o in
	n) services=$OPTARG ;;
	e) endpoints=$OPTARG ;;
	E) events=$OPTARG ;;
	R) rate=$OPTARG ;;
	*) sed -n 's/^# usage: //p' "$0" >&2; exit 2 ;;
	esac
done

bench_build
"$BENCH_PY" "$BENCH_TOP/tests/bench/kube_api_bench.py" --kubemasq "$BENCH_KUBEMASQ" \
	--services "$services" --endpoints "$endpoints" --events "$events" --rate "$rate"
