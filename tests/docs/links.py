#!/usr/bin/env python3
"""Checks that every relative link in README.md, ARCHITECTURE.md and docs/*.md resolves.

A link is `[text](target)` or `![alt](target)` outside code blocks and code spans. Links
with a scheme (https:, mailto:, ...) are not followed. A relative target must name a file
or directory of the repository; a `#anchor` (alone, or after a Markdown file) must be a
heading of that file, as GitHub turns headings into anchors. Prints each broken link as
`file:line: target: why` and exits 1 if there is any, else prints how many it checked.

Usage: tests/docs/links.py [FILE.md ...]   (default: the files above)
Python standard library only.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")


def default_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(text: str, spans: bool = False):
    """(line number, line) outside fenced code blocks; code spans blanked out unless
    `spans` (a heading's code span is part of its anchor)."""
    fence = None
    for n, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif m.group(1) == fence:
                fence = None
            continue
        if fence is None:
            yield n, line if spans else CODE_SPAN.sub(lambda s: " " * len(s.group(0)), line)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed,
    spaces to hyphens."""
    h = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    h = h.replace("`", "").replace("*", "").strip().lower()
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")


def anchors(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    if path not in cache:
        seen: dict[str, int] = {}
        found = set()
        for _, line in prose_lines(path.read_text(encoding="utf-8"), spans=True):
            m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if m:
                base = slug(m.group(1))
                k = seen.get(base, 0)
                seen[base] = k + 1
                found.add(base if k == 0 else f"{base}-{k}")
        cache[path] = found
    return cache[path]


def check(files: list[Path]) -> tuple[int, list[str]]:
    cache: dict[Path, set[str]] = {}
    checked, broken = 0, []
    for md in files:
        rel_md = md.relative_to(ROOT) if md.is_relative_to(ROOT) else md
        for n, line in prose_lines(md.read_text(encoding="utf-8")):
            for m in LINK.finditer(line):
                target = m.group(1)
                if SCHEME.match(target):
                    continue
                checked += 1
                path_part, _, anchor = target.partition("#")
                dest = (md.parent / unquote(path_part)).resolve() if path_part else md
                where = f"{rel_md}:{n}: {target}"
                if not dest.exists():
                    broken.append(f"{where}: no such file")
                elif dest != ROOT and ROOT not in dest.parents:
                    broken.append(f"{where}: outside the repository")
                elif anchor and dest.suffix == ".md" and unquote(anchor) not in anchors(dest, cache):
                    broken.append(f"{where}: no heading with that anchor in {dest.relative_to(ROOT)}")
    return checked, broken


def main(argv: list[str]) -> int:
    files = [Path(a).resolve() for a in argv] or default_files()
    missing = [f for f in files if not f.is_file()]
    if missing:
        print(f"links: not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    checked, broken = check(files)
    for b in broken:
        print(b)
    if broken:
        print(f"links: {len(broken)} broken of {checked} relative links in {len(files)} files")
        return 1
    print(f"links: all {checked} relative links in {len(files)} files resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
