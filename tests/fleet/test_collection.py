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
