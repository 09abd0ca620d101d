"""Every relative link in the repository's Markdown files points to a file inside it.

Links to anything outside the repository (``../shared/...`` and the like) would be dead for a
user who clones it, so they fail too; so does a ``#fragment`` that names no heading of the
Markdown file it points to.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Directories that are not part of the repository's documentation.
SKIPPED_DIRS = {".git", "var", "build", "dist", "node_modules", ".venv", "venv"}
#: Files the documentation must at least consist of.
REQUIRED = (
    "README.md",
    "CONTRIBUTING.md",
    "CHANGELOG.md",
    "BENCH.md",
    "bench/README.md",
    "docs/api.md",
    "docs/configuration.md",
    "docs/downstream.md",
    "docs/operations.md",
)

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+).+?\1")
#: ``[text](target)`` and ``![alt](target)``, target optionally in ``<…>``, optional title.
_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^\s)]*)(?:\s+[\"'(][^)]*)?\)"
)
#: ``[label]: target`` reference definitions.
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")


def markdown_files() -> list[Path]:
    files = []
    for path in sorted(ROOT.rglob("*.md")):
        parts = path.relative_to(ROOT).parts
        if any(p in SKIPPED_DIRS or p.endswith(".egg-info") for p in parts[:-1]):
            continue
        files.append(path)
    return files


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, with inline code removed, numbered from 1."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)[0] * len(opening.group(1))
            continue
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            continue
        lines.append((number, _INLINE_CODE.sub("", line)))
    return lines


def links(text: str) -> list[tuple[int, str]]:
    """Every link target of a Markdown text, with its line number."""
    found = []
    for number, line in prose_lines(text):
        targets = [m.group(1) for m in _INLINE_LINK.finditer(line)]
        reference = _REFERENCE.match(line)
        if reference:
            targets.append(reference.group(1))
        found += [(number, t[1:-1] if t.startswith("<") else t) for t in targets]
    return found


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def test_the_documentation_files_exist() -> None:
    missing = [name for name in REQUIRED if not (ROOT / name).is_file()]
    assert not missing, f"missing documentation files: {missing}"


def test_links_are_found_outside_code_only() -> None:
    text = '[a](x.md) `[b](y.md)`\n```\n[c](z.md)\n```\n[d]: <w w.md>\n![e](img.png "t")'
    assert [t for _, t in links(text)] == ["x.md", "w w.md", "img.png"]
    assert slug("Send an SMS: `POST /v1/sms/`") == "send-an-sms-post-v1sms"
    assert slug("Configuration API (admin)") == "configuration-api-admin"


@pytest.mark.parametrize(
    "path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)).replace("/", "_")
)
def test_relative_links_point_to_files_inside_the_repository(path: Path) -> None:
    problems = []
    for number, target in links(path.read_text(encoding="utf-8")):
        if not target or _SCHEME.match(target) or target.startswith("//"):
            continue  # a URL (https:, mailto:, …): not ours to check
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        file_part, _, fragment = target.partition("#")
        file_part = unquote(file_part.split("?", 1)[0])
        if file_part.startswith("/"):
            problems.append(f"{where}: absolute path; link relative to the file")
            continue
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{where}: points outside the repository")
            continue
        if not resolved.exists():
            problems.append(f"{where}: no such file")
            continue
        if fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{where}: no heading #{fragment} in {resolved.relative_to(ROOT)}")
    assert not problems, "broken links:\n" + "\n".join(problems)
