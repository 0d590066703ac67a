"""Real receivers on loopback: an SMTP sink (aiosmtpd) and a JSON webhook (http.server)."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
from typing import Any

from tests.support import unavailable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpSink:
    """aiosmtpd accepting every message; ``start``/``stop`` may be called again (same port)."""

    def __init__(self, port: int | None = None) -> None:
        try:
            from aiosmtpd.controller import Controller
            from aiosmtpd.smtp import AuthResult
        except ImportError:
            unavailable("aiosmtpd is not installed (pip install 'psquadlet[test]')")
        self.port = port or free_port()
        self.messages: list[str] = []
        self._controller_class = Controller
        self._accept = AuthResult(success=True)
        self.logins: list[str] = []
        self.controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content.decode("utf-8", errors="replace"))
        return "250 OK"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        self.logins.append(mechanism)
        return self._accept

    def start(self) -> None:
        self.controller = self._controller_class(
            self,
            hostname="127.0.0.1",
            port=self.port,
            auth_require_tls=False,  # loopback only: accept AUTH in plain text
            authenticator=self._authenticate,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def url(self, secret: str = "") -> str:
        auth = f"psq:{secret}@" if secret else ""
        return f"mailto://{auth}127.0.0.1:{self.port}?from=psquadlet@example.org&to=ops@example.org"


class Webhook:
    """A JSON receiver; ``hang`` makes it accept connections and never answer."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.hang = threading.Event()
        self.release = threading.Event()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if hook.hang.is_set():
                    hook.release.wait(30)
                    return
                hook.received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.release.set()
        with contextlib.suppress(Exception):
            self.server.shutdown()
        self.server.server_close()
