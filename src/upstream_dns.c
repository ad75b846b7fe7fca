/* SPDX-License-Identifier: GPL-2.0-or-later */
/* upstream_dns.c - placeholder until written. */
