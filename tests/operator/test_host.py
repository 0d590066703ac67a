"""host: one reading of each host fact (Podman version, testpoint variant, systemctl show),
and files read from the host bounded in size and time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from psquadlet import host
from psquadlet.config import parse_config
from psquadlet.importer.perfsonar import variant_of

DIGEST = "sha256:" + "0" * 64


@pytest.mark.parametrize(
    ("image", "variant"),
    [
        ("docker.io/perfsonar/testpoint:systemd", "systemd"),
        ("docker.io/perfsonar/testpoint:latest", "supervisord"),
        ("docker.io/perfsonar/testpoint:v5.2.0-systemd", "systemd"),
        ("docker.io/perfsonar/testpoint:v5.2.0", "supervisord"),
        ("docker.io/perfsonar/testpoint:5.2.1-systemd", "systemd"),
        ("perfsonar/testpoint", "supervisord"),
        (f"docker.io/perfsonar/testpoint@{DIGEST}", "supervisord"),
        (f"docker.io/perfsonar/testpoint:systemd@{DIGEST}", "systemd"),
        (f"docker.io/perfsonar/testpoint:v5.2.0-systemd@{DIGEST}", "systemd"),
        ("ghcr.io/perfsonar/testpoint:v5.2.0-systemd", "systemd"),
        ("docker.io/library/nginx:systemd", None),
        ("docker.io/perfsonar/toolkit:systemd", None),
    ],
)
def test_one_testpoint_variant_for_every_tag(image: str, variant: str | None) -> None:
    assert host.testpoint_variant(image) == variant
    # The importer, doctor and status agree: the same repository on any registry.
    registry = image.partition("/")[0]
    assert variant_of(image) == variant
    if "." in registry:  # the configuration takes fully qualified names only
        toml = f'[containers.tp]\nimage = "{image}"\n[containers.tp.update]\npolicy = "off"\n'
        config = parse_config(toml, "t.toml")
        assert host.container_variant(config.containers[0]) == variant


def test_the_presets_variant_wins_over_the_tag() -> None:
    toml = '[containers.tp]\npreset = "perfsonar-testpoint"\nvariant = "supervisord"\n'
    (spec,) = parse_config(toml, "t.toml").containers
    assert host.container_variant(spec) == "supervisord"
    (plain,) = parse_config('[containers.tp]\npreset = "perfsonar-testpoint"\n', "t").containers
    assert host.container_variant(plain) == "systemd"


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("podman version 5.4.2\n", (5, 4, 2)),
        ("podman version 4.3.1\n", (4, 3, 1)),
        ('time="x" level=warning msg="RunRoot is not writable"\npodman version 4.9.3\n', (4, 9, 3)),
        ("command not found\n", None),
        ("", None),
    ],
)
def test_podman_version_is_parsed_by_the_one_parser(
    output: str, version: tuple[int, int, int] | None
) -> None:
    assert host.podman_version_in(output) == version


def test_systemctl_show_reads_properties_and_notes_failures() -> None:
    calls: list[list[str]] = []

    def run(argv: object) -> tuple[int, str]:
        assert isinstance(argv, list)
        calls.append(argv)
        if argv[-1] == "gone.service":
            return 1, "Failed to connect to bus: No medium found\n"
        return 0, "ActiveState=active\nSubState=running\n"

    values, note = host.systemctl_show(run, "a.service", ("ActiveState", "SubState"), user=False)
    assert (values, note) == ({"ActiveState": "active", "SubState": "running"}, "")
    assert calls[0] == ["systemctl", "show", "-p", "ActiveState,SubState", "a.service"]
    values, note = host.systemctl_show(run, "gone.service", ("ActiveState",), user=True)
    assert values == {}
    assert note == "systemctl show gone.service failed: Failed to connect to bus: No medium found"
    assert calls[1][:2] == ["systemctl", "--user"]


def test_only_small_regular_utf8_files_are_read(tmp_path: Path, alarm: None) -> None:
    good = tmp_path / "good"
    good.write_text("Image=x\n")
    linked = tmp_path / "linked"
    linked.symlink_to(good)
    assert host.read_host_text(linked) == "Image=x\n"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    zero = tmp_path / "zero"
    zero.symlink_to("/dev/zero")
    latin = tmp_path / "latin"
    latin.write_bytes(b"Image=caf\xe9\n")
    big = tmp_path / "big"
    big.write_bytes(b"#" * 101)
    reasons = {}
    for path, limit in ((fifo, 100), (zero, 100), (latin, 100), (big, 100), (tmp_path, 100)):
        with pytest.raises(host.HostFileError) as caught:
            host.read_host_text(path, limit)
        reasons[path.name] = caught.value.reason
    assert reasons == {
        "fifo": "not a regular file",
        "zero": "not a regular file",
        "latin": "not UTF-8 text (byte 9)",
        "big": "larger than 100 bytes",
        tmp_path.name: "not a regular file",
    }
    with pytest.raises(FileNotFoundError):
        host.read_host_text(tmp_path / "missing")
