"""Issue 21: every relative link and #anchor in README.md and docs/*.md resolves, and the only
external links are the ones that were checked (no invented URLs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# The external links the README carried when they were checked; a new one needs checking too.
CHECKED = {
    "https://docs.perfsonar.net/install_docker.html",
    "https://docs.podman.io/en/latest/markdown/podman-systemd.unit.5.html",
    "https://github.com/caronc/apprise",
}

_FENCE = re.compile(r"^(```|~~~)")
_LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)\)")
_CODE = re.compile(r"`[^`]*`")


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link's text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose(path.read_text(encoding="utf-8")):
        match = re.match(r"^#{1,6} (.+?)#*\s*$", line)
        if match is None:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def links(path: Path) -> list[str]:
    """Link targets in the prose (a link's text may run over a line break)."""
    return _LINK.findall(_CODE.sub("", "\n".join(prose(path.read_text(encoding="utf-8")))))


def test_the_slug_follows_githubs_rules() -> None:
    assert slug("`[containers.NAME.health]` (Podman's own health check)") == (
        "containersnamehealth-podmans-own-health-check"
    )
    assert slug("From the upstream `docker run` lines to units") == (
        "from-the-upstream-docker-run-lines-to-units"
    )
    assert slug('`[watch]` and `[registries."HOST[:PORT]"]`') == "watch-and-registrieshostport"


def test_the_docs_are_there() -> None:
    names = {p.name for p in DOCS}
    assert {"configuration.md", "operations.md", "fleets.md", "import.md", "packaging.md"} <= names
    assert all(links(p) for p in DOCS if p.name != "design.md")  # the checker reads their links


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in links(path):
        if re.match(r"^[a-z]+:", target):
            if target not in CHECKED:
                broken.append(f"{target}: an external link nobody checked")
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return broken


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_link_resolves(path: Path) -> None:
    broken = broken_links(path)
    assert not broken, f"{path.relative_to(REPO)}: " + "; ".join(broken)


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    """The checker itself can fail: a wrong anchor, a missing file, an unchecked URL."""
    (tmp_path / "a.md").write_text(
        "# Title\n\n## Sub part\n\n"
        "[ok](#sub-part) [x](b.md#nope) [y](c.md) [z](https://x.test/)\n"
        "```\n[in code](nowhere.md)\n```\n"
        "`[inline](nowhere.md)` [fine](b.md#b) [two\nlines](#nope)\n"
    )
    (tmp_path / "b.md").write_text("# B\n")
    assert broken_links(tmp_path / "a.md") == [
        "b.md#nope: no heading #nope in b.md",
        "c.md: no such file",
        "https://x.test/: an external link nobody checked",
        "#nope: no heading #nope in a.md",
    ]
