"""The release drop-in: how the watcher makes a Quadlet unit run an adopted release tag.

``NAME.container.d/50-psquadlet-release.conf`` next to ``NAME.container`` sets ``Image=``
(a drop-in's key wins over the file's; Quadlet reads drop-ins from Podman 5.0). The operator's
TOML and the generated ``.container`` stay as they are. The file records the configured image
it applies to (the *base*): ``generate`` keeps it while the base is unchanged and removes it
once the operator configures another image. Plain standard library: ``generate`` reads it.
"""

from __future__ import annotations

import re
from pathlib import Path

from psquadlet.quadlet_keys import key
from psquadlet.unitfile import render_value

DROPIN_NAME = "50-psquadlet-release.conf"
MARKER = "# Written by psquadlet watch (release tracking)."
_BASE = re.compile(r"^# base-image: (\S+)$", re.MULTILINE)
_IMAGE = re.compile(r"^Image=(\S+)$", re.MULTILINE)
QUADLET_DROPINS_SINCE = (5, 0)


def dropin_path(unit_file: Path) -> Path:
    """``/etc/containers/systemd/NAME.container`` -> ``.../NAME.container.d/50-...conf``."""
    return unit_file.with_name(unit_file.name + ".d") / DROPIN_NAME


def render(image: str, base: str, why: str) -> str:
    why = " ".join(why.split())
    return (
        f"{MARKER}\n"
        f"# {why}\n"
        f"# base-image: {base}\n"
        "# 'psquadlet generate' removes this file when the configured image is no longer the\n"
        "# base image; 'psquadlet unpin' or a rollback rewrite it.\n"
        "[Container]\n"
        f"Image={render_value(key('Container', 'Image'), image)}\n"
    )


def base_of(text: str) -> str | None:
    """The base image a drop-in records; None when the text is not ours."""
    if not text.startswith(MARKER):
        return None
    m = _BASE.search(text)
    return m.group(1) if m else None


def image_of(text: str) -> str | None:
    m = _IMAGE.search(text)
    return m.group(1) if m and text.startswith(MARKER) else None


def stale_dropin(unit_file: Path, configured_image: str) -> Path | None:
    """Our drop-in beside *unit_file* when it applies to another base image, else None."""
    path = dropin_path(unit_file)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return None
    base = base_of(text)
    return path if base is not None and base != configured_image else None
