"""The upstream perfSONAR commands come out as the preset plus only what differs.

Every case is also read back with the real loader, so that 'the differences' are checked
against what the preset really gives, not against the importer's idea of it.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from psquadlet import importer
from psquadlet.config import parse_config
from psquadlet.importer.draft import PRESET
from psquadlet.perfsonar import state_volumes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SYSTEMD = (
    "docker run -td --name perfsonar-testpoint --net=host --tmpfs /run --tmpfs /run/lock "
    "--tmpfs /tmp -v /sys/fs/cgroup:/sys/fs/cgroup:rw --cgroupns host --cap-add CAP_NET_RAW "
    "perfsonar/testpoint:systemd"
)
SUPERVISORD = (
    "docker run -d --name perfsonar-testpoint --net=host --cap-add CAP_NET_RAW perfsonar/testpoint"
)


def imported(line: str) -> tuple[dict[str, Any], importer.ImportResult, Any]:
    result = importer.from_command_line([line], environ={}, cwd="/srv")
    text = importer.to_toml(result)
    config = parse_config(text, "imported.toml")
    [name] = tomllib.loads(text)["containers"]
    return tomllib.loads(text)["containers"][name], result, config.containers[0]


def test_guide_lines_are_only_the_preset() -> None:
    for line, variant in ((SYSTEMD, "systemd"), (SUPERVISORD, "supervisord")):
        table, _, spec = imported(line)
        assert table == {"preset": "perfsonar-testpoint", "variant": variant}
        assert spec.name == "perfsonar-testpoint"


def test_the_preset_says_what_it_adds() -> None:
    _, result, spec = imported(SYSTEMD)
    added = {n.subject: n.reason for n in result.all_notes if n.kind == PRESET}
    assert set(added) == {"registry", "volumes", "environment", "restart"}
    assert added["registry"].startswith("ghcr.io instead of docker.io: upstream's CI")
    assert "perfsonar-testpoint-psconfig at /etc/perfsonar/psconfig" in added["volumes"]
    assert dict(spec.environment) == {"TZ": "UTC"}
    assert spec.service.restart == "on-failure"


def test_a_different_tag_and_extra_flags_are_the_differences() -> None:
    table, _, spec = imported(
        SYSTEMD.replace(":systemd", ":v5.2.0-systemd") + " -p 861:861 -e TZ=Europe/Berlin"
    )
    # Image arguments come after the image: the extra flags here are the command.
    assert (
        table["image"] == "ghcr.io/perfsonar/testpoint:v5.2.0-systemd"
    )  # upstream publishes there
    assert table["command"] == ["-p", "861:861", "-e", "TZ=Europe/Berlin"]
    line = SYSTEMD.replace("docker run", "docker run -w /root -e TZ=Europe/Berlin --restart=no")
    table, _, spec = imported(line)
    assert table == {
        "preset": "perfsonar-testpoint",
        "variant": "systemd",
        "working_dir": "/root",
        "environment": {"TZ": "Europe/Berlin"},
        "service": {"restart": "no"},
    }
    assert spec.service.restart == "no"
    assert dict(spec.environment) == {"TZ": "Europe/Berlin"}


def test_missing_guide_flags_are_undone() -> None:
    table, _, spec = imported("docker run -d --name tp perfsonar/testpoint:systemd")
    assert table["tmpfs"] == []
    assert table["network"] == ""
    assert table["cgroupns"] == ""
    assert table["tty"] is False
    # Only the preset's own additions stay: its state volumes, not the cgroup bind mount.
    assert [str(v) for v in spec.volumes] == [
        f"{name}:{folder}" for name, folder in state_volumes("tp")
    ]
    assert spec.cap_add == ("CAP_NET_RAW",)


def test_a_bind_mount_of_the_psconfig_folder_replaces_that_volume() -> None:
    _, _, spec = imported(
        SUPERVISORD.replace("docker run", "docker run -v /srv/ps:/etc/perfsonar/psconfig")
    )
    targets = {v.target: v.source for v in spec.volumes}
    assert targets["/etc/perfsonar/psconfig"] == "/srv/ps"
    assert len(targets) == len(spec.volumes)


@pytest.mark.parametrize(
    "line",
    [
        "docker run -d nginx",
        "docker run -d docker.io/perfsonarx/testpoint",
        "docker run -d ghcr.io/perfsonar/toolkit:systemd",
    ],
)
def test_other_images_get_no_preset(line: str) -> None:
    table, _, _ = imported(line)
    assert "preset" not in table


def test_published_ports_with_host_network_are_dropped_as_docker_does() -> None:
    table, result, _ = imported(SYSTEMD.replace("docker run", "docker run -p 861:861"))
    assert "ports" not in table
    assert [n.subject for n in result.all_notes if n.kind == "dropped"] == ["-d", "port 861:861"]


@pytest.mark.parametrize(
    ("image", "registry", "said"),
    [
        ("perfsonar/testpoint:systemd", None, "ghcr.io instead of docker.io: upstream's CI"),
        ("docker.io/perfsonar/testpoint:systemd", None, 'set registry = "docker.io"'),
        ("ghcr.io/perfsonar/testpoint:systemd", None, "ghcr.io: where upstream publishes"),
        ("mirror.example.org:5000/perfsonar/testpoint:systemd", "mirror.example.org:5000",
         "mirror.example.org:5000: the mirror the command names"),
    ],
)  # fmt: skip
def test_import_says_which_registry_it_chose_and_why(
    image: str, registry: str | None, said: str
) -> None:
    table, result, spec = imported(f"docker run -d --net=host {image}")
    assert table.get("registry") == registry
    notes = {n.subject: n.reason for n in result.all_notes if n.kind == PRESET}
    assert said in notes["registry"]
    assert spec.image.endswith("/perfsonar/testpoint:systemd")
