"""Issue 12 on the booted test bed: health events from the unit's own hooks, and a rollback
told through notifications and metrics.

The receivers run on the host's loopback (the test bed shares the host's network): a JSON
webhook and an SMTP sink (aiosmtpd). Apprise runs for real inside the test bed. The test
bed's root has psquadlet's own dependencies only, so the pure-Python libraries the optional
extras need (Apprise and what it imports, prometheus_client) are copied into its venv from
the test environment, as `pip install 'psquadlet[notify,metrics]'` would put them there.
The metrics file is read by Debian's prometheus-node-exporter on a free loopback port (never
9100: the testpoint's own exporter) and checked with promtool.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_e2e_watch import (
    CONFIG,
    SERVICE,
    TAG,
    UNIT,
    healthy,
    running_digest,
)
from tests.metrics.exporter import node_exporter
from tests.notify.debs import program
from tests.notify.receivers import SmtpSink, Webhook
from tests.support.images import StandIns
from tests.support.testbed import VENV, TestBed

TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
EXTRAS = ("apprise", "markdown", "requests_oauthlib", "oauthlib", "prometheus_client")
SICK = (
    "/tmp/psq-sick"  # the health command fails while this file exists (tmpfs: a restart clears it)
)


def install_extras(tb: TestBed) -> None:
    site = tb.run(
        [f"{VENV}/bin/python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    ).stdout.strip()
    for name in EXTRAS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            pytest.fail(f"{name} is not installed here (pip install 'psquadlet[test]')")
        source = Path(str(module.__file__)).parent
        target = tb.path(f"{site}/{name}")
        if not target.exists():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))


def config_text(registry: str, hook: Webhook, smtp: SmtpSink | None, extra: str) -> str:
    mail = f'[notifications.channels.mail]\nurl = "{smtp.url()}"\n' if smtp else ""
    return f"""\
[registries."{registry}"]
tls_verify = false

[notifications]
timeout = "5m"  # a fresh Python importing Apprise in the test bed: slow on a loaded host

[notifications.channels.hook]
url = "{hook.url()}"

{mail}
[metrics]
textfile_dir = "{TEXTFILE_DIR}"

[containers.{UNIT}]
preset = "perfsonar-testpoint"
image = "{registry}/{TAG}"

{extra}
"""


def start(tb: TestBed, standins: StandIns, text: str) -> str:
    install_extras(tb)
    tb.run(["mkdir", "-p", TEXTFILE_DIR])
    digest = standins.push("systemd", "1.0", TAG)
    tb.write(CONFIG, text)
    tb.run(["psquadlet", "generate", "-c", CONFIG])
    tb.systemctl("daemon-reload")
    tb.systemctl("start", SERVICE)
    tb.wait_for(lambda: healthy(tb), 90, "the testpoint to come up healthy")
    return digest


def upgrade_pass(tb: TestBed) -> dict[str, Any]:
    res = tb.run(["psquadlet", "upgrade", "--unit", UNIT, "--json", "-c", CONFIG], check=False)
    report = json.loads(res.stdout or "{}")
    assert "containers" in report, f"exit {res.returncode}:\n{res.stdout}\n{res.stderr}"
    [outcome] = [o for o in report["containers"] if o["name"] == UNIT]
    return outcome  # type: ignore[no-any-return]


def titles(hook: Webhook) -> list[str]:
    return [str(m.get("title", "")) for m in hook.received]


def test_unhealthy_testpoint_restarted_and_reported(
    clean_testbed: TestBed, standins: StandIns
) -> None:
    tb = clean_testbed
    hook = Webhook()
    try:
        extra = f"""\
[containers.{UNIT}.health]
cmd = "test ! -e {SICK}"
interval = "2s"
retries = 1
start_period = "0s"  # the preset's 5m would not count the failures this test provokes
on_failure = "kill"

