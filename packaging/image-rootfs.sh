#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# image-rootfs.sh - the whole root file system of kubemasq's container image, assembled in the
# build stage of packaging/Dockerfile and copied into an empty (FROM scratch) runtime stage:
# the binary, the shared libraries `ldd` names (with the dynamic loader), the CA certificates
# and two lines each of /etc/passwd and /etc/group. No shell, no package manager, no other
# program: nothing an intruder could run but kubemasq. The integration tests run this script
# too and start the daemon in a chroot of its result.
#
#   packaging/image-rootfs.sh ROOTFS BINARY [CA_BUNDLE]
#
# The binary gets cap_net_bind_service as a file capability (libcap2-bin's setcap), as
# CoreDNS's image does: Kubernetes gives a non-root container no ambient capabilities, so
# `capabilities: add: [NET_BIND_SERVICE]` alone does not let uid 65532 bind port 53. The
# kernel refuses to start a binary whose file capability is missing from the bounding set:
# a pod must add NET_BIND_SERVICE even when it listens above 1023.
set -eu
[ $# -ge 2 ] || { sed -n 's/^#   //p' "$0" >&2; exit 2; }
root=$1 bin=$2 ca=${3:-/etc/ssl/certs/ca-certificates.crt}

mkdir -p "$root/usr/sbin" "$root/etc/ssl/certs" "$root/usr/lib/ssl"
cp "$bin" "$root/usr/sbin/kubemasq"
chmod 0755 "$root/usr/sbin/kubemasq"

# Every library at the path ldd shows (the loader finds them there without an ld.so.cache),
# symlinks resolved; the loader itself is the line without "=>".
ldd "$bin" | awk '
	$2 == "=>" && $3 ~ /^\// { print $3; next }
	$2 == "=>" { print "missing " $1; next }
	$1 ~ /^\// { print $1 }' | while read -r lib rest; do
	if [ "$lib" = missing ]; then
		echo "image-rootfs.sh: $bin needs $rest, which is not installed" >&2
		exit 1
	fi
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done

# OpenSSL's default verify paths (SSL_CTX_set_default_verify_paths: the API server without
# --kube-ca-file) are /usr/lib/ssl/cert.pem and /usr/lib/ssl/certs on Debian; link them as
# Debian does. (Not SSL_CERT_FILE: a binary with a file capability runs in secure mode, where
# OpenSSL ignores that variable.)
cp -L "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$root/etc/ssl/certs/ca-certificates.crt"
ln -sfn /etc/ssl/certs/ca-certificates.crt "$root/usr/lib/ssl/cert.pem"
ln -sfn /etc/ssl/certs "$root/usr/lib/ssl/certs"

# The image runs as 65532 ("nonroot", as in distroless images); started as root instead,
# kubemasq drops to --user, by default nobody, as dnsmasq does: both need a name.
printf 'nobody:x:65534:65534:nobody:/nonexistent:/nonexistent\nnonroot:x:65532:65532:nonroot:/nonexistent:/nonexistent\n' >"$root/etc/passwd"
printf 'nogroup:x:65534:\nnonroot:x:65532:\n' >"$root/etc/group"

setcap cap_net_bind_service=+ep "$root/usr/sbin/kubemasq"
