"""What release tracking leaves on disk and in the configuration: the drop-in, generate's
handling of it, the new [update] keys, status's release line, the Overrides adapter."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from psquadlet import dropin, generate, presets
from psquadlet.config import parse_config
from psquadlet.errors import ConfigError, ConfigErrors
from psquadlet.status import release_line
from psquadlet.watch.state import ContainerState
from psquadlet.watch.targets import targets_from_config
from psquadlet.watch.unit_overrides import UnitOverrides

ROOT = Path(__file__).resolve().parents[2]
BASE = "ghcr.io/perfsonar/testpoint:v5.2.0-systemd"


def _config(tmp_path: Path, image: str = BASE, extra: str = 'track = "patch"\n') -> Path:
    cfg = tmp_path / "psquadlet.toml"
    cfg.write_text(
        f'[containers.tp]\npreset = "perfsonar-testpoint"\nimage = "{image}"\n'
        f"[containers.tp.update]\n{extra}"
    )
    return cfg


def _generate(cfg: Path, out: Path) -> generate.Result:
    return generate.run(generate.Options(cfg, out, "quadlet", "5.4.2", False, unit_search_path=()))


def test_generate_keeps_a_drop_in_of_the_same_base_and_removes_it_when_the_image_changes(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    cfg = _config(tmp_path)
    _generate(cfg, out)
    path = dropin.dropin_path(out / "tp.container")
    path.parent.mkdir()
    path.write_text(dropin.render(BASE.replace("5.2.0", "5.2.1"), BASE, "release adopted"))
    assert not _generate(cfg, out).changed
    assert path.exists()
    other = _config(tmp_path, BASE.replace("v5.2.0-systemd", "systemd"))
    result = _generate(other, out)
    assert result.changed
    assert not path.exists()


def test_generate_leaves_a_drop_in_it_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _generate(_config(tmp_path), out)
    path = out / "tp.container.d" / dropin.DROPIN_NAME
    path.parent.mkdir()
    path.write_text("[Container]\nImage=docker.io/x/y:z\n")
    _generate(_config(tmp_path, BASE.replace("v5.2.0-systemd", "systemd")), out)
    assert path.exists()


@pytest.mark.oracle
def test_quadlet_reads_the_drop_in_image(tmp_path: Path) -> None:
    from tests.support.oracle import run_quadlet_dir

    out = tmp_path / "out"
    _generate(_config(tmp_path), out)
    release = BASE.replace("5.2.0", "5.2.1")
    path = dropin.dropin_path(out / "tp.container")
    path.parent.mkdir()
    path.write_text(dropin.render(release, BASE, "release adopted"))
    result = run_quadlet_dir(out)
    assert result.returncode == 0, result.stderr
    (exec_start,) = [
        line
        for line in result.stdout.splitlines()
        if line.startswith("ExecStart=/usr/bin/podman run")
    ]
    assert exec_start.endswith(f" {release}")
    assert f" {BASE}" not in exec_start


def test_the_update_keys_and_the_presets_templates() -> None:
    config = parse_config(
        '[containers.a]\npreset = "perfsonar-testpoint"\n[containers.a.update]\n'
        'track = "minor"\nprerelease = true\n'
        '[containers.b]\npreset = "perfsonar-testpoint"\nvariant = "supervisord"\n',
        "t.toml",
    )
    a, b = config.containers
    assert (a.update.track, a.update.tag_pattern, a.update.prerelease) == (
        "minor",
        "v{version}-systemd",
        True,
    )
    assert (b.update.track, b.update.tag_pattern) == ("digest", "v{version}")
    assert presets.init_text().count("track") >= 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('track = "minr"', "invalid value 'minr'"),
        ('tag_pattern = "v{version}{version}"', "exactly once"),
        ('track = "patch"\ntag_pattern = ""', "needs update.tag_pattern"),
    ],
)
def test_bad_update_keys_are_located_errors(text: str, message: str) -> None:
    with pytest.raises((ConfigError, ConfigErrors)) as info:
        parse_config(
            '[containers.a]\npreset = "perfsonar-testpoint"\n[containers.a.update]\n' + text,
            "t.toml",
        )
    assert message in str(info.value)
    assert "t.toml:" in str(info.value)


def test_status_says_which_release_runs_and_why(tmp_path: Path) -> None:
    (t,) = targets_from_config(parse_config(_config(tmp_path).read_text(), "t.toml"))
    cs = ContainerState("tp")
    assert release_line(t, cs) == "v5.2.0-systemd as configured (track 'patch')"
    cs = dataclasses.replace(
        cs, release_tag="v5.2.1-systemd", release_base=BASE, release_how="drop-in /x.conf"
    )
    assert release_line(t, cs) == "v5.2.1-systemd, adopted (track 'patch'); drop-in /x.conf"
    cs = dataclasses.replace(cs, release_how="retag")
    assert "the configured tag points at it" in release_line(t, cs)
    cs = dataclasses.replace(cs, release_base="ghcr.io/perfsonar/testpoint:systemd")
    assert release_line(t, cs).endswith("as configured (track 'patch')")


class _Units:
    def __init__(self, source: str) -> None:
        self.source = source
        self.reloads = 0

    def source_path(self, unit: str) -> str:
        return self.source

    def daemon_reload(self) -> None:
        self.reloads += 1


def test_overrides_write_and_remove_the_drop_in_only_where_quadlet_reads_it(
    tmp_path: Path,
) -> None:
    source = tmp_path / "tp.container"
    source.write_text("[Container]\n")
    units = _Units(str(source))
    ov = UnitOverrides(units, (5, 4, 2))  # type: ignore[arg-type]
    how = ov.set_image("tp.service", "ghcr.io/p/t:v2", "ghcr.io/p/t:v1", "release v2")
    path = dropin.dropin_path(source)
    assert how == f"drop-in {path}"
    assert dropin.image_of(path.read_text()) == "ghcr.io/p/t:v2"
    assert dropin.base_of(path.read_text()) == "ghcr.io/p/t:v1"
    assert units.reloads == 1
    ov.set_image("tp.service", None, "ghcr.io/p/t:v1", "")
    assert not path.exists()
    assert not path.parent.exists()
    assert UnitOverrides(units, (4, 9, 3)).set_image("tp.service", "x", "y", "") == ""  # type: ignore[arg-type]
    service = _Units(str(tmp_path / "tp.service"))
    assert UnitOverrides(service, (5, 4, 2)).set_image("tp.service", "x", "y", "") == ""  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("registry", "image"),
    [
        (None, "ghcr.io/perfsonar/testpoint:systemd"),
        ("docker.io", "docker.io/perfsonar/testpoint:systemd"),
        ("mirror.example.org:5000", "mirror.example.org:5000/perfsonar/testpoint:systemd"),
    ],
)
def test_the_presets_registry_is_an_explicit_choice_defaulting_to_ghcr(
    registry: str | None, image: str
) -> None:
    line = f'registry = "{registry}"\n' if registry else ""
    config = parse_config(f'[containers.a]\npreset = "perfsonar-testpoint"\n{line}', "t.toml")
    assert config.containers[0].image == image
    assert config.containers[0].registry == registry


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('registry = "perfsonar"', "containers.a.registry: not a registry host"),
        ("registry = 5", "containers.a.registry: expected a string"),
    ],
)
def test_a_bad_registry_is_a_located_error(text: str, message: str) -> None:
    with pytest.raises((ConfigError, ConfigErrors)) as info:
        parse_config(f'[containers.a]\npreset = "perfsonar-testpoint"\n{text}\n', "t.toml")
    assert f"t.toml:3: {message}" in str(info.value)
    with pytest.raises((ConfigError, ConfigErrors), match="'registry' needs 'preset'"):
        parse_config('[containers.a]\nimage = "ghcr.io/a/b:c"\nregistry = "docker.io"\n', "t")


def test_init_says_why_ghcr() -> None:
    text = presets.init_text()
    assert '# registry = "ghcr.io"' in text  # the default, said; an explicit choice opts in
    assert "publish_docker.yml in perfsonar/perfsonar-testpoint-docker" in text


def _docker_hub_install(tmp_path: Path, fmt: str) -> tuple[Path, Path]:
    """Units an older psquadlet wrote from the preset when it named docker.io."""
    out = tmp_path / "out"
    cfg = tmp_path / "psquadlet.toml"
    cfg.write_text('[containers.tp]\npreset = "perfsonar-testpoint"\nregistry = "docker.io"\n')
    generate.run(generate.Options(cfg, out, fmt, "5.4.2", False, unit_search_path=()))
    cfg.write_text('[containers.tp]\npreset = "perfsonar-testpoint"\n')  # the new default
    return cfg, out


def test_an_installed_docker_hub_testpoint_is_kept_by_a_drop_in_until_the_watcher_moves_it(
    tmp_path: Path,
) -> None:
    cfg, out = _docker_hub_install(tmp_path, "quadlet")
    result = generate.run(
        generate.Options(cfg, out, "quadlet", "5.4.2", False, unit_search_path=())
    )
    assert "Image=ghcr.io/perfsonar/testpoint:systemd" in (out / "tp.container").read_text()
    text = dropin.dropin_path(out / "tp.container").read_text()
    assert dropin.image_of(text) == "docker.io/perfsonar/testpoint:systemd"
    assert dropin.base_of(text) == "ghcr.io/perfsonar/testpoint:systemd"
    assert result.changed
    # a second run keeps it (its base is the configured image)
    assert not generate.run(
        generate.Options(cfg, out, "quadlet", "5.4.2", False, unit_search_path=())
    ).changed
    assert dropin.dropin_path(out / "tp.container").exists()


@pytest.mark.parametrize(("fmt", "version"), [("service", "5.4.2"), ("quadlet", "4.9.3")])
def test_without_drop_ins_the_docker_hub_install_stays_until_the_operator_opts_in(
    tmp_path: Path, fmt: str, version: str
) -> None:
    cfg, out = _docker_hub_install(tmp_path, fmt)
    result = generate.run(generate.Options(cfg, out, fmt, version, False, unit_search_path=()))
    unit = (out / f"tp.{'container' if fmt == 'quadlet' else 'service'}").read_text()
    assert "docker.io/perfsonar/testpoint:systemd" in unit
    assert "ghcr.io" not in unit
    assert result.plan.note is not None
    assert 'registry = "ghcr.io" to move' in result.plan.note
    cfg.write_text('[containers.tp]\npreset = "perfsonar-testpoint"\nregistry = "ghcr.io"\n')
    generate.run(generate.Options(cfg, out, fmt, version, False, unit_search_path=()))
    unit = (out / f"tp.{'container' if fmt == 'quadlet' else 'service'}").read_text()
    assert "ghcr.io/perfsonar/testpoint:systemd" in unit


def test_pin_and_unpin_commands(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from psquadlet.cli import main
    from psquadlet.watch.state import FileStateStore

    cfg = _config(tmp_path)
    state = str(tmp_path / "state")
    run = CliRunner().invoke
    res = run(main, ["pin", "-c", str(cfg), "--state-dir", state, "tp", "--reason", "mesh"])
    assert res.exit_code == 0, res.output
    assert FileStateStore(state).load().get("tp").pinned == "mesh"
    assert "unpinned" in run(main, ["unpin", "-c", str(cfg), "--state-dir", state, "tp"]).output
    assert FileStateStore(state).load().get("tp").pinned == ""
    res = run(main, ["unpin", "-c", str(cfg), "--state-dir", state, "tp"])
    assert "was not pinned" in res.output
    assert run(main, ["pin", "-c", str(cfg), "--state-dir", state, "nope"]).exit_code == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "v5.2.1-systemd"], "--to needs the NAME of one container"),
        (["tp", "--to", "v5.2.1-systemd", "--dry-run"], "cannot be combined"),
        (["tp", "--to", "v5.2.1-systemd", "--digest", "sha256:" + "a" * 64], "not both"),
    ],
)
def test_upgrade_to_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    from click.testing import CliRunner

    from psquadlet.cli import main

    cfg = _config(tmp_path)
    res = CliRunner().invoke(main, ["upgrade", "-c", str(cfg), *args])
    assert res.exit_code == 2
    assert message in res.output


# issue 17 item 8: the systemd preset, a supervisord pattern; with track = "patch" the watcher
# moved the systemd unit to the supervisord image v6.0.0
@pytest.mark.parametrize(
    ("image", "pattern", "message"),
    [
        (
            "v5.2.1-systemd",
            "v{version}",
            "the image's tag 'v5.2.1-systemd' is not a release of 'v{version}'",
        ),
        ("systemd", "v{version}", "'v{version}' names supervisord tags"),
        ("latest", "v{version}-systemd", "'v{version}-systemd' names systemd tags"),
    ],
)
def test_a_release_pattern_that_contradicts_the_image_is_a_located_error(
    tmp_path: Path, image: str, pattern: str, message: str
) -> None:
    text = _config(
        tmp_path,
        image=f"ghcr.io/perfsonar/testpoint:{image}",
        extra=f'track = "patch"\ntag_pattern = "{pattern}"\n',
    ).read_text()
    with pytest.raises((ConfigError, ConfigErrors)) as info:
        parse_config(text, "t.toml")
    assert f"t.toml:6: containers.tp.update.tag_pattern: {message}" in str(info.value)
    assert "tag_pattern = " in str(info.value)  # the hint names the pattern that fits


@pytest.mark.parametrize(
    ("image", "extra"),
    [
        ("v5.2.1-systemd", 'track = "patch"\n'),  # the preset's pattern
        ("systemd", 'track = "minor"\n'),
        ("latest", 'track = "minor"\nvariant = "supervisord"\n'),
        ("v5.2.1-systemd", 'tag_pattern = "v{version}"\n'),  # track digest: not followed
    ],
)
def test_patterns_that_fit_the_image_are_accepted(tmp_path: Path, image: str, extra: str) -> None:
    if "variant" in extra:
        cfg = tmp_path / "psquadlet.toml"
        cfg.write_text(
            '[containers.tp]\npreset = "perfsonar-testpoint"\nvariant = "supervisord"\n'
            f'image = "ghcr.io/perfsonar/testpoint:{image}"\n'
            '[containers.tp.update]\ntrack = "minor"\n'
        )
    else:
        cfg = _config(tmp_path, image=f"ghcr.io/perfsonar/testpoint:{image}", extra=extra)
    (spec,) = parse_config(cfg.read_text(), "t.toml").containers
    assert spec.update.tag_pattern
