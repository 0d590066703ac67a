"""The real readers as test oracles: Podman's Quadlet generator and ``systemd-analyze verify``.

A test hands unit texts (or a folder) to :func:`run_quadlet`, which runs
``QUADLET_UNIT_DIRS=DIR quadlet -dryrun`` once for all of them and parses every generated
.service the way systemd reads it (sections, keys, line continuations, and Exec lines split
into argv with quotes, C escapes, ``%%`` and ``$$`` resolved; see
``psquadlet.unitread.split_exec``). Failures are attributed to the file Quadlet names.

Binary: env ``PSQUADLET_QUADLET``, default the Podman 5.4.2 generator that scripts/test-deps
extracts from Debian 13's podman .deb. Missing: a failure in CI, a skip locally.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import unavailable
from tests.support.unitread import split_exec

DEFAULT_QUADLET = "/var/cache/psquadlet-tests/quadlet/usr/libexec/podman/quadlet"


def quadlet_path() -> Path:
    """The Quadlet generator to use; fails (CI) or skips (locally) when it is not there."""
    path = Path(os.environ.get("PSQUADLET_QUADLET", DEFAULT_QUADLET))
    if not path.is_file() or not os.access(path, os.X_OK):
        unavailable(
            f"Quadlet generator not found at {path} "
            "(run scripts/test-deps, or set PSQUADLET_QUADLET)"
        )
    return path


_VERSIONS: dict[str, tuple[int, int, int]] = {}


def quadlet_version() -> tuple[int, int, int]:
    """The version the generator reports (``quadlet -version``), e.g. (5, 4, 2)."""
    binary = str(quadlet_path())
    if binary not in _VERSIONS:
        out = subprocess.run(
            [binary, "-version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        major, minor, patch = [*(int(p) for p in re.findall(r"\d+", out)[:3]), 0, 0, 0][:3]
        _VERSIONS[binary] = (major, minor, patch)
    return _VERSIONS[binary]


def systemd_analyze_path() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        unavailable("systemd-analyze not found (apt-get install systemd)")
        raise AssertionError("unreachable")  # pragma: no cover - unavailable() raises
    return found


@dataclass
class UnitText:
    """A unit file parsed as systemd reads it: ordered (section, key, value) entries."""

    name: str
    text: str
    entries: list[tuple[str, str, str]] = field(default_factory=list)

    def sections(self) -> list[str]:
        seen: list[str] = []
        for section, _, _ in self.entries:
            if section not in seen:
                seen.append(section)
        return seen

    def values(self, section: str, key: str) -> list[str]:
        return [v for s, k, v in self.entries if s == section and k == key]

    def value(self, section: str, key: str) -> str:
        found = self.values(section, key)
        if len(found) != 1:
            raise AssertionError(f"{self.name}: expected one {key}= in [{section}], got {found!r}")
        return found[0]

    def section_entries(self, section: str) -> list[tuple[str, str]]:
        return [(k, v) for s, k, v in self.entries if s == section]

    def exec_argv(self, key: str = "ExecStart", section: str = "Service") -> list[str]:
        """The one command of an Exec line, as the argv systemd would run."""
        commands = split_exec(self.value(section, key))
        if len(commands) != 1:
            raise AssertionError(
                f"{self.name}: {key}= holds {len(commands)} commands, expected 1: {commands!r}"
            )
        return commands[0]


def parse_unit(text: str, name: str = "<unit>") -> UnitText:
    """systemd's unit file syntax: comments, [sections], Key=value, backslash continuation."""
    unit = UnitText(name=name, text=text)
    section = ""
    pending = ""
    for raw in text.split("\n"):
        line = raw.strip(" \t\r\n")
        if pending:
            if line.startswith(("#", ";")):
                continue
            line = pending + line
            pending = ""
        elif not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if "=" not in line:
            raise AssertionError(f"{name}: not a key=value line: {line!r}")
        key, value = line.split("=", 1)
        unit.entries.append((section, key.strip(" \t"), value.strip(" \t")))
    if pending:
        raise AssertionError(f"{name}: file ends in a line continuation")
    return unit


_SEPARATOR_RE = re.compile(r"^---(?P<name>[^\n]+)---$", re.MULTILINE)
_ERROR_RE = re.compile(r'converting "(?P<file>[^"]+)": (?P<message>.*)')


