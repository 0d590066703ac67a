"""Continuous health on the booted Debian 13 test bed (issue 11 item 2), with real programs.

The "sickly" stand-in's `pscheduler troubleshoot` fails while a file exists. The unit comes from
the perfSONAR preset with short health values in the TOML (the preset's own minutes would make
the test slow, not different): Podman 5.4's health check sees the testpoint turn unhealthy,
kills it (`HealthOnFailure=kill`), systemd restarts it (`Restart=on-failure`) and the start job
ends only once it is healthy (`Notify=healthy`). When it stays unhealthy, the start limit stops
the restarts after `start_limit_burst` starts and the unit stays down; the watcher's pass then
gives it one `reset-failed` + start, and brings it back once it is repaired.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.support.images import StandIns
from tests.support.testbed import TestBed

UNIT = "perfsonar-testpoint"
SERVICE = f"{UNIT}.service"
CONFIG = "/etc/psquadlet/psquadlet.toml"
SICK_DIR = "/srv/psq-health"  # bind-mounted at /var/lib/psq-health: outlives restarts
BURST = 3
LIMIT_HIT = "Start request repeated too quickly"


def config_text(registry_host: str) -> str:
    return f"""\
[registries."{registry_host}"]
tls_verify = false

[containers.{UNIT}]
preset = "perfsonar-testpoint"
variant = "supervisord"
image = "{registry_host}/perfsonar/testpoint:latest"
volumes = ["{SICK_DIR}:/var/lib/psq-health"]

[containers.{UNIT}.health]
interval = "2s"
timeout = "2s"
retries = 2
start_period = "0s"

[containers.{UNIT}.unit]
start_limit_interval = "10m"
start_limit_burst = {BURST}

[containers.{UNIT}.service]
restart_sec = "1s"
timeout_start = "90s"
"""


def show(tb: TestBed, prop: str) -> str:
    return tb.systemctl("show", "-p", prop, "--value", SERVICE).stdout.strip()


def container_id(tb: TestBed) -> str:
    res = tb.podman("inspect", UNIT, "--format", "{{.Id}}", check=False)
    return res.stdout.strip() if res.returncode == 0 else ""


def healthy(tb: TestBed) -> bool:
    res = tb.podman("inspect", UNIT, "--format", "{{.State.Health.Status}}", check=False)
    return res.returncode == 0 and res.stdout.strip() == "healthy"


def given_up(tb: TestBed, cursor: str) -> bool:
    """The start limit was hit after the journal cursor ``cursor``. systemd 257 keeps the last
    start's Result (exit-code) when it refuses the next automatic restart; the journal says
    that it did."""
    return show(tb, "ActiveState") == "failed" and LIMIT_HIT in tb.journal(SERVICE, cursor)


def upgrade_pass(tb: TestBed, adapter: str) -> dict[str, Any]:
    """One pass through the given systemd adapter (pystemd, busctl)."""
    res = tb.run(
        ["psquadlet", "upgrade", "--unit", UNIT, "--json", "-c", CONFIG],
        check=False,
        env={"PSQUADLET_SYSTEMD_ADAPTER": adapter},
    )
    assert res.returncode in (0, 1), f"upgrade crashed ({res.returncode}):\n{res.stderr}"
    (outcome,) = [o for o in json.loads(res.stdout)["containers"] if o["name"] == UNIT]
    return outcome  # type: ignore[no-any-return]


def test_unhealthy_testpoint_is_restarted_and_a_broken_one_stays_down(
    clean_testbed: TestBed, standins: StandIns
) -> None:
    tb = clean_testbed
    standins.push("sickly", "1.0", "perfsonar/testpoint:latest")
    tb.sh(f"rm -rf {SICK_DIR} && mkdir -p {SICK_DIR}")
    tb.write(CONFIG, config_text(standins.registry.host))
    try:
        tb.run(["psquadlet", "generate", "-c", CONFIG])
        unit_file = tb.path(f"/etc/containers/systemd/{UNIT}.container").read_text()
        for line in ("Notify=healthy", "HealthOnFailure=kill", f"StartLimitBurst={BURST}"):
            assert line in unit_file.splitlines(), unit_file
        tb.systemctl("daemon-reload")

        # Notify=healthy: the start job returns only once Podman's check has passed.
        tb.systemctl("start", SERVICE)
        assert show(tb, "ActiveState") == "active"
        assert healthy(tb), tb.podman("inspect", UNIT, check=False).stdout[-2000:]
        first = container_id(tb)

        # Unhealthy inside the container only: Podman kills it, systemd starts a fresh one
        # (the file is gone with the old container), and it is healthy again.
        tb.podman("exec", UNIT, "touch", "/run/psq-sick")

        def replaced() -> bool:
            now = container_id(tb)
            return bool(now) and now != first and show(tb, "ActiveState") == "active"

        tb.wait_for(replaced, 90, "systemd to restart the unhealthy testpoint")
        assert int(show(tb, "NRestarts")) >= 1
        tb.wait_for(lambda: healthy(tb), 30, "the restarted testpoint to be healthy")

        # Unhealthy for good (the file is on a bind mount): BURST starts, then it stays down.
        tb.systemctl("reset-failed", SERVICE)  # a fresh start-limit window for the count
        restarts_before = int(show(tb, "NRestarts"))
        cursor = tb.journal_cursor()
        tb.sh(f"touch {SICK_DIR}/sick")
        tb.wait_for(lambda: given_up(tb, cursor), 240, "the start limit")
        # BURST starts, then the next automatic restart is refused (NRestarts counts it too).
        starts = tb.journal(SERVICE, cursor).count(f"Starting {SERVICE}")
        assert starts == BURST, tb.journal(SERVICE, cursor)[-4000:]
        restarts = int(show(tb, "NRestarts")) - restarts_before
        time.sleep(10)  # no loop: still down, no new start
        assert show(tb, "ActiveState") == "failed"
        assert int(show(tb, "NRestarts")) - restarts_before == restarts
        assert container_id(tb) == ""

        # The watcher's pass finds the unit failed: one reset-failed (over D-Bus) + start.
        # Still sick: the pass reports it and leaves it (systemd retries within its limit).
        # Through each systemd adapter in turn (issue 18 item 3): the start job that fails,
        # and one that ends with the unit "activating" again, read the same through both.
        for adapter in ("pystemd", "busctl"):
            cursor = tb.journal_cursor()
            outcome = upgrade_pass(tb, adapter)
            assert outcome["action"] == "error", (adapter, outcome)
            assert "did not start again" in outcome["message"], (adapter, outcome)
            assert "left failed until the next pass" in outcome["message"], (adapter, outcome)
            tb.wait_for(lambda c=cursor: given_up(tb, c), 300, "systemd to give up again")

        # Repaired: the next pass starts it, and goes on with its check as usual. (busctl: the
        # pystemd adapter's successful start is proven in tests/watch/test_systemd_units_e2e.)
        tb.sh(f"rm -f {SICK_DIR}/sick")
        outcome = upgrade_pass(tb, "busctl")
        assert outcome["action"] == "up-to-date", outcome
        assert outcome["message"].startswith(f"started {SERVICE} again after it had failed")
        assert show(tb, "ActiveState") == "active"
        assert healthy(tb)
    finally:
        tb.sh(f"rm -rf {SICK_DIR}", check=False)
