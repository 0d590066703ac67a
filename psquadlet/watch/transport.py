"""The HTTP side of the registry adapter: one connection per request, deadlines that hold,
a cap on every body, redirects, and the HTTPS-then-HTTP probe of an insecure registry.

Only the standard library (http.client, ssl). ``registry.py`` speaks the distribution API and
its auth on top of ``Transport.request``.

Deadlines: a socket timeout bounds each read only, so a server that drips its answer a byte
at a time would hold a request for ever. Every request therefore has a ``Deadline`` (the
earliest of its own, its tag listing's and its pass's); a timer shuts down the request's
sockets when it passes. The sockets are registered as they are made (before the TLS
handshake), not read back from the connection: ``http.client`` hands the socket to the
response and forgets it on ``Connection: close``, which is how a 3 s limit once took 20 s.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

from psquadlet import __version__
from psquadlet.watch.interfaces import RegistryError

USER_AGENT = f"psquadlet/{__version__}"
MAX_BODY = 8 * 1024 * 1024
MAX_REDIRECTS = 5
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Deadline:
    """A point in ``time.monotonic()`` and what the error says once it has passed."""

    at: float
    why: str

    @classmethod
    def after(cls, seconds: float, why: str) -> Deadline:
        return cls(time.monotonic() + max(seconds, 0.0), why)

    def left(self) -> float:
        return self.at - time.monotonic()

    def sooner(self, other: Deadline | None) -> Deadline:
        return other if other is not None and other.at < self.at else self


class BodyTooLarge(RegistryError):
    """An answer over the body cap (whatever its headers claimed)."""


class TlsFailed(Exception):
    """HTTPS was tried on an insecure registry that speaks plain HTTP."""


class _Cutter:
    """The sockets of one request, shut down from the timer thread when its deadline passes.

    A socket registered after the deadline is shut down at once; once the request is over
    (``finish``) the timer touches nothing, so a closed socket's descriptor, reused by then,
    is never shut down.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._done = False
        self.expired = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            if self._done:
                return
            self._socks.append(sock)
            if self.expired:
                _shutdown(sock)

    def cut(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._socks:
                _shutdown(sock)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            self._socks.clear()


def _shutdown(sock: socket.socket) -> None:
    # the plain socket's shutdown, also for an SSLSocket: unblocks a read or a handshake in
    # progress in another thread without touching the TLS object it is using
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _connect(host: str, port: int, timeout: float, cutter: _Cutter) -> socket.socket:
    sock = socket.create_connection((host, port), timeout)
    cutter.add(sock)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _HTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, timeout: float, cutter: _Cutter) -> None:
        super().__init__(host, timeout=timeout)
        self._cutter = cutter
        self._timeout = timeout

    def connect(self) -> None:
        self.sock = _connect(self.host, self.port, self._timeout, self._cutter)


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, timeout: float, cutter: _Cutter, context: ssl.SSLContext) -> None:
        super().__init__(host, timeout=timeout, context=context)
        self._cutter = cutter
        self._ctx = context
        self._timeout = timeout

    def connect(self) -> None:
        raw = _connect(self.host, self.port, self._timeout, self._cutter)
        try:
            sock = self._ctx.wrap_socket(
                raw, server_hostname=self.host, do_handshake_on_connect=False
            )
        except BaseException:
            raw.close()
            raise
        self._cutter.add(sock)  # before the handshake, which a server can drip too
        self.sock = sock
        sock.do_handshake()


