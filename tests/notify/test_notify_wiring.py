"""What a pass reports to: sinks built from the configuration (psquadlet.watch.sinks)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from psquadlet.config import parse_config
from psquadlet.model import Config
from psquadlet.watch.events import Event, EventKind, Fanout, NullSink
from psquadlet.watch.sinks import build_sinks

ROOT = Path(__file__).resolve().parents[2]


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    def warning(self, msg: str) -> None:
        self.lines.append(msg)

    def error(self, msg: str) -> None:
        self.lines.append(msg)

    def progress(self, msg: str) -> None:
        self.lines.append(msg)


def _config(tmp_path: Path, extra: str) -> Config:
    (tmp_path / "prom").mkdir(exist_ok=True)  # node_exporter's package makes its folder
    text = f'[watch]\nstate_dir = "{tmp_path}/state"\n[containers.pt]\nimage = "x.test/a:1"\n'
    return parse_config(text + extra, str(tmp_path / "p.toml"))


def test_nothing_configured_nothing_built_nothing_imported() -> None:
    code = (
        "import sys\n"
        "from psquadlet.config import parse_config\n"
        "from psquadlet.watch import app\n"
        "from psquadlet.watch.sinks import build_sinks\n"
        "from psquadlet.watch.events import NullSink\n"
        "c = parse_config('[containers.pt]\\nimage = \"x.test/a:1\"\\n', 'p.toml')\n"
        "s = build_sinks(c, '/nonexistent', None)\n"
        "assert isinstance(s.events, NullSink) and s.notifier is None and s.metrics is None\n"
        "loaded = [m for m in sys.modules if m.startswith(('prometheus_client', 'apprise',"
        " 'psquadlet.notifications.deliver'))]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_both_configured_fan_out_to_outbox_and_metrics(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        f'[notifications.channels.hook]\nurl = "json://127.0.0.1:9/"\n'
        f'[metrics]\ntextfile_dir = "{tmp_path}/prom"\n',
    )
    sinks = build_sinks(config, str(tmp_path / "state"), Lines())
    assert isinstance(sinks.events, Fanout)
    assert sinks.notifier is not None
    assert sinks.metrics is not None
    sinks.events.emit(Event(EventKind.ROLLED_BACK, "pt", "pt.service", "x.test/a:1", time.time()))
    assert "rolled" in (tmp_path / "state/notifications/hook.json").read_text()
    assert '"rollbacks": 1' in (tmp_path / "state/metrics.json").read_text()
    assert "psquadlet_metrics_written" in (tmp_path / "prom/psquadlet.prom").read_text()


def test_only_metrics(tmp_path: Path) -> None:
    config = _config(tmp_path, f'[metrics]\ntextfile_dir = "{tmp_path}/prom"\n')
    sinks = build_sinks(config, str(tmp_path / "state"), Lines())
    assert sinks.notifier is None
    assert sinks.events is sinks.metrics
    sinks.after_pass(Lines())
    assert (tmp_path / "prom/psquadlet.prom").is_file()


def test_an_unsafe_urls_file_is_logged_and_the_pass_goes_on(tmp_path: Path) -> None:
    urls = tmp_path / "urls.toml"
    urls.write_text('hook = "json://127.0.0.1:9/"\n')
    urls.chmod(0o644)
    config = _config(
        tmp_path, f'[notifications]\nurls_file = "{urls}"\n[notifications.channels.hook]\n'
    )
    log = Lines()
    sinks = build_sinks(config, str(tmp_path / "state"), log)
    assert isinstance(sinks.events, NullSink)
    assert any("notifications are off" in line and "chmod 600" in line for line in log.lines)


def test_the_daemons_pass_child_writes_the_metrics(tmp_path: Path) -> None:
    """The daemon runs each pass in a forked child (app.ForkedRunner): the sinks live there."""
    from psquadlet.watch.app import Endpoints, ForkedRunner

    config = _config(tmp_path, f'[metrics]\ntextfile_dir = "{tmp_path}/prom"\n')
    endpoints = Endpoints(podman_url="unix:///nonexistent.sock", state_dir=str(tmp_path / "state"))
    runner = ForkedRunner(config, endpoints, Lines())
    report = runner.run_pass([], [], lambda text: None)
    assert report.outcomes == ()
    assert "psquadlet_metrics_written" in (tmp_path / "prom/psquadlet.prom").read_text()
