"""The Images adapter: Podman's REST API through podman-py.

Imported only by the watcher's commands (it pulls in podman-py and requests). The URL is a
parameter so tests and the e2e test bed can point it at a podman service of their own.

A pull carries the credentials the registry check used (``[watch] auth_file`` and the
standard auth files) in ``X-Registry-Auth``: the Podman service does not read the watcher's
auth file, so without them a pull from a private registry would fail after the check passed.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Sequence
from typing import Any, Callable

import requests
from podman import PodmanClient
from podman.errors import APIError, ImageNotFound, NotFound, PodmanError

from psquadlet.errors import PsquadletError
from psquadlet.imageref import ImageRef, parse
from psquadlet.quadlet_keys import parse_version
from psquadlet.watch.interfaces import (
    ContainerImage,
    ExecResult,
    ImagesError,
    ProgressFn,
    PullError,
)

AuthLookup = Callable[[ImageRef], "tuple[str, str, str] | None"]
"""(user, password, file) for an image, e.g. ``registry.Credentials.lookup``."""

DEFAULT_PODMAN_URL = "unix:///run/podman/podman.sock"
PODMAN_URL_ENV = "PSQUADLET_PODMAN_URL"


def default_podman_url() -> str:
    return os.environ.get(PODMAN_URL_ENV) or DEFAULT_PODMAN_URL


# requests comes with podman-py; its errors escape podman-py when the socket goes away.
_ERRORS: tuple[type[BaseException], ...] = (PodmanError, requests.RequestException, OSError)
_PULL_ERRORS: tuple[type[BaseException], ...] = (ValueError, *_ERRORS)


class PodmanImages:
    def __init__(
        self,
        url: str | None = None,
        tls_verify: Callable[[str], bool] | None = None,
        timeout: int = 120,
        auth: AuthLookup | None = None,
    ) -> None:
        self.url = url or default_podman_url()
        self.tls_verify = tls_verify or (lambda host: True)
        self.auth = auth
        self.client = PodmanClient(base_url=self.url, timeout=timeout)

    def _fail(self, what: str, e: BaseException) -> ImagesError:
        return ImagesError(f"podman ({self.url}): {what}: {_explain(e)}")

    def version(self) -> tuple[int, int, int] | None:
        """The Podman service's version (release tracking: drop-ins need 5.0), None if unknown."""
        try:
            info = self.client.version()  # type: ignore[no-untyped-call]
            return parse_version(str(info.get("Version", "")))
        except _PULL_ERRORS:  # ValueError and the API's errors
            return None

    def container_image(self, container: str) -> ContainerImage | None:
        try:
            c = self.client.containers.get(container)
            attrs: dict[str, Any] = c.attrs
            image_id = str(attrs.get("Image", ""))
            running = bool((attrs.get("State") or {}).get("Running"))
        except NotFound:
            return None
        except _ERRORS as e:
            raise self._fail(f"inspect container {container}", e) from e
        digests, repo_digests = self._digests(image_id)
        return ContainerImage(
            container, image_id, frozenset(digests), running, frozenset(repo_digests)
        )

    def _digests(self, image_id: str) -> tuple[set[str], set[str]]:
        try:
            attrs = self.client.images.get(image_id).attrs
        except (ImageNotFound, NotFound):
            return set(), set()
        except _ERRORS as e:
            raise self._fail(f"inspect image {image_id[:12]}", e) from e
        out = {str(attrs["Digest"])} if attrs.get("Digest") else set()
        repo_digests = {str(rd) for rd in attrs.get("RepoDigests") or () if "@" in str(rd)}
        out.update(rd.partition("@")[2] for rd in repo_digests)
        return out, repo_digests

    def pull(self, reference: str, progress: ProgressFn | None = None) -> str:
        host = reference.split("/", 1)[0]
        params = {
            "reference": reference,
            "policy": "always",
            "tlsVerify": self.tls_verify(host),
            "compatMode": False,
        }
        image_id = ""
        try:
            resp = self.client.api.post(
                "/images/pull", params=params, stream=True, headers=self._auth_header(reference)
            )
            if resp.status_code >= 400:
                raise PullError(f"pull of {reference} refused: {_body_message(resp.text)}")
            for raw in resp.iter_lines():
                if not raw:
                    continue
                item = json.loads(raw)
                if item.get("error"):
                    raise PullError(f"pull of {reference} failed: {item['error'].strip()}")
                if item.get("stream") and progress is not None:
                    progress(str(item["stream"]).strip())
                if item.get("id"):
                    image_id = str(item["id"])
        except PullError:
            raise
        except _PULL_ERRORS as e:
            raise PullError(f"pull of {reference} interrupted: {_explain(e)}") from e
        if not image_id:
            raise PullError(f"pull of {reference} ended without an image (interrupted?)")
        return image_id

    def _auth_header(self, reference: str) -> dict[str, str]:
        """X-Registry-Auth for *reference* when the auth files hold credentials for it."""
        if self.auth is None:
            return {}
        try:
            found = self.auth(parse(reference))
        except PsquadletError:
            return {}
        if found is None:
            return {}
        config = json.dumps({"username": found[0], "password": found[1]}).encode()
        return {"X-Registry-Auth": base64.urlsafe_b64encode(config).decode()}

    def tag(self, image_id: str, repo: ImageRef) -> None:
        try:
            ok = self.client.images.get(image_id).tag(repo.name, repo.tag or "latest")
        except _ERRORS as e:
            raise self._fail(f"tag {image_id[:12]} as {repo}", e) from e
        if not ok:
            raise ImagesError(f"podman refused to tag {image_id[:12]} as {repo}")

    def untagged_image_ids(self, repo: ImageRef) -> Sequence[str]:
        try:
            images = self.client.images.list()
        except _ERRORS as e:
            raise self._fail("list images", e) from e
        out = []
        for img in images:
            attrs = img.attrs
            tags = [t for t in (attrs.get("RepoTags") or ()) if t and "<none>" not in t]
            names = {str(rd).partition("@")[0] for rd in (attrs.get("RepoDigests") or ())}
            if repo.name in names and not tags:
                out.append(str(attrs.get("Id") or img.id))
        return out

    def remove(self, image_id: str) -> bool:
        try:
            result = self.client.images.remove(image_id)
        except (ImageNotFound, NotFound):
            return False
        except APIError as e:
            if (
                getattr(e, "status_code", None) == 409
                or "in use" in str(e)
                or "more than one tag" in str(e)
            ):  # tagged on purpose: keep it
                return False
            raise self._fail(f"remove {image_id[:12]}", e) from e
        except _ERRORS as e:
            raise self._fail(f"remove {image_id[:12]}", e) from e
        return all(r.get("ExitCode", 0) == 0 for r in result)

    def exec(self, container: str, cmd: Sequence[str], timeout: float) -> ExecResult:
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                c = self.client.containers.get(container)
                # demux: without it the output carries the stream framing bytes
                box["result"] = c.exec_run(list(cmd), stdout=True, stderr=True, demux=True)
            except BaseException as e:  # handed back to the caller below
                box["error"] = e

        worker = threading.Thread(target=run, name=f"exec-{container}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            return ExecResult(124, f"health command still running after {timeout:g}s")
        if "error" in box:
            e = box["error"]
            raise self._fail(f"exec in {container}", e) from e
        code, output = box["result"]
        if isinstance(output, tuple):
            output = b"".join(part or b"" for part in output)
        text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
        return ExecResult(int(code if code is not None else -1), text)


def _body_message(text: str) -> str:
    try:
        return str(json.loads(text).get("message", text)).strip()
    except ValueError:
        return text.strip()[:300]


def _explain(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]
