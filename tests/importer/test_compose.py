"""Compose files -> drafts: interpolation, .env, relative paths, both syntaxes of each key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from psquadlet.importer import compose, interpolation
from psquadlet.importer.draft import APPROXIMATED, DROPPED, ImportInputError


def write(folder: Path, text: str, env: str | None = None) -> Path:
    path = folder / "docker-compose.yml"
    path.write_text(text, encoding="utf-8")
    if env is not None:
        (folder / ".env").write_text(env, encoding="utf-8")
    return path


def one(folder: Path, body: str, env: str | None = None, **kwargs: Any) -> compose.Draft:
    text = "services:\n  svc:\n" + "".join(f"    {line}\n" for line in body.splitlines())
    loaded = compose.load(str(write(folder, text, env)), **kwargs)
    [draft] = loaded.drafts
    return draft


# ---- interpolation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${SET}", "value"),
        ("$SET-x", "value-x"),
        ("${UNSET:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${EMPTY-fallback}", ""),
        ("${UNSET-fallback}", "fallback"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET:-${SET}}", "value"),
        ("$${SET} and $$", "${SET} and $"),
        ("no variables", "no variables"),
    ],
)
def test_interpolation(template: str, expected: str) -> None:
    unset: list[str] = []
    interpolate = interpolation.Interpolator({"SET": "value", "EMPTY": ""}, unset)
    assert interpolate(template, "here") == expected
    assert unset == []


def test_unset_variables_become_empty_and_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  a:\n    image: app:${TAG}\n    hostname: h${TAG}\n")
    with pytest.raises(ImportInputError, match="invalid image reference"):
        compose.load(str(path), environ={})
    path = write(tmp_path, "services:\n  a:\n    image: app\n    hostname: h${NOPE}\n")
    loaded = compose.load(str(path), environ={})
    assert loaded.drafts[0].settings["hostname"] == "h"
    assert [(n.kind, n.subject) for n in loaded.notes] == [(APPROXIMATED, "${NOPE}")]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${REQUIRED:?set it first}", "required variable REQUIRED is missing: set it first"),
        ("${REQUIRED?}", "required variable REQUIRED"),
        ("${1abc}", "invalid interpolation"),
        ("${A:=b}", "invalid interpolation"),
        ("${OPEN", "unclosed"),
        ("cost $5", "write \\$\\$ for a literal"),
    ],
)
def test_bad_interpolation(tmp_path: Path, template: str, message: str) -> None:
    path = write(tmp_path, f"services:\n  a:\n    image: app\n    hostname: '{template}'\n")
    with pytest.raises(ImportInputError, match=message):
        compose.load(str(path), environ={})


def test_dotenv_beside_the_file_and_the_environment_wins(tmp_path: Path) -> None:
    env = (
        "# comment\n\nTAG=1.0\nexport USER_NAME='lit $x'\nQUOTED=\"a\\nb\"\n"
        "TRAILING=value # note\nOVERRIDDEN=from-file\n"
    )
    d = one(
        tmp_path,
        "image: app:${TAG}\nuser: ${USER_NAME}\nenvironment:\n  Q: ${QUOTED}\n"
        "  T: ${TRAILING}\n  O: ${OVERRIDDEN}",
        env=env,
        environ={"OVERRIDDEN": "from-env"},
    )
    assert d.settings["image"] == "docker.io/library/app:1.0"
    assert d.settings["user"] == "lit $x"
    assert d.settings["environment"] == {"Q": "a\nb", "T": "value", "O": "from-env"}


def test_bad_dotenv_line(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  a:\n    image: app\n", env="JUST A LINE\n")
    with pytest.raises(ImportInputError, match=r"\.env:1: expected NAME=VALUE"):
        compose.load(str(path), environ={})


# ---- keys -----------------------------------------------------------------------------------


def test_relative_bind_paths_are_made_absolute_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = write(
        tmp_path,
        "services:\n  svc:\n    image: app\n    volumes:\n      - ./conf:/etc/app:ro\n"
        "      - data:/data\n      - /abs:/abs\n      - ../up:/up\n      - /anonymous\n"
        "volumes:\n  data:\n",
    )
    loaded = compose.load(str(path), environ={})
    [d] = loaded.drafts
    assert loaded.volumes == []  # no settings: the loader gives it a default table
    assert d.settings["volumes"] == [
        f"{tmp_path}/conf:/etc/app:ro",
        "data:/data",
        "/abs:/abs",
        f"{tmp_path.parent}/up:/up",
    ]
    assert d.settings["podman_args"] == ["--volume=/anonymous"]
    # A missing bind source: compose creates it, podman refuses to start.
    missing = [n.subject for n in d.notes if "does not exist" in n.reason]
    assert missing == [f"services.svc.volumes {p}" for p in ("/abs", f"{tmp_path.parent}/up")]


def test_undeclared_named_volume_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  a:\n    image: app\n    volumes: [data:/data]\n")
    with pytest.raises(ImportInputError, match="'data', which the top-level 'volumes'"):
        compose.load(str(path), environ={})


def test_declared_named_volume_with_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "services:\n  a:\n    image: app\n    volumes:\n"
        "      - type: volume\n        source: data\n        target: /data\n"
        "        volume: {nocopy: true}\n"
        "volumes:\n  data:\n    driver: local\n    driver_opts: {type: tmpfs, device: tmpfs}\n",
    )
    loaded = compose.load(str(path), environ={})
    assert loaded.drafts[0].settings["volumes"] == ["data:/data:nocopy"]
    [volume] = loaded.volumes
    assert dict(volume.settings) == {"driver": "local", "options": ["type=tmpfs", "device=tmpfs"]}


def test_long_syntax_ports_volumes_devices(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    d = one(
        tmp_path,
        "image: app\nports:\n  - target: 80\n    published: 8080\n    protocol: udp\n"
        "  - target: 443\n  - 9000:9000\n  - 53\nvolumes:\n  - type: bind\n    source: ./site\n"
        "    target: /srv\n    read_only: true\n    bind: {propagation: rslave, selinux: z}\n"
        "  - type: tmpfs\n    target: /cache\n    tmpfs: {size: 1000, mode: 0o1777}\n"
        "devices:\n  - source: /dev/dri\n    target: /dev/dri\n    permissions: rw\n"
        "  - /dev/fuse",
        environ={},
    )
    assert d.settings["ports"] == ["8080:80/udp", "443", "9000:9000", "53"]
    assert d.settings["volumes"] == [f"{tmp_path}/site:/srv:ro,rslave,z"]
    assert d.settings["tmpfs"] == ["/cache:size=1000,mode=1777"]
    assert d.settings["devices"] == ["/dev/dri:/dev/dri:rw", "/dev/fuse"]


def test_list_and_map_spellings(tmp_path: Path) -> None:
    as_lists = one(
        tmp_path,
        "image: app\nenvironment: [A=1, B=two words]\nlabels: [x=1]\nsysctls: [net.a=1]\n"
        "extra_hosts: ['db:10.0.0.1']\ndns: 1.1.1.1\ntmpfs: /tmp\ncommand: run --fast 'a b'\n"
        "entrypoint: /bin/sh -c",
        environ={},
    )
    as_maps = one(
        tmp_path,
        "image: app\nenvironment: {A: 1, B: two words}\nlabels: {x: '1'}\nsysctls: {net.a: 1}\n"
        "extra_hosts: {db: 10.0.0.1}\ndns: [1.1.1.1]\ntmpfs: [/tmp]\n"
        "command: [run, --fast, a b]\nentrypoint: [/bin/sh, -c]",
        environ={},
    )
    assert as_lists.settings == as_maps.settings
    assert as_maps.settings["environment"] == {"A": "1", "B": "two words"}
    assert as_maps.settings["command"] == ["run", "--fast", "a b"]
    assert as_maps.settings["entrypoint"] == '["/bin/sh", "-c"]'


def test_environment_without_a_value_comes_from_the_environment(tmp_path: Path) -> None:
    d = one(tmp_path, "image: app\nenvironment: [HOME, NOT_SET]", environ={"HOME": "/root"})
    assert d.settings["environment"] == {"HOME": "/root"}
    assert [(n.kind, n.subject) for n in d.notes] == [
        (APPROXIMATED, "services.svc.environment.HOME"),
        (DROPPED, "services.svc.environment.NOT_SET"),
    ]


def test_scalar_keys(tmp_path: Path) -> None:
    d = one(
        tmp_path,
        "image: app\ncontainer_name: named\nnetwork_mode: host\ncgroup: private\ntty: true\n"
        "init: true\nprivileged: true\nread_only: true\nuser: 1000\nworking_dir: /w\n"
        "hostname: h\nstop_signal: SIGTERM\nstop_grace_period: 1.5s\nuserns_mode: keep-id\n"
        "pull_policy: if_not_present\ngroup_add: [wheel, 10]\ncap_add: [NET_ADMIN]\n"
        "cap_drop: [ALL]\nulimits: {nproc: 512, nofile: {soft: 1, hard: 2}}\n"
        "logging: {driver: journald}\nannotations: {a: b}\nsecurity_opt: [label=disable]",
        environ={},
    )
    assert d.name == "named"
    s = d.settings
    assert s["network"] == "host"
    assert s["cgroupns"] == "private"
    assert (s["tty"], s["init"], s["privileged"], s["read_only"]) == (True, True, True, True)
    assert (s["user"], s["working_dir"], s["hostname"]) == ("1000", "/w", "h")
    assert s["stop_timeout"] == 2
    assert (s["userns"], s["pull"], s["log_driver"]) == ("keep-id", "missing", "journald")
    assert s["group_add"] == ["wheel", "10"]
    assert s["ulimits"] == ["nproc=512", "nofile=1:2"]
    assert s["annotations"] == {"a": "b"}
    assert s["podman_args"] == ["--security-opt=label=disable"]
    assert [n.subject for n in d.notes if n.kind == APPROXIMATED] == [
        "services.svc.stop_grace_period"
    ]


@pytest.mark.parametrize(
    ("healthcheck", "expected", "raw"),
    [
        ("{test: [CMD, curl, -f, 'http://x/'], interval: 1m}",
         {"cmd": ["curl", "-f", "http://x/"], "interval": "1m"}, []),
        ("{test: [CMD-SHELL, 'curl -f http://x/ || exit 1'], retries: 2}",
         {"cmd": "curl -f http://x/ || exit 1", "retries": 2}, []),
        ("{test: 'pg_isready', timeout: 500ms}", {"cmd": "pg_isready", "timeout": "1s"}, []),
        ("{disable: true}", None, ["--no-healthcheck"]),
        ("{test: [NONE]}", None, ["--no-healthcheck"]),
        ("{interval: 10s}", None, ["--health-interval=10s"]),
    ],
)  # fmt: skip
def test_healthcheck(
    tmp_path: Path, healthcheck: str, expected: dict[str, Any] | None, raw: list[str]
) -> None:
    d = one(tmp_path, f"image: app\nhealthcheck: {healthcheck}", environ={})
    assert d.sections.get("health") == expected
    assert d.settings.get("podman_args", []) == raw


def test_networks_and_network_mode_service(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "services:\n  a:\n    image: app\n    networks: [default, back, front]\n"
        "  b:\n    image: app\n    network_mode: service:a\n"
        "networks:\n  back: {}\n  front: {}\n",
    )
    a, b = compose.load(str(path), environ={}).drafts
    assert a.settings["network"] == "back"
    assert a.settings["podman_args"] == ["--network=front"]
    assert b.settings["network"] == "container:a"


def test_unknown_and_unsupported_keys_are_reported_not_fatal(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: '3.8'\nx-anchor: 1\nsecrets: {s: {file: x}}\nbogus_top: 1\n"
        "services:\n  a:\n    image: app\n    build: .\n    stdin_open: true\n"
        "    flux_capacitor: on\n    x-mine: 1\n    secrets: [s]\n",
    )
    loaded = compose.load(str(path), environ={})
    assert [(n.kind, n.subject) for n in loaded.notes] == [
        (DROPPED, "secrets"),
        (DROPPED, "bogus_top"),
    ]
    assert [(n.kind, n.subject) for n in loaded.drafts[0].notes] == [
        (DROPPED, "services.a.build"),
        (DROPPED, "services.a.stdin_open"),
        (DROPPED, "services.a.flux_capacitor"),
        (DROPPED, "services.a.secrets"),
    ]
    assert "unknown compose key" in loaded.drafts[0].notes[2].reason


def test_one_service_only(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  a: {image: one}\n  b: {image: two}\n")
    loaded = compose.load(str(path), service="b", environ={})
    assert [d.name for d in loaded.drafts] == ["b"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services:\n  a:\n    image: [unclosed\n", r"docker-compose.yml:\d+: invalid YAML"),
        ("services:\n\ta: {}\n", "invalid YAML"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("name: x\n", "it has no 'services'"),
        ("services: {}\n", "non-empty mapping"),
        ("services:\n  a: {build: .}\n", "services.a.image: the service has no image"),
        ("services:\n  a: [1]\n", "services.a must be a mapping"),
        ("services:\n  a: {image: 'Bad Image'}\n", "invalid image reference"),
        ("services:\n  a: {image: x, restart: sometimes}\n", "unknown restart policy"),
        ("services:\n  a: {image: x, healthcheck: {test: 5}}\n", "unsupported form"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ImportInputError, match=message) as caught:
        compose.load(str(path), environ={})
    assert caught.value.exit_code == 2


def test_service_not_found_names_the_services(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  web: {image: x}\n  db: {image: y}\n")
    with pytest.raises(ImportInputError, match=r"no service 'api' \(the file has: db, web\)"):
        compose.load(str(path), service="api", environ={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImportInputError, match="no such file"):
        compose.load(str(tmp_path / "nope.yml"), environ={})


def test_env_files_relative_required_and_optional(tmp_path: Path) -> None:
    (tmp_path / "present.env").write_text("A=1\n", encoding="utf-8")
    d = one(
        tmp_path,
        "image: app\nenv_file:\n  - present.env\n  - path: ./optional.env\n    required: false\n"
        "  - ./required.env",
        environ={},
    )
    assert d.settings["environment_files"] == [
        f"{tmp_path}/present.env",
        f"{tmp_path}/required.env",
    ]
    assert [(n.kind, n.subject) for n in d.notes] == [
        (DROPPED, "services.svc.env_file ./optional.env"),
        (APPROXIMATED, "services.svc.env_file ./required.env"),
    ]


def test_yaml_is_read_as_compose_reads_it(tmp_path: Path) -> None:
    """YAML 1.2: 22:22 is a port mapping, not the base-60 number 1342; on is a string."""
    d = one(
        tmp_path,
        "image: app\nports: [22:22, 80:80, 0o17, 017]\nlabels: {a: on, b: yes, c: 1_000}\n"
        "tty: true\nstop_grace_period: 0x10",
        environ={},
    )
    assert d.settings["ports"] == ["22:22", "80:80", "15", "17"]
    assert d.settings["labels"] == {"a": "on", "b": "yes", "c": "1_000"}
    assert d.settings["tty"] is True
    assert d.settings["stop_timeout"] == 16


def test_volume_and_container_names_from_name_keys_and_variables(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "services:\n  a:\n    image: app\n    container_name: ${PREFIX}-a\n"
        "    volumes: [data:/data, 'shared:/shared:ro']\n"
        "volumes:\n  data:\n    name: ${PREFIX}_data\n    labels: {x: y}\n"
        "  shared:\n    external: true\n",
    )
    loaded = compose.load(str(path), environ={"PREFIX": "prod"})
    [d] = loaded.drafts
    assert d.name == "prod-a"
    assert d.settings["volumes"] == ["prod_data:/data", "shared:/shared:ro"]
    assert [(v.name, dict(v.settings)) for v in loaded.volumes] == [
        ("prod_data", {"labels": {"x": "y"}})
    ]
    assert loaded.notes == []
