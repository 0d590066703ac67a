"""status: assembled from systemctl, podman and the watcher's state file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from psquadlet import status
from psquadlet.config import load_config, parse_config
from psquadlet.doctor import Host, checks, context_for
from psquadlet.watch import state as watch_state
from tests.support import require_programs, require_root

DIGEST_NEW = "sha256:" + "b" * 64
DIGEST_OLD = "sha256:" + "a" * 64
IMAGE_ID = "c" * 64


def _config(state_dir: Path, image: str = "docker.io/perfsonar/testpoint:systemd") -> str:
    return textwrap.dedent(
        f"""
        [watch]
        state_dir = "{state_dir}"

        [containers.tp]
        preset = "perfsonar-testpoint"
        image = "{image}"
        container_name = "psq-op-status"

        [containers.tp.update]
        interval = "6h"
        """
    )


def _write_state(state_dir: Path) -> None:
    cs = watch_state.ContainerState(
        name="tp",
        last_check=1_800_000_000.0,
        last_result="up to date",
        history=(
            watch_state.HistoryEntry(1_700_000_000.0, "upgraded", DIGEST_OLD, DIGEST_NEW, ""),
            watch_state.HistoryEntry(1_700_000_100.0, "rolled-back", DIGEST_NEW, DIGEST_OLD, "x"),
            watch_state.HistoryEntry(1_700_000_200.0, "upgraded", DIGEST_OLD, DIGEST_NEW, ""),
        ),
    )
    watch_state.FileStateStore(str(state_dir)).save(watch_state.WatchState().put(cs))


class FakeHost:
    """systemd and a running container, which this machine (no systemd PID 1) cannot offer."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        argv = list(argv)
        self.calls.append(argv)
        if argv[0] == "systemctl":
            return 0, "LoadState=loaded\nActiveState=active\nSubState=running\n"
        if argv[:3] == ["podman", "container", "inspect"]:
            info = {
                "Id": "d" * 64,
                "Image": IMAGE_ID,
                "ImageName": "docker.io/perfsonar/testpoint:systemd",
                "State": {"Running": True, "StartedAt": "2026-11-28T09:00:00Z"},
            }
            return 0, json.dumps([info])
        if argv[:3] == ["podman", "image", "inspect"]:
            image = {
                "Id": IMAGE_ID,
                "Digest": "sha256:" + "e" * 64,
                "RepoDigests": [
                    f"quay.io/other/copy@{DIGEST_OLD}",
                    f"docker.io/perfsonar/testpoint@{DIGEST_NEW}",
                ],
            }
            return 0, json.dumps([image])
        if argv[:2] == ["podman", "exec"]:
            assert argv[-1] == status.BUNDLE_VERSION_FILE
            return 0, "5.2.1\n"
        return 127, ""


def test_status_from_all_sources(tmp_path: Path) -> None:
    _write_state(tmp_path)
    config = parse_config(_config(tmp_path), "t.toml")
    now = 1_800_000_100.0
    probes = status.Probes(run=FakeHost(), now=lambda: now, machine_id=lambda: "0" * 32)
    (st,) = status.collect(config, (), probes)
    assert (st.load_state, st.active_state, st.sub_state) == ("loaded", "active", "running")
    assert st.running
    assert st.image == "docker.io/perfsonar/testpoint:systemd"
    assert st.image_id == IMAGE_ID
    assert st.digest == DIGEST_NEW  # the configured repository's digest, not another copy's
    assert st.bundle_version == "5.2.1"
    assert st.last_check == 1_800_000_000.0
    assert st.next_check == 1_800_000_000.0 + 6 * 3600
    assert st.last_upgrade is not None
    assert st.last_upgrade.time == 1_700_000_200.0
    assert st.last_rollback is not None
    assert (st.last_rollback.time, st.last_rollback.reason) == (1_700_000_100.0, "x")
    # The move the rollback made: from the image that failed to the one restored.
    assert (st.last_rollback.from_digest, st.last_rollback.to_digest) == (DIGEST_OLD, DIGEST_NEW)
    doc = json.loads(status.dumps((st,)))
    assert doc["schema"] == "psquadlet-status/1"
    entry = doc["containers"][0]
    assert entry["unit_state"] == {"load": "loaded", "active": "active", "sub": "running"}
    assert entry["last_check"] == "2027-01-15T08:00:00Z"
    assert entry["last_rollback"]["action"] == "rolled-back"
    text = st.text()
    assert "perfSONAR:      5.2.1" in text
    assert "tp (tp.service): active/running" in text


def test_unreadable_state_is_a_note_and_is_left_in_place(tmp_path: Path) -> None:
    bad = tmp_path / watch_state.STATE_FILE
    bad.write_text("{not json")
    config = parse_config(_config(tmp_path), "t.toml")
    (st,) = status.collect(config, (), status.Probes(run=FakeHost()))
    assert any("unreadable" in n for n in st.notes)
    assert bad.read_text() == "{not json"  # status never moves or rewrites it
    assert sorted(p.name for p in tmp_path.iterdir()) == [watch_state.STATE_FILE]


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "latin-1"])
def test_a_state_file_that_is_not_a_small_text_file_is_a_note(
    tmp_path: Path, kind: str, alarm: None
) -> None:
    bad = tmp_path / watch_state.STATE_FILE
    if kind == "dev-zero":
        bad.symlink_to("/dev/zero")  # was a MemoryError
    elif kind == "fifo":
        os.mkfifo(bad)  # was a hang
    else:
        bad.write_bytes(b'{"caf\xe9": 1}')
    config = parse_config(_config(tmp_path), "t.toml")
    (st,) = status.collect(config, (), status.Probes(run=FakeHost()))
    expected = "not UTF-8 text (byte 5)" if kind == "latin-1" else "not a regular file"
    assert f"cannot read {bad}: {expected}" in st.notes


