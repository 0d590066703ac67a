"""Degrade, never die (issue 17 item 2) on the booted Debian 13 test bed, with real programs.

The "sickly" stand-in's `pscheduler troubleshoot` fails while a file exists. The unit comes from
the perfSONAR preset with test-sized times in the TOML (the preset's minutes and hours would
make the test slow, not different): Podman 5.4 runs the check and takes no action itself;
`psquadlet-health.timer` (its rounds made frequent by a drop-in) runs `psquadlet heal`, which
restarts an unhealthy testpoint within `restart_budget`, then leaves it running, unhealthy,
says `gave-up` once, retries on a backoff, and says `healthy` once it is repaired.

Measured here (bench/README.md "Degrade, never die"): after the budget is spent, the fraction of
an observation window in which the container runs, restarts before the backoff retry, and
gave-up messages in the window.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.support.images import StandIns
from tests.support.testbed import TestBed
from tests.support.testbed import TestBedError as BedError

UNIT = "perfsonar-testpoint"
SERVICE = f"{UNIT}.service"
HEAL = "psquadlet-health.service"
CONFIG = "/etc/psquadlet/psquadlet.toml"
SICK_DIR = "/srv/psq-health"  # bind-mounted at /var/lib/psq-health: outlives restarts
BUDGET = 3
RETRY_AFTER = 45  # seconds: the first backoff retry after giving up (then 90 s)
WINDOW = 80  # seconds observed after giving up: one backoff retry falls inside
# An empty OnActiveSec= resets every trigger of the timer (systemd.timer(5)), then both anew.
FAST_TIMER = """\
[Timer]
OnActiveSec=
OnActiveSec=2s
OnUnitInactiveSec=3s
AccuracySec=1s
"""
TIMER_DROPIN = "/etc/systemd/system/psquadlet-health.timer.d/50-test.conf"


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
restart_budget = {BUDGET}
budget_window = "30m"
retry_after = "{RETRY_AFTER}s"
retry_max = "90s"

[containers.{UNIT}.service]
restart_sec = "1s"

[containers.{UNIT}.update]
policy = "off"
"""


def show(tb: TestBed, prop: str) -> str:
    return tb.systemctl("show", "-p", prop, "--value", SERVICE).stdout.strip()


def container_id(tb: TestBed) -> str:
    res = tb.podman("inspect", UNIT, "--format", "{{.Id}} {{.State.Running}}", check=False)
    ident, _, running = res.stdout.strip().partition(" ")
    return ident if res.returncode == 0 and running == "true" else ""


def health(tb: TestBed) -> str:
    res = tb.podman("inspect", UNIT, "--format", "{{.State.Health.Status}}", check=False)
    return res.stdout.strip() if res.returncode == 0 else ""


def wait(tb: TestBed, predicate: Callable[[], object], timeout: float, what: str) -> None:
    """``tb.wait_for``, failing with what the supervisor logged and its timer's state."""
    try:
        tb.wait_for(lambda: bool(predicate()), timeout, what)
    except BedError as exc:
        timer = tb.systemctl("status", "--no-pager", "psquadlet-health.timer", check=False)
        raise AssertionError(
            f"{exc}\n{timer.stdout[-1500:]}\n{tb.journal(HEAL)[-3000:]}\n"
            f"{tb.podman('inspect', UNIT, check=False).stdout[-1500:]}"
        ) from None


def heal_lines(tb: TestBed, cursor: str, word: str) -> list[str]:
    """psquadlet heal's journal lines of one kind (``UNIT: WORD...``) after the cursor."""
    marker = f"{UNIT}: {word}"
    return [ln for ln in tb.journal(HEAL, cursor).splitlines() if marker in ln]


