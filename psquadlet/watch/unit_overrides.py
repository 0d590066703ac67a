"""The Overrides adapter: a Quadlet drop-in that makes a unit run an adopted release tag.

Where the unit comes from a ``.container`` file and the installed Podman reads drop-ins
(5.0 and later), ``NAME.container.d/50-psquadlet-release.conf`` sets ``Image=`` (see
``psquadlet.dropin``) and systemd is reloaded so that the Quadlet generator reads it. Anywhere
else (Podman 4.4-4.9, a plain ``--format service`` unit) it returns "" and the core points
the configured tag at the release's image instead (the unit's ``Image=`` then names the
configured tag while running the release; ``status`` says so).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from psquadlet import dropin
from psquadlet.fsutil import atomic_write
from psquadlet.watch.interfaces import UnitError, UnitsAdapter


class UnitOverrides:
    def __init__(self, units: UnitsAdapter, podman_version: tuple[int, int, int] | None) -> None:
        self.units = units
        self.podman_version = podman_version

    def set_image(self, unit: str, image: str | None, base: str, why: str) -> str:
        source = self.units.source_path(unit)
        if not source.endswith(".container"):
            return ""
        if self.podman_version is None or self.podman_version[:2] < dropin.QUADLET_DROPINS_SINCE:
            return ""
        path = dropin.dropin_path(Path(source))
        try:
            if image is None:
                current = path.read_text(encoding="utf-8") if path.is_file() else ""
                if dropin.base_of(current) is None:
                    return ""  # nothing of ours to remove: no reload
                path.unlink()
                with contextlib.suppress(OSError):
                    path.parent.rmdir()  # only when empty
            else:
                path.parent.mkdir(mode=0o755, exist_ok=True)
                atomic_write(path, dropin.render(image, base, why))
        except OSError as e:
            raise UnitError(f"{unit}: cannot write {path}: {e.strerror or e}") from e
        self.units.daemon_reload()
        return f"drop-in {path}"
