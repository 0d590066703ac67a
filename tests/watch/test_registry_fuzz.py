"""Issue 10 fuzz: every class of registry answer ends in a result or a RegistryError.

Status codes (2xx, redirects, 401 with any challenge, 4xx, 5xx), headers (digest, length,
type, challenge, location: valid, malformed, absurd) and bodies (manifests, indexes,
garbage, oversized claims) are drawn by hypothesis and served raw by a loopback server, for
the HEAD check and for the creation-time lookup. No traceback, no hang: each request has a
0.3 s deadline. Budget in CI: 80 examples per test, about 20 s each on the 2-core runner.
Redirects and token realms only ever point at loopback.
"""

from __future__ import annotations

import http.server
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from httpfakes import FakeServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psquadlet.imageref import parse
from psquadlet.watch.interfaces import RegistryError
from psquadlet.watch.registry import HttpRegistry

GOOD = "sha256:" + "a" * 64
PLATFORMS = [{"os": "linux", "architecture": a} for a in ("amd64", "arm64", "s390x")]


class Scripted:
    """Serves the raw answers it is given, one per request, then 404s."""

    def __init__(self) -> None:
        self.answers: list[bytes] = []
        self.server = FakeServer({"/": self._serve})

    def _serve(self, h: http.server.BaseHTTPRequestHandler) -> None:
        raw = self.answers.pop(0) if self.answers else b"HTTP/1.1 404 No\r\n\r\n"
        if h.command == "HEAD":
            raw = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        try:
            h.wfile.write(raw)
            h.wfile.flush()
        except OSError:
            pass
        h.close_connection = True


@pytest.fixture(scope="module")
def scripted() -> Iterator[Scripted]:
    s = Scripted()
    yield s
    s.server.close()


def _json_value() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
        ),
        max_leaves=8,
    )


def _bodies() -> st.SearchStrategy[bytes]:
    digest = st.sampled_from([GOOD, "sha256:../x", "sha256:" + "\u00e9" * 4, 5, None, ""])
    manifest = st.fixed_dictionaries(
        {
            "mediaType": st.sampled_from(
                [
                    "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.oci.image.index.v1+json",
                    5,
                ]
            ),
            "config": st.one_of(_json_value(), st.fixed_dictionaries({"digest": digest})),
            "manifests": st.one_of(
                _json_value(),
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "digest": digest,
                            "platform": st.one_of(st.sampled_from(PLATFORMS), _json_value()),
                        }
                    ),
                    max_size=3,
                ),
            ),
            "created": st.one_of(
                st.sampled_from(["2024-01-02T03:04:05Z", "yesterday", "2024-13-45T99:99:99Z"]),
                _json_value(),
            ),
        }
    )
    return st.one_of(
        manifest.map(lambda m: json.dumps(m).encode()),
        _json_value().map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200),
        st.just(b"[" * 5000),  # deep nesting
    )


def _answers(port: int) -> st.SearchStrategy[bytes]:
    status = st.sampled_from(
        [
            200,
            201,
            204,
            206,
            301,
            302,
            303,
            307,
            308,
            400,
            401,
            403,
            404,
            405,
            429,
            500,
            502,
            503,
            599,
        ]
    )
    local = [
        f"http://127.0.0.1:{port}/v2/a/b/manifests/x",
        "/v2/a/b/blobs/y",
        "",
        f"https://127.0.0.1:{port}/z",
        "ftp://127.0.0.1/x",
        "http://127.0.0.1:1/x",
        "//127.0.0.1:1/q",
        "http://[::1]:1/x",
    ]
    challenges = [
        f'Bearer realm="http://127.0.0.1:{port}/token",service="s"',
        'Bearer realm="http://localhost:1/token"',
        'Bearer realm=""',
        "Bearer",
        'Basic realm="r"',
        "Negotiate",
        "",
        'Bearer realm="ftp://127.0.0.1/t"',
        'Bearer realm="http://127.0.0.1:1/t",scope="' + "x" * 3000 + '"',
    ]
    headers = st.fixed_dictionaries(
        {},
        optional={
            "Docker-Content-Digest": st.sampled_from(
                [GOOD, "", "sha256:../../x", "md5:00", "sha256:" + "a" * 5000]
            ),
            "Content-Type": st.sampled_from(
                ["application/vnd.oci.image.index.v1+json", "text/html; charset=x", ""]
            ),
            "Content-Length": st.sampled_from(["0", "1", "abc", "-5", "99999999999", "10"]),
            "Transfer-Encoding": st.sampled_from(["chunked", "gzip", "identity"]),
            "WWW-Authenticate": st.sampled_from(challenges),
            "Location": st.sampled_from(local),
        },
    )

    def build(code: int, hdrs: dict[str, str], body: bytes) -> bytes:
        head = f"HTTP/1.1 {code} X\r\n".encode()
        for k, v in hdrs.items():
            head += f"{k}: {v}\r\n".encode("latin-1", "replace")
        if "Content-Length" not in hdrs and "Transfer-Encoding" not in hdrs:
            head += f"Content-Length: {len(body)}\r\n".encode()
        return head + b"\r\n" + body

    return st.builds(build, status, headers, _bodies())


def _run(scripted: Scripted, answers: list[bytes], call: str) -> None:
    scripted.answers = list(answers)
    reg = HttpRegistry(tls_verify=lambda h: False, timeout=0.3)
    ref = parse(f"{scripted.server.host}/a/b:c")
    start = time.monotonic()
    try:
        if call == "head":
            reg.head(ref)
        else:
            reg.created(ref, GOOD)
    except RegistryError:
        pass
    # a few requests (redirects, token, retry), each under its deadline
    assert time.monotonic() - start < 10


SETTINGS = settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(data=st.data())
def test_fuzz_registry_answers_to_the_check(scripted: Scripted, data: st.DataObject) -> None:
    port = int(scripted.server.host.rsplit(":", 1)[1])
    _run(scripted, data.draw(st.lists(_answers(port), min_size=1, max_size=4)), "head")


@SETTINGS
@given(data=st.data())
def test_fuzz_registry_answers_to_the_age_lookup(scripted: Scripted, data: st.DataObject) -> None:
    port = int(scripted.server.host.rsplit(":", 1)[1])
    _run(scripted, data.draw(st.lists(_answers(port), min_size=1, max_size=5)), "created")
