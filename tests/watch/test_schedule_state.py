"""Schedules, the state file and its lock (pure, plus real files and processes)."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from psquadlet.watch.interfaces import LockedError
from psquadlet.watch.schedule import Schedule, machine_offset, next_run
from psquadlet.watch.state import (
    BadDigest,
    ContainerState,
    FileStateStore,
    HistoryEntry,
    WatchState,
    from_json,
    to_json,
)

UTC = dt.timezone.utc
MID = "3d1219c7c4c5404aaa1f6d2a48adfda4"


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_offset_is_stable_per_host_and_spread_across_a_fleet() -> None:
    assert machine_offset(3600, MID) == machine_offset(3600, MID)
    offsets = {machine_offset(3600, f"{i:032x}") for i in range(200)}
    assert len(offsets) > 150  # spread, not clumped
    assert all(0 <= o < 3600 for o in offsets)
    assert machine_offset(0, MID) == 0


@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=86400))
def test_offset_within_window(machine_id: str, window: int) -> None:
    assert 0 <= machine_offset(window, machine_id) < window


def test_daily_slot_is_at_time_plus_offset() -> None:
    s = Schedule(daily="03:00", randomized_delay=3600)
    off = machine_offset(3600, MID)
    now = at("2026-11-28T10:00:00")
    nxt = next_run(s, last_run=now - 60, now=now, machine_id=MID, tz=UTC)
    assert nxt == at("2026-11-29T03:00:00") + off


def test_missed_run_is_due_at_once() -> None:
    s = Schedule(daily="03:00", randomized_delay=0)
    now = at("2026-11-28T10:00:00")  # host was off at 03:00 today; last ran two days ago
    nxt = next_run(s, last_run=at("2026-11-26T03:00:05"), now=now, machine_id=MID, tz=UTC)
    assert nxt <= now


def test_never_run_waits_for_its_slot() -> None:
    s = Schedule(daily="03:00", randomized_delay=0)
    now = at("2026-11-28T10:00:00")
    assert next_run(s, None, now, MID, tz=UTC) == at("2026-11-29T03:00:00")


def test_just_ran_waits_for_tomorrow() -> None:
    s = Schedule(daily="03:00", randomized_delay=0)
    now = at("2026-11-28T03:00:01")
    assert next_run(s, now - 1, now, MID, tz=UTC) == at("2026-11-29T03:00:00")


def test_interval() -> None:
    s = Schedule(daily=None, interval=6 * 3600)
    now = at("2026-11-28T10:00:00")
    assert next_run(s, now - 3600, now, MID) == now + 5 * 3600
    assert next_run(s, now - 7 * 3600, now, MID) < now


def test_state_round_trip() -> None:
    cs = ContainerState(
        name="pt",
        image="docker.io/perfsonar/testpoint:systemd",
        last_check=1.5,
        running_digest="sha256:a",
        bad_digests=(BadDigest("sha256:b", 2.0, "health"),),
        history=(HistoryEntry(3.0, "rolled-back", "sha256:a", "sha256:b", "health"),),
        kept_image_ids=("x",),
    )
    state = WatchState().put(cs)
    assert from_json(to_json(state)) == state
    data = json.loads(to_json(state))
    assert data["containers"]["pt"]["bad_digests"][0]["reason"] == "health"


def test_state_file_is_written_atomically(tmp_path: Path) -> None:
    store = FileStateStore(str(tmp_path / "s"))
    store.save(WatchState().put(ContainerState(name="a", last_check=1.0)))
    assert store.load().get("a").last_check == 1.0
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["state.json"]  # no temp left
    assert oct((tmp_path / "s" / "state.json").stat().st_mode & 0o777) == "0o644"


def _hold_lock(
    state_dir: str,
    ready: multiprocessing.synchronize.Event,  # type: ignore[name-defined]
    release: multiprocessing.synchronize.Event,
) -> None:  # type: ignore[name-defined]
    with FileStateStore(state_dir).lock():
        ready.set()
        release.wait(20)


def test_lock_refuses_a_second_pass_from_another_process(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    proc.start()
    try:
        assert ready.wait(10)
        with (
            pytest.raises(LockedError, match=f"pid {proc.pid}"),
            FileStateStore(str(tmp_path)).lock(),
        ):
            pass
    finally:
        release.set()
        proc.join(10)
    with FileStateStore(str(tmp_path)).lock():  # free again once the holder is gone
        pass


def test_lock_is_released_when_the_holder_is_killed(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    proc.start()
    assert ready.wait(10)
    os.kill(proc.pid, 9)
    proc.join(10)
    deadline = time.monotonic() + 5
    with FileStateStore(str(tmp_path)).lock():
        assert time.monotonic() < deadline


def test_unwritable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    from psquadlet.watch.interfaces import WatchError

    blocker = tmp_path / "file"
    blocker.write_text("")
    store = FileStateStore(str(blocker / "state"))
    with pytest.raises(WatchError, match="cannot open lock file"), store.lock():
        pass
    with pytest.raises(WatchError, match="cannot write state file"):
        store.save(WatchState())
