"""Scenarios 3-6 of issue 4: the watcher upgrading, rolling back and keeping its hands off.

Each test sets up the perfSONAR testpoint unit (systemd stand-in, version 1.0) from the preset,
then pushes another image under the same tag and lets psquadlet act: the daemon as its own
unit (scenarios 3 and 5b), or one `psquadlet upgrade --json` pass (4, 5a, 6).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.support.images import StandIns
from tests.support.registry import Registry
from tests.support.testbed import TestBed, short_health_toml

UNIT = "perfsonar-testpoint"
SERVICE = f"{UNIT}.service"
WATCH = "psquadlet-watch.service"
CONFIG = "/etc/psquadlet/psquadlet.toml"
STATE = "/var/lib/psquadlet/state.json"
TAG = "perfsonar/testpoint:systemd"
PSCONFIG_FILE = "/etc/perfsonar/psconfig/e2e-keep.json"


def config_text(registry_host: str, update: str) -> str:
    return f"""\
[registries."{registry_host}"]
tls_verify = false

[containers.{UNIT}]
preset = "perfsonar-testpoint"
image = "{registry_host}/{TAG}"

[containers.{UNIT}.update]
{update}
# The preset's health check with test-sized times (issue 11: its minutes would only be slow).
{short_health_toml(UNIT)}"""


def healthy(tb: TestBed) -> bool:
    return (
        tb.podman("exec", UNIT, "pscheduler", "troubleshoot", "--quick", check=False).returncode
        == 0
    )


def start_testpoint(tb: TestBed, standins: StandIns, update: str) -> str:
    """Version 1.0 running under systemd, healthy; returns its digest."""
    digest = standins.push("systemd", "1.0", TAG)
    tb.write(CONFIG, config_text(standins.registry.host, update))
    tb.run(["psquadlet", "generate", "-c", CONFIG])
    tb.systemctl("daemon-reload")
    tb.systemctl("start", SERVICE)
    tb.wait_for(lambda: healthy(tb), 90, "the testpoint to come up healthy")
    assert running_digest(tb) == digest
    return digest


def running_digest(tb: TestBed) -> str:
    res = tb.podman("inspect", UNIT, "--format", "{{.ImageDigest}}", check=False)
    return res.stdout.strip() if res.returncode == 0 else ""


def container_id(tb: TestBed) -> str:
    return tb.podman("inspect", UNIT, "--format", "{{.Id}}").stdout.strip()


def read_state(tb: TestBed) -> dict[str, Any]:
    p = tb.path(STATE)
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())["containers"].get(UNIT, {})  # type: ignore[no-any-return]
    except (ValueError, KeyError):
        return {}  # caught mid-write? it is written atomically, but be lenient while polling


def upgrade_pass(tb: TestBed, adapter: str = "") -> dict[str, Any]:
    """One pass; *adapter* forces the watcher's systemd adapter (pystemd, busctl)."""
    env = {"PSQUADLET_SYSTEMD_ADAPTER": adapter} if adapter else None
    res = tb.run(
        ["psquadlet", "upgrade", "--unit", UNIT, "--json", "-c", CONFIG], check=False, env=env
    )
    assert res.returncode in (0, 1), f"upgrade crashed ({res.returncode}):\n{res.stderr}"
    report = json.loads(res.stdout)
    [outcome] = [o for o in report["containers"] if o["name"] == UNIT]
    return outcome  # type: ignore[no-any-return]


def events(tb: TestBed, since: float) -> list[tuple[int, str, str, str]]:
    """podman's events since `since` (epoch seconds): (time_ns, type, status, name)."""
    res = tb.podman(
        "events",
        "--stream=false",
        "--since",
        str(int(since) - 1),
        "--format",
        "{{.TimeNano}}\t{{.Type}}\t{{.Status}}\t{{.Name}}",
    )
    out = []
    for line in res.stdout.splitlines():
        parts = line.split("\t")
        # --since has whole-second resolution: drop what came before `since` itself
        if len(parts) == 4 and int(parts[0]) >= since * 1e9:
            out.append((int(parts[0]), parts[1], parts[2], parts[3]))
    return out


def pulls(reqs: list[Any]) -> list[Any]:
    """Registry requests that fetch content: a GET of a manifest or of a blob."""
    return [r for r in reqs if r.method == "GET" and (r.is_manifest or r.is_blob)]


