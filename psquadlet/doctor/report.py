"""Verdicts of the doctor's checks, and the report they make (text, JSON, exit code)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from psquadlet import __version__

PASS = "pass"  # noqa: S105 - a verdict, not a password
WARN = "warn"
FAIL = "fail"
SKIP = "skip"

# Bumped only when a key is removed or changes meaning; new keys may appear in any version.
JSON_SCHEMA = "psquadlet-doctor/1"

# Exit codes follow the Nagios plugin convention, which fleet tools already understand.
EXIT_OK = 0
EXIT_WARN = 1
EXIT_FAIL = 2


@dataclass(frozen=True)
class Check:
    """One verdict. ``items`` carry machine-readable findings (e.g. one per port in use)."""

    id: str
    status: str
    summary: str
    advice: str = ""
    details: tuple[str, ...] = ()
    items: tuple[Mapping[str, object], ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "status": self.status,
            "summary": self.summary,
            "advice": self.advice,
            "details": list(self.details),
            "items": [dict(item) for item in self.items],
        }


_SEVERITY = {SKIP: 0, PASS: 0, WARN: 1, FAIL: 2}


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def status(self) -> str:
        worst = max((_SEVERITY[c.status] for c in self.checks), default=0)
        return {0: PASS, 1: WARN, 2: FAIL}[worst]

    @property
    def exit_code(self) -> int:
        return {PASS: EXIT_OK, WARN: EXIT_WARN, FAIL: EXIT_FAIL}[self.status]

    @property
    def ok(self) -> bool:
        """No check failed (warnings leave the host usable)."""
        return self.status != FAIL

    def to_json(self) -> dict[str, object]:
        return {
            "schema": JSON_SCHEMA,
            "ok": self.ok,
            "psquadlet_version": __version__,
            "status": self.status,
            "exit_code": self.exit_code,
            "checks": [c.to_json() for c in self.checks],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n"

    def text(self) -> str:
        lines = []
        for check in self.checks:
            lines.append(f"[{check.status.upper():4}] {check.id}: {check.summary}")
            lines.extend(f"       {d}" for d in check.details)
            if check.advice and check.status in (WARN, FAIL):
                lines.append(f"       -> {check.advice}")
        lines.append(f"overall: {self.status}")
        return "\n".join(lines) + "\n"
