"""``psquadlet import --unit``: the unit-file reader (systemd's syntax) and the mapping onto
the configuration, with the OSG shape (our own text of the same shape) as the main case."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psquadlet import importer
from psquadlet.importer import ImportInputError, unitreader
from psquadlet.unitfile import UnitValueError, exec_command
from tests.importer.test_cli import invoke
from tests.support.unitread import split_exec as oracle_split_exec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# The shape of a site install script's unit: podman run with continuations, bind mounts with
# SELinux options, extra capabilities, an auto-update label, a site registry and an
# entrypoint wrapper as the command; podman rm/stop lines around it.
SITE_UNIT = """\
[Unit]
Description=perfSONAR testpoint (site install, %N)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
Restart=always
RestartSec=10
Environment=TP_ROOT=/srv/tp "EXTRA=--cap-add=SYS_PTRACE --cap-add=SYS_ADMIN"
EnvironmentFile=-/nonexistent/psquadlet-test.env
ExecStartPre=-/usr/bin/podman rm -f perfsonar-testpoint
ExecStart=/usr/bin/podman run --name perfsonar-testpoint \\
  --replace --systemd=always \\
# a comment between continued lines is skipped
  --network host --privileged --cgroupns host \\
  --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \\
  -v ${TP_ROOT}/psconfig:/etc/perfsonar/psconfig:Z \\
  -v /sys/fs/cgroup:/sys/fs/cgroup:ro \\
  -v %t/%N.scratch:/scratch:z \\
  $EXTRA --cap-add=NET_RAW \\
  --label=io.containers.autoupdate=registry \\
  "--label=site=a b" \\
  registry.invalid/site/perfsonar-testpoint:production \\
  ${TP_ROOT}/wrapper.sh
ExecStop=/usr/bin/podman stop -t 10 perfsonar-testpoint
ExecStopPost=/usr/bin/podman rm -f perfsonar-testpoint
LimitNOFILE=4096

