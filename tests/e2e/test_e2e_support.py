"""The test support itself: the registry's request records and its stop/start, the test bed's
cleanup. If these lie, every scenario built on them proves nothing."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.support import images
from tests.support.registry import MANIFEST_ACCEPT, Registry, parse_access_log
from tests.support.testbed import TestBed, _mounts_under

LOG = (
    '{"level":"info","msg":"response completed","http.request.method":"GET"}\n'
    '127.0.0.1 - - [28/Nov/2026:09:40:56 +0000] "HEAD /v2/a/b/manifests/x HTTP/1.1" 200 0 '
    '"" "psquadlet/0.1"\n'
    '127.0.0.1 - tester [28/Nov/2026:09:40:57 +0000] "GET /v2/a/b/blobs/sha256:00 HTTP/1.1" '
    '401 87 "" "containers/5.23.1 (github.com/containers/image)"\n'
)


def test_access_log_parsed_into_requests() -> None:
    reqs = parse_access_log(LOG)
    assert [(r.method, r.path, r.status) for r in reqs] == [
        ("HEAD", "/v2/a/b/manifests/x", 200),
        ("GET", "/v2/a/b/blobs/sha256:00", 401),
    ]
    assert reqs[0].is_manifest
    assert not reqs[0].is_blob
    assert reqs[1].is_blob
    assert reqs[1].user == "tester"
    assert reqs[0].user_agent == "psquadlet/0.1"


def _get(url: str) -> int:
    req = urllib.request.Request(
        url, headers={"User-Agent": "someone-else", "Accept": MANIFEST_ACCEPT}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_registry_records_requests_and_keeps_storage_across_restart(registry: Registry) -> None:
    image = images.build_plain("support-1")
    digest = images.push(image, f"{registry.host}/support/plain:one")
    mark = registry.mark()
    assert _get(f"{registry.url}/v2/support/plain/manifests/one") == 200
    assert _get(f"{registry.url}/v2/support/plain/manifests/nope") == 404
    got = [(r.method, r.path, r.status) for r in registry.requests(since=mark)]
    assert got == [
        ("GET", "/v2/support/plain/manifests/one", 200),
        ("GET", "/v2/support/plain/manifests/nope", 404),
    ]
    registry.stop()
    try:
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"{registry.url}/v2/", timeout=2)
    finally:
        registry.start()
    assert registry.manifest_digest("support/plain", "one") == digest


def test_auth_registry_refuses_anonymous(auth_registry: Registry) -> None:
    assert _get(f"{auth_registry.url}/v2/") == 401
    assert auth_registry.requests()[-1].status == 401


def test_plain_standin_stops_on_sigterm_and_broken_fails_health() -> None:
    good = images.build_plain("support-2")
    bad = images.build_plain("support-2", broken=True)
    names = []
    try:
        for ref, want in ((good.local, 0), (bad.local, 1)):
            name = f"psq-support-{want}"
            names.append(name)
            subprocess.run(["podman", "rm", "-f", name], capture_output=True, check=False)
            subprocess.run(
                ["podman", "run", "-d", "--name", name, ref], check=True, capture_output=True
            )
            rc = 1
            for _ in range(20):
                rc = subprocess.run(
                    ["podman", "exec", name, "pscheduler", "troubleshoot"],
                    capture_output=True,
                    check=False,
                ).returncode
                if rc == 0:
                    break
                subprocess.run(["sleep", "0.2"], check=True)
            assert rc == want, ref
            stop = subprocess.run(
                ["podman", "stop", "-t", "5", name], capture_output=True, text=True, check=False
            )
            assert "SIGKILL" not in stop.stderr
            state = json.loads(
                subprocess.run(["podman", "inspect", name], capture_output=True, check=True).stdout
            )[0]["State"]
            assert state["ExitCode"] == 0  # exited on SIGTERM by itself, not killed (137)
    finally:
        for name in names:
            subprocess.run(["podman", "rm", "-f", name], capture_output=True, check=False)


def test_testbed_close_leaves_no_mounts_or_processes(e2e_registry: Registry) -> None:
    tb = TestBed(name="psq-support-close", registries=(e2e_registry.host,))
    tb.boot()
    pid = tb.pid
    assert pid is not None
    assert tb.sh("systemctl is-system-running", check=False).strip() in ("running", "degraded")
    scratch = tb.scratch
    tb.close()
    assert not _mounts_under(scratch)
    assert not scratch.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
