"""Release tracking: which tags are releases, how they order, and what a policy picks.

Pure logic (no registry, no Podman). A *tag template* such as ``v{version}-systemd`` says
which tags are releases: it is anchored at both ends, and ``{version}`` reads
``MAJOR.MINOR.PATCH`` (no leading zeros) with at most one pre-release word from a short list
(``-alpha``, ``-beta``, ``-rc``, each optionally numbered: ``-rc1``, ``-rc.2``). Anything
else never matches: arch-suffixed tags (``v5.2.1-systemd-amd64``), branch builds without the
``v`` (``5.2.1-systemd``), odd pre-releases (``v5.2.0-1.b1``), and, for ``v{version}``, the
other variant's ``v5.2.1-systemd`` (``systemd`` is not a pre-release word), so a pattern can
never switch the variant.

Policies (``[update] track``): ``patch`` follows the highest release of the current
MAJOR.MINOR, ``minor`` of the current MAJOR, ``major`` any newer release. A newer release
outside the policy is *available*: reported, never adopted. ``digest`` is not handled here
(the moving tag's digest is followed, as before).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

TRACKS = ("digest", "patch", "minor", "major")
VERSION_FIELD = "{version}"
MAX_TEMPLATE = 100
_TAG_CHARS = re.compile(r"^[A-Za-z0-9_.-]*$")
_PRE_WORDS = ("alpha", "beta", "rc")  # in semver order: alpha < beta < rc
_VERSION_RE = (
    r"(?P<major>0|[1-9][0-9]{0,8})\.(?P<minor>0|[1-9][0-9]{0,8})\.(?P<patch>0|[1-9][0-9]{0,8})"
    r"(?:-(?P<pre>alpha|beta|rc)(?:\.?(?P<pren>0|[1-9][0-9]{0,8}))?)?"
)


class TemplateError(ValueError):
    """A tag template that cannot be used; the message says why."""


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int
    # (1,) for a release; (0, word rank, number) for a pre-release: sorts before the release
    pre: tuple[int, ...] = (1,)

    @property
    def is_prerelease(self) -> bool:
        return self.pre != (1,)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.is_prerelease:
            text += f"-{_PRE_WORDS[self.pre[1]]}{self.pre[2] if self.pre[2] >= 0 else ''}"
        return text


@dataclass(frozen=True)
class Release:
    tag: str
    version: Version


def check_template(template: str) -> str:
    """*template* if usable, else TemplateError (used by config validation too)."""
    if template.count(VERSION_FIELD) != 1:
        raise TemplateError("must contain '{version}' exactly once")
    if len(template) > MAX_TEMPLATE:
        raise TemplateError(f"longer than {MAX_TEMPLATE} characters")
    prefix, _, suffix = template.partition(VERSION_FIELD)
    if not _TAG_CHARS.match(prefix + suffix):
        raise TemplateError(
            "outside '{version}' only letters, digits, '_', '.' and '-' can appear in a tag"
        )
    if prefix[:1] in (".", "-"):
        raise TemplateError("a tag cannot start with '.' or '-'")
    return template


class TagPattern:
    """A compiled, anchored tag template."""

    def __init__(self, template: str) -> None:
        self.template = check_template(template)
        prefix, _, suffix = template.partition(VERSION_FIELD)
        self._re = re.compile("^" + re.escape(prefix) + _VERSION_RE + re.escape(suffix) + "$")

    def version(self, tag: str) -> Version | None:
        m = self._re.match(tag)
        if m is None:
            return None
        pre: tuple[int, ...] = (1,)
        if m.group("pre"):
            number = int(m.group("pren")) if m.group("pren") is not None else -1
            pre = (0, _PRE_WORDS.index(m.group("pre")), number)
        return Version(int(m.group("major")), int(m.group("minor")), int(m.group("patch")), pre)

    def tag(self, version: Version) -> str:
        return self.template.replace(VERSION_FIELD, str(version))

    def releases(self, tags: Iterable[str], prerelease: bool = False) -> list[Release]:
        """The tags that are releases, oldest first (pre-releases only when asked for)."""
        out = []
        for tag in tags:
            v = self.version(tag)
            if v is not None and (prerelease or not v.is_prerelease):
                out.append(Release(tag, v))
        return sorted(out, key=lambda r: (r.version, r.tag))


def in_policy(track: str, current: Version, candidate: Version) -> bool:
    """Whether *track* lets a container on *current* move to *candidate* by itself."""
    if candidate <= current:
        return False
    if track == "patch":
        return (candidate.major, candidate.minor) == (current.major, current.minor)
    if track == "minor":
        return candidate.major == current.major
    return track == "major"


@dataclass(frozen=True)
class Decision:
    adopt: Release | None  # the highest release the policy takes, if newer than current
    available: tuple[Release, ...] = ()
    """Newer releases outside the policy, oldest first: the newest of the current major (a
    new minor under ``patch``) and the newest of all (a new major)."""


def decide(
    track: str,
    current: Version | None,
    releases: Iterable[Release],
    skip: Iterable[str] = (),
) -> Decision:
    """What *track* does from *current* given *releases* (tags in *skip* are never chosen).

    With no current version (the configured tag is a moving one such as ``systemd``) the
    newest release is the starting point and is adopted whatever the track.
    """
    skipped = set(skip)
    ordered = sorted(releases, key=lambda r: (r.version, r.tag))
    if current is None:
        usable = [r for r in ordered if r.tag not in skipped]
        return Decision(usable[-1] if usable else None)
    newer = [r for r in ordered if r.version > current]
    inside = [r for r in newer if in_policy(track, current, r.version) and r.tag not in skipped]
    outside = [r for r in newer if not in_policy(track, current, r.version)]
    same_major = [r for r in outside if r.version.major == current.major]
    available = {r.tag: r for r in (*same_major[-1:], *outside[-1:])}
    return Decision(inside[-1] if inside else None, tuple(available.values()))
