"""Registry credentials from the containers auth files (containers-auth.json(5)).

Any file content is tolerated: unreadable, not JSON, cut at ``MAX_AUTH_FILE``, nested
absurdly deep, or entries whose ``auth`` is not a string are skipped, never an exception.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Sequence

from psquadlet.imageref import ImageRef

MAX_AUTH_FILE = 1024 * 1024


def auth_file_candidates(explicit: str = "") -> list[str]:
    """containers-auth.json(5)'s search order, then Docker's config."""
    uid = os.getuid()
    out = []
    if explicit:
        out.append(explicit)
    if os.environ.get("REGISTRY_AUTH_FILE"):
        out.append(os.environ["REGISTRY_AUTH_FILE"])
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        out.append(os.path.join(runtime, "containers", "auth.json"))
    out.append(f"/run/containers/{uid}/auth.json")
    home = os.path.expanduser("~")
    out.append(os.path.join(home, ".config", "containers", "auth.json"))
    out.append(os.path.join(home, ".docker", "config.json"))
    return out


_DOCKER_HUB_KEYS = (
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "https://index.docker.io/v1/",
)


def _normalise_key(key: str) -> str:
    key = re.sub(r"^https?://", "", key).rstrip("/")
    if key.endswith("/v1") or key.endswith("/v2"):
        key = key[:-3]
    if key in ("index.docker.io", "registry-1.docker.io"):
        key = "docker.io"
    return key


class Credentials:
    """user/password per registry (or registry/namespace) from the auth files."""

    def __init__(self, files: Sequence[str]) -> None:
        self.files = list(files)
        self.entries: list[tuple[str, str, str, str]] = []  # key, user, password, file
        for path in self.files:
            try:
                with open(path, "rb") as f:
                    data = json.loads(f.read(MAX_AUTH_FILE + 1)[:MAX_AUTH_FILE])
            except (OSError, ValueError, RecursionError):
                continue  # unreadable, not JSON (or cut at the size cap), absurdly nested
            auths = data.get("auths") if isinstance(data, dict) else None
            if not isinstance(auths, dict):
                continue
            for key, entry in auths.items():
                auth = entry.get("auth") if isinstance(entry, dict) else None
                if not isinstance(auth, str) or not auth:
                    continue  # a number, list, object: not a credential
                try:
                    user, _, password = base64.b64decode(auth).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    continue
                self.entries.append((_normalise_key(str(key)), user, password, path))

    def lookup(self, ref: ImageRef) -> tuple[str, str, str] | None:
        """(user, password, file) for the most specific matching entry, first file first."""
        full = f"{ref.registry}/{ref.repository}"
        best: tuple[int, int, tuple[str, str, str]] | None = None
        for order, (key, user, password, path) in enumerate(self.entries):
            if full == key or full.startswith(key + "/"):
                rank = (-len(key), order)
                if best is None or rank < (best[0], best[1]):
                    best = (rank[0], rank[1], (user, password, path))
        return best[2] if best else None
