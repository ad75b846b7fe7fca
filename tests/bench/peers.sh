#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# kubemasq beside dnsmasq, unbound, dnsdist and the zero-work floor, in one run of the shared
# benchmark (../shared/bench/peers.sh, or $PEERS_SH). Measures and reports; asserts nothing.
#
#   tests/bench/peers.sh -m miss      forwarding path: every name new
#   tests/bench/peers.sh -m hit       cache-hit path
# Any other peers.sh option passes through (-n NAMES -t SECONDS -r ROUNDS -o PEERS).
# Extra kubemasq flags: KUBEMASQ_FLAGS="--cache-bytes=64M" tests/bench/peers.sh ...
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
peers=${PEERS_SH:-$top/../shared/bench/peers.sh}
[ -x "$peers" ] || [ -f "$peers" ] || { echo "peers.sh not found at $peers (set PEERS_SH)"; exit 2; }
"$top/packaging/dev.sh" deps bench
# An optimised build of its own, so the figures are not those of the debug build.
[ -f "$top/build-release/build.ninja" ] ||
	meson setup "$top/build-release" "$top" --buildtype=release -Db_ndebug=true -Dtests=disabled
ninja -C "$top/build-release" kubemasq
exec bash "$peers" -s "$top/build-release/kubemasq --keep-in-foreground --port={PORT} --listen-address=127.0.0.1 --no-resolv --server={UPSTREAM} --log-facility=- ${KUBEMASQ_FLAGS:-}" "$@"
