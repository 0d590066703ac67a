"""Issue 5: perfSONAR settings declared in TOML, and files changed in persisted folders, survive
an upgrade and a rollback of the testpoint image; `psquadlet status` reports both.

The systemd stand-in (version 1.0) runs under systemd from the perfSONAR preset with a Lookup
Service table and a pSConfig remote. Version 2.0 is then adopted by one `psquadlet upgrade`
pass, and a broken 3.0 is rolled back by the next one. After each step the container must see
the declared settings and the operator's own files.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.images import StandIns
from tests.support.testbed import TestBed, short_health_toml

UNIT = "perfsonar-testpoint"
SERVICE = f"{UNIT}.service"
CONFIG = "/etc/psquadlet/psquadlet.toml"
TAG = "perfsonar/testpoint:systemd"
LSREG = "/etc/perfsonar/lsregistrationdaemon.conf"
AGENT = "/etc/perfsonar/psconfig/pscheduler-agent.json"
REMOTE = "https://psconfig.example.org/pub/auto/e2e.example.org"
# Written by "the operator" inside the container, in two persisted folders.
OPERATOR_FILES = {
    "/etc/perfsonar/psconfig/archives.d/e2e-archive.json": '{"archiver": "e2e"}',
    "/var/lib/perfsonar/lsregistrationdaemon/client_uuid": "e2e-uuid-1234",
}


def config_text(registry_host: str) -> str:
    return f"""\
[registries."{registry_host}"]
tls_verify = false

[containers.{UNIT}]
preset = "perfsonar-testpoint"
image = "{registry_host}/{TAG}"

[containers.{UNIT}.update]
health_timeout = "30s"

# The preset's health check with test-sized times (issue 11: its minutes would only be slow).
{short_health_toml(UNIT)}
[containers.{UNIT}.perfsonar.lookup_service]
site_name = "E2E Lab"
administrator_name = "Erin Example"
administrator_email = "erin@example.org"
city = "Ann Arbor"
country = "US"
latitude = 42.28
longitude = -83.74

[[containers.{UNIT}.perfsonar.psconfig_remotes]]
url = "{REMOTE}"
configure_archives = false
"""


def healthy(tb: TestBed) -> bool:
    res = tb.podman("exec", UNIT, "pscheduler", "troubleshoot", "--quick", check=False)
    return res.returncode == 0


def digest(tb: TestBed) -> str:
    res = tb.podman("inspect", UNIT, "--format", "{{.ImageDigest}}", check=False)
    return res.stdout.strip() if res.returncode == 0 else ""


def upgrade_pass(tb: TestBed) -> dict[str, Any]:
    res = tb.run(["psquadlet", "upgrade", "--unit", UNIT, "--json", "-c", CONFIG], check=False)
    assert res.returncode in (0, 1), f"upgrade crashed ({res.returncode}):\n{res.stderr}"
    [outcome] = [o for o in json.loads(res.stdout)["containers"] if o["name"] == UNIT]
    return outcome  # type: ignore[no-any-return]


def assert_settings_and_operator_files(tb: TestBed, when: str) -> None:
    conf = tb.podman("exec", UNIT, "cat", LSREG, check=False)
    assert conf.returncode == 0, f"{when}: {LSREG} missing: {conf.stderr}"
    assert "site_name E2E Lab\n" in conf.stdout, f"{when}: {conf.stdout}"
    assert "    email erin@example.org\n" in conf.stdout, f"{when}: {conf.stdout}"
    agent = json.loads(tb.podman("exec", UNIT, "cat", AGENT).stdout)
    assert agent == {"remotes": [{"url": REMOTE, "configure-archives": False}]}, when
    for path, content in OPERATOR_FILES.items():
        seen = tb.podman("exec", UNIT, "cat", path, check=False)
        assert seen.stdout == content + "\n", f"{when}: {path}: {seen.stdout!r} {seen.stderr}"
    # The declared file cannot be changed from inside (the TOML is where it is changed).
    edit = tb.podman("exec", UNIT, "sh", "-c", f"echo 'site_name X' >> {LSREG}", check=False)
    assert edit.returncode != 0, f"{when}: {LSREG} was writable inside the container"


def test_declared_settings_and_operator_files_survive_upgrade_and_rollback(
    clean_testbed: TestBed, standins: StandIns
) -> None:
    tb = clean_testbed
    first = standins.push("systemd", "1.0", TAG)
    tb.write(CONFIG, config_text(standins.registry.host))
    generated = tb.run(["psquadlet", "generate", "-c", CONFIG]).stdout
    assert "/etc/psquadlet/perfsonar/perfsonar-testpoint/lsregistrationdaemon.conf" in generated
    tb.systemctl("daemon-reload")
    tb.systemctl("start", SERVICE)
    tb.wait_for(lambda: healthy(tb), 90, "the testpoint to come up healthy")
    assert digest(tb) == first

    for path, content in OPERATOR_FILES.items():
        tb.podman(
            "exec", UNIT, "sh", "-c", f"mkdir -p \"$(dirname {path})\" && echo '{content}' > {path}"
        )
    assert_settings_and_operator_files(tb, "before any upgrade")

    second = standins.push("systemd", "2.0", TAG)
    outcome = upgrade_pass(tb)
    assert outcome["action"] == "upgraded", outcome
    tb.wait_for(lambda: digest(tb) == second and healthy(tb), 60, "version 2.0 running")
    assert_settings_and_operator_files(tb, "after the upgrade")

    broken = standins.push("systemd", "3.0", TAG, broken=True)
    outcome = upgrade_pass(tb)
    assert outcome["action"] == "rolled-back", outcome
    tb.wait_for(lambda: digest(tb) == second and healthy(tb), 60, "2.0 back after the rollback")
    assert_settings_and_operator_files(tb, "after the rollback")

    # status, from the real systemd, podman and the watcher's state file.
    res = tb.run(["psquadlet", "status", "--json", "-c", CONFIG], check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    [st] = json.loads(res.stdout)["containers"]
    assert st["unit_state"]["active"] == "active"
    assert st["running"] is True
    assert st["digest"] == second
    assert st["last_upgrade"]["to_digest"] == second
    assert st["last_rollback"]["from_digest"] == broken
    assert st["last_rollback"]["to_digest"] == second

    # doctor on a cgroup v2 host with Podman 5 (the test bed), the testpoint up.
    res = tb.run(["psquadlet", "doctor", "--json", "-c", CONFIG], check=False)
    report = json.loads(res.stdout)
    assert report["exit_code"] == res.returncode
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["config"]["status"] == "pass"
    assert checks["podman"]["status"] == "pass", checks["podman"]
    assert checks["podman"]["items"][0]["quadlet"] is True
    assert checks["cgroup"]["status"] == "pass", checks["cgroup"]
    assert checks["arch"]["status"] == "pass", checks["arch"]
    assert checks["short-names"]["status"] == "pass"
    assert checks["capabilities"]["status"] == "pass"
    assert checks["perfsonar-files"]["status"] == "pass", checks["perfsonar-files"]

    # logs: the unit's journal, through journalctl.
    logs = tb.run(["psquadlet", "logs", "-c", CONFIG, "-n", "200"]).stdout
    assert SERVICE in logs or UNIT in logs, logs[-2000:]
