"""Pre-flight checks for a host that is to run the perfSONAR testpoint.

The package is split by job: ``report`` (verdicts, text and JSON), ``context`` (the host's
probes and the configured containers the checks look at), ``checks`` (the built-in checks and
their registration), ``sockets`` (the kernel's socket tables under /proc), ``clock``
(``adjtimex``), ``perfsonar_files`` (the check perfSONAR contributes) and ``diagnose`` (loading
the configuration and running every check). Nothing here binds a port or changes the host.
"""

from __future__ import annotations

from psquadlet.doctor.checks import CHECKS
from psquadlet.doctor.context import CheckFunction, Context, Host, context_for
from psquadlet.doctor.diagnose import EXTENSION_CHECKS, diagnose
from psquadlet.doctor.report import FAIL, JSON_SCHEMA, PASS, SKIP, WARN, Check, Report

__all__ = [
    "CHECKS",
    "EXTENSION_CHECKS",
    "FAIL",
    "JSON_SCHEMA",
    "PASS",
    "SKIP",
    "WARN",
    "Check",
    "CheckFunction",
    "Context",
    "Host",
    "Report",
    "context_for",
    "diagnose",
]
