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

from psquadlet.host import testpoint_variant
from psquadlet.imageref import ImageRef, is_tag

TRACKS = ("digest", "patch", "minor", "major")
VERSION_FIELD = "{version}"
MAX_TEMPLATE = 100
_TAG_CHARS = re.compile(r"[A-Za-z0-9_.-]*")
_PRE_WORDS = ("alpha", "beta", "rc")  # in semver order: alpha < beta < rc
_VERSION_RE = (
    r"(?P<major>0|[1-9][0-9]{0,8})\.(?P<minor>0|[1-9][0-9]{0,8})\.(?P<patch>0|[1-9][0-9]{0,8})"
    r"(?:-(?P<pre>alpha|beta|rc)(?:\.?(?P<pren>0|[1-9][0-9]{0,8}))?)?"
)


_VERSION_IN_TAG = re.compile(_VERSION_RE)
_VERSIONED = re.compile(r"[0-9]+\.[0-9]+")  # a tag naming a version (v5.2.1, 5.2, 1.0-x)


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
    if not _TAG_CHARS.fullmatch(prefix + suffix):
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
        self._re = re.compile(re.escape(prefix) + _VERSION_RE + re.escape(suffix))

    def version(self, tag: str) -> Version | None:
        """The version *tag* is a release of; the whole tag must match (``fullmatch``: a
        pattern ending in ``$`` would also take ``v5.2.2-systemd\n``), and be a tag."""
        m = self._re.fullmatch(tag) if is_tag(tag) else None
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


def suggest_template(tag: str) -> str:
    """A template of which *tag* is a release (``v5.2.1-systemd`` -> ``v{version}-systemd``),
    or "" when there is none."""
    m = _VERSION_IN_TAG.search(tag)
    if m is None:
        return ""
    template = tag[: m.start()] + VERSION_FIELD + tag[m.end() :]
    try:
        return template if TagPattern(template).version(tag) is not None else ""
    except TemplateError:
        return ""


def conflict(template: str, image: ImageRef) -> tuple[str, str] | None:
    """Why following the releases of *template* from *image* is unsound, as (message, hint),
    or None.

    - The image's tag names a version but is not a release of the template: the watcher
      would know no current version and take the newest release, whatever the track.
    - For ``perfsonar/testpoint``: the template's releases are the other variant
      (``host.testpoint_variant``), e.g. ``v{version}`` from ``systemd``.
    A moving tag (``systemd``, ``latest``) names no version: nothing but the variant can be
    checked, and the first pass adopts the newest release of the template.
    """
    pattern = TagPattern(template)
    tag = image.tag or ""
    if tag and _VERSIONED.search(tag) and pattern.version(tag) is None:
        fits = suggest_template(tag)
        return (
            f"the image's tag {tag!r} is not a release of {template!r}: the watcher would "
            "take the newest release whatever the track",
            f'tag_pattern = "{fits}"' if fits else "configure a release tag of the pattern",
        )
    mine = testpoint_variant(image)
    if mine is None:
        return None
    for sample in (Version(1, 0, 0), Version(1, 0, 0, (0, 2, 1))):
        sample_tag = pattern.tag(sample)
        theirs = testpoint_variant(image.with_tag(sample_tag))
        if theirs != mine:
            other = "v{version}-systemd" if mine == "systemd" else "v{version}"
            return (
                f"{template!r} names {theirs} tags (like {sample_tag}) but {image} is the "
                f"{mine} variant: the watcher would switch the variant",
                f'tag_pattern = "{other}"',
            )
    return None


def same_variant(image: ImageRef, tag: str) -> bool:
    """Whether release *tag* of *image*'s repository is the same testpoint variant (always
    true for other images): the watcher never adopts the other variant."""
    mine = testpoint_variant(image)
    return mine is None or testpoint_variant(image.with_tag(tag)) == mine
