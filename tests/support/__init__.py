"""Shared test support: real programs (registry, podman, the systemd-nspawn test bed)."""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message: str) -> None:
    """A missing prerequisite: a failure in CI (never a silent skip), a skip locally."""
    if in_ci():
        pytest.fail(f"test prerequisite missing in CI: {message}", pytrace=False)
    pytest.skip(message)


def require_programs(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        unavailable(f"programs not found: {', '.join(missing)} (run scripts/test-deps)")


def require_root() -> None:
    if os.geteuid() != 0:
        unavailable("needs root (podman as root, systemd-nspawn)")
