"""doctor's ``stack`` check (issue 18 item 5): which path applies on this host.

Podman is a script on PATH answering ``--version`` with the release of a distribution
perfSONAR runs on (the host's real Podman cannot be made to report another); the format and
the health kill then come from psquadlet's own rendering for that target.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from psquadlet.config import parse_config
from psquadlet.doctor import PASS, SKIP, WARN, Host, checks, context_for
from psquadlet.doctor.stack import check_stack

TESTPOINT = '[containers.perfsonar-testpoint]\npreset = "perfsonar-testpoint"\n'


def _host(tmp_path: Path, version: str | None, adapter: str | None = "pystemd") -> Host:
    if version is not None:
        fake = tmp_path / "podman"
        fake.write_text(f"#!/bin/sh\necho 'podman version {version}'\n")
        fake.chmod(0o755)
    return Host(path=str(tmp_path), systemd_adapter=lambda: adapter)


@pytest.mark.parametrize(
    ("version", "family", "fmt", "kill"),
    [
        ("3.0.1", "Podman 3", "service", "perfsonar-testpoint: psquadlet's health supervisor"),
        ("3.4.4", "Podman 3", "service", "perfsonar-testpoint: psquadlet's health supervisor"),
        ("4.3.1", "Podman 4", "service", "perfsonar-testpoint: psquadlet's health supervisor"),
        ("4.9.3", "Podman 4", "quadlet", "perfsonar-testpoint: psquadlet's health supervisor"),
        ("5.4.2", "Podman 5", "quadlet", "perfsonar-testpoint: psquadlet's health supervisor"),
    ],
)
def test_stack_names_family_format_health_kill_and_adapter(
    tmp_path: Path, version: str, family: str, fmt: str, kill: str
) -> None:
    ctx = context_for(parse_config(TESTPOINT, "t.toml"), _host(tmp_path, version))
    check = check_stack(ctx)
    assert check.status == PASS, check
    (item,) = check.items
    assert item["podman"] == version
    assert item["family"] == family
    assert item["format"] == fmt
    assert str(item["health_kill"]).startswith(kill)
    assert item["systemd_adapter"] == "pystemd"
    assert f"{family} family ({version})" in check.summary


def test_stack_without_a_systemd_adapter_warns(tmp_path: Path) -> None:
    ctx = context_for(parse_config(TESTPOINT, "t.toml"), _host(tmp_path, "5.4.2", None))
    check = check_stack(ctx)
    assert check.status == WARN
    assert check.items[0]["systemd_adapter"] is None
    assert "'watcher' check" in check.advice


def test_stack_without_podman_is_skipped(tmp_path: Path) -> None:
    check = check_stack(context_for(parse_config(TESTPOINT, "t.toml"), _host(tmp_path, None)))
    assert check.status == SKIP


@pytest.mark.parametrize(
    ("version", "fmt", "kill"),
    [
        ("3.4.4", "service", "psquadlet's health supervisor"),  # heal stands in below 4.3
        ("4.3.1", "service", "Podman's --health-on-failure (kill)"),
        ("5.4.2", "quadlet", "Podman's HealthOnFailure= (kill)"),
    ],
)
def test_stack_names_who_acts_on_an_explicit_health_kill(
    tmp_path: Path, version: str, fmt: str, kill: str
) -> None:
    config = parse_config(
        TESTPOINT + '[containers.perfsonar-testpoint.health]\non_failure = "kill"\n', "t.toml"
    )
    (item,) = check_stack(context_for(config, _host(tmp_path, version))).items
    assert item["format"] == fmt
    assert str(item["health_kill"]).startswith(f"perfsonar-testpoint: {kill}")


def test_stack_without_a_health_kill_says_none(tmp_path: Path) -> None:
    config = parse_config('[containers.c]\nimage = "docker.io/library/busybox:1"\n', "t.toml")
    check = check_stack(context_for(config, _host(tmp_path, "3.4.4")))
    assert str(check.items[0]["health_kill"]).startswith("none")


def test_stack_is_registered() -> None:
    assert check_stack in checks.CHECKS
