from __future__ import annotations

import pytest

from psquadlet import imageref
from psquadlet.imageref import ImageRef, ImageRefError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("docker.io/perfsonar/testpoint:systemd", "docker.io/perfsonar/testpoint:systemd"),
        ("docker.io/perfsonar/testpoint", "docker.io/perfsonar/testpoint:latest"),
        ("index.docker.io/perfsonar/testpoint:v5.2.0", "docker.io/perfsonar/testpoint:v5.2.0"),
        ("docker.io/nginx", "docker.io/library/nginx:latest"),
        (
            "127.0.0.1:5000/perfsonar/testpoint:staging",
            "127.0.0.1:5000/perfsonar/testpoint:staging",
        ),
        ("localhost/busybox", "localhost/busybox:latest"),
        ("quay.io/a/b/c:1.0-rc_1", "quay.io/a/b/c:1.0-rc_1"),
        ("[::1]:5000/x/y:z", "[::1]:5000/x/y:z"),
    ],
)
def test_parse_normalises_qualified_names(text: str, expected: str) -> None:
    assert str(imageref.parse(text)) == expected


def test_digest_and_tag_are_both_kept() -> None:
    digest = "sha256:" + "ab" * 32
    ref = imageref.parse(f"docker.io/perfsonar/testpoint:systemd@{digest}")
    assert ref == ImageRef("docker.io", "perfsonar/testpoint", "systemd", digest)
    assert ref.reference == digest
    assert ref.name == "docker.io/perfsonar/testpoint"
    assert ref.api_host == "registry-1.docker.io"


@pytest.mark.parametrize(
    ("short", "suggestion"),
    [
        ("perfsonar/testpoint", "docker.io/perfsonar/testpoint:latest"),
        ("perfsonar/testpoint:systemd", "docker.io/perfsonar/testpoint:systemd"),
        ("nginx", "docker.io/library/nginx:latest"),
    ],
)
def test_short_names_are_refused_with_the_qualified_suggestion(short: str, suggestion: str) -> None:
    with pytest.raises(ImageRefError) as info:
        imageref.parse(short)
    assert info.value.suggestion == suggestion
    assert "short image name" in info.value.reason
    assert str(imageref.normalize(short)) == suggestion


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "docker.io/Perfsonar/testpoint",
        "docker.io/perfsonar/testpoint:",
        "docker.io/perfsonar/testpoint:bad tag",
        "docker.io/perfsonar/testpoint@sha256:1234",
        "docker.io/perfsonar//testpoint",
        " docker.io/perfsonar/testpoint",
        "docker.io/perfsonar/testpoint:systemd\nEvil=1",
        "-bad.example/x",
    ],
)
def test_invalid_references_are_refused(bad: str) -> None:
    with pytest.raises(ImageRefError):
        imageref.parse(bad)
    assert not imageref.is_fully_qualified(bad)


def test_with_tag_and_digest() -> None:
    ref = imageref.parse("docker.io/perfsonar/testpoint:systemd")
    assert str(ref.with_tag("v5.2.0-systemd")) == "docker.io/perfsonar/testpoint:v5.2.0-systemd"
    digest = "sha256:" + "0" * 64
    assert ref.with_digest(digest).reference == digest
    with pytest.raises(ImageRefError):
        ref.with_tag("no spaces")
