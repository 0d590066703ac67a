"""The host files rendered from ``[containers.X.perfsonar]`` and the mounts that read them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from psquadlet.extension import HostFile
from psquadlet.perfsonar.spec import (
    AGENT_JSON,
    LIMITS_CONF,
    LSREG_CONF,
    LookupService,
    PerfsonarSpec,
    PsconfigRemote,
)

SYSTEM_HOST_DIR = Path("/etc/psquadlet")
"""The host folder of a system run (root, no ``-o``)."""
HOST_DIR = "/etc/psquadlet/perfsonar"
"""Where a system run writes the files (``SYSTEM_HOST_DIR/perfsonar``)."""


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def render_lsregistrationdaemon(ls: LookupService, header: str = "") -> str:
    """lsregistrationdaemon.conf (Config::General syntax); unset keys keep the daemon's defaults.

    Every value has already been checked to be one line without '\\', '<' or '>'; a '#' would
    start a comment, so it is escaped the way Config::General reads it.
    """

    def value(text: str) -> str:
        return text.replace("#", "\\#")

    lines = [header.rstrip("\n")] if header else []
    for key in ("site_name", "domain"):
        text = getattr(ls, key)
        if text:
            lines.append(f"{key} {value(text)}")
    lines.extend(f"site_project {value(p)}" for p in ls.projects if p)
    for key in ("city", "region", "country", "zip_code"):
        text = getattr(ls, key)
        if text:
            lines.append(f"{key} {value(text)}")
    if ls.latitude is not None:
        lines.append(f"latitude {_number(ls.latitude)}")
    if ls.longitude is not None:
        lines.append(f"longitude {_number(ls.longitude)}")
    if ls.administrator_name:
        lines += [
            "<administrator>",
            f"    name {value(ls.administrator_name)}",
            f"    email {value(ls.administrator_email)}",
            "</administrator>",
        ]
    return "\n".join(lines) + "\n"


def render_agent_json(remotes: Sequence[PsconfigRemote]) -> str:
    """pscheduler-agent.json as ``psconfig remote add`` would leave it (JSON has no comments)."""
    doc = {"remotes": [{"url": r.url, "configure-archives": r.configure_archives} for r in remotes]}
    return json.dumps(doc, indent=4) + "\n"


def host_folder(container: str, host_dir: Path = SYSTEM_HOST_DIR) -> Path:
    """The folder psquadlet owns for ``container``'s files: ``HOST_DIR/perfsonar/<container>``."""
    return host_dir / "perfsonar" / container


def host_files(
    container: str, spec: PerfsonarSpec, header: str = "", host_dir: Path = SYSTEM_HOST_DIR
) -> tuple[HostFile, ...]:
    """The files to write under ``host_folder(container, host_dir)``.

    ``header`` is the generated-file marker (a '#' comment); JSON gets none, which is why the
    marker for it has to be recognised by its location instead.
    """
    files = []
    folder = host_folder(container, host_dir)
    if spec.lookup_service is not None:
        files.append(
            HostFile(
                folder / "lsregistrationdaemon.conf",
                LSREG_CONF,
                render_lsregistrationdaemon(spec.lookup_service, header),
            )
        )
    if spec.psconfig_remotes is not None:
        files.append(
            HostFile(
                folder / "pscheduler-agent.json",
                AGENT_JSON,
                render_agent_json(spec.psconfig_remotes),
            )
        )
    return tuple(files)


def bind_mounts(
    container: str, spec: PerfsonarSpec, host_dir: Path = SYSTEM_HOST_DIR
) -> tuple[str, ...]:
    """``volumes`` entries (SRC:DST:OPTS) that put the host files over the container's files."""
    files = host_files(container, spec, host_dir=host_dir)
    mounts = [f"{f.path}:{f.container_path}:ro,z" for f in files]
    if spec.limits_file:
        mounts.append(f"{spec.limits_file}:{LIMITS_CONF}:ro,z")
    return tuple(mounts)
