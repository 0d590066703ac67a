"""Top-level fixtures shared by every test layer: the loopback registry."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support import require_programs, require_root  # noqa: E402
from tests.support.registry import Registry  # noqa: E402


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A real docker-registry on a free loopback port, plain HTTP, no auth, for the session."""
    require_root()
    require_programs("docker-registry", "podman")
    reg = Registry(workdir=tmp_path_factory.mktemp("registry"))
    reg.start()
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Like `registry`, but asking for htpasswd credentials (user `tester`, password `s3cret`)."""
    require_root()
    require_programs("docker-registry", "podman", "htpasswd")
    reg = Registry(workdir=tmp_path_factory.mktemp("auth-registry"), users={"tester": "s3cret"})
    reg.start()
    try:
        yield reg
    finally:
        reg.close()
