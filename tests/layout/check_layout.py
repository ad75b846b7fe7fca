#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Guard the room layout of src/ (issue 15) so that it stays what src/README.md says it is.

src/ is split into rooms, each a meson static library, and a room may only use the rooms below
it; include/kubemasq/ holds the interfaces every room may use. A layout is only worth having if
it cannot decay unnoticed, so this script checks, each by name:

  readme          every file under src/ is named in src/README.md (by its path from src/, e.g.
                  lib/cache.c, or by its bare name, cache.c), and every room/file.ext the README
                  names exists: the map for newcomers is neither incomplete nor stale.
  unique-headers  no two headers under include/ and src/ share a basename, so a bare name in the
                  README or in a review means one file.
  rooms           every #include "..." of a project header resolves from src/ or include/ and
                  follows the allowed edges (ALLOWED below); prints the room graph in use.
  ops-type-tests  nobody tests an upstream's kind by comparing its ops with &x_ops except the
                  file that defines x_ops: callers go through the ops table, not around it.
  pure-guard      (only with --build-root) lib and kube really compile with the force-included
                  pure.h that poisons libevent, OpenSSL, jansson and libyaml, and daemon doesn't.

Only the rooms and their edges are fixed here; the files come from the tree, so adding or
renaming a file needs no change to this script.

Usage: check_layout.py --source-root DIR [--build-root DIR]. Prints one line per problem and a
summary; exits 1 if any check fails. Standard library only, so it runs wherever meson test does.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

# The only fixed facts: the rooms (folders under src/) and which rooms each may include.
# A room may always include itself, and every room may include include/ ("include").
ALLOWED = {
    'lib': set(),
    'kube': {'lib'},
    'kube/source': {'kube', 'lib'},
    'upstream': {'kube/source', 'kube', 'lib'},
    'daemon': {'upstream', 'kube/source', 'kube', 'lib'},
}
INCLUDE = 'include'
INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^">\n]+)[">]', re.M)


def walk_files(top):
    """All files under top as paths relative to it, sorted so the output is stable."""
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        out.extend(os.path.relpath(os.path.join(dirpath, f), top) for f in filenames)
    return sorted(out)


def c_files(top):
    """The .c and .h files under top (relative to it): the ones the compiler reads."""
    return [f for f in walk_files(top) if f.endswith(('.c', '.h'))]


def room_of(src_rel):
    """The deepest room holding src_rel (kube/source/api.c is in kube/source), or None."""
    d = os.path.dirname(src_rel)
    rooms = [r for r in ALLOWED if d == r or d.startswith(r + '/')]
    return max(rooms, key=len) if rooms else None


def read(path):
    """A source file's text; a stray non-UTF-8 byte must not stop the checks."""
    with open(path, encoding='utf-8', errors='replace') as f:
        return f.read()


def line_of(text, pos):
    return text.count('\n', 0, pos) + 1