[Install]
WantedBy=multi-user.target
"""


def write_unit(tmp_path: Path, text: str, name: str = "perfsonar-testpoint.service") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def imported(path: Path) -> dict[str, object]:
    text = importer.to_toml(importer.from_unit(str(path)))
    importer.validate(text)
    return tomllib.loads(text)["containers"]  # type: ignore[no-any-return]


def test_site_unit_keeps_every_flag(tmp_path: Path) -> None:
    c = imported(write_unit(tmp_path, SITE_UNIT))["perfsonar-testpoint"]
    assert isinstance(c, dict)
    assert c["image"] == "registry.invalid/site/perfsonar-testpoint:production"
    assert c["command"] == ["/srv/tp/wrapper.sh"]
    assert c["volumes"] == [
        "/srv/tp/psconfig:/etc/perfsonar/psconfig:Z",
        "/sys/fs/cgroup:/sys/fs/cgroup:ro",
        "/run/perfsonar-testpoint.scratch:/scratch:z",
    ]
    assert c["cap_add"] == ["SYS_PTRACE", "SYS_ADMIN", "NET_RAW"]
    assert c["privileged"] is True
    assert c["network"] == "host"
    assert c["cgroupns"] == "host"
    assert c["tmpfs"] == ["/run", "/run/lock", "/tmp"]
    assert c["labels"] == {"io.containers.autoupdate": "registry", "site": "a b"}
    assert c["podman_args"] == ["--systemd=always"]
    assert c["service"] == {
        "restart": "always",
        "restart_sec": 10,
        "extra": {"LimitNOFILE": "4096"},
    }
    assert c["unit"]["description"] == "perfSONAR testpoint (site install, perfsonar-testpoint)"  # type: ignore[index]
    assert c["install"] == {"wanted_by": ["multi-user.target"]}


def test_site_unit_names_what_it_drops(tmp_path: Path) -> None:
    path = write_unit(tmp_path, SITE_UNIT)
    notes = [str(n) for n in importer.from_unit(str(path)).all_notes]
    for key, line in (("Type", 7), ("ExecStartPre", 12), ("ExecStop", 26), ("ExecStopPost", 27)):
        assert any(f"dropped: {path}:{line}: {key}:" in n for n in notes), (key, notes)
    assert any("$TP_ROOT" in n for n in notes)
    assert any("ghcr.io/perfsonar/testpoint:systemd" in n for n in notes)


def test_environment_file_values_and_docker(tmp_path: Path) -> None:
    env = tmp_path / "tp.env"
    env.write_text("# comment\nIMAGE='registry.invalid/x/web:1'\nexport NAME=web\n")
    unit = (
        "[Service]\n"
        "Environment=NAME=other\n"
        f"EnvironmentFile={env}\n"
        "ExecStart=-/usr/bin/docker run --rm --name ${NAME} -e A=%n $IMAGE /bin/sh -c 'a b'\n"
    )
    c = imported(write_unit(tmp_path, unit, "web.service"))["web"]
    assert isinstance(c, dict)
    assert c["image"] == "registry.invalid/x/web:1"
    assert c["command"] == ["/bin/sh", "-c", "a b"]
    assert c["environment"] == {"A": "web.service"}


@pytest.mark.parametrize(
    ("body", "where", "fragment"),
    [
        ("[Service]\nExecStart=/usr/bin/sleep infinity\n", ":2: ExecStart", "not a container run"),
        ("[Service]\nExecStart=/usr/bin/podman ps\n", ":2: ExecStart", "not a container run"),
        ("[Service]\nType=oneshot\n", "", "no ExecStart="),
        ("[Service]\nExecStart=/usr/bin/podman run a\nExecStart=/usr/bin/podman run b\n",
         ":3: ExecStart", "several"),
        ("[Service]\nExecStart=/usr/bin/podman run %Z img\n", ":2: ExecStart", "specifier %Z"),
        ("[Service]\nExecStart=/usr/bin/podman run 'img\n", ":2: ExecStart", "never closed"),
        ("[Service]\nExecStart=/usr/bin/podman run \\q img\n", ":2: ExecStart", "escape"),
        ("ExecStart=/usr/bin/podman run img\n", ":1: ExecStart", "outside of any section"),
        ("[Service\n", ":1:", "section header"),
        ("[Service]\njunk\n", ":2:", "Key=Value"),
        ("[Service]\nEnvironmentFile=/nonexistent/x.env\nExecStart=/usr/bin/podman run i\n",
         "/nonexistent/x.env", "no such file"),
        ("[Service]\nExecStart=/usr/bin/podman run --bogus img\n", ":2: ExecStart", "--bogus"),
        ("[Service]\nRestart=sometimes\nExecStart=/usr/bin/podman run img\n", ":2: Restart",
         "unknown value"),
    ],
)  # fmt: skip
def test_refusals_are_located(tmp_path: Path, body: str, where: str, fragment: str) -> None:
    path = write_unit(tmp_path, body, "t.service")
    with pytest.raises(ImportInputError) as info:
        importer.from_unit(str(path))
    assert fragment in str(info.value)
    if where.startswith(":"):
        assert f"{path}{where}" in str(info.value)
    else:
        assert where in str(info.value)


def test_cli_refusal_is_one_line_exit_2(tmp_path: Path) -> None:
    path = write_unit(tmp_path, "[Service]\nExecStart=/bin/true\n", "t.service")
    code, out, err = invoke("--unit", str(path))
    assert code == 2
    assert out == ""
    assert (
        err == f"psquadlet: error: {path}:2: ExecStart: not a container run: expected "
        "'/usr/bin/podman run ...' or 'docker run ...', not '/bin/true'\n"
    )


def test_cli_unit_and_line_exclusive(tmp_path: Path) -> None:
    code, _, err = invoke("--unit", str(tmp_path / "x.service"), "--container", "x")
    assert code == 2
    assert "give one of" in err


def test_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "f.service"
    os.mkfifo(fifo)
    with pytest.raises(ImportInputError, match="not a regular file"):
        importer.from_unit(str(fifo))


def test_timespans() -> None:
    assert unitreader.timespan_seconds("10") == 10
    assert unitreader.timespan_seconds("1min 30s") == 90
    assert unitreader.timespan_seconds("1.5s") == 2
    assert unitreader.timespan_seconds("500ms") == 1
    assert unitreader.timespan_seconds("infinity") is None
    assert unitreader.timespan_seconds("5 parsecs") is None


# ---- properties: what systemd's rules write, the reader reads back --------------------------

WORD = st.text(alphabet=" a\t\"'\\%$;=-/{}\u00e9b", max_size=8)


@settings(max_examples=300, deadline=None)
@given(args=st.lists(WORD, max_size=6), breaks=st.lists(st.booleans(), max_size=8))
def test_exec_lines_round_trip_with_continuations(args: list[str], breaks: list[bool]) -> None:
    """argv -> ExecStart= as systemd needs it (unitfile) -> continued lines -> the reader.
    Oracle: tests/support/unitread (the reading side the Quadlet property tests hold to
    Quadlet 5.4.2) must read the joined value the same."""
    argv = ["/usr/bin/podman", "run", *args]
    try:
        words = [argv[0]] + [exec_command([argv[0], a])[len(argv[0]) + 1 :] for a in argv[1:]]
    except UnitValueError:
        return
    lines = [words[0]]
    for i, word in enumerate(words[1:]):
        # systemd reads a line starting with # or ; as a comment, continued or not
        if i < len(breaks) and breaks[i] and not word.startswith(("#", ";")):
            lines.append("\\\n# comment inside\n   " + word)
        else:
            lines.append(" " + word)
    text = "[Service]\nExecStart=" + "".join(lines) + "\n"
    unit = unitreader.parse_unit(text, "p.service")
    (entry,) = unit.values("Service", "ExecStart")
    commands, host = unitreader.split_exec(entry.value, "p", {}, unitreader.specifiers("p.service"))
    assert [list(c.argv) for c in commands] == [argv]
    assert oracle_split_exec(entry.value) == [argv]
    assert not host


PIECE = st.sampled_from(["%n", "%N", "%t", "%h", "%%", "%p", "%i", "x", "/", "-"])
SPEC = {"%n": "tp@a.service", "%N": "tp@a", "%t": "/run", "%h": "/root", "%%": "%",
        "%p": "tp", "%i": "a", "x": "x", "/": "/", "-": "-"}  # fmt: skip


@given(pieces=st.lists(st.lists(PIECE, min_size=1, max_size=5), min_size=1, max_size=4))
def test_specifiers_resolve_as_systemd(pieces: list[list[str]]) -> None:
    value = "/usr/bin/podman " + " ".join("".join(word) for word in pieces)
    commands, _ = unitreader.split_exec(value, "w", {}, unitreader.specifiers("tp@a.service"))
    expected = ["".join(SPEC[p] for p in word) for word in pieces]
    assert list(commands[0].argv) == ["/usr/bin/podman", *expected]


@given(value=st.text(alphabet="a b\t", max_size=12), inline=st.booleans())
def test_dollar_substitution(value: str, inline: bool) -> None:
    """``$X`` as a word splits at whitespace; ``${X}`` stays one word (systemd.service(5))."""
    text = "/usr/bin/podman pre${X}post" if inline else "/usr/bin/podman $X"
    commands, _ = unitreader.split_exec(text, "w", {"X": value}, {})
    expected = [f"pre{value}post"] if inline else value.split()
    assert list(commands[0].argv) == ["/usr/bin/podman", *expected]
