/* SPDX-License-Identifier: GPL-2.0-or-later */
/* upstream_local.c - placeholder until written. */