# --------------------------------------------------------------------------- scenario 3
def test_watcher_unit_upgrades_pull_first_and_keeps_psconfig(
    clean_testbed: TestBed, standins: StandIns
) -> None:
    tb = clean_testbed
    old = start_testpoint(
        tb, standins, 'interval = "3s"\nrandomized_delay = "0s"\nhealth_timeout = "60s"'
    )
    tb.podman("exec", UNIT, "sh", "-c", f"echo '{{\"kept\": true}}' > {PSCONFIG_FILE}")
    tb.systemctl("start", WATCH)
    tb.wait_for(
        lambda: tb.systemctl("is-active", WATCH, check=False).stdout.strip() == "active",
        30,
        "psquadlet-watch.service to report ready",
    )
    since = time.time()
    new = standins.push("systemd", "2.0", TAG)
    assert new != old

    def upgraded() -> bool:
        st = read_state(tb)
        return st.get("running_digest") == new and not st.get("phase")

    tb.wait_for(upgraded, 120, f"the watcher to upgrade to {new}")
    tb.wait_for(lambda: running_digest(tb) == new and healthy(tb), 30, "the new container")
    assert tb.systemctl("is-active", SERVICE, check=False).stdout.strip() == "active"

    # Pulled before the old container stopped.
    evs = events(tb, since)
    pull_times = [t for t, typ, status, _ in evs if typ == "image" and status == "pull"]
    died_times = [
        t
        for t, typ, status, name in evs
        if typ == "container" and status in ("died", "stop") and name == UNIT
    ]
    assert pull_times, evs
    assert died_times, evs
    assert min(pull_times) < min(died_times), "the old container stopped before the pull"

    # The state file and the journal record it.
    st = read_state(tb)
    assert st["previous_digest"] == old
    assert any(h["action"] == "upgraded" and h["to_digest"] == new for h in st["history"])
    journal = tb.journal(WATCH)
    assert "upgraded" in journal, journal[-3000:]
    assert new.split(":")[1][:12] in journal, journal[-3000:]

    # The persisted pSConfig folder survived the new container.
    res = tb.podman("exec", UNIT, "cat", PSCONFIG_FILE)
    assert json.loads(res.stdout) == {"kept": True}


# --------------------------------------------------------------------------- scenario 4
# Restart, health gate and rollback through each systemd adapter (issue 18 item 3): the test
# bed has python3-pystemd, and busctl comes with its systemd.
@pytest.mark.parametrize("adapter", ["pystemd", "busctl"])
def test_broken_image_rolled_back_and_not_retried(
    clean_testbed: TestBed, standins: StandIns, e2e_registry: Registry, adapter: str
) -> None:
    tb = clean_testbed
    good = start_testpoint(tb, standins, 'health_timeout = "20s"')
    bad = standins.push("systemd", "3.0", TAG, broken=True)

    outcome = upgrade_pass(tb, adapter)
    assert outcome["action"] == "rolled-back", outcome
    assert tb.systemctl("is-active", SERVICE, check=False).stdout.strip() == "active"
    assert running_digest(tb) == good
    tb.wait_for(lambda: healthy(tb), 60, "the old image healthy again")
    st = read_state(tb)
    assert bad in [b["digest"] for b in st["bad_digests"]]

    # The next pass leaves it alone: one HEAD, no pull, no restart.
    before_id = container_id(tb)
    mark = e2e_registry.mark()
    since = time.time()
    again = upgrade_pass(tb, adapter)
    assert again["action"] == "known-bad", again
    assert container_id(tb) == before_id
    assert pulls(e2e_registry.requests(since=mark)) == []
    assert [e for e in events(tb, since) if e[1] == "image" and e[2] == "pull"] == []


# --------------------------------------------------------------------------- scenario 5
def test_registry_down_nothing_restarted(
    clean_testbed: TestBed, standins: StandIns, e2e_registry: Registry
) -> None:
    tb = clean_testbed
    old = start_testpoint(tb, standins, 'health_timeout = "30s"')
    standins.push("systemd", "2.0", TAG)
    before_id = container_id(tb)
    since = time.time()
    e2e_registry.stop()
    try:
        outcome = upgrade_pass(tb)
    finally:
        e2e_registry.start()
    assert outcome["action"] == "error", outcome
    assert container_id(tb) == before_id
    assert running_digest(tb) == old
    assert tb.systemctl("is-active", SERVICE, check=False).stdout.strip() == "active"
    evs = events(tb, since)
    assert [e for e in evs if e[1] == "container" and e[2] in ("died", "stop")] == []