@dataclass
class QuadletResult:
    """One dry run: exit code, output, the parsed services, per-file errors."""

    returncode: int
    stdout: str
    stderr: str
    services: dict[str, UnitText]
    errors: dict[str, str]
    unitdir: Path

    def service(self, name: str) -> UnitText:
        if name not in self.services:
            raise AssertionError(
                f"Quadlet generated no {name}; errors: {self.errors!r}; stderr:\n{self.stderr}"
            )
        return self.services[name]

    def check(self) -> QuadletResult:
        """Require a clean conversion of every file."""
        if self.returncode != 0 or self.errors:
            raise AssertionError(
                f"Quadlet failed (exit {self.returncode}): {self.errors!r}\n{self.stderr}"
            )
        return self


def _parse_dryrun(stdout: str) -> dict[str, UnitText]:
    services: dict[str, UnitText] = {}
    matches = list(_SEPARATOR_RE.finditer(stdout))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(stdout)
        body = stdout[match.end() : end].lstrip("\n")
        name = match.group("name")
        services[name] = parse_unit(body, name)
    return services


def run_quadlet_dir(unitdir: Path, *, user: bool = False, timeout: float = 60) -> QuadletResult:
    """Run the generator in dry-run mode over one folder of Quadlet files."""
    binary = quadlet_path()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "QUADLET_UNIT_DIRS": str(unitdir),
        "LANG": "C.UTF-8",
    }
    args = [str(binary), "-dryrun"]
    if user:
        args.append("-user")
    proc = subprocess.run(
        args, env=env, capture_output=True, timeout=timeout, check=False, cwd=str(unitdir)
    )
    stdout = proc.stdout.decode("utf-8", errors="surrogateescape")
    stderr = proc.stderr.decode("utf-8", errors="surrogateescape")
    errors: dict[str, str] = {}
    for line in stderr.splitlines():
        match = _ERROR_RE.search(line)
        if match:
            errors[match.group("file")] = match.group("message")
    return QuadletResult(
        returncode=proc.returncode,
        stdout=stdout,
        stderr=stderr,
        services=_parse_dryrun(stdout),
        errors=errors,
        unitdir=unitdir,
    )


def run_quadlet(units: Mapping[str, str], *, user: bool = False) -> QuadletResult:
    """Write ``{filename: text}`` into a fresh folder and convert them all in one run."""
    with tempfile.TemporaryDirectory(prefix="psquadlet-oracle-") as tmp:
        unitdir = Path(tmp)
        for filename, text in units.items():
            if "/" in filename:
                raise ValueError(f"unit file name with a slash: {filename!r}")
            (unitdir / filename).write_text(text, encoding="utf-8")
        return run_quadlet_dir(unitdir, user=user)


def quadlet_service(filename: str, text: str, *, user: bool = False) -> UnitText:
    """Convert one unit and return the .service it produces (failing on any error)."""
    result = run_quadlet({filename: text}, user=user).check()
    stem = filename.rsplit(".", 1)[0]
    suffix = filename.rsplit(".", 1)[1]
    service = f"{stem}.service" if suffix == "container" else f"{stem}-{suffix}.service"
    return result.service(service)


@dataclass
class VerifyResult:
    returncode: int
    output: str


def systemd_analyze_verify(units: Mapping[str, str] | Iterable[Path]) -> VerifyResult:
    """``systemd-analyze verify`` on unit texts (written to a scratch folder) or files.

    systemd-analyze exits 0 even when it warns, so callers assert on ``output`` being empty
    (see :func:`assert_verifies`).
    """
    analyze = systemd_analyze_path()
    with tempfile.TemporaryDirectory(prefix="psquadlet-verify-") as tmp:
        if isinstance(units, Mapping):
            paths = []
            for filename, text in units.items():
                path = Path(tmp) / filename
                path.write_text(text, encoding="utf-8")
                paths.append(path)
        else:
            paths = list(units)
        env = dict(os.environ)
        env["SYSTEMD_LOG_COLOR"] = "0"
        env["SYSTEMD_PAGER"] = ""
        proc = subprocess.run(
            [analyze, "verify", "--man=no", *(str(p) for p in paths)],
            capture_output=True,
            timeout=60,
            check=False,
            env=env,
        )
    output = (proc.stdout + proc.stderr).decode("utf-8", errors="replace")
    return VerifyResult(returncode=proc.returncode, output=output)


def assert_verifies(units: Mapping[str, str] | Iterable[Path]) -> None:
    result = systemd_analyze_verify(units)
    if result.returncode != 0 or result.output.strip():
        raise AssertionError(
            f"systemd-analyze verify (exit {result.returncode}) printed:\n{result.output}"
        )
