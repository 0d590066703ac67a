"""The registry side of a check: one HEAD of a manifest, over the OCI distribution API.

Only the standard library (http.client, ssl): the check must be cheap to import and exactly
the requests we mean to send. Docker Hub counts a GET of a manifest as a pull (anonymous
limit: 10 pulls per hour per IPv4 address or IPv6 /64 subnet) but not a HEAD, so the check
is a HEAD; GETs (manifest, config blob) happen only to read an image's creation time, and
only once a change was seen.

Auth: the ``WWW-Authenticate: Bearer`` token flow of Docker Hub and GHCR (anonymous, or with
the credentials of the containers auth file, read by ``credentials.py``), and Basic for
htpasswd registries. Tokens are cached for their lifetime so a long-running watcher does not
fetch one per check.

Credentials leave the process only after the registry asked for them (a 401 challenge), only
over HTTPS or to a registry marked ``tls_verify = false``, and a token realm gets them only
over HTTPS or on the registry's own host and scheme. Redirects drop them on any change of
host or scheme.

Limits (the HTTP side is ``transport.py``): every request ends by its deadline (``timeout``,
the socket is cut, also against a server that drips its answer), reads at most ``MAX_BODY``
bytes whatever its headers claim; a tag listing ends by ``listing_timeout`` over all its
pages and reads at most ``MAX_LISTING_BYTES``; ``within(seconds)`` is the same registry with
every request also ending by a pass's deadline (``budget.PassRegistry``). Tag names are
checked against the distribution spec (``imageref.is_tag``).
"""

from __future__ import annotations

import base64
import calendar
import copy
import hashlib
import json
import platform
import re
import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any, Callable

from psquadlet.host import oci_arch
from psquadlet.imageref import ImageRef, is_tag
from psquadlet.watch.credentials import Credentials, auth_file_candidates
from psquadlet.watch.digests import describe, is_digest
from psquadlet.watch.headers import next_page, parse_challenge
from psquadlet.watch.interfaces import RegistryError, RemoteImage
from psquadlet.watch.transport import MAX_BODY, BodyTooLarge, Deadline, Response, Transport

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join(MANIFEST_TYPES)
DEFAULT_TIMEOUT = 30.0
DEFAULT_LISTING_TIMEOUT = 120.0  # all the pages of one tag listing
MAX_TAG_PAGES = 100  # a tags listing of more pages than this is refused, not followed forever
MAX_TAGS = 100_000
# 100,000 tags of the spec's longest (128 characters) in JSON: about 13 MB
MAX_LISTING_BYTES = 16 * 1024 * 1024
__all__ = [
    "MAX_BODY",
    "Credentials",
    "HttpRegistry",
    "Response",
    "next_page",
    "parse_challenge",
    "parse_rfc3339",
    "registry_from_config",
]


def host_platform() -> tuple[str, str]:
    return "linux", oci_arch(platform.machine())


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


def parse_rfc3339(text: str) -> float:
    """Epoch seconds of an RFC 3339 time as Go writes it (nanoseconds, Z or offset)."""
    m = _RFC3339.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    frac = float(m.group(7)) if m.group(7) else 0.0
    epoch = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + frac
    tz = m.group(8)
    if tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        epoch -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return epoch


