"""The collection on its own: build, the module through ansible-playbook, the role's files.

The module runs here with `connection: local` against this working tree's psquadlet (a
wrapper script), writing into a scratch folder (`output_dir`): changed only on a change,
check mode touches nothing, and a bad configuration fails with psquadlet's located message
naming the real file, which stays as it was.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import require_programs
from tests.support.fleet import (
    COLLECTION_SRC,
    REPO,
    SANITY_DIR,
    ansible_bin,
    install_collection,
    sanity,
)

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

HERE = Path(__file__).parent


def _toml_text() -> Any:
    path = COLLECTION_SRC / "plugins/module_utils/toml_text.py"
    spec = importlib.util.spec_from_file_location("toml_text", path)
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_toml_from_variables_reads_back_the_same() -> None:
    data = {
        "registries": {"127.0.0.1:5000": {"tls_verify": False}},
        "containers": {
            "perfsonar-testpoint": {
                "preset": "perfsonar-testpoint",
                "environment": {"TZ": "UTC", "Q": 'a "b" \\ c\t\u00e9'},
                "labels": {},
                "update": {"min_age": "3d", "health_cmd": ["a", "b"], "keep_images": 2},
                "perfsonar": {
                    "lookup_service": {"site_name": "Site", "latitude": 1.5},
                    "psconfig_remotes": [
                        {"url": "https://a"},
                        {"url": "https://b", "configure_archives": False},
                    ],
                },
            }
        },
    }
    assert tomllib.loads(_toml_text().dumps(data)) == data


def test_toml_refuses_what_toml_cannot_hold() -> None:
    mod = _toml_text()
    with pytest.raises(mod.TomlValueError, match=r"containers\.x\.memory"):
        mod.dumps({"containers": {"x": {"memory": None}}})


def test_the_role_leaves_the_watchers_units_to_generate() -> None:
    """generate writes the watcher's units (watchunits); the role ships no copies to drift."""
    assert not (COLLECTION_SRC / "roles/testpoint/files").exists()
    tasks = "".join(p.read_text() for p in (COLLECTION_SRC / "roles/testpoint/tasks").iterdir())
    assert "/etc/systemd/system/psquadlet-" not in tasks


@pytest.fixture(scope="module")
def collections(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_programs(ansible_bin("ansible-galaxy"))
    return install_collection(tmp_path_factory.mktemp("galaxy"))


def _module(collections: Path, tmp: Path, check: bool = False, **variables: Any) -> dict[str, Any]:
    wrapper = tmp / "psquadlet"
    if not wrapper.exists():
        wrapper.write_text(
            f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m psquadlet "$@"\n'
        )
        wrapper.chmod(0o755)
    extra = {
        "config_path": str(tmp / "psquadlet.toml"),
        "output_dir": str(tmp / "units"),
        "executable": str(wrapper),
        **variables,
    }
    argv = [ansible_bin("ansible-playbook"), str(HERE / "module_task.yml"), "-e", json.dumps(extra)]
    if check:
        argv += ["--check", "--diff"]
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_HOME": str(tmp / "ansible-home"),
    }
    res = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=300)
    try:
        doc = json.loads(res.stdout)
    except ValueError as e:
        raise AssertionError(f"no JSON from ansible-playbook:\n{res.stdout}\n{res.stderr}") from e
    (task,) = doc["plays"][0]["tasks"]
    return task["hosts"]["localhost"]  # type: ignore[no-any-return]


def _config(tz: str) -> dict[str, Any]:
    return {"containers": {"tp": {"preset": "perfsonar-testpoint", "environment": {"TZ": tz}}}}


def test_module_changes_only_on_a_change(collections: Path, tmp_path: Path) -> None:
    first = _module(collections, tmp_path, config=_config("UTC"))
    assert first["changed"] is True, first
    assert first["format"] == "service"
    unit = tmp_path / "units/tp.service"
    assert "TZ=UTC" in unit.read_text()
    again = _module(collections, tmp_path, config=_config("UTC"))
    assert again["changed"] is False, again
    assert again["units_changed"] == []
    kept = _module(collections, tmp_path)  # no config: the file there is kept and used
    assert kept["changed"] is False, kept


def test_module_check_mode_reports_and_touches_nothing(collections: Path, tmp_path: Path) -> None:
    _module(collections, tmp_path, config=_config("UTC"))
    config = (tmp_path / "psquadlet.toml").read_bytes()
    unit = (tmp_path / "units/tp.service").read_bytes()
    dry = _module(collections, tmp_path, check=True, config=_config("Europe/Paris"))
    assert dry["changed"] is True, dry
    assert dry["units_changed"] == [str(tmp_path / "units/tp.service")]
    assert any("Europe/Paris" in json.dumps(d) for d in dry["diff"])
    assert (tmp_path / "psquadlet.toml").read_bytes() == config
    assert (tmp_path / "units/tp.service").read_bytes() == unit
    assert (
        sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".psquadlet-ansible")) == []
    )


