"""Pre-flight checks for a host that is to run the perfSONAR testpoint.

The package is split by job: ``report`` (verdicts, text and JSON), ``context`` (the host's
probes and the configured containers the checks look at), ``checks`` (the built-in checks and
their registration), ``sockets`` (the kernel's socket tables under /proc), ``clock``
(``adjtimex``) and ``diagnose`` (loading the configuration and running every check, the
built-in ones and those extensions contribute, e.g. ``psquadlet.perfsonar.checks``). This
package's namespace holds only the report and context types, so that an extension's check
module can import them without importing ``diagnose``. Nothing here binds a port or changes
the host.
"""

from __future__ import annotations

from psquadlet.doctor.context import CheckFunction, Context, Host, context_for
from psquadlet.doctor.report import FAIL, JSON_SCHEMA, PASS, SKIP, WARN, Check, Report

__all__ = [
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
]