def strip_c(text):
    """text with comments and string/char literals blanked, newlines kept (so line numbers
    hold): a comment saying `u->ops == &x_ops` documents a contract, it does not test a type."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
        elif text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
        elif text[i] in '"\'':
            j = i + 1
            while j < n and text[j] not in (text[i], '\n'):
                j += 2 if text[j] == '\\' else 1
            j = min(j + 1, n)
        else:
            out.append(text[i])
            i += 1
            continue
        out.append(re.sub(r'[^\n]', ' ', text[i:j]))
        i = j
    return ''.join(out)


# ---- readme ----

def readme_words(text):
    """The path-like words of the README, with a `src/` or `./` prefix and a sentence's full stop
    dropped: `lib/cache.c`, src/lib/cache.c and cache.c are each one whole word."""
    words = set()
    for w in re.findall(r'[\w./-]+', text):
        w = re.sub(r'^(\./|src/)+', '', w.rstrip('.'))
        if w:
            words.add(w)
    return words


def check_readme(root):
    """Every file under src/ is on the map, and every room/file.ext on the map exists."""
    readme = os.path.join(root, 'src', 'README.md')
    if not os.path.isfile(readme):
        return ['src/README.md is missing (the map of the rooms for newcomers)'], []
    words = readme_words(read(readme))
    problems = []
    for rel in walk_files(os.path.join(root, 'src')):
        base = os.path.basename(rel)
        if rel != 'README.md' and rel not in words and base not in words:
            problems.append('src/%s is not named in src/README.md (neither as %s nor as %s)'
                            % (rel, rel, base))
    tops = {r.split('/')[0] for r in ALLOWED} | {'kubemasq', 'include'}
    for w in sorted(words):
        if '/' not in w or w.split('/')[0] not in tops or not re.search(r'\.\w+$', w):
            continue
        if not any(os.path.exists(os.path.join(root, d, w)) for d in ('src', 'include', '')):
            problems.append('src/README.md names %s, which does not exist (stale map)' % w)
    return problems, []


# ---- unique-headers ----

def check_unique_headers(root):
    """No two headers share a basename: a bare name must mean one file."""
    seen = {}
    for top in ('include', 'src'):
        for rel in c_files(os.path.join(root, top)):
            if rel.endswith('.h'):
                seen.setdefault(os.path.basename(rel), []).append('%s/%s' % (top, rel))
    return ['%s is in %s' % (b, ' and '.join(p)) for b, p in sorted(seen.items())
            if len(p) > 1], []


# ---- rooms ----

def resolve_include(root, src_rel, quote, name):
    """(room, problem) for `#include <quote>name` in src/src_rel; room is None for a system
    header. Project headers are written from src/ or include/; a bare name from the same folder
    still compiles (the compiler looks there first) but is a style error."""
    if os.path.isfile(os.path.join(root, 'src', name)):
        room = room_of(name)
        return room, None if room else 'src/%s is in no room' % name
    if os.path.isfile(os.path.join(root, 'include', name)):
        return INCLUDE, None
    if quote == '<':
        return None, None
    here = os.path.normpath(os.path.join(os.path.dirname(src_rel), name))
    if os.path.isfile(os.path.join(root, 'src', here)):
        return room_of(here), 'write "%s": includes are written from src/' % here
    return None, 'found neither in src/ nor in include/'


def find_cycle(edges):
    """A cycle of the graph {a: {b, ...}} as [a, ..., a], or None (depth-first search)."""
    done, path = set(), []

    def visit(a):
        if a in path:
            return path[path.index(a):] + [a]
        if a in done:
            return None
        path.append(a)
        for b in sorted(edges.get(a, ())):
            cycle = visit(b)
            if cycle:
                return cycle
        path.pop()
        done.add(a)
        return None

    return next(filter(None, (visit(a) for a in sorted(edges))), None)


def check_rooms(root):
    """Each include edge room(file) -> room(header) is allowed; prints the edges in use and
    checks they form no cycle (they cannot if ALLOWED holds; the print shows the structure)."""
    problems, edges = [], {}
    for rel in c_files(os.path.join(root, 'src')):
        room = room_of(rel)
        if room is None:
            problems.append('src/%s is in no room (rooms: %s)' % (rel, ', '.join(ALLOWED)))
            continue
        text = read(os.path.join(root, 'src', rel))
        for m in INCLUDE_RE.finditer(text):
            quote, name = m.groups()
            to, problem = resolve_include(root, rel, quote, name)
            what = 'src/%s includes %s' % (rel, m.group(0).split('include', 1)[1].strip())
            if problem:
                problems.append('%s (line %d): %s' % (what, line_of(text, m.start()), problem))
            if to is None:
                continue
            if to != room:
                edges.setdefault(room, set()).add(to)
            if to not in (room, INCLUDE) and to not in ALLOWED[room]:
                problems.append('%s (%s -> %s not allowed)' % (what, room, to))
    notes = ['%s -> %s' % (a, ', '.join(sorted(edges[a]))) for a in ALLOWED if a in edges]
    cycle = find_cycle(edges)
    if cycle:
        problems.append('the rooms include each other in a cycle: ' + ' -> '.join(cycle))
    return problems, notes


# ---- ops-type-tests ----

OPS_DEF_RE = re.compile(r'\b(\w+_ops)\s*=\s*\{')
OPS_CMP_RES = (
    re.compile(r'[!=]=\s*&\s*(\w+_ops)\b'),  # u->ops == &x_ops, ops != &x_ops
    re.compile(r'&\s*(\w+_ops)\s*[!=]='),  # &x_ops == u->ops
    re.compile(r'(?:->|\.)\s*ops\s*[!=]=\s*(?!&|NULL\b|0\b)([\w>.-]+)'),  # a->ops == b->ops
)


def check_ops_type_tests(root):
    """Comparing an upstream's ops with &x_ops is a type test; only the file defining x_ops may
    do it (to assert it was handed its own kind), anyone else must ask through the ops."""
    texts = {}
    for top in ('src', 'include'):
        for rel in c_files(os.path.join(root, top)):
            texts['%s/%s' % (top, rel)] = strip_c(read(os.path.join(root, top, rel)))
    owners = {}
    for path, text in texts.items():
        for m in OPS_DEF_RE.finditer(text):
            owners.setdefault(m.group(1), set()).add(path)
    problems = []
    for path, text in texts.items():
        hits = {}
        for rx in OPS_CMP_RES:
            for m in rx.finditer(text):
                hits.setdefault(line_of(text, m.start()), m.group(1))
        for line, ops in sorted(hits.items()):
            if path in owners.get(ops, ()):
                continue
            who = ('only %s may' % ' and '.join(sorted(owners[ops])) if ops in owners
                   else 'which no file of src/ or include/ defines' if ops.endswith('_ops')
                   else 'a type test through the ops pointer')
            problems.append('%s:%d: `%s` compares ops with %s (%s)'
                            % (path, line, text.splitlines()[line - 1].strip(), ops, who))
    return problems, []


# ---- pure-guard ----

PROBES = ('event2/event.h', 'openssl/ssl.h', 'jansson.h', 'yaml.h')
DEP_OPTS_WITH_ARG = ('-MF', '-MQ', '-MT')


def load_compile_commands(build):
    """[(real path of the source, argv, entry)] sorted by path; both "command" and "arguments"
    forms of compile_commands.json."""
    with open(os.path.join(build, 'compile_commands.json'), encoding='utf-8') as f:
        entries = json.load(f)
    out = []
    for e in entries:
        argv = e['arguments'] if 'arguments' in e else shlex.split(e['command'])
        out.append((os.path.realpath(os.path.join(e['directory'], e['file'])), argv, e))
    return sorted(out, key=lambda x: x[0])


def probe_argv(argv, entry, probe, obj):
    """argv compiling probe into obj instead, without the -MD/-MF/-MQ/-MT options (the probe must
    not touch the build's own files) and colours; None if the source is not found in argv."""
    src = os.path.realpath(os.path.join(entry['directory'], entry['file']))
    out, it, found = [], iter(argv), False
    for a in it:
        if a in DEP_OPTS_WITH_ARG or a == '-o':
            next(it, None)
            out += ['-o', obj] if a == '-o' else []
        elif a in ('-MD', '-MMD') or a.startswith(DEP_OPTS_WITH_ARG + ('-fdiagnostics-color',)):
            continue  # colour codes would garble the output shown on failure
        elif a.startswith('-o'):
            out.append('-o' + obj)
        elif not a.startswith('-') and os.path.realpath(
                os.path.join(entry['directory'], a)) == src:
            out.append(probe)
            found = True
        else:
            out.append(a)
    return out if found else None


def compile_probe(tmp, tag, include, argv, entry):
    """Compile a probe that only includes `include` with the entry's command, in its directory:
    (exit status 0?, compiler output, argv run)."""
    probe = os.path.join(tmp, tag + '.c')
    with open(probe, 'w') as f:
        # a defined function with its prototype: an empty unit would fail a -Werror -pedantic
        # build for a reason that has nothing to do with the guard
        f.write('#include %s\nint check_layout_probe(void);\n'
                'int check_layout_probe(void) { return 0; }\n' % include)
    run = probe_argv(argv, entry, probe, os.path.join(tmp, tag + '.o'))
    if run is None:
        return False, '%s is not an argument of its own command' % entry['file'], argv
    r = subprocess.run(run, cwd=entry['directory'], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, errors='replace', timeout=300)
    return r.returncode == 0, r.stdout, run


def own_header(root, src_path, room):
    """The room's own header for the control probe: the .c file's namesake, else the first."""
    d = os.path.join(root, 'src', room)
    hdrs = sorted(h for h in os.listdir(d) if h.endswith('.h') and h != 'pure.h')
    name = os.path.splitext(os.path.basename(src_path))[0] + '.h'
    name = name if name in hdrs else (hdrs[0] if hdrs else None)
    return name and '"%s/%s"' % (room, name)


def pure_guard_case(root, tmp, tag, src_path, argv, entry, include, poisoned):
    """One probe: (problem or None, note). poisoned: it must fail, on a poisoned identifier
    (failing because a header is missing would prove nothing); else it must compile."""
    ok, output, run = compile_probe(tmp, tag, include, argv, entry)
    what = '%s with #include %s' % (os.path.relpath(src_path, root), include)
    if poisoned and not ok and 'poison' in output:
        return None, '%s fails on a poisoned identifier, as it must' % what
    if not poisoned and ok:
        return None, '%s compiles, as it must' % what
    got = 'compiled' if ok else 'failed' + (' (not on a poisoned identifier)' if poisoned else '')
    must = 'fail on a poisoned identifier' if poisoned else 'compile'
    shown = ''.join('\n    | ' + line for line in output.splitlines()[:12])
    return '%s %s, but must %s; ran in %s:\n    %s%s' % (
        what, got, must, entry['directory'], shlex.join(run), shown), None


def check_pure_guard(root, build):
    """The guard is real and selective: in lib and kube each library header fails to compile
    on a poisoned identifier while the room's own header compiles; in daemon libevent compiles."""
    if not os.path.isfile(os.path.join(build, 'compile_commands.json')):
        return ['%s/compile_commands.json is missing' % build], []
    entries = load_compile_commands(build)
    problems, notes, cases = [], [], []
    for room in ('lib', 'kube', 'daemon'):
        d = os.path.realpath(os.path.join(root, 'src', room))
        hit = next((h for h in entries if os.path.dirname(h[0]) == d and h[0].endswith('.c')),
                   None)
        if hit is None:
            problems.append('no compile command for a src/%s/*.c in %s/compile_commands.json'
                            % (room, build))
        elif room == 'daemon':
            cases.append((hit, '<%s>' % PROBES[0], False))
        else:
            cases += [(hit, '<%s>' % h, True) for h in PROBES]
            own = own_header(root, hit[0], room)
            cases += [(hit, own, False)] if own else []
    with tempfile.TemporaryDirectory(prefix='check_layout.') as tmp:
        for i, (hit, include, poisoned) in enumerate(cases):
            problem, note = pure_guard_case(root, tmp, 'probe%d' % i, *hit, include, poisoned)
            problems += [problem] if problem else []
            notes += [note] if note else []
    return problems, notes


# ---- driver ----

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--source-root', required=True)
    ap.add_argument('--build-root', help='a meson build dir with compile_commands.json')
    opt = ap.parse_args()
    root = os.path.realpath(opt.source_root)
    if not os.path.isdir(os.path.join(root, 'src')):
        ap.error('%s has no src/: not the kubemasq source root' % root)
    checks = [('readme', check_readme, (root,)),
              ('unique-headers', check_unique_headers, (root,)),
              ('rooms', check_rooms, (root,)),
              ('ops-type-tests', check_ops_type_tests, (root,))]
    if opt.build_root:
        checks.append(('pure-guard', check_pure_guard, (root, opt.build_root)))
    failed = []
    for name, fn, args in checks:
        problems, notes = fn(*args)
        for line in notes:
            print('%s: %s' % (name, line))
        for line in problems:
            print('%s: FAIL: %s' % (name, line))
        print('%s: %s' % (name, 'FAILED (%d)' % len(problems) if problems else 'ok'))
        failed += [name] if problems else []
    print('check_layout: %d of %d checks passed%s%s'
          % (len(checks) - len(failed), len(checks),
             '; failed: ' + ', '.join(failed) if failed else '',
             '' if opt.build_root else '; pure-guard not run (no --build-root)'))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