class Transport:
    """Requests to registries. ``tls_verify(host)`` False also allows plain HTTP (Podman's
    ``insecure``): HTTPS is tried first and the scheme that worked is kept for the process."""

    def __init__(self, tls_verify: Callable[[str], bool]) -> None:
        self.tls_verify = tls_verify
        self._lock = threading.Lock()
        self._scheme: dict[str, str] = {}
        self.requests = 0  # HTTP requests answered (the bench and tests count them)

    def scheme(self, host: str) -> str:
        """The scheme *host* is spoken to ("https" until a plain-HTTP registry answered)."""
        with self._lock:
            return self._scheme.get(host, "https")

    def request(
        self,
        host: str,
        method: str,
        path: str,
        headers: dict[str, str],
        deadline: Deadline,
        *,
        max_body: int = MAX_BODY,
        scheme: str | None = None,
        tls_host: str | None = None,
        redirects: int = MAX_REDIRECTS,
    ) -> Response:
        """One request; follows redirects (blob storage) without leaking Authorization.

        The whole exchange, redirects included, ends by *deadline*.
        """
        verify = self.tls_verify(tls_host or host)
        if scheme is None:
            with self._lock:
                scheme = self._scheme.get(host)
            if scheme is None:
                if verify:
                    scheme = "https"
                else:
                    try:
                        resp = self._send(
                            "https",
                            host,
                            method,
                            path,
                            headers,
                            verify=verify,
                            deadline=deadline,
                            max_body=max_body,
                        )
                    except TlsFailed:
                        scheme = "http"
                    else:
                        with self._lock:
                            self._scheme[host] = "https"
                        return self._follow(
                            resp,
                            "https",
                            host,
                            method,
                            headers,
                            deadline=deadline,
                            max_body=max_body,
                            redirects=redirects,
                        )
                with self._lock:
                    self._scheme[host] = scheme
        try:
            resp = self._send(
                scheme,
                host,
                method,
                path,
                headers,
                verify=verify,
                deadline=deadline,
                max_body=max_body,
            )
        except TlsFailed as e:  # https was asked for (a redirect, a realm): no fallback
            raise RegistryError(f"{host}: HTTPS asked for, but the server speaks plain HTTP") from e
        return self._follow(
            resp,
            scheme,
            host,
            method,
            headers,
            deadline=deadline,
            max_body=max_body,
            redirects=redirects,
        )

    def _follow(
        self,
        resp: Response,
        scheme: str,
        host: str,
        method: str,
        headers: dict[str, str],
        *,
        deadline: Deadline,
        max_body: int,
        redirects: int,
    ) -> Response:
        if resp.status not in (301, 302, 303, 307, 308) or "location" not in resp.headers:
            return resp
        if redirects <= 0:
            raise RegistryError(f"{host}: too many redirects")
        loc = urllib.parse.urlsplit(resp.headers["location"])
        new_host = loc.netloc or host
        new_scheme = loc.scheme or scheme
        if new_scheme not in ("http", "https"):
            raise RegistryError(f"{host}: redirect to an unusable URL scheme {new_scheme!r}")
        hdrs = dict(headers)
        if new_host != host or new_scheme != scheme:
            # pre-signed storage URLs carry their own auth; a downgrade to http gets none
            hdrs.pop("Authorization", None)
        path = (loc.path or "/") + (f"?{loc.query}" if loc.query else "")
        return self.request(
            new_host,
            "GET" if resp.status == 303 else method,
            path,
            hdrs,
            deadline,
            max_body=max_body,
            scheme=new_scheme,
            tls_host=host,
            redirects=redirects - 1,
        )

    def _send(
        self,
        scheme: str,
        host: str,
        method: str,
        path: str,
        headers: dict[str, str],
        *,
        verify: bool,
        deadline: Deadline,
        max_body: int,
    ) -> Response:
        left = deadline.left()
        if left <= 0:
            raise RegistryError(f"{host}: {deadline.why}")
        cutter = _Cutter()
        conn: http.client.HTTPConnection
        if scheme == "https":
            ctx = ssl.create_default_context()
            if not verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            conn = _HTTPSConnection(host, left, cutter, ctx)
        else:
            conn = _HTTPConnection(host, left, cutter)
        hdrs = {"User-Agent": USER_AGENT, **headers}
        timer = threading.Timer(left, cutter.cut)
        timer.daemon = True
        timer.start()
        raw: http.client.HTTPResponse | None = None
        try:
            conn.request(method, path, headers=hdrs)
            raw = conn.getresponse()
            with self._lock:
                self.requests += 1  # answered ones (not the HTTPS probe of a plain registry)
            length = raw.getheader("content-length") or ""
            if length.isdigit() and int(length) > max_body:
                raise BodyTooLarge(f"{host}: {path}: answer of {length} bytes is too large")
            body = b"" if method == "HEAD" else _read_body(raw, host, path, max_body)
            if cutter.expired:
                raise socket.timeout()
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, body)
        except RegistryError:
            if cutter.expired:
                raise RegistryError(f"{host}: {deadline.why}") from None
            raise
        except ssl.SSLError as e:
            if cutter.expired:
                raise RegistryError(f"{host}: {deadline.why}") from e
            if not verify and scheme == "https" and _looks_plain_http(e):
                raise TlsFailed() from e
            raise RegistryError(f"{host}: TLS error: {e.reason or e}") from e
        except (socket.timeout, TimeoutError) as e:
            raise RegistryError(f"{host}: {deadline.why}") from e
        except ConnectionRefusedError as e:
            raise RegistryError(f"{host}: connection refused (registry down?)") from e
        except (http.client.HTTPException, OSError, ValueError) as e:
            if cutter.expired:
                raise RegistryError(f"{host}: {deadline.why}") from e
            detail = getattr(e, "strerror", None) or str(e) or type(e).__name__
            raise RegistryError(f"{host}: connection failed: {detail}") from e
        finally:
            timer.cancel()
            cutter.finish()
            if raw is not None:
                raw.close()
            conn.close()


def _read_body(raw: http.client.HTTPResponse, host: str, path: str, max_body: int) -> bytes:
    """At most *max_body* bytes, whatever Content-Length or chunking claim; more is an error.

    With a Content-Length, a short body raises IncompleteRead instead of passing as data.
    """
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = raw.read1(_READ_CHUNK)
        if not chunk:
            if raw.length:  # closed before the announced length: not data
                raise http.client.IncompleteRead(b"".join(parts), raw.length)
            return b"".join(parts)
        size += len(chunk)
        if size > max_body:
            raise BodyTooLarge(f"{host}: {path}: answer larger than {max_body} bytes")
        parts.append(chunk)


def _looks_plain_http(e: ssl.SSLError) -> bool:
    return any(
        s in str(e).upper()
        for s in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNEXPECTED_EOF", "HTTP_REQUEST")
    )
