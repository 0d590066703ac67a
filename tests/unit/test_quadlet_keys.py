"""Pure tests of the key table, version parsing and version gating."""

from __future__ import annotations

import dataclasses

import pytest

from psquadlet.quadlet_keys import KEYS, Kind, QuadletKey, check_version, key, parse_version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4.4", (4, 4, 0)),
        ("5.4.2", (5, 4, 2)),
        ("v5.4.2", (5, 4, 2)),
        ("5.4.2-1", (5, 4, 2)),
        ("4.9.3+ds1", (4, 9, 3)),
        ("5", (5, 0, 0)),
        ("podman version 5.4.2", (5, 4, 2)),
        (" 4.7.0 ", (4, 7, 0)),
    ],
)
def test_parse_version(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["", "latest", "4.x", "five", "4..4", "1.2.3.4"])
def test_parse_version_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="not a Podman version"):
        parse_version(text)


def test_check_version_names_key_section_and_versions() -> None:
    used = [key("Container", "Image"), key("Container", "Tmpfs"), key("Container", "Tmpfs")]
    assert check_version(used, (4, 4, 0)) == [
        "key Tmpfs= in [Container] needs Podman 4.5 or newer (target is 4.4.0)"
    ]
    assert check_version(used, (4, 5, 0)) == []
    assert check_version(used, (5, 4, 2)) == []


def test_check_version_ignores_systemd_keys_and_refuses_pre_quadlet_targets() -> None:
    assert check_version([key("Service", "Restart")], (4, 4, 0)) == []
    messages = check_version([key("Container", "Image")], (4, 3, 1))
    assert len(messages) == 1
    assert "no Quadlet" in messages[0]
    assert "--format service" in messages[0]


def test_newer_keys_are_gated() -> None:
    assert check_version([key("Container", "Memory")], (5, 4, 2)) == [
        "key Memory= in [Container] needs Podman 5.5 or newer (target is 5.4.2)"
    ]


def test_table_rows_are_consistent() -> None:
    for (section, name), row in KEYS.items():
        assert (row.section, row.name) == (section, name)
        assert isinstance(row.kind, Kind)
        if section in ("Container", "Volume"):
            assert (4, 4) <= row.since <= (6, 0), row
        else:
            assert row.since == (0, 0), row
    # the keys the perfSONAR preset needs are all there
    for name in (
        "Image",
        "ContainerName",
        "Network",
        "Tmpfs",
        "Volume",
        "AddCapability",
        "Environment",
        "PodmanArgs",
        "Exec",
        "HostName",
        "PublishPort",
    ):
        assert ("Container", name) in KEYS
    for name in ("VolumeName", "Driver", "Options", "Label", "Copy"):
        assert ("Volume", name) in KEYS


def test_key_lookup_error_names_the_key() -> None:
    with pytest.raises(KeyError, match=r"Nope= in \[Container\]"):
        key("Container", "Nope")


def test_rows_are_frozen_and_the_table_read_only() -> None:
    row = key("Container", "Image")
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.name = "Other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        KEYS[("Container", "X")] = QuadletKey("Container", "X", (4, 4), Kind.VERBATIM)  # type: ignore[index]
    assert str(row) == "Image= in [Container]"
