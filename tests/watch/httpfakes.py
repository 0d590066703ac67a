"""Small HTTP servers for faults a real registry cannot produce on demand.

``FakeServer`` answers by path prefix (hang, 5xx, token services, redirects).
``CuttingProxy`` forwards to the real loopback registry and, when asked, cuts blob
downloads in the middle, which is a pull killed halfway as Podman sees it.
"""

from __future__ import annotations

import http.client
import http.server
import threading
from typing import Callable

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


class FakeServer:
    """Serves each request with the handler for its path prefix; records requests."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def _any(self) -> None:
                fake.seen.append((self.command, self.path, dict(self.headers)))
                fake.handle(self)

            do_GET = do_HEAD = _any

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        for prefix, fn in self.routes.items():
            if h.path.startswith(prefix):
                fn(h)
                return
        reply(404)(h)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def reply(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Handler:
    def fn(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    return fn


def needs_basic(then: Handler) -> Handler:
    """A 401 Basic challenge to requests without Authorization; *then* for the others."""

    def fn(h: http.server.BaseHTTPRequestHandler) -> None:
        if h.headers.get("Authorization"):
            then(h)
        else:
            reply(401, {"WWW-Authenticate": 'Basic realm="fake"'})(h)

    return fn


def drip(status: int, rest: bytes, every: float, stop: threading.Event) -> Handler:
    """The status line, then *rest* (header lines, blank line, body) one byte per *every*
    seconds: each read returns in time, so only an overall deadline ends the request."""

    def fn(h: http.server.BaseHTTPRequestHandler) -> None:
        h.wfile.write(f"HTTP/1.1 {status} OK\r\n".encode())
        h.wfile.flush()
        for byte in rest:
            if stop.wait(every):
                break
            try:
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
            except OSError:
                break
        h.close_connection = True

    return fn


def flood(head: bytes, total: int, chunked: bool = False) -> Handler:
    """A body of *total* bytes (zeros) after *head*, optionally in HTTP chunks."""

    def fn(h: http.server.BaseHTTPRequestHandler) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n")
        block = b"0" * 65536
        sent = 0
        try:
            while sent < total:
                part = block[: total - sent]
                if chunked:
                    h.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                else:
                    h.wfile.write(part)
                sent += len(part)
            if chunked:
                h.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client stopped reading: what we want
        h.close_connection = True

    return fn


class CuttingProxy(FakeServer):
    """Forwards to *upstream*; with ``cut_blobs`` set, blob bodies stop half-way."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.cut_blobs = False
        self.cuts = 0
        super().__init__({})

    def handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            # header by header: clients send several Accept lines, a dict would keep one
            conn.putrequest(h.command, h.path, skip_accept_encoding=True)
            for k, v in h.headers.items():
                if k.lower() != "host":
                    conn.putheader(k, v)
            conn.endheaders()
            resp = conn.getresponse()
            body = resp.read() if h.command != "HEAD" else b""
            cut = self.cut_blobs and h.command == "GET" and "/blobs/" in h.path and body
            h.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    h.send_header(k, v)
            length = resp.getheader("content-length") or str(len(body))
            h.send_header("Content-Length", length)
            if cut:
                h.send_header("Connection", "close")
            h.end_headers()
            if cut:
                self.cuts += 1
                h.wfile.write(body[: len(body) // 2])
                h.wfile.flush()
                h.close_connection = True
                return
            h.wfile.write(body)
        finally:
            conn.close()
