/* SPDX-License-Identifier: GPL-2.0-or-later */
/* main.c - placeholder until written. */
int main(void) { return 0; }
