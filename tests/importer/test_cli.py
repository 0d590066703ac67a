"""``psquadlet import`` through click: output, -o, and clear errors with exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from psquadlet.cli import main
from psquadlet.config import parse_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

GUIDE_LINE = (
    "docker run -td --name perfsonar-testpoint --net=host --tmpfs /run --tmpfs /run/lock "
    "--tmpfs /tmp -v /sys/fs/cgroup:/sys/fs/cgroup:rw --cgroupns host --cap-add CAP_NET_RAW "
    "perfsonar/testpoint:systemd"
)


def _runner() -> CliRunner:
    """click 8.1 (what Python 3.9 gets) mixes stderr into stdout unless told not to."""
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click >= 8.2 always keeps them apart
        return CliRunner()


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    runner = _runner()
    result = runner.invoke(main, ["import", *args], input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_guide_line_as_words_after_double_dash() -> None:
    code, out, err = invoke("--", *GUIDE_LINE.split())
    assert code == 0, err
    table = tomllib.loads(out)["containers"]["perfsonar-testpoint"]
    assert table == {"preset": "perfsonar-testpoint", "variant": "systemd"}
    assert "psquadlet: import: dropped: -d:" in err
    assert "# Not carried over as written:" in out
    assert "#   dropped: -d: systemd runs the container as a service" in out
    parse_config(out, "imported.toml")


def test_one_string_and_standard_input_give_the_same_file() -> None:
    _, as_words, _ = invoke("--", *GUIDE_LINE.split())
    _, as_string, _ = invoke(GUIDE_LINE)
    _, from_stdin, _ = invoke("-", stdin="# " + GUIDE_LINE.replace(" -v", " \\\n  -v") + "\n")
    assert as_words == as_string == from_stdin


def test_without_double_dash_the_line_is_still_read() -> None:
    code, out, _ = invoke("docker", "run", "-d", "--name", "web", "-p", "80:80", "nginx")
    assert code == 0
    assert tomllib.loads(out)["containers"]["web"]["ports"] == ["80:80"]


def test_name_option_renames_the_table_and_keeps_the_container_name() -> None:
    code, out, _ = invoke("--name", "frontend", "--", "docker", "run", "--name", "web", "nginx")
    assert code == 0
    table = tomllib.loads(out)["containers"]["frontend"]
    assert table["container_name"] == "web"


def test_output_file_is_written_and_not_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "psquadlet.toml"
    code, out, err = invoke("-o", str(target), "docker run nginx")
    assert code == 0, err
    assert out == ""
    first = target.read_text(encoding="utf-8")
    assert 'image = "docker.io/library/nginx:latest"' in first
    code, _, err = invoke("-o", str(target), "docker run redis")
    assert code == 1
    assert "exists: use --force" in err
    assert target.read_text(encoding="utf-8") == first
    code, _, _ = invoke("-o", str(target), "--force", "docker run redis")
    assert code == 0
    assert "redis" in target.read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["psquadlet.toml"]


def test_compose_file(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  web:\n    image: nginx\n    restart: always\n  db:\n    image: redis\n",
        encoding="utf-8",
    )
    code, out, _ = invoke("--compose", str(tmp_path / "docker-compose.yml"))
    assert code == 0
    assert sorted(tomllib.loads(out)["containers"]) == ["db", "web"]
    code, out, _ = invoke(
        "--compose", str(tmp_path / "docker-compose.yml"), "--service", "db", "--name", "cache"
    )
    assert code == 0
    assert sorted(tomllib.loads(out)["containers"]) == ["cache"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["docker run -e 'A=b nginx"], "unbalanced quotes"),
        (["--", "docker", "run", "--bogus", "nginx"], "unknown flag for docker run: --bogus"),
        (["--", "docker", "run", "nginx", "--name"], None),  # after the image: the command
        (["--", "docker", "run", "--name"], "flag needs a value: --name"),
        (["--", "docker", "run", "-d"], "needs an image"),
        (["docker pull nginx"], "expected 'docker run'"),
        ([], "nothing to import"),
        (["--service", "web", "docker run x"], "--service needs --compose"),
        (["--compose", "x.yml", "docker run x"], "give one of"),
        (["--compose", "/nonexistent/compose.yml"], "no such file"),
        (["--name", "bad name", "docker run x"], "--name: "),
        (["docker run -p 99999:80 x"], "invalid port"),
    ],
)
def test_malformed_input(args: list[str], message: str | None) -> None:
    code, out, err = invoke(*args)
    if message is None:
        assert code == 0
        return
    assert code == 2, (out, err)
    assert out == ""
    assert err.startswith("psquadlet: error: ")
    assert message in err


def test_invalid_yaml_and_unknown_service(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("services:\n  web:\n    image: [nginx\n", encoding="utf-8")
    target = tmp_path / "out.toml"
    code, _out, err = invoke("--compose", str(bad), "-o", str(target))
    assert code == 2
    assert "invalid YAML" in err
    assert f"{bad}:" in err
    assert not target.exists()
    good = tmp_path / "good.yml"
    good.write_text("services:\n  web:\n    image: nginx\n", encoding="utf-8")
    code, _, err = invoke("--compose", str(good), "--service", "api", "-o", str(target))
    assert code == 2
    assert "no service 'api' (the file has: web)" in err
    assert not target.exists()


def test_shell_variables_in_one_string_are_expanded_and_reported() -> None:
    runner = _runner()
    result = runner.invoke(
        main,
        ["import", "docker run -v $DATA/db:/db -e U=$NOT_SET_HERE nginx"],
        env={"DATA": "/srv/data", "NOT_SET_HERE": None},
    )
    assert result.exit_code == 0, result.stderr
    table = tomllib.loads(result.stdout)["containers"]["nginx"]
    assert table["volumes"] == ["/srv/data/db:/db"]
    assert table["environment"] == {"U": ""}
    assert "approximated: $DATA: expanded from the environment" in result.stderr
    assert "approximated: $NOT_SET_HERE: not set here" in result.stderr


def test_values_the_configuration_refuses_are_named_by_their_keys() -> None:
    code, out, err = invoke("docker run -p 99999:80 -e 1BAD=x nginx")
    assert code == 2
    assert out == ""
    assert "containers.nginx.ports[0]: invalid port mapping '99999:80'" in err
    assert "containers.nginx.environment.1BAD: invalid environment variable name" in err


def test_an_image_pinned_by_digest_is_left_alone_by_the_watcher() -> None:
    digest = "sha256:" + "ab" * 32
    code, out, err = invoke(f"docker run alpine@{digest}")
    assert code == 0, err
    table = tomllib.loads(out)["containers"]["alpine"]
    assert table["image"] == f"docker.io/library/alpine@{digest}"
    assert table["update"] == {"policy": "off"}
    assert "pinned by digest" in err


def test_two_services_cannot_become_one_unit(tmp_path: Path) -> None:
    path = tmp_path / "compose.yml"
    path.write_text(
        "services:\n  a: {image: x, container_name: b}\n  b: {image: y}\n", encoding="utf-8"
    )
    code, _, err = invoke("--compose", str(path))
    assert code == 2
    assert "two services would both be the unit 'b'" in err
