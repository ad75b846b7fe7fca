#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# The README's two commands, and the pieces they are made of. Safe to run again and again;
# works as root, or as a user with sudo (used only to install missing Debian packages).
#
#   packaging/dev.sh run     install what is missing, build, serve on 127.0.0.1:${PORT:-5353}
#                            in the foreground with conf/kubemasq.conf, forwarding to the
#                            servers of /etc/resolv.conf, cluster.local from the demo cluster
#   packaging/dev.sh test    install what is missing, build, run the whole suite: unit and
#                            integration tests, again under ASan/UBSan, every fuzz target for
#                            ${FUZZ_SECONDS:-10} s, clang and gcc -Werror builds, and
#                            clang-format --dry-run --Werror over the C sources
#   packaging/dev.sh deps [bench]   only install (bench: also the benchmark's peers)
set -eu
cd "$(dirname "$0")/.."

BUILD_PKGS="meson ninja-build pkg-config gcc libevent-dev libldns-dev uthash-dev libjansson-dev libssl-dev libyaml-dev libcmocka-dev"
TEST_PKGS="clang clang-format libclang-rt-dev knot knot-dnsutils ldnsutils dnsutils python3-dnspython python3-pytest python3-yaml iproute2 procps build-essential dpkg-dev debhelper systemd openssl ca-certificates libcap2-bin dnsmasq-base prometheus"
BENCH_PKGS="dnsperf unbound dnsdist gdb"
# kubectl for the manifest and API-server tests: Debian's kubernetes-client, unless one is there
command -v kubectl >/dev/null 2>&1 || TEST_PKGS="$TEST_PKGS kubernetes-client"

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Install the packages of "$@" that are not installed yet. Packages that ship a service
# (knot, unbound) must not start it on port 53 of this machine: a policy-rc.d forbids starting
# services for the length of our apt-get only, unless the machine already has one.
install_missing() {
	missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	[ -n "$missing" ] || return 0
	echo "installing:$missing"
	policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
		policy=1
	fi
	as_root apt-get update -qq || true
	# shellcheck disable=SC2086
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing ||
		status=$?
	[ -z "$policy" ] || as_root rm -f /usr/sbin/policy-rc.d
	return "${status:-0}"
}

build() {	# build DIR [meson options...]
	dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@"
	fi
	ninja -C "$dir"
}

# The C sources: git's list in a checkout (CI's fresh clone), else whatever C lies in src,
# include and tests (never the build directories).
format_files() {
	if command -v git >/dev/null 2>&1 && git rev-parse --git-dir >/dev/null 2>&1; then
		git ls-files '*.c' '*.h'
	else
		find src include tests -name '*.[ch]'
	fi
}

# meson's log of the last run -> "N passed, N failed" counts added to the totals.
PASSED=0 FAILED=0 SKIPPED=0
count() {
	eval "$(/usr/bin/python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r == "OK": p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(f"p={p} f={f} s={s}")
PY
)"
	PASSED=$((PASSED + p)) FAILED=$((FAILED + f)) SKIPPED=$((SKIPPED + s))
}

suite() {	# suite DIR [meson options...]
	dir=$1; shift
	echo "=== $dir: $*"
	build "$dir" "$@"
	meson test -C "$dir" --print-errorlogs --no-rebuild || true
	count "$dir"
}

case "${1:-}" in
deps)
	install_missing $BUILD_PKGS $TEST_PKGS
	[ "${2:-}" != bench ] || install_missing $BENCH_PKGS
	;;
run)
	install_missing $BUILD_PKGS
	build build
	exec build/kubemasq --keep-in-foreground --conf-file=conf/kubemasq.conf \
		--port="${PORT:-5353}" --listen-address=127.0.0.1 --log-facility=- --log-queries \
		--kube-snapshot=conf/demo-cluster.json
	;;
test)
	install_missing $BUILD_PKGS $TEST_PKGS
	suite build
	suite build-asan -Db_sanitize=address,undefined -Db_lundef=false
	# the libFuzzer targets (tests/fuzz/README.md), each a test run for FUZZ_SECONDS
	CC=clang suite build-fuzz -Dfuzz=enabled -Db_sanitize=address,undefined -Db_lundef=false \
		-Dtests=disabled
	echo "=== build-clang: warning-free with clang -Werror"
	if CC=clang build build-clang -Dwerror=true -Dtests=disabled >build-clang.log 2>&1; then
		PASSED=$((PASSED + 1))
	else
		cat build-clang.log; FAILED=$((FAILED + 1))
	fi
	echo "=== build-gcc-werror: warning-free with gcc -Werror"
	if CC=gcc build build-werror -Dwerror=true -Dtests=enabled >build-werror.log 2>&1; then
		PASSED=$((PASSED + 1))
	else
		cat build-werror.log; FAILED=$((FAILED + 1))
	fi
	echo "=== format: clang-format --dry-run --Werror"
	if format_files | xargs clang-format --dry-run --Werror >build-format.log 2>&1; then
		PASSED=$((PASSED + 1))
	else
		echo "not formatted as .clang-format says (fix: clang-format -i FILE...):"
		sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: .*/  \1/p' build-format.log | sort -u
		echo "(what clang-format would change: build-format.log)"
		FAILED=$((FAILED + 1))
	fi
	echo
	echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
	[ "$FAILED" = 0 ]
	;;
*)
	sed -n '3,15p' "$0"
	exit 2
	;;
esac