[containers.{UNIT}.service]
restart_sec = "2s"
"""
        start(tb, standins, config_text(standins.registry.host, hook, None, extra))
        unit = tb.path(f"/etc/containers/systemd/{UNIT}.container").read_text()
        assert "--hook --event unhealthy --unit %n" in unit
        assert hook.received == []  # a plain start reports nothing
        restarts_before = tb.systemctl("show", "-P", "NRestarts", SERVICE).stdout.strip()

        tb.podman("exec", UNIT, "touch", SICK)

        def reported(word: str) -> bool:
            return any(word in t for t in titles(hook))

        tb.wait_for(lambda: reported("unhealthy"), 120, "the unhealthy notification")
        tb.wait_for(lambda: reported("restarted"), 120, "the restarted notification")
        tb.wait_for(lambda: reported("healthy again"), 120, "the recovered notification")
        assert tb.systemctl("is-active", SERVICE, check=False).stdout.strip() == "active"
        restarts = tb.systemctl("show", "-P", "NRestarts", SERVICE).stdout.strip()
        assert int(restarts) == int(restarts_before) + 1  # systemd restarted it, once
        assert healthy(tb)
        unhealthy = next(m for m in hook.received if "unhealthy" in str(m.get("title")))
        assert "exit-code" in str(unhealthy.get("message")), unhealthy

        prom = tb.path(f"{TEXTFILE_DIR}/psquadlet.prom").read_text()
        assert f'psquadlet_restarts_total{{container="{UNIT}"}} 1.0' in prom
        assert f'psquadlet_health_state{{container="{UNIT}",state="healthy"}} 1.0' in prom
    finally:
        hook.close()


def test_broken_upgrade_rolled_back_notified_and_measured(
    clean_testbed: TestBed, standins: StandIns
) -> None:
    tb = clean_testbed
    hook = Webhook()
    smtp = SmtpSink()
    smtp.start()
    try:
        text = config_text(
            standins.registry.host,
            hook,
            smtp,
            f'[containers.{UNIT}.update]\nhealth_timeout = "20s"\n'
            # The preset's health check with test-sized times: a broken image's start job
            # would otherwise wait out the preset's 5m start period for Podman's verdict.
            f'[containers.{UNIT}.health]\ninterval = "2s"\ntimeout = "2s"\nstart_period = "10s"\n',
        )
        good = start(tb, standins, text)
        bad = standins.push("systemd", "3.0", TAG, broken=True)

        started = time.monotonic()
        outcome = upgrade_pass(tb)
        assert outcome["action"] == "rolled-back", outcome
        assert running_digest(tb) == good
        assert time.monotonic() - started < 180

        def rolled_back() -> list[dict[str, Any]]:
            return [m for m in hook.received if "rolled back" in str(m.get("title", "")).lower()]

        # The pass sends it before it returns, waiting for a hook's flush that is sending
        # the same channel (the broken image's start ran the unit's hooks meanwhile).
        tb.wait_for(lambda: bool(rolled_back()), 30, "the rolled-back notification")
        rolled = rolled_back()
        assert len(rolled) == 1, titles(hook)
        body = str(rolled[0].get("message"))
        assert good in body
        assert bad in body
        assert any(bad in m for m in smtp.messages), smtp.messages

        folder = tb.path(TEXTFILE_DIR)
        check = subprocess.run(
            [program("promtool"), "check", "metrics"],
            input=(folder / "psquadlet.prom").read_text(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        with node_exporter(folder) as scrape:
            metrics = scrape()
        assert f'psquadlet_rollbacks_total{{container="{UNIT}"}} 1' in metrics
        assert f'psquadlet_refused_digests{{container="{UNIT}"}} 1' in metrics
        assert f'psquadlet_last_check_result{{container="{UNIT}",result="rolled-back"}} 1' in (
            metrics
        )
        assert "node_textfile_scrape_error 0" in metrics

        status: dict[str, Any] = json.loads(
            tb.run(["psquadlet", "status", "--json", "-c", CONFIG], check=False).stdout
        )
        (entry,) = status["containers"]
        assert entry["watch"]["rollbacks"] == 1
        assert entry["watch"]["running_digest"] == good
    finally:
        smtp.stop()
        hook.close()
