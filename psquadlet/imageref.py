"""Container image references, parsed with Docker's grammar.

Podman, unlike Docker, does not silently prepend ``docker.io``: a short name is resolved
through registries.conf (and may prompt or pick another registry), which is exactly what an
unattended upgrade must not depend on. psquadlet therefore stores fully qualified references
only, and offers the Docker-normalised name as the fix when a short one is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
# Docker Hub's registry API lives on a different host than its canonical name.
DOCKER_HUB_API_HOST = "registry-1.docker.io"
_DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
# OCI distribution spec v1.1.1, spec.md "Pulling manifests": a tag "MUST be at most 128
# characters in length and MUST match ... [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}" (ASCII only:
# Python's \w would also take any Unicode letter)
_TAG = r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(rf"^{_DIGEST}$")
_NAME_MAX = 255


class ImageRefError(ValueError):
    """An image reference that cannot be used; ``suggestion`` is the fix when there is one."""

    def __init__(self, reference: str, reason: str, suggestion: str | None = None) -> None:
        self.reference = reference
        self.reason = reason
        self.suggestion = suggestion
        super().__init__(reason)


@dataclass(frozen=True)
class ImageRef:
    """A fully qualified image reference: registry, repository, and a tag and/or digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Registry and repository, without tag or digest (what podman calls the image name)."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """The manifest reference for registry URLs: the digest when pinned, else the tag."""
        if self.digest:
            return self.digest
        return self.tag or DEFAULT_TAG

    @property
    def api_host(self) -> str:
        """The host[:port] to talk the registry API to (Docker Hub's differs from its name)."""
        if self.registry == DEFAULT_REGISTRY:
            return DOCKER_HUB_API_HOST
        return self.registry

    def with_tag(self, tag: str) -> ImageRef:
        if not is_tag(tag):
            raise ImageRefError(tag, f"invalid tag {tag!r}")
        return ImageRef(self.registry, self.repository, tag, None)

    def with_digest(self, digest: str) -> ImageRef:
        if not _DIGEST_RE.match(digest):
            raise ImageRefError(digest, f"invalid digest {digest!r}")
        return ImageRef(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def is_tag(text: object) -> bool:
    """Whether *text* is a tag by the distribution spec (the whole string: no trailing newline)."""
    return isinstance(text, str) and _TAG_RE.fullmatch(text) is not None


def _split_domain(name: str) -> tuple[str | None, str]:
    """Docker's rule: the first component is a registry if it looks like a host."""
    first, sep, rest = name.partition("/")
    if not sep:
        return None, name
    if "." in first or ":" in first or first == "localhost" or first.lower() != first:
        return first, rest
    return None, name


def _parse(text: str) -> tuple[str | None, str, str | None, str | None]:
    if not text:
        raise ImageRefError(text, "empty image reference")
    if text != text.strip() or any(c.isspace() for c in text):
        raise ImageRefError(text, f"invalid image reference {text!r}: contains whitespace")
    remainder, digest = text, None
    if "@" in remainder:
        remainder, _, digest = remainder.partition("@")
        if not _DIGEST_RE.match(digest):
            raise ImageRefError(text, f"invalid image reference {text!r}: bad digest {digest!r}")
        algorithm, _, hexpart = digest.partition(":")
        if algorithm == "sha256" and len(hexpart) != 64:
            raise ImageRefError(
                text, f"invalid image reference {text!r}: sha256 digest needs 64 hex digits"
            )
    tag = None
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not is_tag(tag):
            raise ImageRefError(text, f"invalid image reference {text!r}: bad tag {tag!r}")
    domain, path = _split_domain(remainder)
    if domain is not None and not _DOMAIN_RE.match(domain):
        raise ImageRefError(text, f"invalid image reference {text!r}: bad registry {domain!r}")
    if not _PATH_RE.match(path):
        hint = ""
        if path.lower() != path and _PATH_RE.match(path.lower()):
            hint = " (repository names must be lowercase)"
        raise ImageRefError(text, f"invalid image reference {text!r}: bad repository name{hint}")
    if len(remainder) > _NAME_MAX:
        raise ImageRefError(text, f"invalid image reference {text!r}: name longer than 255")
    return domain, path, tag, digest


def normalize(text: str) -> ImageRef:
    """Docker's normalisation: ``nginx`` -> ``docker.io/library/nginx:latest``.

    Use for input that is known to follow Docker's defaults (compose files, docker run lines).
    """
    domain, path, tag, digest = _parse(text)
    registry = DEFAULT_REGISTRY if domain is None or domain in _DOCKER_HUB_ALIASES else domain
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return ImageRef(registry, path, tag, digest)


def parse(text: str) -> ImageRef:
    """Parse a reference that must name its registry; refuse short names with the fix.

    A missing tag means ``latest`` (as with every client); Docker Hub aliases are folded into
    ``docker.io`` so that one image has one spelling.
    """
    domain, _path, _tag, _digest = _parse(text)
    if domain is None:
        suggestion = str(normalize(text))
        raise ImageRefError(
            text,
            f"short image name {text!r} is not allowed: Podman would resolve it through "
            "registries.conf",
            suggestion=suggestion,
        )
    return normalize(text)


def is_fully_qualified(text: str) -> bool:
    try:
        parse(text)
    except ImageRefError:
        return False
    return True
