"""Round trip for compose files: import -> loader -> render -> Podman's Quadlet generator.

The expected ``podman run`` flags are written out by hand from each compose file (``{dir}``
stands for the compose file's folder), so that the comparison does not lean on the importer's
own reading of compose.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import pytest

from psquadlet import importer
from psquadlet.config import parse_config
from psquadlet.perfsonar import state_volumes
from psquadlet.render import render_units
from tests.importer import flags
from tests.support.oracle import run_quadlet

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.oracle

CORPUS = Path(__file__).parent / "corpus" / "compose"


def state(container: str, *bound: str) -> list[str]:
    """The preset's named volumes for perfSONAR's state, but for folders the file binds."""
    return [f"-v {v}:{folder}" for v, folder in state_volumes(container) if folder not in bound]


PSCONFIG = "/etc/perfsonar/psconfig"
PERFSONAR_SYSTEMD = [
    "--name perfsonar-testpoint",
    "--network host",
    "--cgroupns host",
    "--env TZ=UTC",
    "--tmpfs /run",
    "--tmpfs /run/lock",
    "--tmpfs /tmp",
    "-v /sys/fs/cgroup:/sys/fs/cgroup:rw",
    "-v {dir}/compose/psconfig:/etc/perfsonar/psconfig",
    "--tty",
    # Docker grants NET_RAW by default, Podman does not: the preset adds it.
    "--cap-add CAP_NET_RAW",
    *state("perfsonar-testpoint", PSCONFIG),
]
PERFSONAR_SUPERVISORD = [
    "--name perfsonar-testpoint",
    "--network host",
    "-v {dir}/compose/psconfig:/etc/perfsonar/psconfig",
    "--cap-add CAP_NET_RAW",
    "--env TZ=UTC",  # added by the preset, as the systemd compose file sets it
    *state("perfsonar-testpoint", PSCONFIG),
]
ROCKY8 = [
    "--name testpoint",
    "--network host",
    "--cgroupns host",
    "--env TZ=UTC",
    "--tmpfs /run",
    "--tmpfs /tmp",
    "-v /sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tty",
    "--cap-add CAP_NET_RAW",
    *state("testpoint"),
]
WEBAPP_DB = [
    "--name db",
    "--env POSTGRES_DB=app",
    "--env POSTGRES_PASSWORD=s3cret $not-expanded",
    "--env PGDATA=/var/lib/postgresql/data/pgdata",
    "-v pgdata:/var/lib/postgresql/data",
    "--health-cmd pg_isready -U postgres",
    "--health-interval 10s",
    "--health-timeout 5s",
    "--health-retries 5",
    "--shm-size 256m",
    "--log-driver journald",
    "--log-opt tag=webapp",
]
WEBAPP_APP = [
    "--name app",
    "--env-file {dir}/app.env",
    "--env DATABASE_URL=postgres://app@db/app",
    "--env LOG_LEVEL=info",
    "--env PRICE=${NOT_A_VARIABLE}",
    "--publish 127.0.0.1:3000:3000/tcp",
    "--user 1000:1000",
    "--read-only",
    "--tmpfs /tmp",
    "--cap-drop ALL",
    "--security-opt no-new-privileges",
    "--health-cmd wget -qO- http://localhost:3000/health || exit 1",
    "--health-start-period 30s",
    "--log-driver journald",
    "--log-opt tag=webapp",
    "--memory 512m",
]
WEBAPP_WEB = [
    "--name webapp-nginx",
    "--publish 80:80",
    "--publish 443:443",
    "-v {dir}/nginx:/etc/nginx/conf.d:ro",
    "-v {dir}/html:/usr/share/nginx/html:ro",
    "--tmpfs /var/cache/nginx:size=67108864",
    "--add-host backend.local:10.0.0.7",
    "--label com.example.tier=frontend",
    "--stop-timeout 90",
    "--stop-signal SIGQUIT",
    "--ulimit nofile=4096:8192",
    "--sysctl net.core.somaxconn=1024",
]

CASES = [
    # (compose file, table name, image, command, restart, flags, preset variant)
    ("perfsonar/docker-compose.systemd.yml", "perfsonar-testpoint",
     "docker.io/perfsonar/testpoint:systemd", [], "on-failure", PERFSONAR_SYSTEMD, "systemd"),
    ("perfsonar/docker-compose.yml", "perfsonar-testpoint",
     "docker.io/perfsonar/testpoint:latest", [], "on-failure", PERFSONAR_SUPERVISORD,
     "supervisord"),
    ("rocky8/docker-compose.systemd-cgroupv2.yml", "testpoint",
     "docker.io/perfsonar/testpoint:systemd-rocky8", [], "on-failure", ROCKY8, "systemd"),
    ("webapp/docker-compose.yml", "db", "docker.io/library/postgres:16", [], "always",
     WEBAPP_DB, None),
    ("webapp/docker-compose.yml", "app", "registry.example.com:5000/team/app:1.4.2",
     ["node", "server.js", "--port", "3000"], "always", WEBAPP_APP, None),
    ("webapp/docker-compose.yml", "webapp-nginx", "docker.io/library/nginx:1.25", [], "always",
     WEBAPP_WEB, None),
]  # fmt: skip

ENVIRON = {"LOG_LEVEL_UNUSED": "x"}


def _expected(lines: list[str], folder: Path, preset: bool) -> list[tuple[str, str]]:
    argv = ["podman", "run"]
    for line in [*lines, *(flags.PRESET_HEALTH if preset else [])]:
        flag, _, value = line.replace("{dir}", str(folder)).partition(" ")
        argv += [flag, value] if value else [flag]
    return flags.compared(flags.read([*argv, "image"]))


Case = tuple[str, str, str, list[str], str, list[str], Optional[str]]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_compose_service_round_trip(case: Case) -> None:
    compose, table, image, command, restart, wanted, variant = case
    path = CORPUS / compose
    result = importer.from_compose(str(path), environ=ENVIRON)
    toml_text = importer.to_toml(result)
    config = parse_config(toml_text, "/etc/psquadlet/imported.toml")
    units = {u.filename: u.text for u in render_units(config)}
    service = run_quadlet(units).check().service(f"{table}.service")
    got = flags.read(service.exec_argv())
    assert flags.compared(got) == _expected(wanted, path.parent, variant is not None), toml_text
    assert got.image == upstream_registry(image)
    assert got.command == command
    assert service.value("Service", "Restart") == restart
    container = tomllib.loads(toml_text)["containers"][table]
    assert container.get("variant") == variant
    assert (container.get("preset") is not None) == (variant is not None)


def test_depends_on_orders_and_requires_the_units() -> None:
    result = importer.from_compose(str(CORPUS / "webapp" / "docker-compose.yml"), environ={})
    config = parse_config(importer.to_toml(result), "/etc/psquadlet/imported.toml")
    units = {u.filename: u.text for u in render_units(config)}
    services = run_quadlet(units).check()
    app = services.service("app.service")
    assert "db.service" in app.value("Unit", "Requires").split()
    assert "db.service" in " ".join(app.values("Unit", "After")).split()
    web = services.service("webapp-nginx.service")
    assert "app.service" in web.value("Unit", "Requires").split()


def test_named_volume_keeps_its_labels() -> None:
    result = importer.from_compose(str(CORPUS / "webapp" / "docker-compose.yml"), environ={})
    config = parse_config(importer.to_toml(result), "/etc/psquadlet/imported.toml")
    units = {u.filename: u.text for u in render_units(config)}
    volume = run_quadlet(units).check().service("pgdata-volume.service")
    argv = volume.exec_argv()
    assert argv[:3] == ["/usr/bin/podman", "volume", "create"]
    assert "com.example.backup=daily" in argv
    assert argv[-1] == "pgdata"


def upstream_registry(image: str) -> str:
    """The importer moves the perfSONAR testpoint from Docker Hub to ghcr.io (issue 11)."""
    return image.replace("docker.io/perfsonar/testpoint:", "ghcr.io/perfsonar/testpoint:")
