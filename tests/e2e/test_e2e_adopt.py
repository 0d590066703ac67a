"""Issue 19: ``psquadlet adopt`` takes over a running testpoint on the booted Debian 13 test bed.

Three shapes, each adopted, rebooted and upgraded by the watcher:

1. A site install's unit (our own text of the shape OSG's install-systemd-units.sh writes:
   ``podman run --systemd=always --privileged`` with continuations, bind mounts with SELinux
   options, an entrypoint wrapper from the host, a site registry) and a dependent unit with
   ``Requires=`` (their certbot unit's shape). A failure is forced during a first adoption
   (the new unit cannot start): the old unit must come back, enabled and running, with the
   dependent and the data. ``adopt --undo`` later puts the old unit back too.
2. A container started by hand with ``podman run`` (no unit).
3. A compose service (Debian's test bed has no podman-compose: the container is started with
   the ``podman run`` line compose would run, and adopted from the compose file).
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.images import StandIns
from tests.support.testbed import TestBed

NAME = "perfsonar-testpoint"
SERVICE = f"{NAME}.service"
CERTBOT = "perfsonar-certbot.service"
TP = "/opt/perfsonar-tp"
WRAPPER = f"{TP}/tools_scripts/testpoint-entrypoint-wrapper.sh"
CONFIG = "/etc/psquadlet/psquadlet.toml"
SITE_REPO = "osg-site/perfsonar-testpoint"  # a stand-in for a site's own registry path

WRAPPER_TEXT = """#!/bin/sh
# stand-in for a site's entrypoint wrapper: leave a trace, then run the image's systemd
echo "wrapper ran" > /run/wrapper-ran
exec /lib/systemd/systemd "$@"
"""


def site_unit(image: str) -> str:
    return f"""\
[Unit]
Description=perfSONAR testpoint (site install, test bed)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
Restart=always
RestartSec=10
ExecStartPre=-/usr/bin/podman rm -f {NAME}
ExecStart=/usr/bin/podman run --name {NAME} \\
  --replace \\
  --systemd=always \\
  --network host \\
  --privileged \\
  --cgroupns host \\
  --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \\
  -v {TP}/psconfig:/etc/perfsonar/psconfig:Z \\
  -v /sys/fs/cgroup:/sys/fs/cgroup:rw \\
  -v {TP}/tools_scripts:{TP}/tools_scripts:ro \\
  --cap-add=NET_RAW --cap-add=SYS_PTRACE \\
  --label=io.containers.autoupdate=registry \\
  {image} \\
  {WRAPPER}
ExecStop=/usr/bin/podman stop -t 10 {NAME}
ExecStopPost=/usr/bin/podman rm -f {NAME}

[Install]
WantedBy=multi-user.target
"""


CERTBOT_UNIT = f"""\
[Unit]
Description=stand-in for a certbot unit that needs the testpoint
After={SERVICE}
Requires={SERVICE}

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
"""


def active(tb: TestBed, unit: str) -> bool:
    return tb.systemctl("is-active", unit, check=False).stdout.strip() == "active"


def healthy(tb: TestBed, name: str) -> bool:
    res = tb.podman("exec", name, "/usr/local/bin/healthcheck", check=False)
    return res.returncode == 0


def version(tb: TestBed, name: str) -> str:
    return tb.podman("exec", name, "cat", "/etc/psq-version").stdout.strip()


def upgrade(tb: TestBed, name: str, registry: str) -> dict[str, Any]:
    """The operator's one addition for a plain-HTTP loopback registry, then one pass."""
    text = tb.path(CONFIG).read_text()
    tb.write(CONFIG, f'[registries."{registry}"]\ntls_verify = false\n\n{text}')
    tb.run(["psquadlet", "generate", "-c", CONFIG])
    tb.systemctl("daemon-reload")
    res = tb.run(["psquadlet", "upgrade", "--unit", name, "--json", "-c", CONFIG], check=False)
    assert res.returncode in (0, 1), f"upgrade crashed ({res.returncode}):\n{res.stderr}"
    [outcome] = [o for o in json.loads(res.stdout)["containers"] if o["name"] == name]
    return outcome  # type: ignore[no-any-return]


