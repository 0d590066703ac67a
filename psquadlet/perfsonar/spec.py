"""The typed ``[containers.X.perfsonar]`` settings and the fixed paths they refer to."""

from __future__ import annotations

from dataclasses import dataclass

LSREG_CONF = "/etc/perfsonar/lsregistrationdaemon.conf"
AGENT_JSON = "/etc/perfsonar/psconfig/pscheduler-agent.json"
LIMITS_CONF = "/etc/pscheduler/limits.conf"

# Folder in the container -> suffix of the named volume holding it (one set per container).
STATE_FOLDERS: tuple[tuple[str, str], ...] = (
    ("/etc/perfsonar/psconfig", "psconfig"),
    ("/var/lib/perfsonar/lsregistrationdaemon", "lsregistration"),
    ("/var/lib/perfsonar/psconfig", "psconfig-state"),
)


@dataclass(frozen=True)
class LookupService:
    """The Lookup Service registration (lsregistrationdaemon.conf). Empty strings: not set."""

    site_name: str = ""
    domain: str = ""
    projects: tuple[str, ...] = ()
    administrator_name: str = ""
    administrator_email: str = ""
    city: str = ""
    region: str = ""
    country: str = ""
    zip_code: str = ""
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class PsconfigRemote:
    url: str
    configure_archives: bool = True


@dataclass(frozen=True)
class PerfsonarSpec:
    """``[containers.X.perfsonar]``. ``psconfig_remotes`` None: remotes are not managed."""

    lookup_service: LookupService | None = None
    psconfig_remotes: tuple[PsconfigRemote, ...] | None = None
    limits_file: str = ""


def state_volumes(container: str) -> tuple[tuple[str, str], ...]:
    """(volume name, folder in the container) for each persisted folder of ``container``."""
    return tuple((f"{container}-{suffix}", folder) for folder, suffix in STATE_FOLDERS)
