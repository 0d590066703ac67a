"""Fixtures of the fleet test: three booted hosts, a loopback registry, the .deb."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.operator.test_packages import deb  # noqa: F401 - the module-scoped .deb fixture
from tests.support import images as img
from tests.support import require_programs, require_root, testbed
from tests.support.fleet import Fleet, ansible_bin
from tests.support.registry import Registry
from tests.support.testbed import TestBed


@pytest.fixture(scope="module")
def fleet_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    require_root()
    require_programs("docker-registry", "podman", "systemd-nspawn", "nsenter", "debootstrap")
    require_programs(ansible_bin("ansible-playbook"))
    reg = Registry(workdir=tmp_path_factory.mktemp("fleet-registry"))
    reg.start()
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture(scope="module")
def standins(fleet_registry: Registry, base_image: threading.Thread) -> img.StandIns:
    return img.StandIns(fleet_registry, base=base_image)


@pytest.fixture(scope="module")
def base_image() -> threading.Thread:
    """The systemd stand-in's base, built (cold: debootstrapped) while the hosts boot."""
    return img.prebuild_systemd_base()


@pytest.fixture(scope="module")
def fleet(
    fleet_registry: Registry,
    base_image: threading.Thread,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    """tp1 (the canary) and tp2: Debian 13; tp3: Debian 12 (Podman 4.3.1, .service units)."""
    regs = (fleet_registry.host,)
    hosts = {
        "tp1": lambda: TestBed(name="psq-fleet-tp1", registries=regs),
        "tp2": lambda: TestBed(name="psq-fleet-tp2", registries=regs),
        "tp3": lambda: TestBed(name="psq-fleet-tp3", registries=regs, lower=testbed.bookworm_root),
    }
    f = Fleet(hosts, tmp_path_factory.mktemp("fleet"))
    try:
        started = time.monotonic()
        f.boot()
        print(f"\n[fleet] three hosts booted in {time.monotonic() - started:.1f}s")
        yield f
    finally:
        f.close()


@pytest.fixture(scope="module")
def deb_path(deb: Path) -> Path:  # noqa: F811
    return deb
