"""Example-based oracle tests for psquadlet.unitfile and psquadlet.quadlet_keys.

* Every refusal rule exists because the real generator would read the naive text
  differently: each case shows the misreading and that render_value refuses the value.
* Every key of the table that Podman 5.4 should know is known to the real 5.4.2 generator.
* exec_command() output passes ``systemd-analyze verify`` with nothing printed, and the
  harness itself notices a broken command line (negative controls).
"""

from __future__ import annotations

import pytest

from psquadlet.quadlet_keys import KEYS, Kind
from psquadlet.unitfile import UnitValueError, exec_command, render_value
from tests.support.oracle import quadlet_version, run_quadlet, systemd_analyze_verify

pytestmark = pytest.mark.oracle

IMAGE = "docker.io/library/busybox:latest"


def container(*lines: str) -> str:
    return "[Container]\nImage=" + IMAGE + "\n" + "\n".join(lines) + "\n"


# (id, key, value the operator means, naive line(s) written without psquadlet's rules,
#  the flag whose argument we look at, what Quadlet+systemd read from the naive text)
MISREAD = [
    (
        "newline-smuggles-a-key",
        ("Container", "HostName"),
        "h\nPodmanArgs=--privileged",
        "HostName=h\nPodmanArgs=--privileged",
        "--privileged",
        None,
    ),
    (
        "trailing-backslash-joins-next-line",
        ("Container", "HostName"),
        "h\\",
        "HostName=h\\\nTmpfs=/x",
        "--hostname",
        "hTmpfs=/x",
    ),
    ("leading-space-stripped", ("Container", "HostName"), " h", "HostName= h", "--hostname", "h"),
    (
        "trailing-nbsp-stripped",
        ("Container", "HostName"),
        "h\u00a0",
        "HostName=h\u00a0",
        "--hostname",
        "h",
    ),
    ("trailing-tab-stripped", ("Container", "Tmpfs"), "/t\t", "Tmpfs=/t\t", "--tmpfs", "/t"),
    (
        "quotes-at-ends-stripped",
        ("Container", "HostName"),
        '"h"',
        'HostName="h"',
        "--hostname",
        "h",
    ),
    (
        "one-end-quote-stripped",  # Quadlet 5.4; later releases strip a matched pair only
        ("Container", "HostName"),
        'say "hi"',
        'HostName=say "hi"',
        "--hostname",
        'say "hi',
    ),
    (
        "specifier-expanded",
        ("Container", "HostName"),
        "h%n",
        "HostName=h%n",
        "--hostname",
        "h\x00%n",
    ),
    (
        "dollar-substituted",
        ("Container", "HostName"),
        "${HOME}",
        "HostName=${HOME}",
        "--hostname",
        "\x00${HOME}",
    ),
]


@pytest.mark.parametrize(
    ("section_key", "meant", "naive", "flag", "naive_reads"),
    [pytest.param(*case[1:], id=case[0]) for case in MISREAD],
)
def test_naive_text_is_misread_and_psquadlet_escapes_or_refuses(
    section_key: tuple[str, str], meant: str, naive: str, flag: str, naive_reads: str | None
) -> None:
    if meant == 'say "hi"' and quadlet_version()[:2] != (5, 4):
        pytest.skip("a Quadlet 5.4 behaviour; the refusal stays (it covers both behaviours)")
    key = KEYS[section_key]
    try:
        rendered: str | None = render_value(key, meant)
    except UnitValueError:
        rendered = None
    units = {"naive.container": container(naive)}
    if rendered is not None:
        units["ours.container"] = container(f"{key.name}={rendered}")
    result = run_quadlet(units).check()
    naive_argv = result.service("naive.service").exec_argv()
    if naive_reads is None:
        assert flag in naive_argv, "the smuggled argument did not appear: test is vacuous"
    else:
        assert naive_argv[naive_argv.index(flag) + 1] == naive_reads
        assert naive_reads != meant
    if rendered is not None:
        ours = result.service("ours.service").exec_argv()
        assert ours[ours.index(flag) + 1] == meant


def test_lone_semicolon_word_splits_the_command_and_is_refused() -> None:
    result = run_quadlet({"naive.container": container('PodmanArgs=--a ";" --b')}).check()
    unit = result.service("naive.service")
    with pytest.raises(AssertionError, match="2 commands"):
        unit.exec_argv()
    for kind_key in (("Container", "PodmanArgs"), ("Container", "Exec"), ("Container", "Sysctl")):
        with pytest.raises(UnitValueError, match="';'"):
            render_value(KEYS[kind_key], ["--a", ";"])
    with pytest.raises(UnitValueError, match="';'"):
        render_value(KEYS[("Container", "HostName")], ";")


