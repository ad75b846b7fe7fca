/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pure.h - the door of the pure rooms (src/lib, src/kube; src/README.md). meson forces it into
 * every file there (-include), before anything else: it poisons a few identifiers that every
 * header of libevent, OpenSSL, jansson and libyaml declares, so that including one of them in
 * a pure file stops the build with "attempt to use poisoned". Pure code takes time and input as
 * arguments and returns errors; the event loop, sockets, TLS, JSON and YAML live in the rooms
 * around it. tests/layout/check_layout.py proves the door holds on the real compile commands.
 */
#pragma once

/* libevent: event2/util.h, which every event2 header includes (not event_base: the upstream
 * interface names it as an opaque pointer) */
#pragma GCC poison evutil_socket_t evutil_addrinfo
/* OpenSSL: opensslv.h and e_os2.h, which every OpenSSL header includes */
#pragma GCC poison OPENSSL_VERSION_NUMBER OPENSSL_EXPORT
/* jansson: jansson.h */
#pragma GCC poison json_t json_type
/* libyaml: yaml.h */
#pragma GCC poison yaml_parser_t yaml_char_t