def test_status_json_says_ok_when_every_unit_is_active(tmp_path: Path) -> None:
    config = parse_config(_config(tmp_path), "t.toml")
    (active,) = status.collect(config, (), status.Probes(run=FakeHost()))
    doc = json.loads(status.dumps((active,)))
    assert (doc["schema"], doc["ok"]) == ("psquadlet-status/1", True)
    (down,) = status.collect(config, (), status.Probes(run=lambda argv: (1, "")))
    assert json.loads(status.dumps((active, down)))["ok"] is False


def test_nothing_running_still_reports(tmp_path: Path) -> None:
    config = parse_config(_config(tmp_path), "t.toml")
    probes = status.Probes(run=lambda argv: (1, "Failed to connect to bus\nmore\n"))
    (st,) = status.collect(config, (), probes)
    assert not st.running
    assert st.last_check is None
    assert "systemctl show tp.service failed: Failed to connect to bus" in st.notes
    assert "container psq-op-status not found by podman" in st.notes


# ------------------------------------------------------------------ with real podman


@pytest.fixture(scope="module")
def plain_image() -> str:
    require_root()
    require_programs("podman", "busybox")
    from tests.support.images import build_plain

    return build_plain("op-status").local


@pytest.fixture
def container(plain_image: str) -> Iterator[tuple[str, int]]:
    """The stand-in running as 'psq-op-status' on host networking, holding a TCP port."""
    port = next(p for p in range(5890, 5901) if _tcp_free(p))
    name = "psq-op-status"
    subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, check=False)
    serve = (
        "mkdir -p /var/lib/perfsonar/bundles && echo 5.9.9 > /var/lib/perfsonar/bundles/"
        f"bundle_version; busybox nc -l -p {port} & exec /usr/local/bin/serve"
    )
    subprocess.run(
        [
            "podman",
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            plain_image,
            "sh",
            "-c",
            serve,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    try:
        for _ in range(50):
            if not _tcp_free(port):
                break
            subprocess.run(["sleep", "0.1"], check=True)
        else:
            pytest.fail(f"the container never bound TCP port {port}")
        yield name, port
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, check=False)


def _tcp_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


@pytest.mark.registry
def test_status_of_a_real_container(
    tmp_path: Path, plain_image: str, container: tuple[str, int]
) -> None:
    config_file = tmp_path / "c.toml"
    config_file.write_text(_config(tmp_path, plain_image))
    config = load_config(config_file)
    (st,) = status.collect(config)
    inspect = subprocess.run(
        ["podman", "container", "inspect", "--format", "{{.Image}}", container[0]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert st.running
    assert st.image_id == inspect
    assert st.image == plain_image
    assert st.bundle_version == "5.9.9"


@pytest.mark.registry
def test_doctor_leaves_out_the_testpoints_own_ports(container: tuple[str, int]) -> None:
    name, port = container

    def ports(container_name: str) -> list[dict[str, object]]:
        toml = (
            '[containers.tp]\npreset = "perfsonar-testpoint"\nvariant = "supervisord"\n'
            f'container_name = "{container_name}"\n'
        )
        return [
            dict(c) for c in checks.check_ports(context_for(parse_config(toml, "t"), Host())).items
        ]

    assert port not in [c["port"] for c in ports(name)]
    clash = [c for c in ports("someone-else") if c["port"] == port]
    assert clash, f"port {port} of the running container not seen"
    procs = clash[0]["processes"]
    assert isinstance(procs, list)
    assert {p["comm"] for p in procs} & {"busybox", "nc"}
    assert os.getpid() not in {p["pid"] for p in procs}


def test_status_says_how_the_watcher_reaches_systemd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deps.systemd_adapter's answer, in the text and the JSON (issue 18 item 3)."""
    from psquadlet import deps

    config = parse_config(_config(tmp_path), "t.toml")
    monkeypatch.delenv(deps.SYSTEMD_ADAPTER_ENV, raising=False)
    (st,) = status.collect(config, (), status.Probes(run=FakeHost()))
    assert st.systemd_adapter == deps.systemd_adapter() == "pystemd"  # the test venv has it
    monkeypatch.setitem(sys.modules, "pystemd", None)
    (st,) = status.collect(config, (), status.Probes(run=FakeHost()))
    assert "  watcher via:    busctl\n" in st.text()
    assert json.loads(status.dumps((st,)))["containers"][0]["systemd_adapter"] == "busctl"
    monkeypatch.setenv(deps.SYSTEMD_ADAPTER_ENV, "bogus")
    (st,) = status.collect(config, (), status.Probes(run=FakeHost()))
    assert st.systemd_adapter.startswith("none (PSQUADLET_SYSTEMD_ADAPTER='bogus'")
