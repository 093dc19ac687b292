#!/usr/bin/env python3
"""Prints the import circles of a crate's `src`: pairs of modules that name each other.

Every file is a module (`lib.rs` is the crate root, `a/mod.rs` and `a.rs` are `a`). A file
names another module when a `crate::`, `super::` or `self::` path in it (in a `use` tree or
inline) resolves to that module or to an item inside it; `#[cfg(test)]` modules, test files
(`tests.rs`, `*_tests.rs`) and comments are left out. Two graphs are checked:

- modules: file against file, leaving out a file naming its own ancestors or descendants (a
  parent declares and re-exports its children, a child uses its parent's items: that is one
  machine split over files, not a circle);
- top level: the crate's first-level modules (`session`, `http`, `control`, ...), where every
  edge counts.

A circle is a strongly connected component of more than one module; a pair is two modules
that name each other. `--check` exits 1 when there is any.
"""

import argparse
import os
import re
import sys


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = []
    for line in text.splitlines():
        # Strings holding `//` are rare in paths we look at; cut at the first `//`.
        idx = line.find("//")
        out.append(line if idx < 0 else line[:idx])
    return "\n".join(out)


def strip_test_modules(text):
    """Drops `#[cfg(test)]` items (a `mod … { … }` block or a `mod x;` line)."""
    out = []
    pos = 0
    pattern = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*([;{])")
    while True:
        m = pattern.search(text, pos)
        if not m:
            out.append(text[pos:])
            break
        out.append(text[pos : m.start()])
        if m.group(3) == ";":
            pos = m.end()
            continue
        depth, i = 1, m.end()
        while i < len(text) and depth:
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
            i += 1
        pos = i
    return "".join(out)


def expand_use_tree(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]"""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    results = []

    def walk(prefix, s):
        # s is a comma separated list at depth 0
        depth, start, parts = 0, 0, []
        for i, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:i])
                start = i + 1
        parts.append(s[start:])
        for part in parts:
            if not part:
                continue
            brace = part.find("{")
            if brace >= 0 and part.endswith("}"):
                head = part[:brace].rstrip(":")
                walk(prefix + ([head] if head else []), part[brace + 1 : -1])
            else:
                results.append("::".join(prefix + [part]))

    walk([], tree)
    return results


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("lib", "main", "mod"):
        rel = rel[:-1]
    return tuple(rel)


def paths_in(text):
    """Every `crate::`/`super::`/`self::` path named in the text, as segment lists."""
    found = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        for p in expand_use_tree(m.group(1)):
            found.append(p)
    text_wo_use = re.sub(r"\buse\s+[^;]+;", "", text)
    for m in re.finditer(r"\b(?:crate|super|self)(?:::\w+)+", text_wo_use):
        found.append(m.group(0))
    segs = []
    for p in found:
        parts = [s for s in p.split("::") if s]
        if parts and parts[0] in ("crate", "super", "self"):
            segs.append(parts)
    return segs


def resolve(modules, here, parts):
    """The module a path names (the longest module prefix), or None"""
    base = list(here)
    i = 0
    if parts[0] == "crate":
        base, i = [], 1
    while i < len(parts) and parts[i] in ("super", "self"):
        if parts[i] == "super":
            base = base[:-1]
        i += 1
    full = base + parts[i:]
    best = None
    for n in range(len(full) + 1):
        if tuple(full[:n]) in modules:
            best = tuple(full[:n])
    return best


def graph_of(src):
    files = []
    for root, _, names in os.walk(src):
        for name in names:
            # Test modules kept in files of their own (`foo_tests.rs`, `tests.rs`) are left
            # out like inline `#[cfg(test)]` ones.
            if name.endswith(".rs") and not (name == "tests.rs" or name.endswith("_tests.rs")):
                files.append(os.path.join(root, name))
    modules = {module_of(src, f): f for f in files}
    edges = {m: set() for m in modules}
    for mod, path in modules.items():
        with open(path, encoding="utf-8") as fh:
            text = strip_test_modules(strip_comments(fh.read()))
        here = mod
        for parts in paths_in(text):
            target = resolve(modules, here, parts)
            if target is not None and target != mod:
                edges[mod].add(target)
    return edges


def sccs(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


def related(a, b):
    return a[: len(b)] == b or b[: len(a)] == a


def name(m):
    return "::".join(m) or "crate"


def report(label, edges):
    pairs = sorted(
        {tuple(sorted((a, b))) for a in edges for b in edges[a] if a in edges.get(b, ())}
    )
    comps = sccs(edges)
    print(f"{label}: {len(pairs)} pairs, {len(comps)} circles")
    for a, b in pairs:
        print(f"  pair: {name(a)} <-> {name(b)}")
    for comp in comps:
        print(f"  circle ({len(comp)}): " + ", ".join(name(m) for m in comp))
    return len(pairs) + len(comps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("src", nargs="+", help="a crate's src directory")
    parser.add_argument("--check", action="store_true", help="exit 1 on any circle")
    args = parser.parse_args()
    found = 0
    for src in args.src:
        edges = graph_of(src)
        files = {a: {b for b in bs if not related(a, b)} for a, bs in edges.items()}
        top = {}
        for a, bs in edges.items():
            if not a:
                continue
            top.setdefault(a[:1], set())
            for b in bs:
                if b and b[:1] != a[:1]:
                    top[a[:1]].add(b[:1])
        found += report(f"{src} modules", files)
        found += report(f"{src} top level", top)
    if args.check and found:
        sys.exit(1)


if __name__ == "__main__":
    main()
