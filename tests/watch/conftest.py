"""Fixtures for the watcher's adapter tests: stand-in images and a podman API service."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from realbed import PodmanRunUnits

from tests.support import require_programs, require_root


@pytest.fixture(scope="session")
def plain_images() -> dict[str, object]:
    """Two versions of the ~1 MB plain stand-in, built once per session."""
    require_root()
    require_programs("podman", "busybox")
    from tests.support import images

    return {v: images.build_plain(v) for v in ("1.0", "2.0")}


@pytest.fixture(scope="session")
def podman_url() -> Iterator[str]:
    """`podman system service` of our own on a scratch socket, stopped at the end."""
    require_root()
    require_programs("podman")
    tmp = Path(tempfile.mkdtemp(prefix="psq-podman-svc-"))
    sock = tmp / "podman.sock"
    log = open(tmp / "service.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    try:
        deadline = time.monotonic() + 20
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "podman system service did not start:\n"
                    + (tmp / "service.log").read_text()[-2000:]
                )
            time.sleep(0.05)
        yield f"unix://{sock}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def units() -> Iterator[PodmanRunUnits]:
    """The stand-in for systemd of the real-Podman tests (``realbed``), cleaned up after."""
    u = PodmanRunUnits()
    try:
        yield u
    finally:
        u.cleanup()
