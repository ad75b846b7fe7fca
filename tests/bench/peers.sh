#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# kubemasq beside dnsmasq, unbound, dnsdist and the zero-work floor, in one run of the shared
# benchmark (../shared/bench/peers.sh, or $PEERS_SH). Measures and reports; asserts nothing.
#
#   tests/bench/peers.sh -m miss      forwarding path: every name new
#   tests/bench/peers.sh -m hit       cache-hit path
# Any other peers.sh option passes through (-n NAMES -t SECONDS -r ROUNDS -o PEERS).
# Extra kubemasq flags: KUBEMASQ_FLAGS="--cache-bytes=64M" tests/bench/peers.sh ...
# Build directory (release, built here before the run): KUBEMASQ_BUILD=build-release.
#
# Miss mode with -r 2 or more runs the shared script once per round (-r 1), each time with
# fresh servers and a fresh set of random names: within one run of the shared script every
# round replays the same query file from its top, so from round 2 on the servers that cache
# negative answers (kubemasq, unbound) would be answering cache hits, not forwarding.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
peers=${PEERS_SH:-$top/../shared/bench/peers.sh}
build=${KUBEMASQ_BUILD:-$top/build-release}
case $build in /*) ;; *) build=$top/$build;; esac
[ -x "$peers" ] || [ -f "$peers" ] || { echo "peers.sh not found at $peers (set PEERS_SH)"; exit 2; }
"$top/packaging/dev.sh" deps bench
# An optimised build of its own, so the figures are not those of the debug build.
[ -f "$build/build.ninja" ] ||
	meson setup "$build" "$top" --buildtype=release -Db_ndebug=true -Dtests=disabled
ninja -C "$build" kubemasq >/dev/null || { ninja -C "$build" kubemasq; exit 1; }
sut="$build/kubemasq --keep-in-foreground --port={PORT} --listen-address=127.0.0.1 --no-resolv --server={UPSTREAM} --log-facility=- ${KUBEMASQ_FLAGS:-}"

mode=hit rounds=2
for a in "$@"; do	# only -m and -r matter here; the shared script parses the rest
	case ${prev:-} in -m) mode=$a;; -r) rounds=$a;; esac
	prev=$a
done
if [ "$mode" != miss ] || [ "$rounds" -le 1 ]; then
	exec bash "$peers" -s "$sut" "$@"
fi
# Miss mode: -r N becomes N runs of -r 1 (the last -r on the command line wins in getopts).
r=1
while [ "$r" -le "$rounds" ]; do
	bash "$peers" -s "$sut" "$@" -r 1 | sed "s/^round=1 /round=$r /; /^mode=/s/\$/ run=$r/"
	r=$((r + 1))
done