def test_pull_failing_mid_pass_nothing_restarted(
    clean_testbed: TestBed, standins: StandIns, e2e_registry: Registry
) -> None:
    """The registry answers the check but breaks before the new image is fetched."""
    tb = clean_testbed
    old = start_testpoint(tb, standins, 'health_timeout = "30s"')
    repo = TAG.partition(":")[0]
    old_blobs = {layer["digest"] for layer in e2e_registry.manifest(repo, old)["layers"]}
    new = standins.push("systemd", "2.1", TAG)
    manifest = e2e_registry.manifest(repo, new)
    missing = [manifest["config"]["digest"]] + [
        layer["digest"] for layer in manifest["layers"] if layer["digest"] not in old_blobs
    ]
    e2e_registry.break_blobs(missing)
    before_id = container_id(tb)
    mark = e2e_registry.mark()
    since = time.time()

    outcome = upgrade_pass(tb)
    assert outcome["action"] == "error", outcome
    reqs = e2e_registry.requests(since=mark)
    assert any(r.is_blob and r.status >= 400 for r in reqs), reqs  # the pull was tried
    assert container_id(tb) == before_id
    assert running_digest(tb) == old
    assert tb.systemctl("is-active", SERVICE, check=False).stdout.strip() == "active"
    evs = events(tb, since)
    assert [e for e in evs if e[1] == "container" and e[2] in ("died", "stop")] == []
    assert not read_state(tb).get("phase")


def test_watcher_killed_mid_upgrade_recovers_old_or_new(
    clean_testbed: TestBed, standins: StandIns
) -> None:
    tb = clean_testbed
    old = start_testpoint(
        tb, standins, 'interval = "2s"\nrandomized_delay = "0s"\nhealth_timeout = "60s"'
    )
    # A test-sized stop timeout: on this nested systemd the notice that the killed watcher's
    # cgroup is empty can be missed, and the unit then sits in "deactivating (stop-sigterm)"
    # for the unit's 5 min TimeoutStopSec before systemd moves on (seen under load).
    dropin = "/run/systemd/system/psquadlet-watch.service.d/50-test-stop.conf"
    tb.write(dropin, "[Service]\nTimeoutStopSec=15s\n")
    tb.systemctl("daemon-reload")
    try:
        _kill_mid_upgrade(tb, standins, old)
    finally:
        tb.sh(f"rm -f {dropin}", check=False)
        tb.systemctl("daemon-reload", check=False)


def _kill_mid_upgrade(tb: TestBed, standins: StandIns, old: str) -> None:
    tb.systemctl("start", WATCH)
    new = standins.push("systemd", "2.0", TAG)

    seen: list[str] = []

    def in_flight() -> bool:
        phase = read_state(tb).get("phase", "")
        if phase:
            seen.append(phase)
        return phase in ("restarting", "checking")

    tb.wait_for(in_flight, 120, "the watcher to be in the middle of an upgrade")
    tb.systemctl("kill", "--signal=SIGKILL", WATCH)
    tb.wait_for(
        lambda: (
            tb.systemctl("is-active", WATCH, check=False).stdout.strip()
            in ("inactive", "failed", "activating")
        ),
        120,
        "the watcher to die (past any stop-sigterm)",
    )
    assert read_state(tb).get("phase"), "the kill came too late to interrupt anything"
    tb.systemctl("reset-failed", WATCH, check=False)
    tb.systemctl("restart", "--no-block", WATCH)

    try:
        tb.wait_for(lambda: not read_state(tb).get("phase"), 240, "recovery to finish")
    except Exception as e:
        raise AssertionError(
            f"{e}; phases seen {seen}; state {read_state(tb)}\n"
            f"{tb.systemctl('status', WATCH, SERVICE, check=False).stdout}\n"
            f"{tb.journal(WATCH)[-5000:]}"
        ) from e
    tb.wait_for(
        lambda: (
            tb.systemctl("is-active", SERVICE, check=False).stdout.strip() == "active"
            and running_digest(tb) in (old, new)
            and healthy(tb)
        ),
        60,
        "the testpoint on the old or the new image",
    )
    journal = tb.journal(WATCH)
    assert "recover" in journal, journal[-3000:]


# --------------------------------------------------------------------------- scenario 6
def test_notify_policy_reports_only(
    clean_testbed: TestBed, standins: StandIns, e2e_registry: Registry
) -> None:
    tb = clean_testbed
    old = start_testpoint(tb, standins, 'policy = "notify"')
    before_id = container_id(tb)
    images_before = tb.podman("images", "-q", "--no-trunc").stdout.split()
    new = standins.push("systemd", "2.0", TAG)
    mark = e2e_registry.mark()
    since = time.time()

    outcome = upgrade_pass(tb)
    assert outcome["action"] == "available", outcome
    assert outcome["remote_digest"] == new
    assert container_id(tb) == before_id
    assert running_digest(tb) == old
    assert tb.podman("images", "-q", "--no-trunc").stdout.split() == images_before
    assert pulls(e2e_registry.requests(since=mark)) == []
    assert [e for e in events(tb, since) if e[1] == "image" and e[2] == "pull"] == []
    assert read_state(tb)["available_digest"] == new
