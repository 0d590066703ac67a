"""The adoption's switch-over and undo (``psquadlet.adopt.switch``) over a stand-in host.

The host here is a small model of systemd and Podman (the ``HostOps`` Protocol): which unit
files exist, which are enabled and active, which containers exist. Real generate runs write
into a scratch folder. The booted test bed (tests/e2e/test_e2e_adopt.py) runs the same code
against real systemd and Podman.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from psquadlet import adopt
from psquadlet.adopt import record, switch
from psquadlet.adopt.record import AdoptError
from psquadlet.cli import main
from tests.importer.test_unit_import import SITE_UNIT

NAME = "perfsonar-testpoint"
UNIT = f"{NAME}.service"


class Crash(BaseException):
    """A kill in the middle: nothing catches it, as nothing catches SIGKILL."""


class FakeHost:
    def __init__(self, unit_dir: Path) -> None:
        self.unit_dir = unit_dir
        self.enabled = {UNIT}
        self.active = {UNIT, "perfsonar-certbot.service"}
        self.containers: dict[str, bool] = {}
        self.calls: list[str] = []
        self.fail_on: str | None = None
        self.crash_on: str | None = None

    def _call(self, text: str) -> None:
        self.calls.append(text)
        if self.crash_on and text.startswith(self.crash_on):
            self.crash_on = None
            raise Crash(text)
        if self.fail_on and text.startswith(self.fail_on):
            raise AdoptError(f"{text} failed")

    def unit_state(self, unit: str) -> tuple[bool, bool]:
        return unit in self.enabled, unit in self.active

    def dependents(self, unit: str) -> list[str]:
        return ["perfsonar-certbot.service"] if "perfsonar-certbot.service" in self.active else []

    def systemctl(self, *args: str) -> None:
        self._call("systemctl " + " ".join(args))
        verb, unit = args[0], args[-1]
        if verb == "stop":
            self.active.discard(unit)
            if unit == UNIT:
                self.active.discard("perfsonar-certbot.service")  # Requires= stops it too
        elif verb == "start":
            if unit == UNIT and not (self.unit_dir / UNIT).exists():
                raise AdoptError(f"Unit {unit} not found.")
            self.active.add(unit)
        elif verb == "disable":
            self.enabled.discard(unit)
        elif verb == "enable":
            self.enabled.add(unit)

    def container_running(self, name: str) -> bool | None:
        return self.containers.get(name)

    def podman(self, *args: str) -> None:
        self._call("podman " + " ".join(args))
        if args[0] == "stop":
            self.containers[args[-1]] = False
        elif args[0] == "start":
            self.containers[args[-1]] = True
        elif args[0] == "rename":
            self.containers[args[2]] = self.containers.pop(args[1])
        elif args[0] == "rm":
            self.containers.pop(args[-1], None)


@pytest.fixture
def site(tmp_path: Path) -> tuple[FakeHost, Path, Path, Path]:
    unit_dir = tmp_path / "system"
    unit_dir.mkdir()
    (unit_dir / UNIT).write_text(SITE_UNIT)
    return FakeHost(unit_dir), unit_dir, tmp_path / "state", tmp_path / "etc" / "psquadlet.toml"


def run(host: FakeHost, unit_dir: Path, state: Path, config: Path, gate: str = "") -> None:
    prepared = adopt.prepare(None, config, ops=host, unit_dir=unit_dir, state_dir=state)
    out = unit_dir.parent / "quadlet"
    out.mkdir(exist_ok=True)
    adopt.run(prepared, ops=host, state_dir=state, outdir=out, gate=lambda: gate)


def assert_back_as_before(host: FakeHost, unit_dir: Path, state: Path, config: Path) -> None:
    assert (unit_dir / UNIT).read_text() == SITE_UNIT
    assert host.enabled == {UNIT}
    assert host.active == {UNIT, "perfsonar-certbot.service"}
    assert not config.exists()
    out = unit_dir.parent / "quadlet"
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".")]
    assert record.load(state, NAME) is None
    (undone,) = (state / "adopted").glob(f"{NAME}.undone-*")
    assert (undone / UNIT).read_text() == SITE_UNIT


def test_adoption_moves_the_unit_aside_and_restarts_dependents(site) -> None:  # type: ignore[no-untyped-def]
    host, unit_dir, state, config = site
    run(host, unit_dir, state, config)
    assert not (unit_dir / UNIT).exists()
    kept = state / "adopted" / NAME / UNIT
    assert kept.read_text() == SITE_UNIT
    assert "[containers.perfsonar-testpoint]" in config.read_text()
    # Quadlet's .container, or the .service format where the host's Podman has no Quadlet
    assert list((unit_dir.parent / "quadlet").glob(f"{NAME}.*"))
    assert "perfsonar-certbot.service" in host.active
    assert host.calls.index(f"systemctl stop -- {UNIT}") < host.calls.index(
        f"systemctl disable -- {UNIT}"
    )
    rec = record.load(state, NAME)
    assert rec is not None
    assert rec.finished
    # undo later puts it back as it was
    adopt.undo(None, ops=host, state_dir=state)
    assert_back_as_before(host, unit_dir, state, config)


def test_unhealthy_adoption_puts_the_old_unit_back(site) -> None:  # type: ignore[no-untyped-def]
    host, unit_dir, state, config = site
    with pytest.raises(AdoptError, match=r"the old one is back as it was: .*not healthy: boom"):
        run(host, unit_dir, state, config, gate="boom")
    assert_back_as_before(host, unit_dir, state, config)


@pytest.mark.parametrize(
    "call",
    [
        f"systemctl stop -- {UNIT}",
        f"systemctl disable -- {UNIT}",
        "systemctl daemon-reload",
    ],
)
def test_failure_at_each_step_puts_it_back(site, call: str) -> None:  # type: ignore[no-untyped-def]
    host, unit_dir, state, config = site
    host.fail_on = call
    with pytest.raises(AdoptError):
        run(host, unit_dir, state, config)
    host.fail_on = None
    if call == "systemctl daemon-reload":  # restore's own reload failed too: undo finishes it
        adopt.undo(None, ops=host, state_dir=state)
    assert_back_as_before(host, unit_dir, state, config)


@pytest.mark.parametrize(
    "call",
    [f"systemctl stop -- {UNIT}", f"systemctl disable -- {UNIT}", "systemctl daemon-reload"],
)
def test_a_kill_at_each_step_is_undone_from_the_record(site, call: str) -> None:  # type: ignore[no-untyped-def]
    host, unit_dir, state, config = site
    host.crash_on = call
    with pytest.raises(Crash):
        run(host, unit_dir, state, config)
    adopt.undo(None, ops=host, state_dir=state)
    assert_back_as_before(host, unit_dir, state, config)


def test_a_kill_after_generate_is_undone(site) -> None:  # type: ignore[no-untyped-def]
    host, unit_dir, state, config = site

    def gate() -> str:
        raise Crash("killed during the health gate")

    prepared = adopt.prepare(None, config, ops=host, unit_dir=unit_dir, state_dir=state)
    out = unit_dir.parent / "quadlet"
    out.mkdir()
    with pytest.raises(Crash):
        adopt.run(prepared, ops=host, state_dir=state, outdir=out, gate=gate)
    assert list(out.glob(f"{NAME}.*"))
    adopt.undo(None, ops=host, state_dir=state)
    assert_back_as_before(host, unit_dir, state, config)


def test_refuses_an_existing_configuration_and_a_second_adoption(site) -> None:  # type: ignore[no-untyped-def]
    host, unit_dir, state, config = site
    config.parent.mkdir()
    config.write_text("# mine\n")
    with pytest.raises(adopt.UsageError, match="exists"):
        adopt.prepare(None, config, ops=host, unit_dir=unit_dir, state_dir=state)
    config.unlink()
    run(host, unit_dir, state, config)
    (unit_dir / UNIT).write_text(SITE_UNIT)
    config.rename(config.with_suffix(".old"))
    with pytest.raises(adopt.UsageError, match="adopted before"):
        adopt.prepare(None, config, ops=host, unit_dir=unit_dir, state_dir=state)


def test_a_container_without_a_unit_is_kept_aside_and_comes_back(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    host.active = set()
    host.enabled = set()
    host.containers = {"web": True}
    a = switch.Adoption("web", "container", tmp_path / "c.toml", "# text\n", container="web")
    with pytest.raises(AdoptError, match="not healthy"):
        switch.switch_over(a, host, tmp_path / "state", lambda: ([], lambda: None), lambda: "no")
    assert host.containers == {"web": True}
    assert "podman rename web web-psquadlet-adopted" in host.calls
    assert "podman rename web-psquadlet-adopted web" in host.calls


def test_a_damaged_record_is_refused_by_name(tmp_path: Path) -> None:
    folder = record.folder(tmp_path, NAME)
    folder.mkdir(parents=True)
    (folder / record.RECORD).write_text('{"version": 1, "record": {"name": 3}}')
    with pytest.raises(AdoptError, match="name: not a value"):
        record.load(tmp_path, NAME)
    (folder / record.RECORD).write_text("[")
    with pytest.raises(AdoptError, match="not an adoption record"):
        record.load(tmp_path, NAME)


def test_unit_option_names_the_unit_and_must_be_the_admins(site) -> None:  # type: ignore[no-untyped-def]
    host, unit_dir, state, config = site
    with pytest.raises(adopt.UsageError, match="the unit is perfsonar-testpoint, not web"):
        adopt.prepare(
            "web", config, unit_file=unit_dir / UNIT, ops=host, unit_dir=unit_dir, state_dir=state
        )
    vendor = unit_dir.parent / "lib"
    vendor.mkdir()
    (vendor / UNIT).write_text(SITE_UNIT)
    with pytest.raises(adopt.UsageError, match=r"units in .* only"):
        adopt.prepare(None, config, unit_file=vendor / UNIT, ops=host, unit_dir=unit_dir)
    prepared = adopt.prepare(
        None, config, unit_file=unit_dir / UNIT, ops=host, unit_dir=unit_dir, state_dir=state
    )
    assert prepared.adoption.name == NAME
    assert prepared.adoption.unit_path == unit_dir / UNIT


def test_dropins_of_the_old_unit_are_refused(site) -> None:  # type: ignore[no-untyped-def]
    host, unit_dir, state, config = site
    (unit_dir / f"{UNIT}.d").mkdir()
    with pytest.raises(adopt.UsageError, match="drop-ins would apply to the new unit"):
        adopt.prepare(None, config, ops=host, unit_dir=unit_dir, state_dir=state)


def test_a_compose_service_keeps_its_container_name(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yml"
    compose.write_text(
        "services:\n  testpoint:\n    image: registry.invalid/site/tp:1\n"
        "    container_name: tp\n    network_mode: host\n"
    )
    host = FakeHost(tmp_path)
    prepared = adopt.prepare(
        None,
        tmp_path / "c.toml",
        compose_file=compose,
        service="testpoint",
        ops=host,
        unit_dir=tmp_path,
        state_dir=tmp_path / "state",
    )
    assert prepared.adoption.name == "tp"
    assert prepared.adoption.container == "tp"
    assert prepared.adoption.shape == "container"


def test_cli_undo_without_a_record_is_a_clear_error() -> None:
    result = CliRunner().invoke(main, ["adopt", "--undo", "never-adopted-here"])
    assert result.exit_code == 2
    assert "no adoption of never-adopted-here is recorded" in result.output
    assert "Traceback" not in result.output


def test_into_volumes_copies_the_psconfig_folder_and_undo_removes_the_copy(site) -> None:  # type: ignore[no-untyped-def]
    host, unit_dir, state, config = site
    prepared = adopt.prepare(
        None, config, ops=host, unit_dir=unit_dir, state_dir=state, into_volumes=True
    )
    assert prepared.adoption.copy is not None
    assert prepared.adoption.copy.source == "/srv/tp/psconfig"
    text = prepared.adoption.config_text
    assert '"perfsonar-testpoint-psconfig:/etc/perfsonar/psconfig:Z"' in text
    assert "/srv/tp/psconfig" not in text
    out = unit_dir.parent / "quadlet"
    out.mkdir()
    with pytest.raises(AdoptError):
        adopt.run(prepared, ops=host, state_dir=state, outdir=out, gate=lambda: "no")
    volume = "perfsonar-testpoint-psconfig"
    copy = [c for c in host.calls if c.startswith("podman run")]
    assert copy == [
        "podman run --rm --network=none --entrypoint=cp --volume=/srv/tp/psconfig:/from:ro,z "
        f"--volume={volume}:/to:Z registry.invalid/site/perfsonar-testpoint:production -a "
        "/from/. /to/"
    ]
    assert host.calls.index(f"systemctl stop -- {UNIT}") < host.calls.index(copy[0])
    assert f"podman volume rm --force -- {volume}" in host.calls
    assert_back_as_before(host, unit_dir, state, config)


def test_into_volumes_needs_a_psconfig_bind_mount(tmp_path: Path) -> None:
    unit_dir = tmp_path / "system"
    unit_dir.mkdir()
    (unit_dir / UNIT).write_text(SITE_UNIT.replace(":/etc/perfsonar/psconfig:Z", ":/elsewhere"))
    with pytest.raises(adopt.UsageError, match="bind-mounts no host folder"):
        adopt.prepare(
            None,
            tmp_path / "c.toml",
            ops=FakeHost(unit_dir),
            unit_dir=unit_dir,
            state_dir=tmp_path / "s",
            into_volumes=True,
        )
