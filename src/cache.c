/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cache.c - placeholder until written. */
