"""The metrics text file: written by prometheus_client, checked by promtool, read by a real
node_exporter's textfile collector on a free loopback port (never 9100: the testpoint's)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from psquadlet.errors import ConfigError
from psquadlet.metrics import FILE_NAME, MetricsWriter, parse_metrics
from psquadlet.watch.events import Event, EventKind
from psquadlet.watch.state import (
    BadDigest,
    ContainerState,
    FileStateStore,
    HistoryEntry,
    WatchState,
)
from tests.metrics.exporter import node_exporter
from tests.notify.debs import program as prometheus_program

pytest.importorskip("prometheus_client")

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
BAD = "sha256:" + "d" * 64
T0 = 1_790_000_000.0


def _state() -> WatchState:
    testpoint = ContainerState(
        name="perfsonar-testpoint",
        image="ghcr.io/perfsonar/testpoint:systemd",
        last_check=T0 + 500,
        last_result="rolled-back: the new image failed its health check",
        running_digest=NEW,
        available_digest=BAD,
        bad_digests=(BadDigest(BAD, T0 + 500, "unhealthy"),),
        history=(
            HistoryEntry(T0, "upgraded", OLD, NEW, "new digest"),
            HistoryEntry(T0 + 500, "rolled-back", NEW, BAD, "unhealthy"),
        ),
    )
    other = ContainerState(name="web", last_check=T0, last_result="error: registry down")
    return WatchState(containers=(other, testpoint))


def _writer(tmp_path: Path) -> MetricsWriter:
    state_dir = tmp_path / "state"
    FileStateStore(str(state_dir)).save(_state())
    folder = tmp_path / "textfile"
    folder.mkdir()
    return MetricsWriter(state_dir, folder, clock=lambda: T0 + 600)


def _events(writer: MetricsWriter) -> None:
    def event(kind: EventKind, **kw: str) -> Event:
        return Event(
            kind,
            "perfsonar-testpoint",
            "perfsonar-testpoint.service",
            "ghcr.io/perfsonar/testpoint:systemd",
            T0,
            **kw,
        )

    writer.emit(
        event(
            EventKind.UPGRADED,
            old_digest=OLD,
            new_digest=NEW,
            new_version="5.2.0",
            extra=(("image_created", str(T0 - 86400)),),
        )
    )
    writer.emit(event(EventKind.RESTARTED))
    writer.emit(event(EventKind.UNHEALTHY))


def test_file_passes_promtool_and_holds_the_facts(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    _events(writer)
    assert writer.last_error == ""
    path = tmp_path / "textfile" / FILE_NAME
    text = path.read_text()
    assert [p.name for p in path.parent.iterdir()] == [FILE_NAME]  # no temp file left
    check = subprocess.run(
        [prometheus_program("promtool"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout + check.stderr == ""  # not even a lint warning
    values = _samples(text)
    tp = (("container", "perfsonar-testpoint"),)
    assert values[("psquadlet_last_check_timestamp_seconds", tp)] == T0 + 500
    assert values[("psquadlet_last_check_success", tp)] == 1
    assert values[("psquadlet_last_check_success", (("container", "web"),))] == 0
    assert values[("psquadlet_last_check_result", (*tp, ("result", "rolled-back")))] == 1
    assert values[("psquadlet_upgrades_total", tp)] == 1
    assert values[("psquadlet_rollbacks_total", tp)] == 1
    assert values[("psquadlet_restarts_total", tp)] == 1
    assert values[("psquadlet_image_running_since_timestamp_seconds", tp)] == T0 + 500
    assert values[("psquadlet_image_created_timestamp_seconds", tp)] == T0 - 86400
    assert values[("psquadlet_update_available", tp)] == 1
    assert values[("psquadlet_health_state", (*tp, ("state", "unhealthy")))] == 1
    assert values[("psquadlet_health_state", (*tp, ("state", "healthy")))] == 0
    info = (
        *tp,
        ("digest", NEW),
        ("image", "ghcr.io/perfsonar/testpoint:systemd"),
        ("version", "5.2.0"),
    )
    assert values[("psquadlet_image_info", info)] == 1
    assert values[("psquadlet_refused_digests", tp)] == 1
    assert values[("psquadlet_upgrade_in_progress", tp)] == 0
    assert values[("psquadlet_metrics_written_timestamp_seconds", ())] == T0 + 600


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_write_failure_is_reported_not_raised(tmp_path: Path) -> None:
    writer = MetricsWriter(tmp_path, tmp_path / "missing-folder")
    assert writer.write(WatchState()) is False
    assert "missing-folder" in writer.last_error


def test_settings() -> None:
    assert parse_metrics({}, "f").textfile_dir == "/var/lib/prometheus/node-exporter"
    assert parse_metrics({"textfile_dir": "/srv/prom"}, "f").textfile_dir == "/srv/prom"
    with pytest.raises(ConfigError, match=r"f:3: metrics.textfile_dir: must be an absolute path"):
        parse_metrics({"textfile_dir": "rel"}, "f", locate=lambda keys: 3)


def test_node_exporter_reads_the_file_on_a_free_port(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    _events(writer)
    with node_exporter(tmp_path / "textfile") as scrape:
        text = scrape()
        assert 'psquadlet_rollbacks_total{container="perfsonar-testpoint"} 1' in text
        assert 'psquadlet_update_available{container="perfsonar-testpoint"} 1' in text
        assert 'psquadlet_health_state{container="perfsonar-testpoint",state="unhealthy"} 1' in text
        assert "node_textfile_scrape_error 0" in text
        # A new rollback (state history + event, as the watcher records it) rewrites the
        # file; the exporter serves the new value on the next scrape.
        cs = _state().get("perfsonar-testpoint")
        again = cs.with_history(HistoryEntry(T0 + 700, "rolled-back", NEW, BAD, "unhealthy"))
        FileStateStore(str(tmp_path / "state")).save(_state().put(again))
        writer.emit(Event(EventKind.ROLLED_BACK, "perfsonar-testpoint", "u", "i", T0 + 700))
        assert 'psquadlet_rollbacks_total{container="perfsonar-testpoint"} 2' in scrape()
    assert os.path.exists(tmp_path / "textfile" / FILE_NAME)
