"""Issue 10 H1 (config half), L8, L9, L13: hostile configurations get one located error, in
bounded time and memory, and never a traceback."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from psquadlet import config, render, schema
from psquadlet.errors import ConfigError, ConfigErrors
from psquadlet.tomlpos import KeyPositions

HEAD = '[containers.tp]\nimage = "docker.io/library/busybox:1"\n'


def one_error(text: str) -> ConfigError:
    with pytest.raises((ConfigError, ConfigErrors)) as info:
        config.parse_config(text, "t.toml")
    errors = list(info.value.errors)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


# --------------------------------------------------------------------------- H1: bounds

HUGE = "99999999999999999999999"


@pytest.mark.parametrize(
    ("table", "key", "maximum"),
    [
        ("update", "randomized_delay", 86400),
        ("update", "interval", 30 * 86400),
        ("update", "min_age", 365 * 86400),
        ("update", "health_timeout", 86400),
        ("service", "restart_sec", 3600),
        ("service", "timeout_start", 86400),
        ("service", "timeout_stop", 86400),
        ("health", "interval", 86400),
        ("health", "timeout", 86400),
        ("health", "start_period", 86400),
    ],
)
def test_every_duration_is_bounded_with_a_located_error(table: str, key: str, maximum: int) -> None:
    extra = 'cmd = "true"\n' if table == "health" else ""
    for value in (str(maximum + 1), f'"{maximum + 1}s"', HUGE, f'"{HUGE}d"', '"2d"' * 0 + HUGE):
        error = one_error(f"{HEAD}[containers.tp.{table}]\n{extra}{key} = {value}\n")
        assert error.line == 4 + bool(extra), str(error)
        assert error.key_path == f"containers.tp.{table}.{key}"
        assert f"must be at most {maximum}" in error.message
        assert len(str(error)) < 300  # a huge number is not echoed back
    cfg = config.parse_config(f"{HEAD}[containers.tp.{table}]\n{extra}{key} = {maximum}\n", "t")
    section = getattr(cfg.containers[0], table)
    assert getattr(section, key) == maximum


def test_randomized_delay_of_two_days_is_refused() -> None:
    error = one_error(HEAD + '[containers.tp.update]\nrandomized_delay = "2d"\n')
    assert str(error) == (
        "t.toml:4: containers.tp.update.randomized_delay: must be at most 86400 (1d), got 172800"
    )


@pytest.mark.parametrize(
    ("snippet", "path", "maximum"),
    [
        (f"stop_timeout = {HUGE}", "containers.tp.stop_timeout", 3600),
        (f"[containers.tp.update]\nkeep_images = {HUGE}", "containers.tp.update.keep_images", 100),
        (f'[containers.tp.health]\ncmd = "true"\nretries = {HUGE}', "containers.tp.health.retries",
         1000),
        (f"[watch]\nparallel = {HUGE}", "watch.parallel", 64),
    ],
)  # fmt: skip
def test_every_integer_is_bounded(snippet: str, path: str, maximum: int) -> None:
    error = one_error(HEAD + snippet + "\n")
    assert error.key_path == path
    assert f"and {maximum}, got a number too large" in error.message


def test_no_huge_number_reaches_a_unit_file() -> None:
    """L8: RestartSec=999... was written verbatim."""
    error = one_error(HEAD + f"[containers.tp.service]\nrestart_sec = {HUGE}\n")
    assert error.key_path == "containers.tp.service.restart_sec"
    text = render.render_units(config.parse_config(HEAD, "t"))[0].text
    assert "RestartSec=10\n" in text


def test_bounds_are_documented_in_the_schema() -> None:
    assert schema.bound("update.randomized_delay") == 86400
    assert schema.HEALTH["retries"].bound == 1000
    assert schema.CONTAINER["stop_timeout"].bound == 3600


# --------------------------------------------------------------------------- L8: hostile files


def test_deep_nesting_is_a_located_error_not_a_recursion_error() -> None:
    error = one_error("x = " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in error.message


def test_a_key_of_20000_parts_is_refused_quickly() -> None:
    text = HEAD + "labels." + ".".join(["a"] * 20000) + ' = "x"\n'
    start = time.monotonic()
    error = one_error(text)
    assert time.monotonic() - start < 2
    assert (error.line, error.message) == (3, "a key of more than 32 parts")


def test_a_key_of_32_parts_is_still_read() -> None:
    text = HEAD + "[containers.tp.labels]\n" + "k = " + '"' + ".".join(["a"] * 300) + '"\n'
    assert config.parse_config(text, "t").containers[0].labels[0][0] == "k"


def test_a_long_dotted_key_in_an_inline_table_is_refused() -> None:
    text = HEAD + 'labels = { x = "1.2", ' + ".".join(["a"] * 40) + " = '1' }\n"
    error = one_error(text)
    assert (error.line, error.message) == (3, "a key of more than 32 parts")


def test_dev_zero_is_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config.load_config(Path("/dev/zero"))
    assert str(info.value) == "/dev/zero: not a regular file"


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "c.toml"
    os.mkfifo(fifo)
    result: list[BaseException] = []

    def load() -> None:
        try:
            config.load_config(fifo)
        except ConfigError as exc:
            result.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "load_config hangs on a FIFO"
    assert [str(e) for e in result] == [f"{fifo}: not a regular file"]


def test_a_huge_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(HEAD.encode() + b"#" * (config.MAX_CONFIG_BYTES + 10) + b"\n")
    with pytest.raises(ConfigError, match="larger than 1048576 bytes"):
        config.load_config(path)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029"])
def test_line_separators_inside_values_do_not_shift_line_numbers(separator: str) -> None:
    text = HEAD + f'description = "a{separator}b" # c{separator}d\nhostname = "bad_host!"\n'
    error = one_error(text)
    assert (error.line, error.key_path) == (4, "containers.tp.hostname")


# --------------------------------------------------------------------------- L9


def test_a_mount_with_a_double_quote_is_refused() -> None:
    error = one_error(HEAD + """mounts = ['type=bind,source=/a"b,destination=/c']\n""")
    assert (error.line, error.key_path) == (3, "containers.tp.mounts[0]")
    assert "'\"' is not allowed" in error.message


def test_volume_and_container_sharing_a_unit_name_are_refused() -> None:
    text = (
        HEAD + 'volumes = ["data:/data"]\n'
        '[containers.data-volume]\nimage = "docker.io/library/busybox:1"\n'
    )
    error = one_error(text)
    assert (error.line, error.key_path) == (3, "containers.tp.volumes")
    assert "runs as data-volume.service, the unit of containers.data-volume" in error.message
    declared = text + "[volumes.data]\n"
    error = one_error(declared)
    assert (error.line, error.key_path) == (6, "volumes.data")


@pytest.mark.parametrize("name", ["psquadlet-watch", "psquadlet-upgrade"])
def test_a_container_cannot_take_psquadlets_own_unit_name(name: str) -> None:
    error = one_error(f'[containers.{name}]\nimage = "docker.io/library/busybox:1"\n')
    assert (error.line, error.key_path) == (1, f"containers.{name}")
    assert "psquadlet's own unit" in error.message


# --------------------------------------------------------------------------- L13


def test_an_error_in_the_second_array_table_is_at_its_own_line() -> None:
    positions = KeyPositions("[[a.b]]\nx = 1\n[a.b.c]\ny = 2\n\n[[a.b]]\nx = 2\n[a.b.c]\ny = 3\n")
    assert positions.line(("a", "b", 0, "x")) == 2
    assert positions.line(("a", "b", 1, "x")) == 7
    assert positions.line(("a", "b", 1, "c", "y")) == 9
    assert positions.line(("a", "b", 1)) == 6
    assert positions.line(("a", "b")) == 1


def test_config_errors_keep_array_indices_for_their_line() -> None:
    error = one_error(HEAD + "[[containers.tp.health]]\ncmd = 'x'\n")
    assert (error.line, error.key_path) == (3, "containers.tp.health")
