#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Build kubemasq's Debian package from this source tree, without touching it: the sources
# (never a build directory) are copied into a fresh temporary tree, packaging/debian/ becomes
# its debian/, and dpkg-buildpackage builds the binary package there.
#
#   packaging/build-deb.sh [OUTDIR]    the .deb (and .buildinfo, .changes) land in OUTDIR,
#                                      default: the current directory
#
# DEB_BUILD_OPTIONS is passed through: DEB_BUILD_OPTIONS=nocheck skips the unit tests and
# needs no libcmocka-dev. Needs dpkg-dev, debhelper and the Build-Depends of debian/control
# (packaging/dev.sh deps installs them).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)

version=$(sed -n "s/^[[:space:]]*version: '\([^']*\)'.*/\1/p" "$top/meson.build" | head -n 1)
pkgversion=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
if [ "$version" != "$pkgversion" ]; then
	echo "build-deb.sh: meson.build says $version, packaging/debian/changelog $pkgversion" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kubemasq-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
src="$tmp/kubemasq-$version"
mkdir "$src"
# The fixed top level, nothing else: no build-*/ directory, no .git.
(cd "$top" && tar -cf - --exclude=__pycache__ --exclude='*.pyc' \
	meson.build meson_options.txt src include tests conf packaging README.md) |
	(cd "$src" && tar -xf -)
cp -R "$top/packaging/debian" "$src/debian"

profiles=""
case " ${DEB_BUILD_OPTIONS:-} " in *" nocheck "*) profiles="-Pnocheck" ;; esac
(cd "$src" && dpkg-buildpackage -us -uc -b $profiles)

cp "$tmp"/*.deb "$tmp"/*.buildinfo "$tmp"/*.changes "$out"/
ls "$out"/kubemasq_"$version"_*.deb
