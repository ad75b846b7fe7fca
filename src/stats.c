/* SPDX-License-Identifier: GPL-2.0-or-later */
/* stats.c - placeholder until written. */
