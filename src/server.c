/* SPDX-License-Identifier: GPL-2.0-or-later */
/* server.c - placeholder until written. */
