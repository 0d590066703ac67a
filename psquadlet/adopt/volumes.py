"""``adopt --into-volumes``: the pSConfig folder's bind mount becomes the preset's named volume
(``NAME-psconfig``), and the folder's files are copied into it while the old container is
stopped. The folder itself is left as it was, so an undo finds it untouched."""

from __future__ import annotations

import dataclasses

from psquadlet import perfsonar
from psquadlet.errors import UsageError
from psquadlet.importer import ImportResult

PSCONFIG = "/etc/perfsonar/psconfig"


@dataclasses.dataclass(frozen=True)
class Copy:
    source: str
    """The host folder the old unit bind-mounted."""
    volume: str
    image: str
    """An image with ``cp`` (the container's own) to copy with."""


def into_volumes(result: ImportResult, name: str) -> tuple[ImportResult, Copy]:
    """The result with the pSConfig bind mount replaced by the named volume, and the copy."""
    (container,) = result.containers
    volumes = container.get("volumes")
    entries = [str(v) for v in volumes] if isinstance(volumes, list) else []
    volume = perfsonar.state_volumes(name)[0][0]
    for i, entry in enumerate(entries):
        source, _, rest = entry.partition(":")
        target, _, options = rest.partition(":")
        if target.rstrip("/") == PSCONFIG and source.startswith("/"):
            # the volume keeps the mount's options (:Z relabels it for this container)
            entries[i] = f"{volume}:{PSCONFIG}" + (f":{options}" if options else "")
            settings = tuple(
                (k, list(entries) if k == "volumes" else v) for k, v in container.settings
            )
            changed = dataclasses.replace(container, settings=settings)
            copy = Copy(source, volume, str(container.get("image")))
            return dataclasses.replace(result, containers=(changed,)), copy
    raise UsageError(f"--into-volumes: {name} bind-mounts no host folder on {PSCONFIG}")


def copy_argv(copy: Copy) -> list[str]:
    """``podman run`` copying the folder into the volume; the volume mounted with ``:Z`` so
    its files carry the container's SELinux label."""
    return [
        "run", "--rm", "--network=none", "--entrypoint=cp",
        f"--volume={copy.source}:/from:ro,z", f"--volume={copy.volume}:/to:Z",
        copy.image, "-a", "/from/.", "/to/",
    ]  # fmt: skip
