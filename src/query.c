/* SPDX-License-Identifier: GPL-2.0-or-later */
/* query.c - placeholder until written. */
