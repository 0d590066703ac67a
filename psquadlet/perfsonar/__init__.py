"""perfSONAR settings that must survive an upgrade of the testpoint image.

Removing the testpoint container loses everything written inside it, and upgrading means
removing it. What the testpoint keeps is therefore split three ways:

* Folders the testpoint owns and changes at run time (the pSConfig folder, the Lookup Service
  registration's identity, pSConfig's state) are **named volumes**. Podman copies the image's
  content into an empty named volume on first use, so the image's defaults appear, and from
  then on the folder outlives every container. An empty bind mount would hide those defaults.
* Single files an operator configures (``/etc/perfsonar/lsregistrationdaemon.conf``) cannot
  be a volume. psquadlet renders them from ``[containers.X.perfsonar]`` into a host file
  under ``HOST/perfsonar/<container>/`` (HOST: ``/etc/psquadlet``, ``~/.config/psquadlet``
  with ``--user``, ``DIR/psquadlet`` with ``-o DIR``) and bind-mounts it **read-only**
  (``ro,z``: relabelled for SELinux) over the file in the container: the TOML is the one
  place it is written, an upgrade cannot lose it, and an edit inside the container fails
  loudly instead of being silently lost at the next upgrade.
  When the table does not declare them, the image's file is used as it is.
* The pSConfig agent's remotes (``pscheduler-agent.json``) live inside the persisted pSConfig
  folder. When remotes are declared, the rendered file is bind-mounted read-only over that one
  file, so ``psconfig remote add`` is no longer needed after an upgrade (nor possible: the TOML
  is the source). Other files in the folder stay the operator's, and persist.
* ``/etc/pscheduler/limits.conf`` is an operator-written JSON document too rich to be worth
  re-expressing in TOML: ``limits_file`` names a host file that is bind-mounted read-only.

The files psquadlet renders here are part of the same plan as the units (generated marker,
all written or none, only when changed). This package is the ``perfsonar`` extension
(``psquadlet.extension``): ``spec`` (typed values), ``parse``, ``files`` (rendering, mounts),
``checks`` (doctor), and ``EXTENSION`` here.
"""

from __future__ import annotations

from pathlib import Path

from psquadlet.extension import ErrorSink, HostFile
from psquadlet.perfsonar.files import (
    HOST_DIR,
    SYSTEM_HOST_DIR,
    bind_mounts,
    host_files,
    host_folder,
    render_agent_json,
    render_lsregistrationdaemon,
)
from psquadlet.perfsonar.parse import parse_perfsonar
from psquadlet.perfsonar.spec import (
    AGENT_JSON,
    LIMITS_CONF,
    LSREG_CONF,
    STATE_FOLDERS,
    LookupService,
    PerfsonarSpec,
    PsconfigRemote,
    state_volumes,
)

__all__ = [
    "AGENT_JSON",
    "EXTENSION",
    "HOST_DIR",
    "LIMITS_CONF",
    "LSREG_CONF",
    "STATE_FOLDERS",
    "SYSTEM_HOST_DIR",
    "LookupService",
    "PerfsonarExtension",
    "PerfsonarSpec",
    "PsconfigRemote",
    "bind_mounts",
    "host_files",
    "host_folder",
    "parse_perfsonar",
    "render_agent_json",
    "render_lsregistrationdaemon",
    "state_volumes",
]


class PerfsonarExtension:
    """``[containers.X.perfsonar]`` through ``extension.ContainerExtension``."""

    key = "perfsonar"

    def parse(self, table: object, errors: ErrorSink, path: tuple[str | int, ...]) -> PerfsonarSpec:
        return parse_perfsonar(table, errors, path)

    def mounts(self, container: str, spec: PerfsonarSpec, host_dir: Path) -> tuple[str, ...]:
        return bind_mounts(container, spec, host_dir)

    def host_files(
        self, container: str, spec: PerfsonarSpec, host_dir: Path, header: str
    ) -> tuple[HostFile, ...]:
        return host_files(container, spec, header, host_dir)

    def host_folder(self, container: str, host_dir: Path) -> Path:
        return host_folder(container, host_dir)


EXTENSION = PerfsonarExtension()
