"""Issue 10, import part: hostile compose files and command lines end in a located error
(exit 2, no traceback) within bounded time and memory; ``-o`` failures are reported plainly;
secret-looking environment names are warned about."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from psquadlet.cli import main
from psquadlet.importer import compose, from_compose, looks_secret
from psquadlet.importer.draft import ImportInputError


def _runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click >= 8.2 always keeps them apart
        return CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = _runner().invoke(main, ["import", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _compose(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "compose.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _refused(path: Path) -> str:
    started = time.monotonic()
    with pytest.raises(ImportInputError) as info:
        compose.load(str(path), environ={})
    assert time.monotonic() - started < 10
    return str(info.value)


# ---- L7: YAML bombs, depth, shapes, numbers ------------------------------------------------


def test_billion_laughs_is_refused_quickly_with_its_line(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    lines += ["services:", "  web:", "    image: nginx", "    command: *a9"]
    message = _refused(_compose(tmp_path, "\n".join(lines) + "\n"))
    assert message.startswith(f"{tmp_path / 'compose.yaml'}:")
    assert "aliases are expanded" in message


def test_an_alias_to_itself_is_refused(tmp_path: Path) -> None:
    text = "services:\n  web:\n    image: nginx\n    command: &loop [a, *loop]\n"
    assert "nested deeper than" in _refused(_compose(tmp_path, text))


@pytest.mark.parametrize("style", ["block", "flow"])
def test_5000_deep_yaml_is_a_located_error(tmp_path: Path, style: str) -> None:
    if style == "flow":
        text = "services: " + "[" * 5000 + "]" * 5000 + "\n"
    else:
        text = "services:\n  " + "- " * 5000 + "x\n"
    message = _refused(_compose(tmp_path, text))
    assert "nested deeper than 64 levels" in message
    assert message.startswith(f"{tmp_path / 'compose.yaml'}:")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("ports: [[8080, 80]]", "services.web.ports"),
        ("environment: {A: [1, 2]}", "services.web.environment.A"),
        ("command: [[echo, hi]]", "services.web.command[0]"),
        ("labels: {a: {b: c}}", "services.web.labels.a"),
        ("volumes: [{type: bind, source: [x], target: /t}]", "services.web.volumes.source"),
        ("deploy: {resources: [1]}", "services.web.deploy.resources"),
        ("logging: {options: [1]}", "services.web.logging.options"),
        ("image: [nginx]", "services.web.image"),
    ],
)
def test_nested_values_are_refused_not_written_as_python_text(
    tmp_path: Path, body: str, where: str
) -> None:
    text = f"services:\n  web:\n    image: nginx\n    {body}\n"
    if body.startswith("image:"):
        text = f"services:\n  web:\n    {body}\n"
    assert where in _refused(_compose(tmp_path, text))


@pytest.mark.parametrize(
    "args",
    [
        ("--stop-timeout", "1e23"),
        ("--stop-timeout", "100000000000000000000000"),
        ("--stop-timeout", "9" * 5000),
        ("--health-cmd", "true", "--health-retries", "99999999999999999999999"),
        ("--restart", "on-failure:" + "9" * 5000),
    ],
)
def test_huge_numbers_on_the_command_line_are_located_errors(args: tuple[str, ...]) -> None:
    code, out, err = invoke("--", "docker", "run", *args, "nginx")
    assert code == 2, err
    assert out == ""
    assert err.startswith(f"psquadlet: error: {args[-2].split('=')[0]}"), err


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("stop_grace_period: 100000000000000000000000", "compose.yaml:4"),
        ("stop_grace_period: " + "9" * 5000 + "h", "services.web.stop_grace_period"),
        ("healthcheck: {test: [CMD, x], retries: abc}", "services.web.healthcheck.retries"),
        ("labels: {when: !!timestamp 2024-02-30}", "compose.yaml:4"),
    ],
)
def test_bad_numbers_in_compose_are_located_errors(tmp_path: Path, body: str, where: str) -> None:
    text = f"services:\n  web:\n    image: nginx\n    {body}\n"
    assert where in _refused(_compose(tmp_path, text))


def test_a_date_is_a_string_as_in_yaml_1_2(tmp_path: Path) -> None:
    path = _compose(tmp_path, "services:\n  web:\n    image: nginx\n    labels: {a: 2024-02-30}\n")
    (draft,) = compose.load(str(path), environ={}).drafts
    assert draft.settings["labels"] == {"a": "2024-02-30"}


def test_a_lone_surrogate_is_a_located_error(tmp_path: Path) -> None:
    path = _compose(
        tmp_path, 'services:\n  web:\n    image: nginx\n    environment: {A: "\\ud800"}\n'
    )
    code, _out, err = invoke("--compose", str(path))
    assert code == 2
    assert "containers.web.environment: cannot write a lone surrogate" in err


def test_deeply_nested_interpolation_is_a_located_error(tmp_path: Path) -> None:
    value = "${A:-" * 3000 + "x" + "}" * 3000
    text = f'services:\n  web:\n    image: nginx\n    command: "{value}"\n'
    assert _refused(_compose(tmp_path, text)) == (
        "services.web.command: ${...} nested deeper than 16 levels"
    )


def test_standard_input_is_capped() -> None:
    result = _runner().invoke(main, ["import", "-"], input="docker run nginx " + "x" * (256 << 10))
    assert result.exit_code == 2
    assert result.stderr == "psquadlet: error: standard input: larger than 262144 bytes\n"


def test_a_compose_file_over_256_kib_is_refused(tmp_path: Path) -> None:
    path = _compose(tmp_path, "services:\n  web:\n    image: nginx\n" + "#" * (256 << 10) + "\n")
    assert _refused(path) == f"{path}: larger than 262144 bytes"


def _in_thread(target: Any) -> list[BaseException]:
    caught: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # handed to the test
            caught.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the import hung"
    return caught


def test_a_fifo_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "compose.yaml"
    os.mkfifo(fifo)
    (caught,) = _in_thread(lambda: compose.load(str(fifo), environ={}))
    assert isinstance(caught, ImportInputError)
    assert str(caught) == f"{fifo}: not a regular file"


def test_a_fifo_as_dot_env_does_not_hang(tmp_path: Path) -> None:
    path = _compose(tmp_path, "services:\n  web:\n    image: nginx\n")
    os.mkfifo(tmp_path / ".env")
    (caught,) = _in_thread(lambda: compose.load(str(path), environ={}))
    assert str(caught) == f"{tmp_path / '.env'}: not a regular file"


def test_dev_zero_is_not_read() -> None:
    with pytest.raises(ImportInputError, match="not a regular file"):
        from_compose("/dev/zero", environ={})


# ---- L2: -o ----------------------------------------------------------------------------------


def test_output_to_a_missing_folder_is_reported_plainly(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "psquadlet.toml"
    code, _out, err = invoke("-o", str(target), "--", "docker", "run", "nginx")
    assert code == 1
    assert (
        err.splitlines()[-1]
        == f"psquadlet: error: {target}: cannot write: No such file or directory"
    )


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """A folder nobody may create files in: mode 0500, or for root (which ignores modes) the
    immutable attribute."""
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)
        return
    if shutil.which("chattr") is None:
        pytest.skip("root needs chattr to make a folder read-only")
    if subprocess.run(["chattr", "+i", str(folder)], check=False).returncode != 0:
        pytest.skip("this filesystem has no immutable attribute")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_output_to_a_read_only_folder_is_reported_plainly(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    target = folder / "x.toml"
    with _read_only(folder):
        code, out, err = invoke("-o", str(target), "--", "docker", "run", "nginx")
    assert code == 1
    assert out == ""
    assert err.splitlines()[-1].startswith(f"psquadlet: error: {target}: cannot write: ")
    assert "Traceback" not in err
    assert list(folder.iterdir()) == []


# ---- L10: secret-looking names ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DB_PASSWORD", True),
        ("api_token", True),
        ("CLIENT_SECRET_FILE", True),
        ("MYSQL_ROOT_PASSWORD", True),
        ("TZ", False),
        ("PATH", False),
        ("TOKENIZER", True),
    ],
)
def test_looks_secret(name: str, secret: bool) -> None:
    assert looks_secret(name) is secret


def test_import_warns_on_secret_looking_environment_names() -> None:
    code, _out, err = invoke(
        "--", "docker", "run", "-e", "DB_PASSWORD=hunter2", "-e", "TZ=UTC", "nginx"
    )
    assert code == 0
    warnings = [line for line in err.splitlines() if "looks like a secret" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith("psquadlet: import: containers.nginx.environment.DB_PASSWORD:")
    assert "environment_files" in warnings[0]
    assert "hunter2" not in err
