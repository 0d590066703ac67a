"""generate / init / validate through click, on real folders (tmp_path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from psquadlet.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOOD = '[containers.tp]\npreset = "perfsonar-testpoint"\n'
V = ["--podman-version", "5.4.2"]


def _runner() -> CliRunner:
    """Separate stdout and stderr on click 8.1 (Python 3.9) and 8.2+ alike."""
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click >= 8.2 always keeps them apart
        return CliRunner()


def run(*args: str) -> Result:
    return _runner().invoke(main, list(args))


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under folder with its content and mtime: "unchanged" means all of it."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def listing(folder: Path) -> list[str]:
    """The files an operator sees (not psquadlet's own .psquadlet-manifest.json and lock)."""
    return sorted(
        p.name for p in folder.iterdir() if not p.name.startswith((".psquadlet", "psquadlet-"))
    )


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    """An output folder already holding a unit generated from c.toml and a hand-written one."""
    out = tmp_path / "out"
    out.mkdir()
    cfg = tmp_path / "c.toml"
    cfg.write_text('[containers.old]\nimage = "docker.io/library/busybox:1"\n')
    assert run("generate", "-c", str(cfg), "-o", str(out), *V).exit_code == 0
    (out / "handwritten.container").write_text("[Container]\nImage=docker.io/x/y:z\n")
    return out


# ------------------------------------------------------------------ bad input: nothing written

BAD_INPUTS = {
    "syntax": ('[containers.tp]\nimage = "docker.io/a/b\n', "TOML syntax error", ":2:"),
    "unknown-key": (GOOD + 'netwrok = "host"\n', "did you mean 'network'?", ":3:"),
    "wrong-type": (GOOD + 'tty = "yes"\n', "containers.tp.tty: expected true or false", ":3:"),
    "short-image": (
        '[containers.tp]\nimage = "perfsonar/testpoint:systemd"\n',
        "use 'docker.io/perfsonar/testpoint:systemd'",
        ":2:",
    ),
    "bad-port": (GOOD + 'network = "bridge"\nports = ["80:80:80:80"]\n', "invalid port", ":4:"),
    "bad-volume": (GOOD + 'volumes = ["relative:dir"]\n', "is not absolute", ":3:"),
    "bad-duration": (
        GOOD + '[containers.tp.service]\nrestart_sec = "soon"\n',
        "invalid duration 'soon'",
        ":4:",
    ),
    "newline": (GOOD + 'description = "a\\nExecStartPre=/bin/evil"\n', "newline", ":3:"),
    "nul": (GOOD + 'hostname = "a\\u0000b"\n', "NUL", ":3:"),
    # Found by the renderer (unitfile refuses it), still located in the file:
    "quoted-verbatim": (GOOD + 'timezone = "\\"UTC\\""\n', "double quote", ":3:"),
    "trailing-backslash": (
        GOOD + '[containers.tp.unit]\nextra = { Documentation = "x\\\\" }\n',
        "backslash",
        ":4:",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exit_2_message_and_nothing_written(
    case: str, outdir: Path, tmp_path: Path
) -> None:
    text, message, line = BAD_INPUTS[case]
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    before = snapshot(outdir)
    result = run("generate", "-c", str(cfg), "-o", str(outdir), *V)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"psquadlet: error: {cfg}{line}"), result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert snapshot(outdir) == before
    # validate says the same, with the same exit code.
    checked = run("validate", "-c", str(cfg))
    assert checked.exit_code == 2
    assert message in checked.stderr


def test_key_too_new_for_the_target_podman(outdir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD + 'stop_signal = "SIGRTMIN+3"\n')
    before = snapshot(outdir)
    result = run("generate", "-c", str(cfg), "-o", str(outdir), "--format", "quadlet",
                 "--podman-version", "4.9")  # fmt: skip
    assert result.exit_code == 2
    assert f"{cfg}:3: containers.tp.stop_signal: key StopSignal= in [Container] needs Podman" in (
        result.stderr
    )
    assert snapshot(outdir) == before
    # The service format runs podman itself: any version that has the flag is fine.
    ok = run("generate", "-c", str(cfg), "-o", str(outdir / "svc"), "--format", "service")
    assert ok.exit_code == 0, ok.output


def test_podman_without_quadlet_and_bad_version(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD)
    out = tmp_path / "out"
    old = run("generate", "-c", str(cfg), "-o", str(out), "--format", "quadlet",
              "--podman-version", "4.3.1")  # fmt: skip
    assert old.exit_code == 2
    assert "has no Quadlet" in old.stderr
    bad = run("generate", "-c", str(cfg), "-o", str(out), "--podman-version", "five")
    assert bad.exit_code == 2
    assert "--podman-version" in bad.stderr
    assert not out.exists()
    auto = run("generate", "-c", str(cfg), "-o", str(out), "--podman-version", "4.3.1")
    assert auto.exit_code == 0, auto.output
    assert listing(out) == ["tp.service"]
    assert "writing a plain .service" in auto.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = run("generate", "-c", str(tmp_path / "nope.toml"), "-o", str(tmp_path / "o"), *V)
    assert result.exit_code == 2
    assert "cannot read" in result.stderr
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ writing


def test_generate_writes_then_reports_unchanged_and_removes_stale(
    outdir: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD)
    first = run("generate", "-c", str(cfg), "-o", str(outdir), *V)
    assert first.exit_code == 0, first.output
    assert f"created: {outdir / 'tp.container'}" in first.stdout
    assert f"created: {outdir / 'tp-psconfig.volume'}" in first.stdout
    # The earlier generated unit is no longer configured: removed. The hand-written one stays.
    assert f"removed: {outdir / 'old.container'}" in first.stdout
    assert not (outdir / "old.container").exists()
    assert (outdir / "handwritten.container").exists()
    text = (outdir / "tp.container").read_text()
    assert text.startswith("# Generated by psquadlet ")
    assert f"from {cfg}." in text.splitlines()[0]

    before = snapshot(outdir)
    second = run("generate", "-c", str(cfg), "-o", str(outdir), *V)
    assert second.exit_code == 0
    assert f"unchanged: {outdir / 'tp.container'}" in second.stdout
    assert "daemon-reload" not in second.stdout
    assert snapshot(outdir) == before  # not even rewritten

    cfg.write_text(GOOD + 'hostname = "tp1"\n')
    third = run("generate", "-c", str(cfg), "-o", str(outdir), "--diff", *V)
    assert third.exit_code == 0
    assert "+HostName=tp1" in third.stdout
    assert f"changed: {outdir / 'tp.container'}" in third.stdout
    assert "HostName=tp1" in (outdir / "tp.container").read_text()


def test_refuses_to_overwrite_a_file_it_did_not_generate(outdir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[containers.handwritten]\nimage = "docker.io/library/busybox:1"\n')
    before = snapshot(outdir)
    result = run("generate", "-c", str(cfg), "-o", str(outdir), *V)
    assert result.exit_code == 1
    assert "handwritten.container: not generated by psquadlet" in result.stderr
    assert "--force" in result.stderr
    assert snapshot(outdir) == before  # nothing at all, not even the stale removal
    forced = run("generate", "-c", str(cfg), "-o", str(outdir), "--force", *V)
    assert forced.exit_code == 0, forced.output
    assert "Image=docker.io/library/busybox:1" in (outdir / "handwritten.container").read_text()


def test_dry_run_prints_units_and_touches_nothing(outdir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD)
    before = snapshot(outdir)
    result = run("generate", "-c", str(cfg), "-o", str(outdir), "--dry-run", *V)
    assert result.exit_code == 0
    assert "[Container]\nImage=ghcr.io/perfsonar/testpoint:systemd\n" in result.stdout
    assert f"# ==> {outdir / 'tp-psconfig.volume'} <==" in result.stdout
    assert snapshot(outdir) == before
    diff = run("generate", "-c", str(cfg), "-o", str(outdir), "--dry-run", "--diff", *V)
    assert "+++ b" in diff.stdout
    assert "--- a" in diff.stdout  # the stale old.container would be removed
    assert snapshot(outdir) == before


def test_python_m_dry_run_on_the_default(tmp_path: Path) -> None:
    """`python -m psquadlet generate --dry-run` on the built-in default writes nothing."""
    env = dict(os.environ, HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "psquadlet", "generate", "--dry-run", *V],
        capture_output=True, text=True, cwd=tmp_path, env=env, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "from the built-in default" in result.stdout
    assert "PodmanArgs=--cgroupns=host" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_generate_does_not_import_the_watcher_libraries() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from psquadlet.cli import main\n"
        "r = CliRunner().invoke(main, ['generate', '--dry-run', '--podman-version', '5.4'])\n"
        "assert r.exit_code == 0, r.output\n"
        "bad = [m for m in ('podman', 'pystemd', 'yaml') if m in sys.modules]\n"
        "print(bad)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


# ------------------------------------------------------------------ init and validate


@pytest.mark.parametrize("variant", ["systemd", "supervisord"])
def test_init_writes_a_file_that_generates_the_preset(variant: str, tmp_path: Path) -> None:
    path = tmp_path / "etc" / "psquadlet.toml"
    result = run("init", "--variant", variant, str(path))
    assert result.exit_code == 0, result.output
    assert path.read_text().startswith("# psquadlet configuration")
    again = run("init", str(path))
    assert again.exit_code == 1
    assert "exists" in again.stderr
    preset = tmp_path / "preset.toml"
    preset.write_text(
        f'[containers.perfsonar-testpoint]\npreset = "perfsonar-testpoint"\nvariant = "{variant}"\n'
    )
    for fmt in ("quadlet", "service"):
        a = run("generate", "-c", str(path), "--dry-run", "--format", fmt, "-o", "/x", *V)
        b = run("generate", "-c", str(preset), "--dry-run", "--format", fmt, "-o", "/x", *V)
        assert a.exit_code == b.exit_code == 0
        assert a.stdout.replace(str(path), "SRC") == b.stdout.replace(str(preset), "SRC")
    assert run("init", "--force", str(path)).exit_code == 0


def test_init_to_stdout() -> None:
    result = run("init", "-")
    assert result.exit_code == 0
    assert 'variant = "systemd"' in result.stdout


def test_validate_ok(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD + '[containers.b]\nimage = "docker.io/library/busybox:1"\n')
    result = run("validate", "-c", str(cfg))
    assert result.exit_code == 0
    assert result.stdout.startswith("OK: 2 containers")


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD + 'tty = 1\nnetwrok = "host"\n')
    result = run("validate", "-c", str(cfg))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"psquadlet: error: {cfg}:") for line in lines)


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.toml")), ids=str)
def test_examples_validate(example: Path) -> None:
    result = run("validate", "-c", str(example))
    assert result.exit_code == 0, result.stderr


