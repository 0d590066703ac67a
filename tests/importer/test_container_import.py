"""``psquadlet import --container``: an existing container, from ``podman container inspect``.

The answers here are our own text of inspect's shape (the fields Podman 4 and 5 print); the
booted test bed adopts real containers (tests/e2e/test_e2e_adopt.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from psquadlet import importer
from psquadlet.importer import ImportInputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def answer(data: Any, code: int = 0) -> Any:
    def run(argv: Sequence[str]) -> tuple[int, str]:
        assert list(argv[:3]) == ["podman", "container", "inspect"]
        return code, data if isinstance(data, str) else json.dumps(data)

    return run


def table(result: importer.ImportResult) -> dict[str, Any]:
    text = importer.to_toml(result)
    importer.validate(text)
    return tomllib.loads(text)["containers"]  # type: ignore[no-any-return]


def test_the_recorded_create_command_is_used() -> None:
    inspect = [
        {
            "Name": "web",
            "ImageName": "registry.invalid/site/web:1",
            "Config": {
                "CreateCommand": [
                    "podman", "run", "-d", "--name", "web", "--network", "host",
                    "-v", "/srv/web:/data:z", "--restart", "unless-stopped",
                    "registry.invalid/site/web:1",
                ],
            },
        }
    ]  # fmt: skip
    result = importer.from_container("web", run=answer(inspect))
    c = table(result)["web"]
    assert c["volumes"] == ["/srv/web:/data:z"]
    assert c["network"] == "host"
    assert c["service"]["restart"] == "always"
    assert "create command" in result.source


def test_without_a_create_command_the_settings_are_mapped_and_losses_named() -> None:
    inspect = [
        {
            "Name": "/tp",
            "Config": {
                "Image": "registry.invalid/site/perfsonar-testpoint:production",
                "Env": ["PATH=/usr/bin", "TZ=UTC"],
                "Cmd": ["/wrapper.sh"],
                "Labels": {"io.containers.autoupdate": "registry"},
                "Tty": True,
            },
            "HostConfig": {
                "NetworkMode": "host",
                "CapAdd": ["CAP_NET_RAW"],
                "Binds": ["/opt/tp/psconfig:/etc/perfsonar/psconfig:Z"],
                "Tmpfs": {"/run": "", "/tmp": "rw"},
                "RestartPolicy": {"Name": "always"},
                "Devices": [{"PathOnHost": "/dev/net/tun"}],
            },
        }
    ]
    result = importer.from_container("tp", run=answer(inspect))
    c = table(result)["tp"]
    assert c["image"] == "registry.invalid/site/perfsonar-testpoint:production"
    assert c["command"] == ["/wrapper.sh"]
    assert c["environment"] == {"TZ": "UTC"}
    assert c["volumes"] == ["/opt/tp/psconfig:/etc/perfsonar/psconfig:Z"]
    assert c["tmpfs"] == ["/run", "/tmp:rw"]
    notes = [str(n) for n in result.all_notes]
    assert any("HostConfig.Devices" in n for n in notes)
    assert any("ghcr.io/perfsonar/testpoint" in n for n in notes)


@pytest.mark.parametrize(
    ("data", "code", "fragment"),
    [
        ("Error: no such container nope", 125, "inspect failed: Error: no such container"),
        ("{not json", 0, "not JSON"),
        ([], 0, "a list of one container"),
        ([{"Config": {"CreateCommand": "podman run x"}}], 0, "Config.CreateCommand: expected"),
        ([{"Config": {}, "HostConfig": {"CapAdd": [1]}}], 0, "HostConfig.CapAdd: expected"),
        ([{"Config": {}, "HostConfig": {}}], 0, "names no image"),
        ("[" * 100000, 0, "not JSON"),
    ],
)
def test_bad_answers_are_named(data: Any, code: int, fragment: str) -> None:
    with pytest.raises(ImportInputError) as info:
        importer.from_container("nope", run=answer(data, code))
    assert fragment in str(info.value)
    assert "podman container inspect nope" in str(info.value) or "--container" in str(info.value)
