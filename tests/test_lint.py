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
    result = _run("ruff", "check", "psquadlet", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


# Modules whose authors keep them in `ruff format` style (others are only linted).
FORMATTED = [
    "psquadlet/errors.py",
    "psquadlet/model.py",
    "psquadlet/imageref.py",
    "psquadlet/config.py",
    "psquadlet/tomlpos.py",
    "psquadlet/presets.py",
    "psquadlet/render.py",
    "psquadlet/plan.py",
    "psquadlet/fsutil.py",
    "psquadlet/cli/generate.py",
    "psquadlet/cli/common.py",
    "tests/unit/test_config.py",
    "tests/unit/test_plan.py",
    "tests/golden/test_golden.py",
]


def test_ruff_format() -> None:
    result = _run("ruff", "format", "--check", *FORMATTED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = _run("mypy", "--strict", "psquadlet")
    assert result.returncode == 0, result.stdout + result.stderr