class HttpRegistry:
    """The real Registry adapter.

    ``tls_verify(host)`` says whether to verify TLS for a registry; when it is False the
    registry may also speak plain HTTP (like Podman's ``insecure``): HTTPS is tried first, and
    the scheme that worked is remembered for the process.
    """

    def __init__(
        self,
        tls_verify: Callable[[str], bool] | None = None,
        credentials: Credentials | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        target_platform: tuple[str, str] | None = None,
        listing_timeout: float = DEFAULT_LISTING_TIMEOUT,
    ) -> None:
        self.tls_verify = tls_verify or (lambda host: True)
        self.credentials = credentials or Credentials([])
        self.timeout = timeout
        self.listing_timeout = listing_timeout
        self.platform = target_platform or host_platform()
        self.transport = Transport(self.tls_verify)
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._basic_hosts: set[str] = set()
        self._limit: Deadline | None = None  # a pass's deadline (``within``)

    @property
    def requests(self) -> int:
        """HTTP requests answered (the bench and tests count them)."""
        return self.transport.requests

    def within(self, seconds: float) -> HttpRegistry:
        """This registry (same tokens, schemes and counters) with every request also ending
        within *seconds*: what is left of a pass's time for registry checks."""
        view = copy.copy(self)
        view._limit = Deadline.after(
            seconds, "not done: the pass's time for registry checks ran out"
        ).sooner(self._limit)
        return view

    # -- public ------------------------------------------------------------------------
    def head(self, repo: ImageRef) -> RemoteImage:
        path = f"/v2/{repo.repository}/manifests/{repo.reference}"
        resp = self._authed(repo, "HEAD", path, {"Accept": ACCEPT})
        digest = resp.headers.get("docker-content-digest", "")
        media_type = resp.headers.get("content-type", "").split(";")[0].strip()
        if not digest:
            # A registry that does not say the digest on HEAD (rare): the body decides.
            resp = self._authed(repo, "GET", path, {"Accept": ACCEPT})
            digest = resp.headers.get("docker-content-digest", "")
            if not digest:
                if not resp.body.strip():
                    raise RegistryError(
                        f"{repo}: the registry gave neither a digest nor a manifest"
                    )
                digest = "sha256:" + hashlib.sha256(resp.body).hexdigest()
        return RemoteImage(_checked_digest(repo, digest, "digest"), media_type)

    def tags(self, repo: ImageRef) -> list[str]:
        """Every tag of the repository: ``GET /v2/NAME/tags/list``, following ``Link`` pages.

        Same auth, TLS and per-request limits as the HEAD; the whole listing ends by
        ``listing_timeout`` and reads at most MAX_LISTING_BYTES over at most MAX_TAG_PAGES
        pages and MAX_TAGS tags; a page link to another host or a repeated page is a
        RegistryError. Names that are not tags by the distribution spec are left out.
        """
        path = f"/v2/{repo.repository}/tags/list"
        limit = Deadline.after(
            self.listing_timeout,
            f"the tag listing took longer than {self.listing_timeout:g}s (timed out)",
        ).sooner(self._limit)
        budget = MAX_LISTING_BYTES
        seen: set[str] = set()
        out: list[str] = []
        for _ in range(MAX_TAG_PAGES):
            seen.add(path)
            cap = min(MAX_BODY, budget)
            try:
                resp = self._authed(
                    repo, "GET", path, {"Accept": "application/json"}, limit=limit, max_body=cap
                )
            except BodyTooLarge as e:
                if cap < MAX_BODY:
                    raise RegistryError(
                        f"{repo}: the tag listing is larger than {MAX_LISTING_BYTES} bytes; "
                        "not listed"
                    ) from e
                raise
            budget -= len(resp.body)
            try:
                data = json.loads(resp.body)
            except (ValueError, RecursionError) as e:
                raise RegistryError(f"{repo.registry}: {path}: not JSON") from e
            tags = data.get("tags") if isinstance(data, dict) else None
            if tags is None:
                tags = []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise RegistryError(f"{repo.registry}: {path}: 'tags' is not a list of strings")
            out.extend(t for t in tags if is_tag(t))
            if len(out) > MAX_TAGS:
                raise RegistryError(f"{repo}: more than {MAX_TAGS} tags; not listed")
            nxt = next_page(resp.headers.get("link", ""))
            if not nxt:
                return out
            loc = urllib.parse.urlsplit(nxt)
            if loc.netloc and loc.netloc != repo.api_host:
                raise RegistryError(f"{repo.registry}: tags page link to another host {nxt!r}")
            path = (loc.path or "/") + (f"?{loc.query}" if loc.query else "")
            if path in seen:
                raise RegistryError(f"{repo.registry}: tags page link loops back to {path}")
        raise RegistryError(f"{repo}: more than {MAX_TAG_PAGES} pages of tags; not listed")

    def created(self, repo: ImageRef, digest: str) -> float:
        digest = _checked_digest(repo, digest, "digest")
        manifest = self._get_json(repo, f"/v2/{repo.repository}/manifests/{digest}")
        if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
            instance = self._pick_platform(manifest, repo)
            manifest = self._get_json(repo, f"/v2/{repo.repository}/manifests/{instance}")
        config = manifest.get("config")
        if not isinstance(config, dict) or not config.get("digest"):
            raise RegistryError(f"{repo}: manifest {digest} has no config blob")
        blob_digest = _checked_digest(repo, config["digest"], "config digest")
        blob = self._get_json(repo, f"/v2/{repo.repository}/blobs/{blob_digest}")
        created = blob.get("created")
        if not isinstance(created, str):
            raise RegistryError(
                f"{repo}: image {digest} does not record when it was created; "
                "min_age cannot be enforced"
            )
        try:
            return parse_rfc3339(created)
        except ValueError as e:
            raise RegistryError(f"{repo}: image {digest}: {e}") from e

    # -- internals ---------------------------------------------------------------------
    def _pick_platform(self, index: Mapping[str, Any], repo: ImageRef) -> str:
        want_os, want_arch = self.platform
        entries = index.get("manifests")
        for entry in entries if isinstance(entries, list) else ():
            plat = entry.get("platform") if isinstance(entry, dict) else None
            if not isinstance(plat, dict):
                continue
            if plat.get("os") == want_os and plat.get("architecture") == want_arch:
                return _checked_digest(repo, entry.get("digest"), "platform manifest digest")
        raise RegistryError(f"{repo}: the index has no image for {want_os}/{want_arch}")

    def _get_json(self, repo: ImageRef, path: str) -> dict[str, Any]:
        resp = self._authed(repo, "GET", path, {"Accept": ACCEPT})
        try:
            data = json.loads(resp.body)
        except (ValueError, RecursionError) as e:
            raise RegistryError(f"{repo.registry}: {path}: not JSON") from e
        if not isinstance(data, dict):
            raise RegistryError(f"{repo.registry}: {path}: not a JSON object")
        return data

    def _authed(
        self,
        repo: ImageRef,
        method: str,
        path: str,
        headers: dict[str, str],
        *,
        limit: Deadline | None = None,
        max_body: int = MAX_BODY,
    ) -> Response:
        host = repo.api_host
        limit = self._limit if limit is None else limit.sooner(self._limit)
        scope = f"repository:{repo.repository}:pull"
        creds = self.credentials.lookup(repo)
        hdrs = dict(headers)
        auth = self._cached_auth(host, scope, creds)
        if auth:
            hdrs["Authorization"] = auth
        resp = self._request(host, method, path, hdrs, limit, max_body=max_body)
        if resp.status == 401:
            challenge = resp.headers.get("www-authenticate", "")
            scheme, params = parse_challenge(challenge)
            if scheme == "bearer" and params.get("realm"):
                token = self._fetch_token(host, params, scope, creds, limit)
                hdrs["Authorization"] = f"Bearer {token}"
                resp = self._request(host, method, path, hdrs, limit, max_body=max_body)
            elif (
                scheme == "basic"
                and creds
                and "Authorization" not in hdrs
                and self._may_send_basic(host)
            ):
                with self._lock:
                    self._basic_hosts.add(host)
                hdrs["Authorization"] = _basic(creds[0], creds[1])
                resp = self._request(host, method, path, hdrs, limit, max_body=max_body)
        return self._check(repo, method, path, resp, creds)

    def _cached_auth(self, host: str, scope: str, creds: tuple[str, str, str] | None) -> str:
        now = time.monotonic()
        with self._lock:
            token = self._tokens.get((host, scope))
            if token and token[1] > now:
                return f"Bearer {token[0]}"
            if creds and host in self._basic_hosts:  # it challenged us for Basic before
                return _basic(creds[0], creds[1])
        return ""

    def _may_send_basic(self, host: str) -> bool:
        """Credentials go to the registry over HTTPS, or in clear only where allowed."""
        return self.transport.scheme(host) == "https" or not self.tls_verify(host)

    def _fetch_token(
        self,
        host: str,
        params: dict[str, str],
        scope: str,
        creds: tuple[str, str, str] | None,
        limit: Deadline | None,
    ) -> str:
        realm = urllib.parse.urlsplit(params["realm"])
        if realm.scheme not in ("http", "https") or not realm.netloc:
            raise RegistryError(f"{host}: unusable token realm {params['realm']!r}")
        query = []
        if params.get("service"):
            query.append(("service", params["service"]))
        query.append(("scope", params.get("scope") or scope))
        path = (realm.path or "/") + "?" + urllib.parse.urlencode(query)
        if realm.query:
            path += "&" + realm.query
        hdrs = {}
        if creds and self._may_send_to_realm(host, realm):
            hdrs["Authorization"] = _basic(creds[0], creds[1])
        resp = self._request(
            realm.netloc, "GET", path, hdrs, limit, scheme=realm.scheme, tls_host=host
        )
        if resp.status == 401:
            where = f" (credentials from {creds[2]})" if creds else " (anonymous)"
            raise RegistryError(f"{host}: token request refused, HTTP 401{where}")
        if resp.status != 200:
            raise RegistryError(f"{host}: token request failed, HTTP {resp.status}")
        try:
            data = json.loads(resp.body)
            token = data.get("token") or data.get("access_token")
            lifetime = float(data.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError) as e:
            raise RegistryError(f"{host}: malformed token response from {realm.netloc}") from e
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{host}: token response from {realm.netloc} has no token")
        with self._lock:
            # renew a little early; never trust a lifetime under 10 s for caching
            self._tokens[(host, params.get("scope") or scope)] = (
                token,
                time.monotonic() + max(lifetime - 10, 0),
            )
        return token

    def _may_send_to_realm(self, host: str, realm: urllib.parse.SplitResult) -> bool:
        """HTTPS anywhere; plain HTTP only on the registry's own host and scheme, if allowed."""
        if realm.scheme == "https":
            return True
        scheme = self.transport.scheme(host)
        return realm.netloc == host and realm.scheme == scheme and self._may_send_basic(host)

    def _check(
        self,
        repo: ImageRef,
        method: str,
        path: str,
        resp: Response,
        creds: tuple[str, str, str] | None,
    ) -> Response:
        if 200 <= resp.status < 300:
            return resp
        what = f"{repo.registry}: {method} {path}"
        if resp.status == 401:
            where = f"credentials from {creds[2]}" if creds else "no credentials configured"
            raise RegistryError(f"{what}: HTTP 401 unauthorized ({where})")
        if resp.status == 403:
            raise RegistryError(f"{what}: HTTP 403 forbidden")
        if resp.status == 404:
            raise RegistryError(f"{what}: HTTP 404, {repo} does not exist in the registry")
        if resp.status == 429:
            raise RegistryError(f"{what}: HTTP 429, rate limited by the registry")
        raise RegistryError(f"{what}: HTTP {resp.status} from the registry")

    def _request(
        self,
        host: str,
        method: str,
        path: str,
        headers: dict[str, str],
        limit: Deadline | None,
        *,
        max_body: int = MAX_BODY,
        scheme: str | None = None,
        tls_host: str | None = None,
    ) -> Response:
        """One request (and its redirects), ending by ``timeout`` or *limit*, the sooner."""
        deadline = Deadline.after(
            self.timeout, f"no answer within {self.timeout:g}s (timed out)"
        ).sooner(limit)
        return self.transport.request(
            host,
            method,
            path,
            headers,
            deadline,
            max_body=max_body,
            scheme=scheme,
            tls_host=tls_host,
        )


def _checked_digest(repo: ImageRef, value: object, what: str) -> str:
    if not is_digest(value):
        raise RegistryError(
            f"{repo}: the registry sent an invalid {what} {describe(value)} "
            "(expected sha256:<64 hex> or sha512:<128 hex>)"
        )
    assert isinstance(value, str)
    return value


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def registry_from_config(config: Any, timeout: float = DEFAULT_TIMEOUT) -> HttpRegistry:
    """The adapter for a Config: per-registry TLS settings, auth file search order."""
    settings = {r.host: r.tls_verify for r in config.registries}
    creds = Credentials(auth_file_candidates(config.watch.auth_file))
    return HttpRegistry(
        tls_verify=lambda host: settings.get(host, True),
        credentials=creds,
        timeout=timeout,
        listing_timeout=listing_timeout_for(timeout),
    )


def listing_timeout_for(timeout: float) -> float:
    """A tag listing's deadline for a request deadline: a few pages' worth at least."""
    return max(DEFAULT_LISTING_TIMEOUT, 4 * timeout)
