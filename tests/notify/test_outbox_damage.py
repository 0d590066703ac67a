"""A damaged outbox never mutes a channel; a queue that cannot be written is a failure
(issue 17 item 9). Real files, a real full tmpfs, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psquadlet.cli import main
from psquadlet.notifications import hooks
from psquadlet.notifications.message import Message
from psquadlet.notifications.outbox import Box, Outbox

MESSAGE = Message("title", "body", "upgraded", "", 1_700_000_000.0)

# Shapes found in the field or by the review: each one used to raise (or never end) at read.
DAMAGED = {
    "a list": b"[]",
    "a string": b'"x"',
    "null": b"null",
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "pending not a list": b'{"pending": {}}',
    "a pending entry not an object": b'{"pending": [1]}',
    "a pending entry of wrong types": b'{"pending": [{"id": 1}]}',
    "a pending entry missing its body": b'{"pending": [{"id": "a", "title": "t"}]}',
    "recent not an object": b'{"recent": []}',
    "held of strings": b'{"held": {"k": "v"}}',
    "an infinite time": b'{"next_try": 1e400}',
    "a huge attempts count": b'{"attempts": 1000000000000000000000}',
    "not UTF-8": b"\xff\xfe{",
    "truncated": b'{"pending": [',
}


def _box(tmp_path: Path) -> Outbox:
    folder = tmp_path / "notifications"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Outbox(folder, "hook", 10)


@pytest.mark.parametrize("shape", sorted(DAMAGED))
def test_a_damaged_outbox_is_moved_aside_and_the_channel_keeps_working(
    tmp_path: Path, shape: str
) -> None:
    outbox = _box(tmp_path)
    outbox.path.write_bytes(DAMAGED[shape])
    assert outbox.add(MESSAGE, quiet_period=0)
    box = outbox.read()
    assert [p.body for p in box.pending] == ["body"]
    assert "moved to" in box.last_error
    (aside,) = outbox.folder.glob("hook.json.corrupt-*")
    assert aside.read_bytes() == DAMAGED[shape]  # kept for inspection


def test_a_huge_failure_count_backs_off_at_most_the_maximum() -> None:
    box = Box(attempts=2**31 - 2)
    box.failed(0.0, "down")
    assert box.next_try == 3600


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
KEYS = st.sampled_from(["pending", "dropped", "attempts", "next_try", "recent", "held", "x"])
OBJECTS = st.dictionaries(KEYS, JSON, max_size=5)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=JSON | OBJECTS)
def test_any_json_in_the_outbox_never_raises(tmp_path: Path, data: object) -> None:
    outbox = _box(tmp_path / uuid.uuid4().hex)
    outbox.path.write_text(json.dumps(data))
    assert outbox.add(MESSAGE, quiet_period=0)
    assert len(outbox.read().pending) >= 1


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200))
def test_any_bytes_in_the_outbox_never_raise(tmp_path: Path, raw: bytes) -> None:
    outbox = _box(tmp_path / uuid.uuid4().hex)
    outbox.path.write_bytes(raw)
    assert outbox.add(MESSAGE, quiet_period=0)


# --------------------------------------------------------------------------- a full disk


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB tmpfs, filled to the last byte."""
    if os.geteuid() != 0:
        pytest.skip("needs root (mount)")
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mount)],
                   check=True, timeout=60)  # fmt: skip
    try:
        (mount / "state").mkdir()
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass  # ENOSPC: full
        finally:
            os.close(fd)
        yield mount / "state"
    finally:
        subprocess.run(["umount", str(mount)], check=False, timeout=60)


def _run(config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "psquadlet", "notify", "-c", str(config), "--event", *args],
        capture_output=True, text=True, check=False, timeout=300, env={**os.environ, **env},
    )  # fmt: skip


def test_a_queue_on_a_full_disk_fails_loudly(tmp_path: Path, full_tmpfs: Path) -> None:
    config = tmp_path / "psquadlet.toml"
    config.write_text(
        f'[watch]\nstate_dir = "{full_tmpfs}"\n\n'
        '[containers.perfsonar-testpoint]\npreset = "perfsonar-testpoint"\n\n'
        '[notifications]\ntimeout = "2s"\n\n'
        '[notifications.channels.hook]\nurl = "json://127.0.0.1:9/"\n'
    )
    result = _run(config, "upgraded", "--unit", "perfsonar-testpoint.service")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stdout
    assert "nothing queued" not in result.stdout
    assert "hook: failed (cannot queue upgraded:" in result.stdout
    assert "No space left on device" in result.stdout

    hook = _run(
        config, "unhealthy", "--unit", "perfsonar-testpoint.service", "--hook",
        SERVICE_RESULT="exit-code",
    )  # fmt: skip
    assert "Traceback" not in hook.stderr, hook.stderr
    assert hook.returncode == 1
    assert "psquadlet: error: cannot leave the restart mark" in hook.stderr


def test_a_hook_never_prints_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever breaks inside a hook is one line in the unit's journal and exit status 1."""

    def broken(*args: object) -> None:
        raise RuntimeError("unforeseen")

    monkeypatch.setattr(hooks, "run_hook", broken)
    config = tmp_path / "psquadlet.toml"
    config.write_text(
        f'[watch]\nstate_dir = "{tmp_path / "state"}"\n\n'
        '[containers.perfsonar-testpoint]\npreset = "perfsonar-testpoint"\n\n'
        '[notifications.channels.hook]\nurl = "json://127.0.0.1:9/"\n'
    )
    args = ["notify", "-c", str(config), "--hook", "--event", "unhealthy", "--unit", "x.service"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "psquadlet: error: the unhealthy hook failed: RuntimeError: unforeseen" in result.output
    assert "Traceback" not in result.output
