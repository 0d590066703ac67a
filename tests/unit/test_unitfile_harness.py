"""Pure tests of the oracle harness's own parsing (tests/support/oracle.py), so that a
harness bug cannot make the oracle tests pass or fail for the wrong reason."""

from __future__ import annotations

import pytest

from tests.support.oracle import _parse_dryrun, parse_unit


def test_parse_unit_reads_systemd_syntax() -> None:
    unit = parse_unit(
        "# comment\n"
        "[Unit]\n"
        "Description = spaced  \n"
        "; another comment\n"
        "After=a.target \\\n"
        "# comment inside a continuation is skipped\n"
        "  b.target\n"
        "\n"
        "[Service]\n"
        'ExecStart=/usr/bin/podman run "a b" %%n $$X\n'
        "Environment=A=1\n"
        "Environment=B=2\n",
        "t.service",
    )
    assert unit.sections() == ["Unit", "Service"]
    assert unit.value("Unit", "Description") == "spaced"
    assert unit.value("Unit", "After") == "a.target  b.target"
    assert unit.values("Service", "Environment") == ["A=1", "B=2"]
    assert unit.exec_argv() == ["/usr/bin/podman", "run", "a b", "%n", "$X"]


def test_parse_unit_complains_about_garbage() -> None:
    with pytest.raises(AssertionError, match="not a key=value line"):
        parse_unit("[Unit]\njust words\n")
    with pytest.raises(AssertionError, match="continuation"):
        parse_unit("[Unit]\nA=b\\")


def test_exec_argv_requires_exactly_one_command() -> None:
    unit = parse_unit("[Service]\nExecStart=/bin/a x ; /bin/b\n")
    with pytest.raises(AssertionError, match="2 commands"):
        unit.exec_argv()
    with pytest.raises(AssertionError, match="expected one"):
        parse_unit("[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n").exec_argv()


def test_dryrun_output_is_split_per_service() -> None:
    services = _parse_dryrun(
        "---a.service---\n[Service]\nExecStart=/bin/a\n\n---b-volume.service---\n[Unit]\nX=1\n"
    )
    assert list(services) == ["a.service", "b-volume.service"]
    assert services["a.service"].exec_argv() == ["/bin/a"]
    assert services["b-volume.service"].value("Unit", "X") == "1"
