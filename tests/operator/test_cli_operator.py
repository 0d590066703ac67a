"""The operator commands as an operator runs them: the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from psquadlet.cli import COMMANDS
from tests.support import require_programs, require_root

PSQUADLET = str(Path(sys.executable).with_name("psquadlet"))


def run(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PSQUADLET, *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )


def without_podman() -> dict[str, str]:
    """The environment with a PATH on which no podman is found: doctor then runs no podman
    (tests that need the host's podman carry the ``registry`` marker)."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    kept = [f for f in folders if f and not os.path.exists(os.path.join(f, "podman"))]
    return {**os.environ, "PATH": os.pathsep.join(kept)}


def test_doctor_json_is_stable_and_matches_the_exit_code() -> None:
    result = run("doctor", "--json", env=without_podman())
    doc = json.loads(result.stdout)
    assert doc["schema"] == "psquadlet-doctor/1"
    assert set(doc) == {"schema", "ok", "psquadlet_version", "status", "exit_code", "checks"}
    assert doc["ok"] is (doc["status"] != "fail")
    assert [c["id"] for c in doc["checks"]] == [
        "config",
        "podman",
        "cgroup",
        "selinux",
        "arch",
        "time-sync",
        "capabilities",
        "ports",
        "short-names",
        "stack",
        "name-resolution",
        "disk-space",
        "watcher",
        "perfsonar-files",
    ]
    for check in doc["checks"]:
        assert set(check) == {"id", "status", "summary", "advice", "details", "items"}
        assert check["status"] in ("pass", "warn", "fail", "skip")
    worst = {c["status"] for c in doc["checks"]}
    expected = 2 if "fail" in worst else 1 if "warn" in worst else 0
    assert doc["exit_code"] == expected == result.returncode


def test_doctor_reports_a_bad_configuration_and_still_checks_the_host(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[containers.tp]\nimage = "perfsonar/testpoint"\nnetwrok = "host"\n')
    result = run("doctor", "-c", str(cfg), "--json", env=without_podman())
    assert result.returncode == 2
    checks = {c["id"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["config"]["status"] == "fail"
    assert any("did you mean 'network'" in d for d in checks["config"]["details"])
    # The short name is named with its fix even though the configuration did not load.
    assert checks["short-names"]["status"] == "fail"
    assert checks["short-names"]["items"][0]["suggestion"] == (
        "docker.io/perfsonar/testpoint:latest"
    )
    assert checks["ports"]["status"] in ("pass", "fail")  # ran, against the built-in default


def test_status_json_on_a_bad_configuration_is_the_error_object(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[containers.tp]\nimage = "docker.io/library/nginx:1"\nnetwrok = "host"\n')
    result = run("status", "-c", str(cfg), "--json")
    assert result.returncode == 2
    doc = json.loads(result.stdout)
    assert (doc["schema"], doc["ok"]) == ("psquadlet-status/1", False)
    (problem,) = doc["error"]["problems"]
    assert problem["file"] == str(cfg)
    assert (problem["line"], problem["key_path"]) == (3, "containers.tp.netwrok")
    assert problem["hint"] == "did you mean 'network'?"
    assert doc["error"]["message"] in result.stderr
    assert result.stderr.startswith("psquadlet: error: ")
    # Not a configuration problem: the message alone, no problems.
    cfg.write_text('[containers.tp]\nimage = "docker.io/library/nginx:1"\n')
    result = run("status", "-c", str(cfg), "--json", "nosuch")
    assert result.returncode == 2
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert doc["error"] == {"message": f"no container 'nosuch' in {cfg}", "problems": []}


def test_doctor_text_output() -> None:
    result = run("doctor", env=without_podman())
    assert result.stdout.splitlines()[-1] in ("overall: pass", "overall: warn", "overall: fail")
    assert "[PASS] config:" in result.stdout or "[FAIL] config:" in result.stdout


def test_doctor_help_documents_exit_codes_and_json() -> None:
    text = run("doctor", "--help").stdout
    assert "1  at least one warning, no failure" in text
    assert "psquadlet-doctor/1" in text


def test_completion_scripts_complete_commands_in_real_bash() -> None:
    require_programs("bash")
    script = run("completion", "bash").stdout
    assert "_PSQUADLET_COMPLETE=bash_complete" in script
    bin_dir = str(Path(PSQUADLET).parent)
    probe = (
        f'export PATH="{bin_dir}:$PATH"\n'
        f"{script}\n"
        "COMP_WORDS=(psquadlet do); COMP_CWORD=1; _psquadlet_completion psquadlet\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "-c", probe], capture_output=True, text=True, check=False
    )
    assert "doctor" in done.stdout.split(), done.stdout + done.stderr
    zsh = run("completion", "zsh").stdout
    assert "#compdef psquadlet" in zsh
    assert "_PSQUADLET_COMPLETE=zsh_complete" in zsh
    assert run("completion", "fish").returncode == 2


def test_man_page_lists_every_command_and_is_clean_roff(tmp_path: Path) -> None:
    page = tmp_path / "psquadlet.1"
    assert run("man", "-o", str(page)).returncode == 0
    text = page.read_text()
    assert text.startswith(".TH PSQUADLET 1 ")
    for name in COMMANDS:
        assert f"\n.SS {name}\n" in text, f"{name} missing from the man page"
    assert "\\fB\\-\\-json\\fR" in text
    if shutil.which("groff") is None:
        return
    warnings = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(page)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert warnings.returncode == 0
    assert warnings.stderr == ""


def test_shell_and_logs_need_a_name_when_several_containers(tmp_path: Path) -> None:
    cfg = tmp_path / "two.toml"
    cfg.write_text(
        '[containers.a]\nimage = "docker.io/library/busybox:1"\n'
        '[containers.b]\nimage = "docker.io/library/busybox:1"\n'
    )
    for command in ("shell", "logs"):
        result = run(command, "-c", str(cfg))
        assert result.returncode == 2
        assert "several containers are configured (a, b): name one" in result.stderr
        result = run(command, "-c", str(cfg), "nope")
        assert result.returncode == 2
        assert "no container 'nope'" in result.stderr


def test_logs_reads_the_units_journal(tmp_path: Path) -> None:
    require_programs("journalctl")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[containers.tp]\nimage = "docker.io/library/busybox:1"\n')
    result = run("logs", "-c", str(cfg), "-n", "5")
    # journalctl itself answered (this host may have no journal at all).
    assert result.returncode in (0, 1)
    assert "Traceback" not in result.stderr


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Path]:
    require_root()
    require_programs("podman", "busybox")
    from tests.support.images import build_plain

    image = build_plain("op-shell").local
    name = "psq-op-shell"
    subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, check=False)
    subprocess.run(["podman", "run", "-d", "--name", name, image], capture_output=True, check=True)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[containers.tp]\nimage = "{image}"\ncontainer_name = "{name}"\n')
    try:
        yield cfg
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, check=False)


@pytest.mark.registry
def test_shell_runs_in_the_container(running: Path) -> None:
    result = run("shell", "-c", str(running), "tp", "--", "cat", "/etc/psq-version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "op-shell\n"
    # Without a command: an interactive shell reading our stdin (no tty here).
    result = run("shell", "-c", str(running), stdin="echo inside $(cat /etc/psq-version)\n")
    assert result.stdout.strip() == "inside op-shell", result.stderr
