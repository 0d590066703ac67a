"""``status --json`` carries the facts the metrics file shows, read from the same files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from psquadlet import status
from psquadlet.config import parse_config
from psquadlet.metrics import EVENTS_FILE, MetricsWriter, read_facts
from psquadlet.watch.events import Event, EventKind
from psquadlet.watch.state import FileStateStore
from tests.metrics.test_metrics_textfile import BAD, NEW, T0, _state


def _setup(tmp_path: Path) -> tuple[dict[str, object], str]:
    state_dir = tmp_path / "state"
    state = _state()  # the same snapshot as the textfile tests
    FileStateStore(str(state_dir)).save(state)
    cs = state.get("perfsonar-testpoint")
    (tmp_path / "prom").mkdir()
    writer = MetricsWriter(state_dir, tmp_path / "prom", clock=lambda: T0 + 600)
    for kind in (EventKind.UNHEALTHY, EventKind.RESTARTED):
        writer.emit(Event(kind, cs.name, "perfsonar-testpoint.service", cs.image, T0 + 550))
    config = parse_config(
        f'[watch]\nstate_dir = "{state_dir}"\n[containers.{cs.name}]\nimage = "{cs.image}"\n',
        "p.toml",
    )
    probes = status.Probes(run=lambda argv: (127, ""), now=lambda: T0 + 600)
    (st,) = status.collect(config, probes=probes)
    entry = json.loads(status.dumps([st]))["containers"][0]
    return entry["watch"], (tmp_path / "prom/psquadlet.prom").read_text()


def test_status_json_says_what_the_metrics_say(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    facts, prom = _setup(tmp_path)
    samples = {
        (s.name, s.labels.get("state", "")): s.value
        for family in text_string_to_metric_families(prom)
        for s in family.samples
        if s.labels.get("container") == "perfsonar-testpoint"
    }
    assert facts["upgrades"] == samples[("psquadlet_upgrades_total", "")] == 1
    assert facts["rollbacks"] == samples[("psquadlet_rollbacks_total", "")] == 1
    assert facts["restarts"] == samples[("psquadlet_restarts_total", "")] == 1
    assert facts["update_available"] is True
    assert samples[("psquadlet_update_available", "")] == 1
    assert facts["available_digest"] == BAD
    assert facts["health"] == "restarted"
    assert samples[("psquadlet_health_state", "restarted")] == 1
    assert facts["last_check_ok"] is True
    assert samples[("psquadlet_last_check_success", "")] == 1
    assert facts["running_digest"] == NEW
    assert facts["running_since"] == "2026-09-21T14:21:40Z"
    assert samples[("psquadlet_image_running_since_timestamp_seconds", "")] == T0 + 500
    assert facts["refused_digests"] == 1


def test_damaged_or_hostile_facts_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / EVENTS_FILE).write_text('{"containers": {"pt": [1], "x": {"restarts": "many"}}}')
    assert read_facts(tmp_path) == {"x": {"restarts": "many"}}
    (tmp_path / EVENTS_FILE).unlink()
    os.mkfifo(tmp_path / EVENTS_FILE)
    assert read_facts(tmp_path) == {}  # refused without blocking
    (tmp_path / EVENTS_FILE).unlink()
    (tmp_path / EVENTS_FILE).write_text("[" * 100_000)
    assert read_facts(tmp_path) == {}


def test_health_events_show_before_the_first_check(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    (tmp_path / "prom").mkdir()
    writer = MetricsWriter(tmp_path / "state", tmp_path / "prom")
    writer.emit(Event(EventKind.RESTARTED, "pt", "pt.service", "x.test/a:1", T0))
    prom = (tmp_path / "prom/psquadlet.prom").read_text()
    assert 'psquadlet_restarts_total{container="pt"} 1.0' in prom
    assert 'psquadlet_health_state{container="pt",state="restarted"} 1.0' in prom
