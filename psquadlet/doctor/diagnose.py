"""One diagnosis: load the configuration (or fall back), build the context, run every check.

A configuration that does not load is one failed check, not the end of the diagnosis: the
other checks then run against the built-in default testpoint, and the images written in the
broken file are still checked for short names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from psquadlet.config import DEFAULT_CONFIG_PATH, default_config, load_config
from psquadlet.doctor.checks import CHECKS
from psquadlet.doctor.context import CheckFunction, Context, Host, context_for
from psquadlet.doctor.report import FAIL, PASS, Check, Report
from psquadlet.errors import PsquadletError
from psquadlet.host import HostFileError, read_host_text
from psquadlet.perfsonar import checks as perfsonar_checks
from psquadlet.tomlpos import tomllib

# Checks that extensions contribute, run after the built-in ones (each extension's CHECKS).
EXTENSION_CHECKS: tuple[CheckFunction, ...] = (*perfsonar_checks.CHECKS,)


def config_check(source: str, error: Exception | None) -> Check:
    if error is None:
        return Check("config", PASS, f"configuration is valid ({source})")
    return Check(
        "config",
        FAIL,
        f"configuration is not valid ({source})",
        "fix the lines named, then run 'psquadlet validate'",
        tuple(str(error).splitlines()),
    )


def raw_images(path: Path) -> list[tuple[str, str]]:
    """Images as written, when the configuration did not load (to still name short ones)."""
    try:
        data = tomllib.loads(read_host_text(path))
    except (OSError, HostFileError, tomllib.TOMLDecodeError, RecursionError):
        return []
    containers = data.get("containers")
    found = []
    if isinstance(containers, dict):
        for name, table in containers.items():
            if isinstance(table, dict) and isinstance(table.get("image"), str):
                found.append((f"{path}: containers.{name}.image", table["image"]))
    return found


def run_checks(
    ctx: Context, config: Check, extension_checks: Sequence[CheckFunction] = EXTENSION_CHECKS
) -> Report:
    return Report((config, *(check(ctx) for check in (*CHECKS, *extension_checks))))


def diagnose(
    config_path: Path | None,
    host: Host | None = None,
    extension_checks: Sequence[CheckFunction] = EXTENSION_CHECKS,
) -> Report:
    """All checks for the configuration at ``config_path`` (None: the default one)."""
    path = config_path
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    images: list[tuple[str, str]] = []
    try:
        config = load_config(path)
        check = config_check(config.source, None)
    except PsquadletError as exc:
        config = default_config()
        check = config_check(str(path), exc)
        if path is not None:
            images = raw_images(path)
    return run_checks(context_for(config, host, images), check, extension_checks)
