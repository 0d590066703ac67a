"""A real CNCF distribution registry (`docker-registry serve`) on loopback, for tests.

Why a real one: the watcher's value is in how few and which requests it makes (HEAD, not GET,
of manifests) and how it behaves when the registry goes away. A fake would only prove that the
fake agrees with us. The registry's own access log is the record of what was asked.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGISTRY_BIN = "docker-registry"
# User-Agent of the requests this module makes itself; `requests()` leaves them out.
TEST_AGENT = "psquadlet-tests"

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)

# Gorilla's combined access log line, which the registry prints for every request
# (including the 401s an auth section produces, which its JSON log reports differently).
_ACCESS_RE = re.compile(
    r'^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<when>[^\]]+)\] "(?P<method>[A-Z]+) (?P<path>\S+) '
    r'[^"]*" (?P<status>\d{3}) \S+ "[^"]*" "(?P<agent>[^"]*)"'
)


@dataclass(frozen=True)
class RegistryRequest:
    """One HTTP request the registry served, as its access log recorded it."""

    method: str
    path: str
    status: int
    user: str = "-"
    user_agent: str = ""

    @property
    def is_manifest(self) -> bool:
        return "/manifests/" in self.path

    @property
    def is_blob(self) -> bool:
        return "/blobs/" in self.path


def free_port() -> int:
    """A TCP port nobody listens on right now (racy, but only loopback tests use it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_access_log(text: str) -> list[RegistryRequest]:
    out = []
    for line in text.splitlines():
        m = _ACCESS_RE.match(line)
        if m:
            out.append(
                RegistryRequest(
                    method=m["method"],
                    path=m["path"],
                    status=int(m["status"]),
                    user=m["user"],
                    user_agent=m["agent"],
                )
            )
    return out


# The realistic tag set of issue 13: upstream's release tags of both variants, a pre-release,
# the next minor and major, and the moving tags (shared by the tests and bench/).
UPSTREAM_TAGS = (
    "v5.1.4",
    "v5.2.0",
    "v5.2.1",
    "v5.2.1-systemd",
    "v5.3.0-rc1-systemd",
    "v5.3.0-systemd",
    "v6.0.0-systemd",
    "latest",
    "systemd",
)


class Registry:
    """A `docker-registry serve` process of our own on 127.0.0.1.

    `stop()` and `start()` keep the storage and the port, so a test can take the registry away
    in the middle of something and bring it back with the same images.
    """

    def __init__(
        self,
        port: int | None = None,
        workdir: str | os.PathLike[str] | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        if shutil.which(REGISTRY_BIN) is None:
            raise RuntimeError(
                f"{REGISTRY_BIN} not found: run scripts/test-deps (apt package docker-registry)"
            )
        self.port = port if port is not None else free_port()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="psquadlet-registry-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage = self.workdir / "storage"
        self.log_path = self.workdir / "registry.log"
        self.config_path = self.workdir / "config.yml"
        self.users = dict(users or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()
        atexit.register(self._atexit)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    def _write_config(self) -> None:
        auth: dict[str, object] = {}
        if self.users:
            htpasswd = self.workdir / "htpasswd"
            lines = []
            for user, password in sorted(self.users.items()):
                res = subprocess.run(
                    ["htpasswd", "-Bbn", user, password],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                lines.append(res.stdout.strip())
            htpasswd.write_text("\n".join(lines) + "\n")
            auth = {"htpasswd": {"realm": "psquadlet-tests", "path": str(htpasswd)}}
        # JSON is valid YAML: no yaml dependency, no quoting questions.
        base = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "json", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "secret": "psquadlet-tests"},
        }
        if auth:
            base["auth"] = auth
        self.config_path.write_text(json.dumps(base, indent=2) + "\n")

    def start(self, timeout: float = 15.0) -> Registry:
        if self.running:
            return self
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self._proc = subprocess.Popen(
                [REGISTRY_BIN, "serve", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C goes to pytest, which then stops us in order
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"docker-registry exited with {self._proc.returncode}:\n"
                    + self.log_path.read_text(errors="replace")[-3000:]
                )
            try:
                probe = urllib.request.Request(
                    self.url + "/v2/", headers={"User-Agent": TEST_AGENT}
                )
                urllib.request.urlopen(probe, timeout=1).close()
                return self
            except urllib.error.HTTPError as e:
                if e.code == 401:  # auth enabled: it answers, that is all we need
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer on {self.url} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop and forget the scratch storage (only if we created it)."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _atexit(self) -> None:
        self.stop()

    # ------------------------------------------------------------------ inspection
    def requests(self, since: int = 0, include_own: bool = False) -> list[RegistryRequest]:
        """Every request served so far (after position `since`, see `mark`), in order.

        The test support's own probes are left out unless `include_own`.
        """
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        reqs = parse_access_log(text)[since:]
        if include_own:
            return reqs
        return [r for r in reqs if r.user_agent != TEST_AGENT]

    def mark(self) -> int:
        """A position to pass to `requests(since=...)` to see only later requests."""
        return len(self.requests(include_own=True))

    def manifest_digest(self, repo: str, tag: str) -> str | None:
        """The digest the registry serves for repo:tag (HEAD; None if unknown)."""
        req = urllib.request.Request(
            f"{self.url}/v2/{repo}/manifests/{tag}",
            method="HEAD",
            headers={"Accept": MANIFEST_ACCEPT, "User-Agent": TEST_AGENT},
        )
        if self.users:
            import base64

            user, password = next(iter(sorted(self.users.items())))
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                digest = resp.headers.get("Docker-Content-Digest")
                return str(digest) if digest else None
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def manifest(self, repo: str, ref: str) -> dict[str, Any]:
        """The manifest the registry serves for repo:ref (tag or digest), parsed."""
        req = urllib.request.Request(
            f"{self.url}/v2/{repo}/manifests/{ref}",
            headers={"Accept": MANIFEST_ACCEPT, "User-Agent": TEST_AGENT},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            data = json.loads(resp.read())
        assert isinstance(data, dict)
        return data

    def break_blobs(self, digests: list[str]) -> None:
        """Remove blobs from the storage behind the registry's back.

        Manifests still resolve (a HEAD or a check succeeds) but a pull of an image that
        needs these blobs fails half-way: a registry that breaks during a pass.
        """
        for digest in digests:
            algo, _, hexpart = digest.partition(":")
            blob_dir = self.storage / "docker/registry/v2/blobs" / algo / hexpart[:2] / hexpart
            data = blob_dir / "data"
            if not data.is_file():
                raise FileNotFoundError(f"no blob {digest} in {self.storage}")
            data.unlink()

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def retag(self, repo: str, source_tag: str, *tags: str) -> None:
        """Give the manifest of repo:source_tag more tags (GET it, PUT it under each tag).

        Plain HTTP against the registry API: hundreds of tags in a second, no podman push.
        """
        get = urllib.request.Request(
            f"{self.url}/v2/{repo}/manifests/{source_tag}",
            headers={"Accept": MANIFEST_ACCEPT, "User-Agent": TEST_AGENT},
        )
        with urllib.request.urlopen(get, timeout=10) as resp:
            body = resp.read()
            media_type = resp.headers.get("Content-Type", "")
        for tag in tags:
            put = urllib.request.Request(
                f"{self.url}/v2/{repo}/manifests/{tag}",
                data=body,
                method="PUT",
                headers={"Content-Type": media_type, "User-Agent": TEST_AGENT},
            )
            urllib.request.urlopen(put, timeout=10).close()


class PagingProxy:
    """A FAKE in front of the real registry that pages ``/v2/NAME/tags/list``.

    Debian's docker-registry 2.8 ignores ``n``/``last`` and never sends ``Link``, so paging
    (what GHCR and Docker Hub do) cannot be tested against it directly. This loopback proxy
    forwards every request to the registry unchanged except the tags listing, which it cuts
    into pages of ``page_size`` tags (sorted, as the distribution spec says), each with a
    ``Link: </v2/NAME/tags/list?n=N&last=TAG>; rel="next"`` header while more remain.
    ``pages`` counts the listing pages served.
    """

    def __init__(self, upstream: Registry, page_size: int = 3) -> None:
        import http.server
        import threading

        self.upstream = upstream
        self.page_size = page_size
        self.pages = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self._forward(send_body=False)

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if path.endswith("/tags/list"):
                    proxy._page(self, path, query)
                else:
                    self._forward(send_body=True)

            def _forward(self, send_body: bool) -> None:
                req = urllib.request.Request(
                    upstream.url + self.path,
                    method=self.command,
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                )
                try:
                    resp = urllib.request.urlopen(req, timeout=10)
                except urllib.error.HTTPError as e:
                    resp = e
                body = resp.read()
                self.send_response(resp.status if hasattr(resp, "status") else resp.code)
                for k, v in resp.headers.items():
                    if k.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def _page(self, handler: Any, path: str, query: str) -> None:
        import urllib.parse

        req = urllib.request.Request(self.upstream.url + path, headers={"User-Agent": TEST_AGENT})
        with urllib.request.urlopen(req, timeout=10) as resp:
            data = json.loads(resp.read())
        tags = sorted(data.get("tags") or [])
        params = dict(urllib.parse.parse_qsl(query))
        n = int(params.get("n", self.page_size))
        last = params.get("last")
        start = 0 if last is None else next((i + 1 for i, t in enumerate(tags) if t == last), 0)
        page = tags[start : start + n]
        self.pages += 1
        body = json.dumps({"name": data.get("name"), "tags": page}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        if start + n < len(tags):
            nxt = urllib.parse.urlencode({"n": n, "last": page[-1]})
            handler.send_header("Link", f'<{path}?{nxt}>; rel="next"')
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
