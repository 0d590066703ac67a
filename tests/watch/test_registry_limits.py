"""Issue 17 item 5: time and size limits that hold.

A request's deadline (also when the server answers ``Connection: close`` and drips the body),
one deadline over a tag listing's pages, one budget of registry time per pass, a listing
bounded in bytes, tag names checked against the distribution spec. The slow and hostile
servers are the small loopback fakes of ``httpfakes``: a real registry cannot drip on demand.
Bounds are generous (CI runs on 2 busy cores): each asserts a fraction of what the unbounded
code took.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from httpfakes import FakeServer, Handler, reply
from watchfakes import FakeClock, FakeImages, FakeUnits, ListLog, MemoryStore

from psquadlet.imageref import ImageRef, parse
from psquadlet.watch import core
from psquadlet.watch.budget import PassRegistry
from psquadlet.watch.interfaces import RegistryError, RemoteImage
from psquadlet.watch.registry import MAX_BODY, HttpRegistry
from psquadlet.watch.targets import Target

DIGEST = "sha256:" + "e" * 64
OCI = "application/vnd.oci.image.manifest.v1+json"


def insecure(host: str) -> bool:
    return False


@pytest.fixture
def fake() -> Iterator[Callable[[dict[str, Handler]], FakeServer]]:
    servers: list[FakeServer] = []

    def make(routes: dict[str, Handler]) -> FakeServer:
        servers.append(FakeServer(routes))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def close_and_drip(head: bytes, body: bytes, every: float, stop: threading.Event) -> Handler:
    """Headers at once with ``Connection: close``, then *body* one byte per *every* seconds:
    http.client hands the socket to the response and forgets it, so only a deadline that
    holds the socket itself ends the request."""

    def fn(h: http.server.BaseHTTPRequestHandler) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n" + head + b"\r\n")
        h.wfile.flush()
        for byte in body:
            if stop.wait(every):
                break
            try:
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
            except OSError:
                break
        h.close_connection = True

    return fn


# --------------------------------------------------------------------------- one request
@pytest.mark.parametrize("what", ["head", "tags"])
def test_connection_close_and_a_dripping_body_are_cut_at_the_request_deadline(
    fake: Any, stop: threading.Event, what: str
) -> None:
    # 20 s of dripping: the 2 s deadline took all of it before the fix
    body = json.dumps({"tags": ["v" * 190]}).encode()[:200]
    head = b"Content-Type: application/json\r\n"
    srv = fake({"/v2/": close_and_drip(head, body, 0.1, stop)})
    reg = HttpRegistry(tls_verify=insecure, timeout=2.0)
    ref = parse(f"{srv.host}/a/b:c")
    start = time.monotonic()
    with pytest.raises(RegistryError, match=r"no answer within 2s \(timed out\)"):
        reg.head(ref) if what == "head" else reg.tags(ref)
    assert time.monotonic() - start < 8


# --------------------------------------------------------------------------- a tag listing
def endless_pages(
    served: list[str], delay: float = 0.0, tag_bytes: int = 4, stop: threading.Event | None = None
) -> Handler:
    """Tag pages that each link to one more, each after *delay* seconds."""

    def fn(h: http.server.BaseHTTPRequestHandler) -> None:
        served.append(h.path)
        if delay and stop is not None:
            stop.wait(delay)
        page = len(served)
        body = json.dumps({"tags": ["t" * tag_bytes]}).encode()
        link = f'</v2/a/b/tags/list?n=1&last=p{page}>; rel="next"'
        reply(200, {"Content-Type": "application/json", "Link": link}, body)(h)

    return fn


def test_a_tag_listing_has_one_deadline_over_all_its_pages(
    fake: Any, stop: threading.Event
) -> None:
    # every page answers within the request deadline; 100 of them took 100 x 0.3 s before
    served: list[str] = []
    srv = fake({"/v2/": endless_pages(served, delay=0.3, stop=stop)})
    reg = HttpRegistry(tls_verify=insecure, timeout=5.0, listing_timeout=2.0)
    start = time.monotonic()
    with pytest.raises(RegistryError, match=r"tag listing took longer than 2s"):
        reg.tags(parse(f"{srv.host}/a/b:c"))
    assert time.monotonic() - start < 10
    assert len(served) < 30


def test_a_tag_listing_is_bounded_in_bytes(fake: Any) -> None:
    # pages of one tag just under MAX_BODY: 100 of them held 777 MiB before the fix
    served: list[str] = []
    srv = fake({"/v2/": endless_pages(served, tag_bytes=MAX_BODY - 100)})
    with pytest.raises(RegistryError, match=r"tag listing is larger than \d+ bytes"):
        HttpRegistry(tls_verify=insecure).tags(parse(f"{srv.host}/a/b:c"))
    assert len(served) <= 3


BAD_NAMES = [
    "v5.2.2-systemd\n",  # counted as a release before (the pattern's `$`)
    "t" * 129,
    "-dash",
    ".dot",
    "caf\u00e9",
    "a b",
    "",
]


def test_names_that_are_not_tags_by_the_distribution_spec_are_left_out(fake: Any) -> None:
    good = ["v5.2.1-systemd", "_x", "t" * 128, "A.b-C_9"]
    body = json.dumps({"tags": [*BAD_NAMES, *good]}).encode()
    srv = fake({"/v2/": reply(200, {"Content-Type": "application/json"}, body)})
    assert HttpRegistry(tls_verify=insecure).tags(parse(f"{srv.host}/a/b:c")) == good


# --------------------------------------------------------------------------- one pass
def _target(name: str, image: str) -> Target:
    return Target(name=name, unit=f"{name}.service", container=name, image=parse(image))


def _deps(registry: Any, budget: float = 300.0, parallel: int = 4) -> core.Deps:
    images = FakeImages()
    return core.Deps(
        registry=registry,
        images=images,
        units=FakeUnits(images),
        clock=FakeClock(),
        store=MemoryStore(),
        log=ListLog(),
        parallel=parallel,
        registry_budget=budget,
    )


def test_one_slow_registry_does_not_stall_the_others_check(
    fake: Any, stop: threading.Event
) -> None:
    slow = fake({"/v2/": close_and_drip(b"", b"x" * 400, 0.05, stop)})
    good = fake({"/v2/": reply(200, {"Docker-Content-Digest": DIGEST, "Content-Type": OCI})})
    reg = HttpRegistry(tls_verify=insecure, timeout=2.0)
    targets = (_target("slow", f"{slow.host}/a/b:c"), _target("good", f"{good.host}/a/b:c"))
    start = time.monotonic()
    report = core.run_pass(targets, _deps(reg), dry_run=True)
    assert time.monotonic() - start < 8  # the drip lasts 20 s
    by_name = {o.name: o for o in report.outcomes}
    assert by_name["slow"].action == core.ERROR
    assert "no answer within 2s" in by_name["slow"].message
    assert by_name["good"].remote_digest == DIGEST


def test_the_pass_budget_cuts_a_request_in_flight(fake: Any, stop: threading.Event) -> None:
    # the request deadline (30 s) would let the drip run; the pass has 1.5 s of registry time
    slow = fake({"/v2/": close_and_drip(b"", b"x" * 400, 0.05, stop)})
    reg = HttpRegistry(tls_verify=insecure, timeout=30.0)
    start = time.monotonic()
    report = core.run_pass(
        (_target("slow", f"{slow.host}/a/b:c"),), _deps(reg, budget=1.5), dry_run=True
    )
    assert time.monotonic() - start < 8
    (o,) = report.outcomes
    assert o.action == core.ERROR
    assert "the pass's time for registry checks ran out" in o.message


class SlowRegistry:
    """Each call takes *cost* seconds of the fake clock."""

    def __init__(self, clock: FakeClock, cost: float) -> None:
        self.clock = clock
        self.cost = cost
        self.calls: list[str] = []

    def head(self, repo: ImageRef) -> RemoteImage:
        self.calls.append(str(repo))
        self.clock.mono += self.cost
        return RemoteImage(DIGEST, OCI)

    def tags(self, repo: ImageRef) -> list[str]:
        raise AssertionError("not used")

    def created(self, repo: ImageRef, digest: str) -> float:
        raise AssertionError("not used")


def test_once_the_budget_is_spent_further_checks_fail_at_once_and_say_why() -> None:
    deps = _deps(None, budget=300.0, parallel=1)
    assert isinstance(deps.clock, FakeClock)
    slow = SlowRegistry(deps.clock, 200.0)
    deps.registry = slow
    targets = tuple(_target(f"c{i}", f"registry.test/r{i}:latest") for i in range(3))
    report = core.run_pass(targets, deps, dry_run=True)
    assert len(slow.calls) == 2  # 200 s + 200 s: the third finds the budget spent
    actions = [o.action for o in report.outcomes]
    assert actions.count(core.ERROR) == 1
    (failed,) = (o for o in report.outcomes if o.action == core.ERROR)
    assert "spent its 300s for registry checks" in failed.message


def test_parallel_calls_count_once_and_time_outside_calls_not_at_all() -> None:
    clock = FakeClock()
    slow = SlowRegistry(clock, 0.0)
    budget = PassRegistry(slow, clock, 10.0)
    first = budget._begin()
    clock.mono += 4
    second = budget._begin()  # overlaps the first: the stretch counts once
    clock.mono += 4
    budget._end()
    budget._end()
    assert (first, second) == (slow, slow)  # no ``within``: the registry itself
    assert budget.spent() == pytest.approx(8.0)
    clock.mono += 100  # an upgrade between checks: not registry time
    assert budget.left() == pytest.approx(2.0)
    budget.head(parse("registry.test/a:b"))
    assert budget.left() == pytest.approx(2.0)  # a head that took no time spent nothing
    slow.cost = 2.5
    budget.head(parse("registry.test/a:b"))  # started with 2 s left, it overran
    with pytest.raises(RegistryError, match="spent its 10s"):
        budget.head(parse("registry.test/a:b"))
    assert len(slow.calls) == 2


def test_longer_request_deadlines_lengthen_the_listings_and_the_passes() -> None:
    from psquadlet.watch.registry import DEFAULT_LISTING_TIMEOUT, listing_timeout_for

    assert listing_timeout_for(30.0) == DEFAULT_LISTING_TIMEOUT == 120.0
    assert listing_timeout_for(60.0) == 240.0


# --------------------------------------------------------------------------- over TLS
@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


class TlsServer:
    """One handler over HTTPS (a self-signed certificate: the client runs with tls_verify
    off), optionally behind a relay that drips the server's bytes, handshake included."""

    def __init__(self, handler: Handler, files: tuple[str, str], drip: float = 0.0) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*files)

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                handler(self)

            do_HEAD = do_GET

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[Any, Any]:
                sock, addr = super().get_request()
                sock.settimeout(30)
                return ctx.wrap_socket(sock, server_side=True), addr

        self.httpd = Server(("127.0.0.1", 0), H)
        self.stop = threading.Event()
        port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.host = f"127.0.0.1:{port}"
        if drip:
            self.relay = socket.create_server(("127.0.0.1", 0))
            self.host = f"127.0.0.1:{self.relay.getsockname()[1]}"
            threading.Thread(target=self._relay, args=(port, drip), daemon=True).start()

    def _relay(self, port: int, every: float) -> None:
        client, _ = self.relay.accept()
        upstream = socket.create_connection(("127.0.0.1", port))

        def up() -> None:
            with contextlib.suppress(OSError):
                while data := client.recv(65536):
                    upstream.sendall(data)

        threading.Thread(target=up, daemon=True).start()
        with contextlib.suppress(OSError):
            while (data := upstream.recv(65536)) and not self.stop.is_set():
                for byte in data:
                    if self.stop.wait(every):
                        return
                    client.sendall(bytes([byte]))

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_over_tls_a_dripping_body_after_connection_close_is_cut(
    tls_files: tuple[str, str], stop: threading.Event
) -> None:
    srv = TlsServer(close_and_drip(b"", b"x" * 400, 0.05, stop), tls_files)
    try:
        start = time.monotonic()
        with pytest.raises(RegistryError, match=r"no answer within 2s"):
            HttpRegistry(tls_verify=insecure, timeout=2.0).head(parse(f"{srv.host}/a/b:c"))
        assert time.monotonic() - start < 8  # the drip lasts 20 s
    finally:
        srv.close()


def test_a_dripping_tls_handshake_is_cut(tls_files: tuple[str, str]) -> None:
    # the server's half of the handshake (about a kilobyte) one byte per 20 ms: 20 s or more;
    # ssl's own handshake timeout (the socket's, set to what is left) and the cut both bound it
    ok = reply(200, {"Docker-Content-Digest": DIGEST, "Content-Type": OCI})
    srv = TlsServer(ok, tls_files, drip=0.02)
    try:
        start = time.monotonic()
        with pytest.raises(RegistryError, match=r"no answer within 2s"):
            HttpRegistry(tls_verify=insecure, timeout=2.0).head(parse(f"{srv.host}/a/b:c"))
        assert time.monotonic() - start < 8
    finally:
        srv.close()


def test_a_registry_over_tls_answers(tls_files: tuple[str, str]) -> None:
    ok = reply(200, {"Docker-Content-Digest": DIGEST, "Content-Type": OCI})
    srv = TlsServer(ok, tls_files)
    try:
        reg = HttpRegistry(tls_verify=insecure, timeout=10.0)
        assert reg.head(parse(f"{srv.host}/a/b:c")).digest == DIGEST
        assert reg.transport.scheme(srv.host) == "https"
    finally:
        srv.close()
