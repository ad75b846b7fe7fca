/* SPDX-License-Identifier: GPL-2.0-or-later */
/* config.c - placeholder until written. */