def reboot_and_wait(tb: TestBed, *units: str) -> None:
    tb.reboot()
    for unit in units:
        tb.wait_for(lambda u=unit: active(tb, u), 180, f"{unit} active after the reboot")


def test_site_unit_failed_adoption_adoption_reboot_upgrade_undo(
    clean_testbed: TestBed, standins: StandIns
) -> None:
    tb = clean_testbed
    reg = standins.registry
    image = f"{reg.host}/{SITE_REPO}:production"
    standins.push("systemd", "1.0", f"{SITE_REPO}:production")
    tb.sh(f"mkdir -p {TP}/psconfig {TP}/tools_scripts")
    tb.write(WRAPPER, WRAPPER_TEXT, mode=0o755)
    tb.write(f"{TP}/psconfig/site-mesh.json", '{"kept": true}\n')
    tb.write(f"/etc/systemd/system/{SERVICE}", site_unit(image))
    tb.write(f"/etc/systemd/system/{CERTBOT}", CERTBOT_UNIT)
    tb.systemctl("daemon-reload")
    tb.systemctl("enable", "--now", SERVICE, CERTBOT)
    tb.wait_for(lambda: healthy(tb, NAME), 120, "the site unit's testpoint healthy")
    try:
        _site_scenario(tb, standins, reg.host)
    finally:
        tb.systemctl("disable", "--now", CERTBOT, SERVICE, check=False)
        tb.sh(f"rm -rf /etc/systemd/system/{SERVICE} /etc/systemd/system/{CERTBOT} {TP}")
        tb.sh("rm -rf /etc/containers/systemd/*.container.d", check=False)
        tb.systemctl("daemon-reload")


