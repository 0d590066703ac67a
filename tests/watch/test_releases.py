"""Tag templates and version policies (psquadlet.watch.releases): pure."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from psquadlet.imageref import parse
from psquadlet.watch.releases import (
    Release,
    TagPattern,
    TemplateError,
    Version,
    check_template,
    conflict,
    decide,
    suggest_template,
)
from tests.support.registry import UPSTREAM_TAGS

# The tag set of issue 13, plus what upstream also pushes (arch suffixes, branch builds, an
# odd pre-release).
UPSTREAM = list(UPSTREAM_TAGS)
NOISE = [
    "v5.2.1-systemd-amd64",
    "v5.2.1-systemd-arm64",
    "v5.2.1-amd64",
    "5.2.1-systemd",
    "5.2.1",
    "v5.2.0-1.b1",
    "v5.2.0-1.b1-systemd",
    "v05.2.1-systemd",
    "v5.2-systemd",
    "v5.2.1.1-systemd",
    "systemd-rocky8",
]
SYSTEMD = TagPattern("v{version}-systemd")
SUPERVISORD = TagPattern("v{version}")


def tags_of(pattern: TagPattern, tags: list[str], pre: bool = False) -> list[str]:
    return [r.tag for r in pattern.releases(tags, pre)]


def test_systemd_template_reads_only_the_systemd_releases_in_semver_order() -> None:
    assert tags_of(SYSTEMD, UPSTREAM + NOISE) == [
        "v5.2.1-systemd",
        "v5.3.0-systemd",
        "v6.0.0-systemd",
    ]


def test_prereleases_only_when_asked_and_they_sort_before_their_release() -> None:
    assert tags_of(SYSTEMD, UPSTREAM + NOISE, pre=True) == [
        "v5.2.1-systemd",
        "v5.3.0-rc1-systemd",
        "v5.3.0-systemd",
        "v6.0.0-systemd",
    ]


def test_supervisord_template_never_reads_the_systemd_variant() -> None:
    assert tags_of(SUPERVISORD, UPSTREAM + NOISE, pre=True) == ["v5.1.4", "v5.2.0", "v5.2.1"]
    assert SUPERVISORD.version("v5.2.1-systemd") is None
    assert SUPERVISORD.version("v5.3.0-rc1-systemd") is None


@pytest.mark.parametrize("tag", NOISE)
def test_arch_suffixes_branch_builds_and_odd_prereleases_never_match(tag: str) -> None:
    assert SYSTEMD.version(tag) is None
    assert SUPERVISORD.version(tag) is None


def test_version_order_is_semver_not_text() -> None:
    tags = ["v5.10.0", "v5.9.9", "v5.10.0-rc2", "v5.10.0-rc10", "v5.10.0-beta", "v5.10.0-alpha.3"]
    assert tags_of(SUPERVISORD, tags, pre=True) == [
        "v5.9.9",
        "v5.10.0-alpha.3",
        "v5.10.0-beta",
        "v5.10.0-rc2",
        "v5.10.0-rc10",
        "v5.10.0",
    ]


@pytest.mark.parametrize(
    "template", ["v{version}{version}", "release", "v{version}/x", "-{version}", "v{version} x"]
)
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        check_template(template)


def rel(tag: str) -> Release:
    v = SYSTEMD.version(tag)
    assert v is not None
    return Release(tag, v)


RELEASES = [
    rel(t) for t in ("v5.2.0-systemd", "v5.2.1-systemd", "v5.3.0-systemd", "v6.0.0-systemd")
]
V520 = Version(5, 2, 0)


@pytest.mark.parametrize(
    ("track", "adopt", "available"),
    [
        ("patch", "v5.2.1-systemd", ["v5.3.0-systemd", "v6.0.0-systemd"]),
        ("minor", "v5.3.0-systemd", ["v6.0.0-systemd"]),
        ("major", "v6.0.0-systemd", []),
    ],
)
def test_each_policy_picks_its_release_and_reports_the_next_outside(
    track: str, adopt: str, available: list[str]
) -> None:
    d = decide(track, V520, RELEASES)
    assert d.adopt is not None
    assert d.adopt.tag == adopt
    assert [r.tag for r in d.available] == available


def test_patch_reports_the_new_minor_when_nothing_newer_is_outside() -> None:
    d = decide("patch", Version(5, 2, 1), RELEASES[:3])
    assert d.adopt is None
    assert [r.tag for r in d.available] == ["v5.3.0-systemd"]


def test_a_rejected_release_is_skipped_and_an_older_one_in_policy_is_not_downgraded_to() -> None:
    d = decide(
        "patch", Version(5, 2, 1), [*RELEASES, rel("v5.2.2-systemd")], skip={"v5.2.2-systemd"}
    )
    assert d.adopt is None
    d = decide("patch", V520, [*RELEASES, rel("v5.2.2-systemd")], skip={"v5.2.2-systemd"})
    assert d.adopt is not None
    assert d.adopt.tag == "v5.2.1-systemd"


def test_from_a_moving_tag_the_newest_release_is_the_starting_point() -> None:
    d = decide("minor", None, RELEASES)
    assert d.adopt is not None
    assert d.adopt.tag == "v6.0.0-systemd"


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", max_size=12)
_version = st.builds(
    Version,
    st.integers(0, 999),
    st.integers(0, 999),
    st.integers(0, 999),
    st.sampled_from([(1,), (0, 0, -1), (0, 1, 2), (0, 2, 0), (0, 2, 11)]),
)


@given(prefix=st.sampled_from(["", "v", "release-", "V"]), suffix=_word, version=_version)
def test_a_template_reads_back_exactly_the_versions_it_writes(
    prefix: str, suffix: str, version: Version
) -> None:
    template = f"{prefix}{{version}}{('-' + suffix) if suffix else ''}"
    try:
        pattern = TagPattern(template)
    except TemplateError:
        return
    assert pattern.version(pattern.tag(version)) == version


@given(tag=st.text(alphabet="v0123456789.-systemdrcalphbe", max_size=24))
def test_a_match_is_anchored_and_is_the_template_filled_in(tag: str) -> None:
    for pattern in (SYSTEMD, SUPERVISORD):
        v = pattern.version(tag)
        if v is not None:
            assert pattern.version(pattern.tag(v)) == v
            assert re.fullmatch(r"v[0-9.]+(-(alpha|beta|rc)\.?[0-9]*)?(-systemd)?", tag)
            assert not (pattern is SUPERVISORD and tag.endswith("-systemd"))


# --------------------------------------------------------------------------- issue 17
@pytest.mark.parametrize("tag", ["v5.2.2-systemd\n", "v5.2.2-systemd\r\n", "v5.2.2-systemd "])
def test_the_whole_tag_must_match_not_a_line_of_it(tag: str) -> None:
    # `$` matched before a trailing newline: v5.2.2-systemd\n counted as a release
    assert SYSTEMD.version(tag) is None
    assert tags_of(SYSTEMD, [tag, "v5.2.1-systemd"]) == ["v5.2.1-systemd"]


@pytest.mark.parametrize("template", ["v{version}\n", "v{version}-systemd\n", "\nv{version}"])
def test_a_template_with_a_newline_is_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        check_template(template)


@pytest.mark.parametrize(
    ("tag", "template"),
    [
        ("v5.2.1-systemd", "v{version}-systemd"),
        ("v5.2.1", "v{version}"),
        ("v5.3.0-rc1-systemd", "v{version}-systemd"),
        ("release-1.2.3", "release-{version}"),
        ("systemd", ""),
        ("v5.2", ""),
    ],
)
def test_suggest_template(tag: str, template: str) -> None:
    assert suggest_template(tag) == template


TP = "ghcr.io/perfsonar/testpoint"


@pytest.mark.parametrize(
    ("template", "image", "problem"),
    [
        # issue 17 item 8: the systemd image and the supervisord pattern
        ("v{version}", f"{TP}:v5.2.1-systemd", "is not a release of 'v{version}'"),
        ("v{version}", f"{TP}:systemd", "names supervisord tags"),
        ("v{version}-systemd", f"{TP}:latest", "names systemd tags"),
        ("v{version}-systemd", f"{TP}:v5.2.1", "is not a release of"),
        ("systemd-v{version}", f"{TP}:systemd", None),
        ("{version}", "registry.test/app:1.4.2", None),
        ("v{version}", "registry.test/app:1.4.2", "is not a release of 'v{version}'"),
        ("v{version}", "registry.test/app:stable", None),  # moving: nothing to check
        ("v{version}-systemd", f"{TP}:v5.2.1-systemd", None),
        ("v{version}", f"{TP}:latest", None),
        ("v{version}", f"{TP}:v5.2.1", None),
    ],
)
def test_a_pattern_that_contradicts_the_image(
    template: str, image: str, problem: str | None
) -> None:
    found = conflict(template, parse(image))
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found[0]
