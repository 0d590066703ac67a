"""ruff and mypy --strict as tests, so that the README's one test command checks them too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False,
        timeout=600,
    )  # fmt: skip


def test_ruff_check() -> None:
    """The whole tree (package, tests, bench, the Ansible collection's Python)."""
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    """Every Python file of the tree is in ``ruff format`` style (not a chosen few)."""
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = _run("mypy", "--strict", "psquadlet")
    assert result.returncode == 0, result.stdout + result.stderr
