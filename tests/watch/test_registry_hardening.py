"""Issue 10 M3, M4, M5, L4, L6: what a hostile or broken registry (or auth file) can do.

The faults are served by the small fake servers of ``httpfakes`` (a dripping server cannot be
had from a real registry); the htpasswd case runs against the real one in test_registry_http.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from httpfakes import FakeServer, Handler, drip, flood, needs_basic, reply

from psquadlet.imageref import parse
from psquadlet.watch.digests import is_digest
from psquadlet.watch.interfaces import RegistryError
from psquadlet.watch.registry import MAX_BODY, Credentials, HttpRegistry, Response
from psquadlet.watch.transport import Deadline, Transport

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


def _soon() -> Deadline:
    return Deadline.after(10, "timed out")


def _auth_file(tmp_path: Path, host: str, user: str = "u", password: str = "p") -> Credentials:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return Credentials([str(path)])


# --------------------------------------------------------------------------- M5: deadline
def test_a_dripping_body_is_cut_at_the_request_deadline(fake: Any, stop: threading.Event) -> None:
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": DIGEST}}).encode()
    rest = f"Content-Length: {len(manifest)}\r\n\r\n".encode() + manifest
    srv = fake({"/v2/": drip(200, rest, 0.1, stop)})
    start = time.monotonic()
    with pytest.raises(RegistryError, match=r"no answer within 1s \(timed out\)"):
        HttpRegistry(tls_verify=insecure, timeout=1.0).created(parse(f"{srv.host}/a/b:c"), DIGEST)
    assert time.monotonic() - start < 3


def test_dripping_headers_are_cut_at_the_request_deadline(fake: Any, stop: threading.Event) -> None:
    rest = (
        "X-Pad: " + "x" * 200 + f"\r\nDocker-Content-Digest: {DIGEST}\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    srv = fake({"/v2/": drip(200, rest, 0.05, stop)})
    start = time.monotonic()
    with pytest.raises(RegistryError, match="timed out"):
        HttpRegistry(tls_verify=insecure, timeout=1.0).head(parse(f"{srv.host}/a/b:c"))
    assert time.monotonic() - start < 3


def test_no_digest_header_and_an_empty_body_is_an_error(fake: Any) -> None:
    srv = fake({"/v2/": reply(200, {"Content-Type": OCI})})
    with pytest.raises(RegistryError, match="neither a digest nor a manifest"):
        HttpRegistry(tls_verify=insecure).head(parse(f"{srv.host}/a/b:c"))


# --------------------------------------------------------------------------- M4: MAX_BODY
@pytest.mark.parametrize(
    ("head", "chunked"),
    [
        (b"Transfer-Encoding: chunked\r\nContent-Length: 1\r\n", True),
        (b"Content-Length: abc\r\nConnection: close\r\n", False),
        (b"Connection: close\r\n", False),
    ],
    ids=["chunked-with-length-1", "length-abc", "no-length"],
)
def test_a_body_over_max_body_fails_whatever_the_headers_say(
    fake: Any, head: bytes, chunked: bool
) -> None:
    srv = fake({"/v2/": flood(head, MAX_BODY + 4 * 65536, chunked)})
    with pytest.raises(RegistryError, match=f"larger than {MAX_BODY} bytes"):
        HttpRegistry(tls_verify=insecure).created(parse(f"{srv.host}/a/b:c"), DIGEST)


def test_a_cut_body_without_a_digest_header_is_not_hashed(fake: Any) -> None:
    # no Docker-Content-Digest on HEAD, then a GET whose body is over the limit: an error,
    # never the digest of the first 8 MiB
    srv = fake({"/v2/": flood(b"Connection: close\r\n", MAX_BODY + 1)})
    with pytest.raises(RegistryError, match="larger than"):
        HttpRegistry(tls_verify=insecure).head(parse(f"{srv.host}/a/b:c"))


def test_a_body_of_exactly_max_body_is_read(fake: Any) -> None:
    srv = fake({"/v2/": flood(f"Content-Length: {MAX_BODY}\r\n".encode(), MAX_BODY)})
    with pytest.raises(RegistryError, match="not JSON"):  # read in full, then judged
        HttpRegistry(tls_verify=insecure).created(parse(f"{srv.host}/a/b:c"), DIGEST)


# --------------------------------------------------------------------------- M3: credentials
def test_no_credentials_before_a_challenge(fake: Any, tmp_path: Path) -> None:
    srv = fake({"/v2/": reply(200, {"Docker-Content-Digest": DIGEST})})
    reg = HttpRegistry(tls_verify=insecure, credentials=_auth_file(tmp_path, srv.host))
    assert reg.head(parse(f"{srv.host}/a/b:c")).digest == DIGEST
    assert all("Authorization" not in h for _, _, h in srv.seen)


def _bearer(fake: Any, realm: str) -> FakeServer:
    def manifests(h: Any) -> None:
        if h.headers.get("Authorization") == "Bearer T0K":
            reply(200, {"Docker-Content-Digest": DIGEST})(h)
        else:
            reply(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="s"'})(h)

    return fake({"/v2/": manifests})


def test_credentials_never_go_to_a_plain_http_realm_on_another_host(
    fake: Any, tmp_path: Path
) -> None:
    token = fake({"/token": reply(200, {}, b'{"token": "T0K"}')})
    realm_host = token.host.replace("127.0.0.1", "localhost")  # another host name, plain http
    srv = _bearer(fake, f"http://{realm_host}/token")
    reg = HttpRegistry(tls_verify=insecure, credentials=_auth_file(tmp_path, srv.host))
    assert reg.head(parse(f"{srv.host}/a/b:c")).digest == DIGEST
    assert token.seen  # the token was fetched, anonymously
    assert all("Authorization" not in h for _, _, h in token.seen)


def test_credentials_go_to_a_realm_on_the_registrys_own_insecure_host(
    fake: Any, tmp_path: Path
) -> None:
    def manifests(h: Any) -> None:
        if h.headers.get("Authorization") == "Bearer T0K":
            reply(200, {"Docker-Content-Digest": DIGEST})(h)
        else:
            host, port = h.server.server_address[:2]
            reply(401, {"WWW-Authenticate": f'Bearer realm="http://{host}:{port}/token"'})(h)

    srv = fake({"/v2/": manifests, "/token": reply(200, {}, b'{"token": "T0K"}')})
    reg = HttpRegistry(tls_verify=insecure, credentials=_auth_file(tmp_path, srv.host))
    assert reg.head(parse(f"{srv.host}/a/b:c")).digest == DIGEST
    token_reqs = [h for _, p, h in srv.seen if p.startswith("/token")]
    assert token_reqs
    assert all(h.get("Authorization", "").startswith("Basic ") for h in token_reqs)


def test_basic_is_not_sent_in_clear_to_a_registry_that_requires_tls(
    fake: Any, tmp_path: Path
) -> None:
    srv = fake({"/v2/": needs_basic(reply(200, {"Docker-Content-Digest": DIGEST}))})
    reg = HttpRegistry(tls_verify=lambda h: True, credentials=_auth_file(tmp_path, srv.host))
    reg.transport._scheme[srv.host] = "http"  # as if plain http had been reached some other way
    with pytest.raises(RegistryError, match="401"):
        reg.head(parse(f"{srv.host}/a/b:c"))
    assert all("Authorization" not in h for _, _, h in srv.seen)


def test_a_redirect_from_https_to_http_on_the_same_host_drops_credentials(fake: Any) -> None:
    srv = fake({"/x": reply(200, {}, b"{}")})
    transport = Transport(insecure)
    moved = Response(307, {"location": f"http://{srv.host}/x"}, b"")
    resp = transport._follow(
        moved,
        "https",
        srv.host,
        "GET",
        {"Authorization": "Basic dTpw"},
        deadline=_soon(),
        max_body=MAX_BODY,
        redirects=3,
    )
    assert resp.status == 200
    assert srv.seen
    assert "Authorization" not in srv.seen[0][2]


def test_a_redirect_on_the_same_host_and_scheme_keeps_credentials(fake: Any) -> None:
    srv = fake({"/x": reply(200, {}, b"{}")})
    transport = Transport(insecure)
    moved = Response(307, {"location": "/x"}, b"")
    transport._follow(
        moved,
        "http",
        srv.host,
        "GET",
        {"Authorization": "Basic dTpw"},
        deadline=_soon(),
        max_body=MAX_BODY,
        redirects=3,
    )
    assert srv.seen[0][2].get("Authorization") == "Basic dTpw"


# --------------------------------------------------------------------------- L4: digests
BAD_DIGESTS = [
    "sha256:../../../v2/other/manifests/x",
    "sha256:" + "e" * 64 + "?ns=evil",
    "sha256:" + "e" * 60000,
    "sha256:" + "e" * 63,
    "sha256:" + "E" * 64,
    "sha256:" + "\u00e9" * 64,
    "md5:" + "e" * 32,
    "sha512:" + "e" * 64,
    "",
    "e" * 64,
]


@pytest.mark.parametrize("bad", BAD_DIGESTS, ids=range(len(BAD_DIGESTS)))
def test_invalid_digests_are_refused(bad: str) -> None:
    assert not is_digest(bad)


@pytest.mark.parametrize(
    "good", ["sha256:" + "0123456789abcdef" * 4, "sha512:" + "0123456789abcdef" * 8]
)
def test_valid_digests(good: str) -> None:
    assert is_digest(good)


@pytest.mark.parametrize("bad", [b for b in BAD_DIGESTS if b and len(b) < 10000], ids=range(8))
def test_a_registry_sending_an_invalid_digest_header_is_an_error(fake: Any, bad: str) -> None:
    header = bad.encode("utf-8").decode("latin-1")  # what arrives for non-ASCII bytes
    srv = fake({"/v2/": reply(200, {"Docker-Content-Digest": header})})
    with pytest.raises(RegistryError, match="invalid digest"):
        HttpRegistry(tls_verify=insecure).head(parse(f"{srv.host}/a/b:c"))


def test_a_60_kb_digest_header_is_an_error(fake: Any) -> None:
    srv = fake({"/v2/": reply(200, {"Docker-Content-Digest": "sha256:" + "e" * 60000})})
    with pytest.raises(RegistryError):
        HttpRegistry(tls_verify=insecure).head(parse(f"{srv.host}/a/b:c"))


@pytest.mark.parametrize("bad", ["sha256:../../x", "sha256:\u00e9\u00e9", 5, None])
def test_an_invalid_config_digest_in_a_manifest_is_not_fetched(fake: Any, bad: object) -> None:
    manifest = json.dumps({"mediaType": OCI, "config": {"digest": bad}}).encode()
    srv = fake({"/v2/a/b/manifests/": reply(200, {}, manifest)})
    with pytest.raises(RegistryError, match="config"):
        HttpRegistry(tls_verify=insecure).created(parse(f"{srv.host}/a/b:c"), DIGEST)
    assert all("/blobs/" not in p for _, p, _ in srv.seen)


def test_an_invalid_digest_is_refused_before_any_request(fake: Any) -> None:
    srv = fake({})
    with pytest.raises(RegistryError, match="invalid digest"):
        HttpRegistry(tls_verify=insecure).created(parse(f"{srv.host}/a/b:c"), "sha256:\u00e9")
    assert not srv.seen


# --------------------------------------------------------------------------- L6: auth files
@pytest.mark.parametrize(
    "auth",
    [5, [1, 2], {"a": 1}, None, True, 1.5],
    ids=["number", "list", "object", "null", "bool", "float"],
)
def test_an_auth_entry_of_the_wrong_type_is_skipped(tmp_path: Path, auth: object) -> None:
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {"reg.test": {"auth": auth}}}))
    assert Credentials([str(path)]).lookup(parse("reg.test/a/b:c")) is None


def test_a_deeply_nested_auth_file_is_skipped(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"auths": {"reg.test": {"auth": ' + "[" * 100000 + "]" * 100000 + "}}}")
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps({"auths": {"reg.test": {"auth": base64.b64encode(b"u:p").decode()}}})
    )
    creds = Credentials([str(deep), str(good)])
    assert creds.lookup(parse("reg.test/a/b:c")) == ("u", "p", str(good))


def test_a_redirect_to_https_on_a_plain_http_server_is_a_registry_error(fake: Any) -> None:
    # found by the fuzz: the https-then-http probe's internal signal escaped a redirect
    srv = fake({})
    srv.routes["/v2/"] = reply(307, {"Location": f"https://{srv.host}/v2/x"})
    with pytest.raises(RegistryError, match="speaks plain HTTP"):
        HttpRegistry(tls_verify=insecure).head(parse(f"{srv.host}/a/b:c"))