def test_module_fails_with_the_located_message(collections: Path, tmp_path: Path) -> None:
    _module(collections, tmp_path, config=_config("UTC"))
    before = (tmp_path / "psquadlet.toml").read_bytes()
    bad = {"containers": {"tp": {"preset": "perfsonar-testpoint", "netwrok": "host"}}}
    res = _module(collections, tmp_path, config=bad)
    assert res["failed"] is True
    path = tmp_path / "psquadlet.toml"
    assert res["msg"] == (
        f"{path}:3: containers.tp.netwrok: unknown key 'netwrok' (did you mean 'network'?)"
    ), res
    assert res["problems"][0]["file"] == str(path)
    assert path.read_bytes() == before


def _two(tz: str = "UTC") -> dict[str, Any]:
    cfg = _config(tz)
    cfg["containers"]["tp2"] = {"preset": "perfsonar-testpoint"}
    return cfg


def test_module_check_mode_shows_the_removals_a_real_run_makes(
    collections: Path, tmp_path: Path
) -> None:
    """Issue 20 §2: dropping a container removes its unit; check and diff modes say so."""
    _module(collections, tmp_path, config=_two())
    units = tmp_path / "units"
    assert (units / "tp2.service").is_file()
    dry = _module(collections, tmp_path, check=True, config=_config("UTC"))
    assert dry["changed"] is True, dry
    assert str(units / "tp2.service") in dry["units_changed"], dry
    prepared = "".join(d.get("prepared", "") for d in dry["diff"])
    assert f"--- a{units / 'tp2.service'}" in prepared, dry["diff"]
    assert (units / "tp2.service").is_file()
    real = _module(collections, tmp_path, config=_config("UTC"))
    assert real["units_changed"] == dry["units_changed"], real
    assert not (units / "tp2.service").exists()


def test_module_puts_the_old_configuration_back_when_generate_refuses(
    collections: Path, tmp_path: Path
) -> None:
    """The check passes, then a file appears in the way before the real run (an operator's
    own unit): generate refuses, and the configuration the units were made from is back."""
    _module(collections, tmp_path, config=_config("UTC"))
    config = tmp_path / "psquadlet.toml"
    before = config.read_bytes()
    wrapper = tmp_path / "psquadlet"
    intruder = tmp_path / "units/tp2.service"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" --dry-run "*) ;; *" generate "*) '
        f"printf '[Service]\\nExecStart=/bin/true\\n' > {intruder} ;; esac\n"
        f'PYTHONPATH={REPO} exec {sys.executable} -m psquadlet "$@"\n'
    )
    res = _module(collections, tmp_path, config=_two())
    assert res["failed"] is True, res
    assert "the previous configuration was put back" in res["msg"], res
    assert str(intruder) in res["msg"], res
    assert config.read_bytes() == before
    assert "TZ=UTC" in (tmp_path / "units/tp.service").read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".psquadlet-ansible")] == []


def test_module_writes_the_configuration_private(collections: Path, tmp_path: Path) -> None:
    """It may hold credentials: 0600 (0640 kept when the operator chose a reading group)."""
    config = tmp_path / "psquadlet.toml"
    _module(collections, tmp_path, config=_config("UTC"))
    assert config.stat().st_mode & 0o777 == 0o600
    config.chmod(0o644)  # as an older release wrote it
    dry = _module(collections, tmp_path, check=True, config=_config("UTC"))
    assert dry["changed"] is True, dry
    assert config.stat().st_mode & 0o777 == 0o644
    res = _module(collections, tmp_path, config=_config("UTC"))
    assert res["changed"] is True, res
    assert config.stat().st_mode & 0o777 == 0o600
    config.chmod(0o640)
    assert _module(collections, tmp_path, config=_config("UTC"))["changed"] is False
    _module(collections, tmp_path, config=_config("Europe/Paris"))
    assert config.stat().st_mode & 0o777 == 0o640


@pytest.mark.e2e  # slow: ansible-test installs its linters into a venv (cached per tree)
def test_collection_passes_ansible_test_sanity() -> None:
    """Python 3.11: the controller's (Debian 12's python3), which ansible-core 2.19 requires;
    also the Debian 12 hosts' interpreter. Debian 13's 3.13 is not on the controller."""
    require_programs(ansible_bin("ansible-test"))
    res = sanity(SANITY_DIR, "3.11")
    assert res.returncode == 0, (res.stdout + res.stderr)[-8000:]


EL_FACTS = {
    "ansible_os_family": "RedHat",
    "ansible_distribution_major_version": "9",
    "ansible_selinux": {"status": "enabled"},
}


