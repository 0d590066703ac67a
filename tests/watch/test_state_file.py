"""Issue 10 M6: every way a state file can be corrupt, versions, and the fuzz over its fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psquadlet.watch.interfaces import WatchError
from psquadlet.watch.state import (
    MAX_STATE_BYTES,
    STATE_VERSION,
    BadDigest,
    ContainerState,
    FileStateStore,
    HistoryEntry,
    StateFormatError,
    StateTooNew,
    WatchState,
    from_json,
    to_json,
)

D = "sha256:" + "b" * 64
GOOD = {
    "version": 1,
    "containers": {
        "pt": {
            "image": "x",
            "last_run": 5.0,
            "bad_digests": [{"digest": D, "time": 1.0, "reason": "health"}],
        }
    },
}


def _cs(**fields: object) -> bytes:
    return json.dumps({"version": STATE_VERSION, "containers": {"pt": fields}}).encode()


CORRUPT = {
    "non-utf8": b'{"version": 1, "containers": {"\xff\xfe": {}}}',
    "deep-nesting": b'{"containers": ' + b"[" * 200000 + b"]" * 200000 + b"}",
    "deep-objects": b'{"containers": {"pt": {"history": '
    + b'{"a":' * 100000
    + b"1"
    + b"}" * 100000
    + b"}}}",
    "last_run-string": _cs(last_run="x"),
    "last_check-string": _cs(last_check="yesterday"),
    "last_check-bool": _cs(last_check=True),
    "last_run-infinity": b'{"containers": {"pt": {"last_run": Infinity}}}',
    "last_run-nan": b'{"containers": {"pt": {"last_run": NaN}}}',
    "last_run-huge-int": _cs(last_run=10**400),
    "image-number": _cs(image=5),
    "phase-list": _cs(phase=[]),
    "kept-ids-string": _cs(kept_image_ids="abc"),
    "kept-ids-numbers": _cs(kept_image_ids=[1, 2]),
    "history-not-list": _cs(history={"a": 1}),
    "history-item-string": _cs(history=["x"]),
    "history-item-missing-time": _cs(
        history=[{"action": "a", "from_digest": "", "to_digest": "", "reason": ""}]
    ),
    "bad-digest-time-string": _cs(bad_digests=[{"digest": D, "time": "now", "reason": ""}]),
    "bad-digest-not-object": _cs(bad_digests=[D]),
    "check_failures-negative": _cs(check_failures=-1),
    "check_failures-float": _cs(check_failures=1.5),
    "container-not-object": b'{"containers": {"pt": 5}}',
    "containers-list": b'{"containers": []}',
    "no-containers": b'{"version": 1}',
    "top-level-list": b"[]",
    "version-string": b'{"version": "2", "containers": {}}',
    "version-zero": b'{"version": 0, "containers": {}}',
    "not-json": b"{",
    "empty": b"",
    "oversized": b" " * (MAX_STATE_BYTES + 1),
}


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_state_file_is_moved_aside(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "state.json").write_bytes(content)
    store = FileStateStore(str(tmp_path))
    peeked, note = store.peek()  # status: a note, nothing moved
    assert peeked == WatchState()
    assert "unusable" in note
    assert (tmp_path / "state.json").exists()
    state = store.load()
    assert state == WatchState()
    assert "moved to" in state.notes[0]
    assert not (tmp_path / "state.json").exists()
    aside = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes() == content
    store.save(state)  # and the watcher carries on
    assert store.load().get("pt") == ContainerState(name="pt")


def test_a_newer_state_file_is_refused_not_moved(tmp_path: Path) -> None:
    newer = json.dumps(
        {
            "version": STATE_VERSION + 1,
            "containers": {
                "pt": {
                    "bad_digests": [{"digest": D, "time": 1, "reason": "r", "new": {"x": 1}}],
                    "new_field": [1, 2],
                }
            },
        }
    )
    (tmp_path / "state.json").write_text(newer)
    store = FileStateStore(str(tmp_path))
    with pytest.raises(StateTooNew, match=r"newer psquadlet \(state version 3"):
        store.load()
    assert isinstance(StateTooNew("x"), WatchError)  # a pass fails clearly, exit 1
    assert (tmp_path / "state.json").read_text() == newer  # untouched, not moved aside
    assert not list(tmp_path.glob("state.json.corrupt-*"))
    state, note = store.peek()
    assert "newer psquadlet" in note
    assert state == WatchState()


def test_a_version_1_file_is_migrated(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(json.dumps(GOOD))
    store = FileStateStore(str(tmp_path))
    cs = store.load().get("pt")
    assert cs.last_run == 5.0
    assert cs.check_failures == 0
    assert cs.bad_digests == (BadDigest(D, 1.0, "health", "rollback"),)
    store.save(store.load())
    assert json.loads((tmp_path / "state.json").read_text())["version"] == STATE_VERSION


def test_unknown_keys_are_ignored() -> None:
    data = {
        "version": STATE_VERSION,
        "outbox": [1],
        "containers": {
            "pt": {
                "image": "x",
                "pinned_release": "5.2",
                "history": [
                    {
                        "time": 1,
                        "action": "upgraded",
                        "from_digest": "",
                        "to_digest": D,
                        "reason": "",
                        "new": True,
                    }
                ],
            }
        },
    }
    cs = from_json(json.dumps(data)).get("pt")
    assert cs.image == "x"
    assert cs.history == (HistoryEntry(1.0, "upgraded", "", D, ""),)


def test_an_unreadable_state_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").mkdir()
    with pytest.raises(WatchError, match="cannot read state file"):
        FileStateStore(str(tmp_path)).load()


# A value for every field, of every JSON type: loading never raises anything but
# StateFormatError, and what loads round-trips.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = [f for f in ContainerState.__dataclass_fields__ if f != "name"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from([*FIELDS, "unknown"]), JSON_VALUES, max_size=6),
    st.one_of(st.none(), JSON_VALUES),
)
def test_fuzz_every_state_field(fields: dict[str, object], version: object) -> None:
    doc: dict[str, object] = {"containers": {"pt": fields}}
    if version is not None:
        doc["version"] = version
    try:
        state = from_json(json.dumps(doc))
    except StateFormatError:
        return
    assert from_json(to_json(state)) == state
