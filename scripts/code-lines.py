#!/usr/bin/env python3
"""Counts the code lines of the core and the driver: `core/src` and `shells/common/src`.

A code line is a line with something on it besides whitespace and comments; `#[cfg(test)]`
items (inline `mod tests { … }` and the files they pull in with `#[path]`) are not counted.
Used to show that a refactor made the code smaller, not bigger:

    scripts/code-lines.py                 # the working tree
    scripts/code-lines.py --rev COMMIT    # a commit (read with `git show`, nothing checked out)
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOTS = ("core/src", "shells/common/src")


def files_at(rev):
    """(path, text) of every .rs file under ROOTS, in the working tree or at `rev`."""
    if rev is None:
        for root in ROOTS:
            for path in sorted(Path(root).rglob("*.rs")):
                yield str(path), path.read_text()
        return
    listing = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", rev, "--", *ROOTS],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    for path in sorted(p for p in listing if p.endswith(".rs")):
        text = subprocess.run(
            ["git", "show", f"{rev}:{path}"], check=True, capture_output=True, text=True
        ).stdout
        yield path, text


def strip_comments(text):
    """The text with `//` and `/* */` comments blanked out (string literals respected)."""
    out, i, n = [], 0, len(text)
    depth = 0
    while i < n:
        c = text[i]
        if depth:
            if text.startswith("*/", i):
                depth -= 1
                i += 2
            elif text.startswith("/*", i):
                depth += 1
                i += 2
            else:
                out.append("\n" if c == "\n" else " ")
                i += 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            depth = 1
            i += 2
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("r#\"", i) or text.startswith('r"', i):
            hashes = 1 if text[i + 1] == "#" else 0
            end = '"' + "#" * hashes
            j = text.find(end, i + 2 + hashes)
            j = n if j < 0 else j + len(end)
            out.append(text[i:j])
            i = j
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i : i + 4] + " "):
            m = re.match(r"'(\\.|[^\\'])'", text[i:])
            out.append(m.group(0))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def drop_test_items(code, test_paths):
    """Removes `#[cfg(test)]` items; records files they include with `#[path = "…"]`."""
    lines = code.split("\n")
    keep, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "#[cfg(test)]":
            j = i + 1
            while j < len(lines) and lines[j].strip().startswith("#["):
                m = re.match(r'#\[path\s*=\s*"([^"]+)"\]', lines[j].strip())
                if m:
                    test_paths.add(m.group(1))
                j += 1
            depth, started = 0, False
            while j < len(lines):
                depth += lines[j].count("{") - lines[j].count("}")
                started |= "{" in lines[j]
                if (started and depth <= 0) or (not started and lines[j].rstrip().endswith(";")):
                    break
                j += 1
            i = j + 1
            continue
        keep.append(lines[i])
        i += 1
    return keep


def count(rev):
    per_root = {root: 0 for root in ROOTS}
    texts = dict(files_at(rev))
    excluded = set()
    counted = {}
    for path, text in texts.items():
        includes = set()
        lines = drop_test_items(strip_comments(text), includes)
        for inc in includes:
            excluded.add(str(Path(path).parent / inc))
        counted[path] = sum(1 for line in lines if line.strip())
    for path, n in counted.items():
        if path in excluded:
            continue
        root = next(r for r in ROOTS if path.startswith(r))
        per_root[root] += n
    return per_root


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="count at this commit instead of the working tree")
    args = parser.parse_args()
    totals = count(args.rev)
    for root, n in totals.items():
        print(f"{root}: {n}")
    print(f"total: {sum(totals.values())}")


if __name__ == "__main__":
    sys.exit(main())
