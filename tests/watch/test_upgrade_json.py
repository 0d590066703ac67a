"""``psquadlet upgrade --json``: JSON_CONTRACT's psquadlet-upgrade/1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from test_core import run, target
from watchfakes import IMAGE, NEW, OLD, world

from psquadlet.watch.app import report_json
from psquadlet.watch.interfaces import RegistryError

RESULTS = {
    "upgraded",
    "rolled-back",
    "up-to-date",
    "update-available",
    "skipped",
    "blocked",
    "failed",
    "not-due",
}


def _check_entry(entry: dict[str, object]) -> None:
    for key, kind in (("name", str), ("unit", str), ("image", str), ("message", str)):
        assert isinstance(entry[key], kind), key
    assert entry["result"] in RESULTS
    for key in ("old_digest", "new_digest"):
        assert entry[key] is None or isinstance(entry[key], str)


def test_an_upgrade_in_json() -> None:
    w = world()
    data = json.loads(report_json(run(w)))
    assert (data["schema"], data["ok"], data["changed"]) == ("psquadlet-upgrade/1", True, True)
    (entry,) = data["containers"]
    _check_entry(entry)
    assert (entry["result"], entry["old_digest"], entry["new_digest"]) == ("upgraded", OLD, NEW)
    assert entry["action"] == "upgraded"  # the older key stays


def test_up_to_date_failed_and_skipped_in_json() -> None:
    w = world((("a", "ca", IMAGE), ("b", "cb", "docker.io/library/busybox:latest")))
    w.registry.digests[IMAGE] = OLD
    w.registry.fail["docker.io/library/busybox:latest"] = RegistryError("HTTP 503")
    report = run(
        w,
        target("a", "ca"),
        target("b", "cb", "docker.io/library/busybox:latest"),
        target("c", "cc", policy="off"),
    )
    data = json.loads(report_json(report))
    assert (data["ok"], data["changed"]) == (False, False)
    for entry in data["containers"]:
        _check_entry(entry)
    assert [e["result"] for e in data["containers"]] == ["up-to-date", "failed", "skipped"]
    assert data["containers"][0]["old_digest"] == OLD
    assert data["containers"][1]["new_digest"] is None


def test_a_dry_run_says_update_available() -> None:
    w = world()
    data = json.loads(report_json(run(w, dry_run=True)))
    assert data["containers"][0]["result"] == "update-available"
    assert data["changed"] is False


def test_a_config_error_is_one_json_object_and_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(
        '[containers.pt]\nimage = "docker.io/perfsonar/testpoint:systemd"\n'
        "[containers.pt.update]\nrandomized_delay = -5\n"
    )
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "psquadlet",
            "upgrade",
            "--json",
            "-c",
            str(cfg),
            "--state-dir",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert res.returncode == 2, res.stderr
    data = json.loads(res.stdout)
    assert (data["schema"], data["ok"]) == ("psquadlet-upgrade/1", False)
    (problem,) = data["error"]["problems"]
    assert problem["line"] == 4
    assert problem["key_path"].endswith("randomized_delay")
    assert "psquadlet: error:" in res.stderr
