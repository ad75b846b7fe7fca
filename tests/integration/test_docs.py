# SPDX-License-Identifier: GPL-2.0-or-later
"""The documentation moves with the flags: every option --help lists is in the man page and
in the annotated conf/kubemasq.conf, and nothing there names an option that does not exist."""

import pathlib
import re
import subprocess

from conftest import kubemasq_bin

TOP = pathlib.Path(__file__).resolve().parents[2]
OPT = re.compile(r"--([a-z0-9][a-z0-9-]+)")


def help_options():
    out = subprocess.run([kubemasq_bin(), "--help"], capture_output=True, text=True,
                         timeout=10).stdout
    opts = set(OPT.findall(out))
    assert len(opts) > 40, f"--help lists too few options: {sorted(opts)}"
    return opts


def test_man_page_documents_every_option():
    man = (TOP / "packaging" / "kubemasq.8").read_text().replace("\\-", "-")
    # an option's own entry: a .TP paragraph whose tag line names it in bold
    tags = re.findall(r"^\.TP\n(.*)$", man, re.M)
    documented = {o for t in tags for o in re.findall(r"\\fB--([a-z0-9-]+)\\fR", t)}
    mentioned = set(OPT.findall(man))
    opts = help_options()
    assert opts - mentioned == set(), "options missing from the man page"
    assert opts - documented == set(), "options without their own .TP entry in the man page"
    assert mentioned - opts == set(), "the man page names options that do not exist"


def test_conf_file_lists_every_option():
    conf = (TOP / "conf" / "kubemasq.conf").read_text()
    listed = set(re.findall(r"^#?([a-z0-9][a-z0-9-]+)(?:=|$)", conf, re.M))
    missing = help_options() - listed - {"help", "version", "test", "conf-file", "conf-dir"}
    assert missing == set(), "options without a line in conf/kubemasq.conf"
