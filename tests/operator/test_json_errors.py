"""Times past year 9999 and failures under ``--json`` (issue 17 item 9).

``status`` on a recorded time past 9999 printed a traceback and no JSON: times are now
range-checked where the state and the metrics facts are loaded, and every ``--json`` command
prints its JSON error object on every failure, even one psquadlet did not foresee.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from psquadlet.cli import main
from psquadlet.watch import state as watch_state

FAR = 1e13  # year 318857


def _config(tmp_path: Path) -> Path:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o755)
    path = tmp_path / "psquadlet.toml"
    path.write_text(
        f'[watch]\nstate_dir = "{state_dir}"\n\n'
        '[containers.tp]\npreset = "perfsonar-testpoint"\n\n'
        f'[metrics]\ntextfile_dir = "{tmp_path}"\n'
    )
    return path


@pytest.mark.parametrize("field", ["last_check", "last_run", "seen_since"])
def test_a_time_past_9999_is_refused_on_load(field: str) -> None:
    text = json.dumps({"version": 2, "containers": {"tp": {field: FAR}}})
    with pytest.raises(watch_state.StateFormatError, match="not a time between 1970 and 9999"):
        watch_state.from_json(text)


def test_status_on_times_past_9999_prints_json_and_notes(tmp_path: Path) -> None:
    config = _config(tmp_path)
    state_dir = tmp_path / "state"
    (state_dir / "state.json").write_text(
        json.dumps({"version": 2, "containers": {"tp": {"last_check": FAR}}})
    )
    (state_dir / "metrics.json").write_text(
        json.dumps({"version": 1, "containers": {"tp": {"image_created": FAR, "upgrades": 1e300}}})
    )
    outputs = {}
    for args in (["--json"], []):
        result = subprocess.run(
            [sys.executable, "-m", "psquadlet", "status", "-c", str(config), *args],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == 3  # nothing runs here: not active, not a crash
        outputs[bool(args)] = result.stdout
    doc = json.loads(outputs[True])
    (tp,) = doc["containers"]
    assert tp["watch"]["image_created"] is None
    assert any("not a time between 1970 and 9999" in n for n in tp["notes"])


@pytest.mark.parametrize(
    ("command", "schema", "target"),
    [
        (["status", "--json"], "psquadlet-status/1", "psquadlet.status.collect"),
        (["doctor", "--json"], "psquadlet-doctor/1", "psquadlet.doctor.diagnose.diagnose"),
        (["upgrade", "--json", "--dry-run"], "psquadlet-upgrade/1", "psquadlet.watch.app.upgrade"),
        (
            ["generate", "--json", "--dry-run", "--podman-version", "5.4"],
            "psquadlet-generate/1",
            "psquadlet.generate.plan_generate",
        ),
    ],
)
def test_every_json_command_prints_json_on_an_unforeseen_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], schema: str, target: str
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something psquadlet did not foresee")

    module, _, name = target.rpartition(".")
    monkeypatch.setattr(f"{module}.{name}", broken)
    args = [*command, "-c", str(_config(tmp_path))]
    if command[0] == "generate":
        args += ["-o", str(tmp_path / "out")]
    result = CliRunner().invoke(main, args)
    doc = json.loads(result.stdout)
    assert doc["schema"] == schema
    assert doc["ok"] is False
    assert "RuntimeError: something psquadlet did not foresee" in doc["error"]["message"]
    assert isinstance(result.exception, RuntimeError)  # still raised: the bug stays visible
