"""generate never loads Apprise, prometheus_client or the delivery code (only the parsers of
[notifications] and [metrics], which are part of the configuration); the watcher's side never
loads Apprise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _loaded(code: str) -> set[str]:
    probe = (
        f"{code}\nimport sys\n"
        "print(' '.join(m for m in sys.modules if m.split('.')[0] in "
        "('apprise', 'prometheus_client') or m.startswith('psquadlet.notifications') "
        "or m == 'psquadlet.metrics'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(out.stdout.split())


def test_generate_loads_none_of_it(tmp_path: Path) -> None:
    config = tmp_path / "psquadlet.toml"
    config.write_text('[containers.perfsonar-testpoint]\npreset = "perfsonar-testpoint"\n')
    code = (
        "from click.testing import CliRunner\nfrom psquadlet.cli import main\n"
        f"args = ['generate', '-c', {str(config)!r}, '--dry-run', '--podman-version', '5.4.2']\n"
        "r = CliRunner().invoke(main, args)\n"
        "assert r.exit_code == 0, r.output"
    )
    loaded = _loaded(code)
    assert not {m for m in loaded if m.split(".")[0] in ("apprise", "prometheus_client")}
    assert not {m for m in loaded if m.startswith(("psquadlet.notifications.deliver",
                                                   "psquadlet.notifications.send"))}  # fmt: skip


def test_sinks_load_no_apprise_and_prometheus_client_only_to_write() -> None:
    loaded = _loaded("import psquadlet.notifications.commands, psquadlet.notifications.deliver")
    assert "psquadlet.notifications.deliver" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("apprise", "prometheus_client")}