def _el_check(collections: Path, tmp: Path, **variables: Any) -> list[tuple[str, str, str]]:
    """The role's EL tasks in check mode here: (task, ok|skipped|failed, msg) as they ran."""
    argv = [ansible_bin("ansible-playbook"), str(HERE / "el_check.yml"), "--check"]
    argv += ["-e", json.dumps(variables)]
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_HOME": str(tmp / "ansible-home"),
    }
    res = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=300)
    doc = json.loads(res.stdout)
    out = []
    for task in doc["plays"][0]["tasks"][1:]:  # after the include_role itself
        r = task["hosts"]["localhost"]
        status = "failed" if r.get("failed") else "skipped" if r.get("skipped") else "ok"
        msg = r.get("msg", "")
        name = task["task"]["name"].split(" : ", 1)[-1]  # without the role's prefix
        out.append((name, status, json.dumps(msg) if msg else ""))
    return out


def test_role_el_tasks_in_check_mode_against_el_facts(collections: Path, tmp_path: Path) -> None:
    """Issue 20 §5, as far as EL can be checked without an EL host: the tasks parse, an EL 9
    passes the release check and reaches dnf (which this Debian machine lacks) and the
    SELinux boolean (ansible.posix, shipped in the `ansible` package; no libselinux here);
    EL 8 is refused. Left for an EL host: dnf installing, seboolean setting, the .rpm."""
    ran = _el_check(collections, tmp_path, **EL_FACTS)
    assert [(name, status) for name, status, _ in ran] == [
        ("A supported EL release", "ok"),
        ("Podman and Python from the distribution", "failed"),
    ], ran
    assert "dnf" in ran[1][2], ran
    ran = _el_check(collections, tmp_path, **EL_FACTS, psquadlet_el_packages=[])
    assert [(name, status) for name, status, _ in ran] == [
        ("A supported EL release", "ok"),
        ("Podman and Python from the distribution", "skipped"),
        ("SELinux lets containers manage their cgroup (systemd inside the testpoint)", "failed"),
    ], ran
    assert "selinux" in ran[2][2], ran
    ran = _el_check(
        collections, tmp_path, **{**EL_FACTS, "ansible_distribution_major_version": "8"}
    )
    assert ran == [
        (
            "A supported EL release",
            "failed",
            json.dumps("EL 8: psquadlet needs Python 3.9 and Podman 4.x (EL 9 or later)"),
        )
    ], ran
    no_selinux = {**EL_FACTS, "ansible_selinux": {"status": "disabled"}}
    ran = _el_check(collections, tmp_path, **no_selinux, psquadlet_el_packages=[])
    assert [status for _, status, _ in ran] == ["ok", "skipped", "skipped"], ran


def test_fleet_report_sorts_what_needs_attention_first() -> None:
    """report.yml's filter on status documents: no status, then failing, then warnings."""
    path = COLLECTION_SRC / "plugins/filter/fleet_report.py"
    spec = importlib.util.spec_from_file_location("fleet_report", path)
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    def status(name: str, **c: Any) -> dict[str, Any]:
        base = {
            "name": name,
            "running": True,
            "unit_state": {"active": "active"},
            "image": "reg/pt:systemd",
            "digest": "sha256:" + "ab" * 32,
            "last_result": "up-to-date: nothing new",
            "watch": {"health": "healthy"},
            "blocked": [],
        }
        return {**base, **c}

    def doc(*containers: dict[str, Any]) -> str:
        return json.dumps({"schema": "psquadlet-status/1", "containers": list(containers)})

    collected = {
        "a": {"rc": 0, "stdout": doc(status("pt"))},
        "b": {"rc": 3, "stdout": doc(status("pt", running=False, digest=""))},
        "c": {"unreachable": True, "msg": "Failed to connect"},
        "d": {"rc": 0, "stdout": doc(status("pt", pinned="visit"), status("x"))},
        "e": {"rc": 1, "stdout": doc(status("pt", last_result="rolled-back: health"))},
        "f": {"rc": 0, "stdout": doc(status("pt", watch={"update_available": True}))},
        "g": {"rc": 127, "stdout": "", "stderr": "psquadlet: not found"},
    }
    rows = mod.fleet_report(collected)
    order = [(r["host"], r["container"]) for r in rows]
    assert order == [
        ("c", None),
        ("g", None),
        ("b", "pt"),
        ("e", "pt"),
        ("d", "pt"),
        ("f", "pt"),
        ("a", "pt"),
        ("d", "x"),
    ], rows
    assert rows[0]["attention"] == "no status: unreachable"
    assert rows[1]["attention"] == "no status: exit 127: psquadlet: not found"
    assert rows[3]["attention"] == "last pass: rolled-back"
    assert rows[-1]["digest_short"] == "ab" * 6
    table = mod.fleet_table(rows)
    assert table[0].split()[:2] == ["HOST", "CONTAINER"]
    assert [line.split()[0] for line in table[1:]] == [h for h, _ in order]