def _site_scenario(tb: TestBed, standins: StandIns, registry: str) -> None:
    # --dry-run: the configuration and the plan, nothing changed
    dry = tb.run(["psquadlet", "adopt", "--dry-run"])
    assert f"{TP}/psconfig:/etc/perfsonar/psconfig:Z" in dry.stdout
    assert "ghcr.io/perfsonar/testpoint:systemd" in dry.stderr  # the upstream it could use
    assert tb.path(f"/etc/systemd/system/{SERVICE}").exists()
    assert not tb.path(CONFIG).exists()

    # 1. forced failure: the new unit cannot start (a drop-in only Quadlet's unit reads)
    dropin = f"/etc/containers/systemd/{NAME}.container.d/99-fail.conf"
    tb.write(dropin, "[Service]\nRestart=no\nExecStartPre=/bin/false\n")
    res = tb.run(["psquadlet", "adopt"], check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "the old one is back as it was" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    tb.wait_for(lambda: active(tb, SERVICE) and active(tb, CERTBOT), 120, "the old units back")
    assert tb.systemctl("is-enabled", SERVICE, check=False).stdout.strip() == "enabled"
    assert "/etc/systemd/system/" in tb.systemctl("show", "-p", "FragmentPath", SERVICE).stdout
    tb.wait_for(lambda: healthy(tb, NAME), 120, "the old testpoint healthy again")
    assert tb.path(f"{TP}/psconfig/site-mesh.json").read_text() == '{"kept": true}\n'
    assert not tb.path(CONFIG).exists()
    tb.sh(f"rm -rf /etc/containers/systemd/{NAME}.container.d")

    # 2. the adoption: same unit name, so the dependent's Requires= still resolves; the
    # pSConfig folder copied into the named volume
    tb.run(["psquadlet", "adopt", "--into-volumes"])
    assert tb.podman("volume", "exists", f"{NAME}-psconfig", check=False).returncode == 0
    assert f"{TP}/psconfig:" not in tb.path(CONFIG).read_text()
    assert not tb.path(f"/etc/systemd/system/{SERVICE}").exists()
    kept = tb.path(f"/var/lib/psquadlet/adopted/{NAME}/{SERVICE}")
    assert kept.read_text() == site_unit(f"{registry}/{SITE_REPO}:production")
    assert "/run/systemd/generator/" in tb.systemctl("show", "-p", "FragmentPath", SERVICE).stdout
    assert active(tb, SERVICE)
    assert active(tb, CERTBOT)
    assert tb.path("/etc/systemd/system/psquadlet-watch.service").exists()  # watched
    assert tb.podman("exec", NAME, "cat", "/run/wrapper-ran").stdout.strip() == "wrapper ran"
    assert tb.podman("exec", NAME, "cat", "/etc/perfsonar/psconfig/site-mesh.json").returncode == 0

    # 3. a reboot: both come back (the dependent through its Requires=)
    reboot_and_wait(tb, SERVICE, CERTBOT)
    tb.wait_for(lambda: healthy(tb, NAME), 120, "the adopted testpoint healthy after reboot")

    # 4. the watcher upgrades the site image it came with (same tag, new digest)
    digest = standins.push("systemd", "2.0", f"{SITE_REPO}:production")
    outcome = upgrade(tb, NAME, registry)
    assert outcome["action"] == "upgraded", outcome
    assert outcome["remote_digest"] == digest
    assert version(tb, NAME) == "2.0"
    assert active(tb, CERTBOT)

    # 5. undo later: the old unit is back, enabled and running
    tb.run(["psquadlet", "adopt", "--undo"])
    tb.wait_for(lambda: active(tb, SERVICE) and active(tb, CERTBOT), 120, "undo's old units")
    assert "/etc/systemd/system/" in tb.systemctl("show", "-p", "FragmentPath", SERVICE).stdout
    assert tb.systemctl("is-enabled", SERVICE, check=False).stdout.strip() == "enabled"
    assert tb.path(f"{TP}/psconfig/site-mesh.json").read_text() == '{"kept": true}\n'
    assert tb.podman("volume", "exists", f"{NAME}-psconfig", check=False).returncode == 0


def test_bare_container(clean_testbed: TestBed, standins: StandIns) -> None:
    tb = clean_testbed
    reg = standins.registry
    image = f"{reg.host}/site/web:1"
    standins.push("plain", "1.0", "site/web:1")
    tb.sh("mkdir -p /srv/web && echo data > /srv/web/keep")
    # 2. a container started by hand
    tb.podman(
        "run", "-d", "--name", "web", "--network", "host", "-v", "/srv/web:/data:z",
        "--restart", "unless-stopped", image,
    )  # fmt: skip
    tb.run(["psquadlet", "adopt", "web", "-c", CONFIG])
    assert active(tb, "web.service")
    running = tb.podman("ps", "--format", "{{.Names}}").stdout.split()
    assert "web" in running
    assert "web-psquadlet-adopted" not in running  # kept, stopped, for an undo
    assert "web-psquadlet-adopted" in tb.podman("ps", "-a", "--format", "{{.Names}}").stdout
    assert tb.podman("exec", "web", "cat", "/data/keep").stdout.strip() == "data"
    reboot_and_wait(tb, "web.service")
    standins.push("plain", "2.0", "site/web:1")
    outcome = upgrade(tb, "web", reg.host)
    assert outcome["action"] == "upgraded", outcome
    assert version(tb, "web") == "2.0"


def test_compose_service(clean_testbed: TestBed, standins: StandIns) -> None:
    """3. a compose service, started the way podman-compose would start it."""
    tb = clean_testbed
    reg = standins.registry
    image = f"{reg.host}/site/tp:1"
    standins.push("plain", "1.0", "site/tp:1")
    tb.sh("mkdir -p /srv/web && echo data > /srv/web/keep")
    tb.write(
        "/srv/tp/compose.yml",
        f"""\
services:
  testpoint:
    image: {image}
    container_name: tp
    network_mode: host
    restart: on-failure
    volumes:
      - /srv/web:/data:z
""",
    )
    tb.podman("run", "-d", "--name", "tp", "--network", "host", "-v", "/srv/web:/data:z", image)
    res = tb.run(
        ["psquadlet", "adopt", "--compose", "/srv/tp/compose.yml", "--service", "testpoint"]
    )
    status = tb.systemctl("status", "--no-pager", "tp.service", check=False).stdout
    assert active(tb, "tp.service"), res.stdout + res.stderr + status + tb.journal("tp.service")
    assert tb.podman("exec", "tp", "cat", "/data/keep").stdout.strip() == "data"
    reboot_and_wait(tb, "tp.service")
    standins.push("plain", "2.0", "site/tp:1")
    outcome = upgrade(tb, "tp", reg.host)
    assert outcome["action"] == "upgraded", outcome
    assert version(tb, "tp") == "2.0"