def test_empty_word_stops_quadlet_and_is_refused() -> None:
    result = run_quadlet({"naive.container": container('Exec=a "" b')}).check()
    argv = result.service("naive.service").exec_argv()
    assert argv[-2:] == [IMAGE, "a"], "Quadlet's splitter stops at an empty word"
    with pytest.raises(UnitValueError, match="empty"):
        render_value(KEYS[("Container", "Exec")], ["a", "", "b"])


def test_label_without_equals_is_dropped_and_refused() -> None:
    if quadlet_version()[:2] != (5, 4):
        pytest.skip("a Quadlet 5.4 behaviour; the refusal stays for older/newer releases")
    result = run_quadlet({"naive.container": container("Label=justaname")}).check()
    assert "--label" not in result.service("naive.service").exec_argv()
    with pytest.raises(UnitValueError, match="NAME=VALUE"):
        render_value(KEYS[("Container", "Label")], "justaname")


# Values Quadlet accepts for each key (only key acceptance is under test here).
SAMPLE = {
    "AddDevice": "/dev/null",
    "ExposeHostPort": "8080",
    "PublishPort": "8080:80",
    "Group": "0",
    "User": "0",
    "RemapUsers": "keep-id",
    "RemapUid": "0:0:1",
    "RemapGid": "0:0:1",
    "RemapUidSize": "10",
    "Rootfs": "/srv/rootfs",
    "Pod": "",
    "Notify": "true",
    "Mount": "type=tmpfs,destination=/x",
    "ReloadSignal": "SIGHUP",
    "Volume": "/srv:/srv",
    "Device": "/dev/null",
    "Type": "none",
    "Options": "bind",
    "Driver": "local",
}


def test_quadlet_knows_exactly_the_keys_up_to_its_version() -> None:
    """Against 5.4.2 by default; with PSQUADLET_QUADLET pointing at another release the same
    test checks the table against that one (5.8.6 from Debian sid was checked this way)."""
    target = quadlet_version()[:2]
    units: dict[str, str] = {}
    newer: set[str] = set()
    for (section, name), row in sorted(KEYS.items()):
        if section not in ("Container", "Volume"):
            continue
        value = SAMPLE.get(name, "true" if row.kind is Kind.BOOL else "x")
        if section == "Container":
            if name in ("Image", "Rootfs"):
                text = f"[Container]\n{name}={value if name == 'Rootfs' else IMAGE}\n"
            else:
                text = container(f"{name}={value}")
            filename = f"k-{name}.container"
        else:
            text = f"[Volume]\n{name}={value}\n"
            if name in ("Type", "Options"):
                text += "Device=/dev/null\n"
            filename = f"k-{name}.volume"
        units[filename] = text
        if row.since > target:
            newer.add(filename)
    units["k-Unknown.container"] = container("NoSuchKeyInAnyPodman=1")
    result = run_quadlet(units)
    unsupported = {f for f, m in result.errors.items() if "unsupported key" in m}
    assert unsupported == newer | {"k-Unknown.container"}


AWKWARD_ARGV = [
    "/usr/bin/podman",
    "run",
    "--name",
    "perfsonar testpoint",
    "--env",
    'MSG=say "hi" \\o/',
    "--label",
    "pct=100%",
    "--env",
    "HOME=$HOME ${PATH}",
    ";",
    "",
    "tab\there",
    "ünïcødé €",
    "it's",
    "--",
    "-dash",
    "#not-a-comment",
    "trailing\\",
]


def test_exec_command_passes_systemd_analyze_verify_silently() -> None:
    text = (
        "[Unit]\nDescription=awkward argv\n\n[Service]\nType=notify\n"
        f"ExecStart={exec_command(AWKWARD_ARGV)}\n"
        f"ExecStopPost={exec_command(['/usr/bin/podman', 'rm', '-f', 'a b'])}\n"
    )
    result = systemd_analyze_verify({"awkward.service": text})
    assert result.returncode == 0
    assert result.output == ""


@pytest.mark.parametrize(
    "execstart",
    [
        "/usr/bin/podman run ; /usr/bin/true",
        '/usr/bin/podman run "unbalanced',
        "/usr/bin/podman run \\q",
    ],
    ids=["semicolon", "unbalanced-quote", "unknown-escape"],
)
def test_verify_harness_notices_broken_command_lines(execstart: str) -> None:
    text = f"[Unit]\nDescription=x\n\n[Service]\nType=notify\nExecStart={execstart}\n"
    assert systemd_analyze_verify({"broken.service": text}).output != ""