def test_unhealthy_testpoint_is_healed_then_left_running_then_recovers(
    clean_testbed: TestBed, standins: StandIns
) -> None:
    tb = clean_testbed
    standins.push("sickly", "1.0", "perfsonar/testpoint:latest")
    tb.sh(f"rm -rf {SICK_DIR} && mkdir -p {SICK_DIR}")
    tb.write(CONFIG, config_text(standins.registry.host))
    tb.write(TIMER_DROPIN, FAST_TIMER)
    try:
        tb.run(["psquadlet", "generate", "-c", CONFIG])
        unit_file = tb.path(f"/etc/containers/systemd/{UNIT}.container").read_text()
        lines = unit_file.splitlines()
        assert "Wants=psquadlet-health.timer" in lines, unit_file
        assert not [ln for ln in lines if ln.startswith(("HealthOnFailure=", "Notify="))]
        tb.systemctl("daemon-reload")
        tb.systemctl("start", SERVICE)
        # Wants= started the supervisor's timer with the container.
        tb.wait_for(lambda: tb.systemctl("is-active", "psquadlet-health.timer", check=False)
                    .stdout.strip() == "active", 30, "the health timer")  # fmt: skip
        wait(tb, lambda: health(tb) == "healthy", 60, "a healthy testpoint")

        # A transient fault inside the container: one restart by psquadlet heals it.
        cursor = tb.journal_cursor()
        first = container_id(tb)
        tb.podman("exec", UNIT, "touch", "/run/psq-sick")
        wait(tb, lambda: container_id(tb) not in ("", first), 90, "heal's restart")
        wait(tb, lambda: heal_lines(tb, cursor, "healthy"), 90, "the healthy report")
        assert len(heal_lines(tb, cursor, "unhealthy")) == 1, tb.journal(HEAL, cursor)[-3000:]
        assert show(tb, "ActiveState") == "active"

        # A persistent fault (on the bind mount): the rest of the budget, then it keeps running.
        cursor = tb.journal_cursor()
        tb.sh(f"touch {SICK_DIR}/sick")
        wait(tb, lambda: heal_lines(tb, cursor, "gave-up"), 240, "heal to give up")
        gave_up_at = time.monotonic()
        restarts = tb.journal(HEAL, cursor).count(f"restart {SERVICE}")
        assert restarts == BUDGET - 1, tb.journal(HEAL, cursor)[-4000:]  # one went above
        (gave_up,) = heal_lines(tb, cursor, "gave-up")
        detail_cursor = cursor

        # The observation window: it runs, unhealthy; no restart until the backoff retry.
        samples, running, ids = 0, 0, []
        while time.monotonic() - gave_up_at < WINDOW:
            ident = container_id(tb)
            samples += 1
            running += bool(ident)
            if ident and (not ids or ids[-1] != ident):
                ids.append(ident)
            time.sleep(0.5)
        fraction = running / samples
        print(f"\nrunning {fraction:.1%} of {WINDOW}s after giving up ({samples} samples)")
        assert fraction >= 0.9, (fraction, samples)
        assert len(ids) == 2, ids  # the one that gave up, then the backoff retry's
        assert show(tb, "ActiveState") == "active"
        journal = tb.journal(HEAL, detail_cursor)
        assert len(heal_lines(tb, detail_cursor, "gave-up")) == 1, journal[-4000:]
        assert journal.count(f"restart {SERVICE}") == restarts + (len(ids) - 1)
        assert "unhealthy on demand" in tb.sh(
            f"cat /var/lib/psquadlet/health.json; podman inspect {UNIT}"
        )
        assert "keeps failing" in gave_up

        # Repaired: the running container passes again; heal says healthy, no restart needed.
        cursor = tb.journal_cursor()
        tb.sh(f"rm -f {SICK_DIR}/sick")
        wait(tb, lambda: heal_lines(tb, cursor, "healthy"), 120, "the healthy report")
        assert health(tb) == "healthy"
        assert show(tb, "ActiveState") == "active"
    finally:
        tb.sh(f"rm -rf {SICK_DIR} {TIMER_DROPIN}", check=False)
        tb.systemctl("stop", "psquadlet-health.timer", HEAL, check=False)
        tb.systemctl("daemon-reload", check=False)
