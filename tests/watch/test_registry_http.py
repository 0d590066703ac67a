"""The HTTP registry adapter.

Against the real loopback docker-registry (its access log is the request count), and, for the
faults a real registry cannot produce on demand (hanging, a 500, a broken token service, a
Bearer token flow, a redirect to blob storage), against a tiny fake HTTP server.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from httpfakes import FakeServer, Handler, needs_basic, reply

from psquadlet.imageref import parse
from psquadlet.watch.interfaces import RegistryError
from psquadlet.watch.registry import (
    ACCEPT,
    Credentials,
    HttpRegistry,
    parse_challenge,
    parse_rfc3339,
)
from tests.support.registry import Registry

DIGEST = "sha256:" + "e" * 64


def insecure(host: str) -> bool:
    return False


# --------------------------------------------------------------------------- pure helpers
def test_parse_challenge() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:perfsonar/testpoint:pull"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:perfsonar/testpoint:pull",
    }


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2024-01-02T03:04:05Z", 1704164645.0),
        ("2024-01-02T03:04:05.123456789Z", 1704164645.123456789),
        ("2024-01-02T04:04:05+01:00", 1704164645.0),
    ],
)
def test_parse_rfc3339(text: str, epoch: float) -> None:
    assert parse_rfc3339(text) == pytest.approx(epoch)


def test_credentials_from_auth_files(tmp_path: Path) -> None:
    def auth(u: str, p: str) -> dict[str, str]:
        return {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()}

    a = tmp_path / "auth.json"
    a.write_text(
        json.dumps({"auths": {"ghcr.io": auth("gh", "1"), "ghcr.io/perfsonar": auth("ps", "2")}})
    )
    d = tmp_path / "config.json"
    d.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": auth("hub", "3")}}))
    creds = Credentials([str(a), str(d), str(tmp_path / "missing.json")])
    assert creds.lookup(parse("ghcr.io/perfsonar/testpoint:latest"))[:2] == ("ps", "2")
    assert creds.lookup(parse("ghcr.io/other/x:latest"))[:2] == ("gh", "1")
    assert creds.lookup(parse("docker.io/perfsonar/testpoint:systemd"))[:2] == ("hub", "3")
    assert creds.lookup(parse("quay.io/x/y:1")) is None


# --------------------------------------------------------------------------- real registry
@pytest.fixture
def pushed(registry: Registry, plain_images: dict[str, Any]) -> str:
    from tests.support import images

    return images.push(plain_images["1.0"], f"{registry.host}/perfsonar/testpoint:systemd")


@pytest.mark.registry
def test_head_is_one_request_and_matches_the_pushed_digest(registry: Registry, pushed: str) -> None:
    ref = parse(f"{registry.host}/perfsonar/testpoint:systemd")
    mark = registry.mark()
    remote = HttpRegistry(tls_verify=insecure).head(ref)
    assert remote.digest == pushed
    reqs = registry.requests(since=mark)
    assert [(r.method, r.path, r.status) for r in reqs] == [
        ("HEAD", "/v2/perfsonar/testpoint/manifests/systemd", 200)
    ]


@pytest.mark.registry
def test_created_reads_the_config_blob(registry: Registry, pushed: str) -> None:
    ref = parse(f"{registry.host}/perfsonar/testpoint:systemd")
    created = HttpRegistry(tls_verify=insecure).created(ref, pushed)
    assert abs(created - time.time()) < 3600  # built by this session


@pytest.mark.registry
def test_multi_arch_index_digest_and_platform_pick(
    registry: Registry, plain_images: dict[str, Any]
) -> None:
    dest = f"{registry.host}/perfsonar/testpoint:multi"
    digest = push_index(dest, plain_images["1.0"].local, plain_images["2.0"].local)
    ref = parse(dest)
    reg = HttpRegistry(tls_verify=insecure)
    remote = reg.head(ref)
    assert remote.digest == digest
    assert remote.media_type in (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
    assert reg.created(ref, digest) > 0
    arm = HttpRegistry(tls_verify=insecure, target_platform=("linux", "s390x"))
    with pytest.raises(RegistryError, match="no image for linux/s390x"):
        arm.created(ref, digest)


def push_index(dest: str, amd64: str, arm64: str) -> str:
    """Push a two-platform index to *dest* with podman; return the index digest."""
    name = f"localhost/psq-index-{time.monotonic_ns()}"
    try:
        subprocess.run(["podman", "manifest", "create", name], check=True, capture_output=True)
        for arch, image in (("amd64", amd64), ("arm64", arm64)):
            subprocess.run(
                [
                    "podman",
                    "manifest",
                    "add",
                    "--arch",
                    arch,
                    "--os",
                    "linux",
                    name,
                    f"containers-storage:{image}",
                ],
                check=True,
                capture_output=True,
            )
        out = Path(f"/tmp/{name.rsplit('/', 1)[-1]}.digest")
        subprocess.run(
            [
                "podman",
                "manifest",
                "push",
                "--all",
                "--tls-verify=false",
                "--digestfile",
                str(out),
                name,
                f"docker://{dest}",
            ],
            check=True,
            capture_output=True,
        )
        digest = out.read_text().strip()
        out.unlink()
        return digest
    finally:
        subprocess.run(["podman", "manifest", "rm", name], capture_output=True, check=False)


def _auth_file(tmp_path: Path, host: str, user: str, password: str) -> Credentials:
    f = tmp_path / "auth.json"
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    f.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return Credentials([str(f)])


@pytest.fixture
def auth_pushed(auth_registry: Registry, plain_images: dict[str, Any]) -> str:
    subprocess.run(
        [
            "podman",
            "login",
            "--tls-verify=false",
            "-u",
            "tester",
            "-p",
            "s3cret",
            auth_registry.host,
        ],
        check=True,
        capture_output=True,
    )
    try:
        from tests.support import images

        return images.push(plain_images["1.0"], f"{auth_registry.host}/perfsonar/testpoint:systemd")
    finally:
        subprocess.run(["podman", "logout", auth_registry.host], capture_output=True, check=False)


@pytest.mark.registry
def test_htpasswd_credentials_from_the_auth_file(
    auth_registry: Registry, auth_pushed: str, tmp_path: Path
) -> None:
    ref = parse(f"{auth_registry.host}/perfsonar/testpoint:systemd")
    reg = HttpRegistry(
        tls_verify=insecure,
        credentials=_auth_file(tmp_path, auth_registry.host, "tester", "s3cret"),
    )
    mark = auth_registry.mark()
    assert reg.head(ref).digest == auth_pushed
    assert reg.head(ref).digest == auth_pushed
    reqs = auth_registry.requests(since=mark)
    # Basic only after the registry asked for it (issue 10 M3); then at once for this host
    assert [(r.method, r.status) for r in reqs] == [("HEAD", 401), ("HEAD", 200), ("HEAD", 200)]


@pytest.mark.registry
def test_wrong_credentials_say_401_and_where_they_came_from(
    auth_registry: Registry, auth_pushed: str, tmp_path: Path
) -> None:
    ref = parse(f"{auth_registry.host}/perfsonar/testpoint:systemd")
    creds = _auth_file(tmp_path, auth_registry.host, "tester", "wrong")
    with pytest.raises(RegistryError, match=r"HTTP 401 unauthorized \(credentials from .*auth"):
        HttpRegistry(tls_verify=insecure, credentials=creds).head(ref)
    with pytest.raises(RegistryError, match=r"401 unauthorized \(no credentials configured"):
        HttpRegistry(tls_verify=insecure).head(ref)


@pytest.mark.registry
def test_stopped_registry_is_connection_refused(tmp_path: Path) -> None:
    reg = Registry(workdir=tmp_path / "reg")
    reg.start()
    reg.stop()
    try:
        with pytest.raises(RegistryError, match="connection refused"):
            HttpRegistry(tls_verify=insecure).head(parse(f"{reg.host}/perfsonar/testpoint:x"))
    finally:
        reg.close()


@pytest.mark.registry
def test_unknown_tag_is_a_clear_404(registry: Registry, pushed: str) -> None:
    with pytest.raises(RegistryError, match="HTTP 404"):
        HttpRegistry(tls_verify=insecure).head(
            parse(f"{registry.host}/perfsonar/testpoint:no-such-tag")
        )


# --------------------------------------------------------------------------- fake server
@pytest.fixture
def fake() -> Iterator[Callable[[dict[str, Handler]], FakeServer]]:
    servers: list[FakeServer] = []

    def make(routes: dict[str, Handler]) -> FakeServer:
        servers.append(FakeServer(routes))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_hanging_registry_times_out_with_a_clear_message(fake: Any) -> None:
    release = threading.Event()

    def hang(h: http.server.BaseHTTPRequestHandler) -> None:
        release.wait(10)

    srv = fake({"/v2/": hang})
    start = time.monotonic()
    try:
        with pytest.raises(RegistryError, match=r"no answer within 0.5s \(timed out\)"):
            HttpRegistry(tls_verify=insecure, timeout=0.5).head(parse(f"{srv.host}/a/b:c"))
    finally:
        release.set()
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_reported(fake: Any, status: int) -> None:
    srv = fake({"/v2/": reply(status)})
    with pytest.raises(RegistryError, match=f"HTTP {status} from the registry"):
        HttpRegistry(tls_verify=insecure).head(parse(f"{srv.host}/a/b:c"))


def test_connection_dropped_mid_answer(fake: Any) -> None:
    def drop(h: http.server.BaseHTTPRequestHandler) -> None:
        h.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"schemaVer')
        h.close_connection = True

    srv = fake({"/v2/": drop})
    with pytest.raises(RegistryError, match="connection failed"):
        HttpRegistry(tls_verify=insecure).created(parse(f"{srv.host}/a/b:c"), DIGEST)


def _bearer_registry(fake: Any, token_handler: Handler) -> FakeServer:
    def manifests(h: http.server.BaseHTTPRequestHandler) -> None:
        if h.headers.get("Authorization") == "Bearer T0K":
            reply(
                200,
                {
                    "Docker-Content-Digest": DIGEST,
                    "Content-Type": "application/vnd.oci.image.index.v1+json",
                },
            )(h)
        else:
            realm = f"http://{h.server.server_address[0]}:{h.server.server_address[1]}/token"
            reply(
                401,
                {
                    "WWW-Authenticate": f'Bearer realm="{realm}",service="fake",'
                    'scope="repository:perfsonar/testpoint:pull"'
                },
            )(h)

    return fake({"/v2/": manifests, "/token": token_handler})


def test_anonymous_bearer_flow_and_token_reuse(fake: Any) -> None:
    srv = _bearer_registry(
        fake, reply(200, {}, json.dumps({"token": "T0K", "expires_in": 300}).encode())
    )
    reg = HttpRegistry(tls_verify=insecure)
    ref = parse(f"{srv.host}/perfsonar/testpoint:systemd")
    assert reg.head(ref).digest == DIGEST
    assert reg.head(ref).digest == DIGEST
    methods = [(m, p.split("?")[0]) for m, p, _ in srv.seen]
    # first: HEAD (401), token, HEAD; second check reuses the token: one HEAD
    assert methods == [
        ("HEAD", "/v2/perfsonar/testpoint/manifests/systemd"),
        ("GET", "/token"),
        ("HEAD", "/v2/perfsonar/testpoint/manifests/systemd"),
        ("HEAD", "/v2/perfsonar/testpoint/manifests/systemd"),
    ]
    token_path = srv.seen[1][1]
    assert "scope=repository%3Aperfsonar%2Ftestpoint%3Apull" in token_path
    assert "service=fake" in token_path
    assert "Authorization" not in srv.seen[1][2]  # anonymous
    assert srv.seen[0][2]["Accept"] == ACCEPT


def test_malformed_token_response(fake: Any) -> None:
    srv = _bearer_registry(fake, reply(200, {}, b"<html>oops</html>"))
    with pytest.raises(RegistryError, match="malformed token response"):
        HttpRegistry(tls_verify=insecure).head(parse(f"{srv.host}/perfsonar/testpoint:systemd"))


def test_token_refused(fake: Any) -> None:
    srv = _bearer_registry(fake, reply(401))
    with pytest.raises(RegistryError, match=r"token request refused, HTTP 401 \(anonymous\)"):
        HttpRegistry(tls_verify=insecure).head(parse(f"{srv.host}/perfsonar/testpoint:systemd"))


def test_blob_redirect_does_not_leak_credentials(fake: Any, tmp_path: Path) -> None:
    config = json.dumps({"created": "2024-01-02T03:04:05Z"}).encode()
    storage = fake({"/blob": reply(200, {}, config)})
    manifest = json.dumps(
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"digest": "sha256:" + "1" * 64},
        }
    ).encode()
    srv = fake(
        {
            "/v2/a/b/manifests/": needs_basic(
                reply(200, {"Docker-Content-Digest": DIGEST}, manifest)
            ),
            "/v2/a/b/blobs/": needs_basic(
                reply(307, {"Location": f"http://{storage.host}/blob?sig=1"})
            ),
        }
    )
    creds = _auth_file(tmp_path, srv.host, "u", "p")
    created = HttpRegistry(tls_verify=insecure, credentials=creds).created(
        parse(f"{srv.host}/a/b:c"), DIGEST
    )
    assert created == parse_rfc3339("2024-01-02T03:04:05Z")
    assert all("Authorization" in h for _, _, h in srv.seen[1:])  # after the challenge
    assert storage.seen
    assert all("Authorization" not in h for _, _, h in storage.seen)


def test_head_without_digest_header_falls_back_to_hashing_the_body(fake: Any) -> None:
    body = b'{"schemaVersion":2}'
    srv = fake(
        {"/v2/": reply(200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, body)}
    )
    remote = HttpRegistry(tls_verify=insecure).head(parse(f"{srv.host}/a/b:c"))
    assert remote.digest == "sha256:" + hashlib.sha256(body).hexdigest()