def test_auto_format_falls_back_to_service_when_quadlet_lacks_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD)
    out = tmp_path / "out"
    result = run("generate", "-c", str(cfg), "-o", str(out), "--podman-version", "4.5")
    assert result.exit_code == 0, result.output
    assert "Quadlet lacks VolumeName=" in result.stderr
    assert listing(out) == ["tp.service"]
    # Asked for explicitly, the same target is an error instead.
    explicit = run("generate", "-c", str(cfg), "-o", str(tmp_path / "o2"), "--format",
                   "quadlet", "--podman-version", "4.5")  # fmt: skip
    assert explicit.exit_code == 2
    assert "VolumeName= in [Volume] needs Podman 4.7" in explicit.stderr


def _fake_systemctl(folder: Path, exit_code: int) -> Path:
    """systemctl cannot reload anything here (no systemd as PID 1): a recording stand-in."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "calls"
    script = folder / "systemctl"
    script.write_text(
        f'#!/bin/sh\necho "$@" >> {log}\necho "reload failed" >&2\nexit {exit_code}\n'
    )
    script.chmod(0o755)
    return log


@pytest.mark.parametrize(("mode", "expected"), [("--system", "daemon-reload"),
                                                ("--user", "--user daemon-reload")])  # fmt: skip
def test_reload_runs_daemon_reload_only_after_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, expected: str
) -> None:
    log = _fake_systemctl(tmp_path / "bin", 0)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD)
    out = tmp_path / "out"
    args = ["generate", "-c", str(cfg), "-o", str(out), mode, "--reload", *V]
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert log.read_text().splitlines() == [expected]
    assert run(*args).exit_code == 0
    assert log.read_text().splitlines() == [expected]  # nothing changed: no reload


def test_failing_reload_is_a_runtime_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_systemctl(tmp_path / "bin", 1)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD)
    result = run("generate", "-c", str(cfg), "-o", str(tmp_path / "out"), "--reload", *V)
    assert result.exit_code == 1
    assert "daemon-reload failed: reload failed" in result.stderr


def test_default_config_file_is_used_when_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from psquadlet import config

    path = tmp_path / "psquadlet.toml"
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", path)
    assert config.load_config(None).source == "<built-in default>"
    path.write_text('[containers.other]\nimage = "docker.io/library/busybox:1"\n')
    loaded = config.load_config(None)
    assert loaded.source == str(path)
    assert [c.name for c in loaded.containers] == ["other"]


def test_notify_healthy_needs_podman_5(tmp_path: Path) -> None:
    # Quadlet's Notify=healthy came with 5.0, podman run --sdnotify=healthy with 4.7.
    cfg = tmp_path / "c.toml"
    cfg.write_text('[containers.tp]\nimage = "docker.io/library/busybox:1"\nnotify = "healthy"\n')
    for fmt, version, feature, needs in (
        ("quadlet", "4.9", "Notify=healthy", "5.0"),
        ("service", "4.6", "--sdnotify=healthy", "4.7"),
        ("auto", "4.6", "--sdnotify=healthy", "4.7"),  # falls back to service, then refused
    ):
        result = run("generate", "-c", str(cfg), "-o", str(tmp_path / "o"), "--format", fmt,
                     "--podman-version", version)  # fmt: skip
        assert result.exit_code == 2
        assert f"{cfg}:3: containers.tp.notify: {feature} needs Podman {needs}" in result.stderr
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ --json (issue 14's contract)


def test_generate_json(tmp_path: Path) -> None:
    cfg, out = tmp_path / "c.toml", tmp_path / "out"
    cfg.write_text(GOOD)
    result = run("generate", "-c", str(cfg), "-o", str(out), "--json", *V)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    files = doc.pop("files")
    assert doc == {
        "schema": "psquadlet-generate/1",
        "ok": True,
        "changed": True,
        "dry_run": False,
        "format": "quadlet",
        "podman_version": "5.4.2",
        "output_dir": str(out),
        "note": None,
        "reloaded": False,
    }
    assert {"path": str(out / "tp.container"), "action": "create", "kind": "unit"} in files
    assert {"path": str(out / "tp-psconfig.volume"), "action": "create", "kind": "volume"} in files
    again = json.loads(run("generate", "-c", str(cfg), "-o", str(out), "--json", *V).stdout)
    assert again["changed"] is False
    assert {f["action"] for f in again["files"]} == {"unchanged"}


def test_generate_json_dry_run_diff_and_note(tmp_path: Path) -> None:
    cfg, out = tmp_path / "c.toml", tmp_path / "out"
    cfg.write_text(GOOD)
    argv = ("generate", "-c", str(cfg), "-o", str(out), "--dry-run", "--diff", "--json")
    result = run(*argv, "--podman-version", "4.5")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # one object, nothing else on stdout
    assert doc["dry_run"] is True
    assert doc["changed"] is True
    assert doc["format"] == "service"
    assert "Quadlet lacks VolumeName=" in doc["note"]
    assert f"+++ b{out / 'tp.service'}" in doc["diff"]
    assert not out.exists()
    plain = json.loads(run("generate", "-c", str(cfg), "-o", str(out), "--json", *V).stdout)
    assert "diff" not in plain


def test_generate_json_errors(outdir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(GOOD + 'netwrok = "host"\n')
    bad = run("generate", "-c", str(cfg), "-o", str(outdir), "--json", *V)
    assert bad.exit_code == 2
    assert "psquadlet: error:" in bad.stderr
    doc = json.loads(bad.stdout)
    assert doc["schema"] == "psquadlet-generate/1"
    assert doc["ok"] is False
    (problem,) = doc["error"]["problems"]
    assert problem == {
        "file": str(cfg),
        "line": 3,
        "key_path": "containers.tp.netwrok",
        "message": "unknown key 'netwrok'",
        "hint": "did you mean 'network'?",
    }
    cfg.write_text('[containers.handwritten]\nimage = "docker.io/library/busybox:1"\n')
    refused = run("generate", "-c", str(cfg), "-o", str(outdir), "--json", *V)
    assert refused.exit_code == 1
    doc = json.loads(refused.stdout)
    assert doc["ok"] is False
    assert doc["error"]["problems"] == []
    assert "handwritten.container: not generated by psquadlet" in doc["error"]["message"]


def test_as_config_plans_a_candidate_as_the_file_it_replaces(tmp_path: Path) -> None:
    """Issue 20 §2: a candidate checked beside the real file shows what a run of the real
    file would do: units it drops are removed, the others unchanged (same source line)."""
    out = tmp_path / "out"
    real = tmp_path / "real.toml"
    real.write_text(GOOD + '[containers.tp2]\npreset = "perfsonar-testpoint"\n')
    assert run("generate", "-c", str(real), "-o", str(out), *V).exit_code == 0
    cand = tmp_path / ".candidate.toml"
    cand.write_text(GOOD)
    res = run(
        "generate", "-c", str(cand), "--as-config", str(real), "-o", str(out), *V,
        "--dry-run", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    actions = {Path(f["path"]).name: f["action"] for f in json.loads(res.stdout)["files"]}
    assert actions["tp2.container"] == "remove", actions
    assert actions["tp.container"] == "unchanged", actions
    # An error still names the file read, at its line.
    cand.write_text(GOOD + "netwrok = 1\n")
    res = run(
        "generate", "-c", str(cand), "--as-config", str(real), "-o", str(out), *V, "--dry-run"
    )
    assert res.exit_code == 2
    assert f"{cand}:3: containers.tp.netwrok" in res.stderr, res.stderr
    # Only a dry run: the units would name a file that is not what was read.
    res = run("generate", "-c", str(cand), "--as-config", str(real), "-o", str(out), *V)
    assert res.exit_code == 2
    assert "--as-config checks a candidate: it needs --dry-run" in res.stderr
