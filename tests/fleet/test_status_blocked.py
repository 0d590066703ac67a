"""`status` shows the known-bad digests: what the fleet playbook's rescue checks on every host.

An operator's block (`psquadlet block`, the module's `state: blocked`) and a rollback's mark
both appear under `blocked`, with their source and reason, in the JSON and the text.
"""

from __future__ import annotations

import json
from pathlib import Path

from psquadlet import status
from psquadlet.config import parse_config
from psquadlet.watch import manual
from psquadlet.watch import state as watch_state
from tests.operator.test_status import DIGEST_NEW, DIGEST_OLD, FakeHost, _config


def test_status_lists_blocked_and_rolled_back_digests(tmp_path: Path) -> None:
    store = watch_state.FileStateStore(str(tmp_path))
    rolled = watch_state.BadDigest(DIGEST_OLD, 1_700_000_000.0, "health command exited 1")
    store.save(
        watch_state.WatchState().put(watch_state.ContainerState(name="tp", bad_digests=(rolled,)))
    )
    manual.block(store, "tp", DIGEST_NEW, "rolled back on tp1", 1_700_000_100.0)
    config = parse_config(_config(tmp_path), "t.toml")
    probes = status.Probes(run=FakeHost(), now=lambda: 1_800_000_000.0, machine_id=lambda: "0")
    (st,) = status.collect(config, (), probes)
    doc = json.loads(status.dumps((st,)))["containers"][0]
    assert doc["blocked"] == [
        {
            "digest": DIGEST_OLD,
            "time": "2023-11-14T22:13:20Z",
            "reason": "health command exited 1",
            "source": "rollback",
        },
        {
            "digest": DIGEST_NEW,
            "time": "2023-11-14T22:15:00Z",
            "reason": "rolled back on tp1",
            "source": "operator",
        },
    ]
    text = st.text()
    assert f"blocked:        {DIGEST_NEW[7:19]} (operator: rolled back on tp1)" in text
