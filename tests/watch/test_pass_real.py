"""Passes of the watcher on real programs: the loopback registry and host podman.

What is counted here is what the registry itself logged, and what is compared is what
Podman reports for the running container.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from httpfakes import CuttingProxy, FakeServer, reply
from realbed import PodmanRunUnits, container_info, podman, real_deps, target, unique

from psquadlet.watch import core
from psquadlet.watch.state import FileStateStore
from tests.support import images
from tests.support.registry import Registry

pytestmark = pytest.mark.registry
HEALTH = ("/usr/local/bin/healthcheck",)


def deploy(
    registry: Registry, stand_in: Any, units: PodmanRunUnits, repo: str, tag: str = "systemd"
) -> tuple[str, str, str]:
    """Push, pull and run: (image reference, container name, pushed digest)."""
    ref = f"{registry.host}/{repo}:{tag}"
    digest = images.push(stand_in, ref)
    podman("pull", "--tls-verify=false", ref)
    container = unique("psq-w")
    units.add(f"{container}.service", container, ref)
    return ref, container, digest


def manifest_and_blob_gets(reqs: list[Any]) -> list[Any]:
    return [r for r in reqs if r.method == "GET" and (r.is_manifest or r.is_blob)]


def test_nothing_new_one_head_per_distinct_image_and_no_get(
    registry: Registry,
    plain_images: dict[str, Any],
    units: PodmanRunUnits,
    podman_url: str,
    tmp_path: Path,
) -> None:
    repo_a, repo_b = unique("perfsonar/a"), unique("perfsonar/b")
    ref_a, c1, _ = deploy(registry, plain_images["1.0"], units, repo_a)
    c2 = unique("psq-w")
    units.add(f"{c2}.service", c2, ref_a)  # a second container on the same image
    ref_b, c3, _ = deploy(registry, plain_images["2.0"], units, repo_b)
    deps, log = real_deps(podman_url, str(tmp_path), units)
    mark = registry.mark()
    report = core.run_pass(
        [target(c1, c1, ref_a), target(c2, c2, ref_a), target(c3, c3, ref_b)], deps
    )
    assert [o.action for o in report.outcomes] == [core.UP_TO_DATE] * 3, log.text()
    reqs = registry.requests(since=mark)
    heads = sorted(r.path for r in reqs if r.method == "HEAD")
    assert heads == sorted([f"/v2/{repo_a}/manifests/systemd", f"/v2/{repo_b}/manifests/systemd"])
    assert manifest_and_blob_gets(reqs) == []
    assert len(reqs) == 2
    assert units.calls == []


def test_new_image_is_detected_pulled_restarted_and_reported(
    registry: Registry,
    plain_images: dict[str, Any],
    units: PodmanRunUnits,
    podman_url: str,
    tmp_path: Path,
) -> None:
    repo = unique("perfsonar/testpoint")
    ref, c, old = deploy(registry, plain_images["1.0"], units, repo)
    started_before = container_info(c)["Id"]
    old_id = container_info(c)["Image"]
    new = images.push(plain_images["2.0"], ref)
    deps, log = real_deps(podman_url, str(tmp_path), units)
    t = target(c, c, ref, health_cmd=HEALTH, health_timeout=30)

    (dry,) = core.run_pass([t], deps, dry_run=True).outcomes
    assert dry.action == core.WOULD_UPGRADE
    assert container_info(c)["Id"] == started_before
    assert units.calls == []

    (o,) = core.run_pass([t], deps).outcomes
    assert o.action == core.UPGRADED, log.text()
    assert (o.running_digest, o.remote_digest) == (new, new)
    assert units.calls == [("restart", f"{c}.service")]
    version = podman("exec", c, "cat", "/etc/psq-version").stdout.strip()
    assert version == "2.0"
    cs = FileStateStore(str(tmp_path)).load().get(c)
    # the stand-in image carries several digests (it was pushed to several repositories);
    # any of them names it, the image id is what a rollback uses
    assert cs.previous_image_id == old_id
    old_info = json.loads(podman("image", "inspect", old_id).stdout)[0]
    old_digests = {rd.partition("@")[2] for rd in old_info["RepoDigests"]}
    assert old in old_digests
    assert cs.previous_digest in old_digests
    assert cs.running_digest == new
    assert cs.history[-1].action == core.UPGRADED
    # pulled by digest before the restart, shown as progress lines
    assert any(lvl == "progress" for lvl, _ in log.lines)
    # next pass: nothing to do (no upgrade loop)
    (again,) = core.run_pass([t], deps).outcomes
    assert again.action == core.UP_TO_DATE


def test_notify_never_pulls(
    registry: Registry,
    plain_images: dict[str, Any],
    units: PodmanRunUnits,
    podman_url: str,
    tmp_path: Path,
) -> None:
    repo = unique("perfsonar/testpoint")
    ref, c, _ = deploy(registry, plain_images["1.0"], units, repo)
    new = images.push(plain_images["2.0"], ref)
    deps, _ = real_deps(podman_url, str(tmp_path), units)
    mark = registry.mark()
    (o,) = core.run_pass([target(c, c, ref, policy="notify")], deps).outcomes
    assert o.action == core.AVAILABLE
    assert new[7:19] in o.message
    reqs = registry.requests(since=mark)
    assert [r.method for r in reqs] == ["HEAD"]
    assert units.calls == []


def test_min_age_holds_back_a_fresh_image_with_only_the_head(
    registry: Registry,
    plain_images: dict[str, Any],
    units: PodmanRunUnits,
    podman_url: str,
    tmp_path: Path,
) -> None:
    repo = unique("perfsonar/testpoint")
    ref, c, _ = deploy(registry, plain_images["1.0"], units, repo)
    images.push(plain_images["2.0"], ref)
    deps, log = real_deps(podman_url, str(tmp_path), units)
    mark = registry.mark()
    (o,) = core.run_pass([target(c, c, ref, min_age=86400)], deps).outcomes
    assert o.action == core.HELD_BACK, log.text()
    assert "min_age is 86400s" in o.message
    reqs = registry.requests(since=mark)
    assert [r.method for r in reqs if r.is_manifest] == ["HEAD"]
    assert [r for r in reqs if r.is_blob] == []  # a soak from first sight: no config blob
    assert units.calls == []
    assert container_info(c)["State"]["Running"] is True  # type: ignore[index]


def test_multi_arch_index_compares_correctly(
    registry: Registry,
    plain_images: dict[str, Any],
    units: PodmanRunUnits,
    podman_url: str,
    tmp_path: Path,
) -> None:
    from test_registry_http import push_index

    repo = unique("perfsonar/testpoint")
    ref = f"{registry.host}/{repo}:systemd"
    v1, v2 = plain_images["1.0"].local, plain_images["2.0"].local
    index1 = push_index(ref, v1, v2)
    podman("pull", "--tls-verify=false", ref)
    c = unique("psq-w")
    units.add(f"{c}.service", c, ref)
    deps, log = real_deps(podman_url, str(tmp_path), units)
    t = target(c, c, ref, health_cmd=HEALTH, health_timeout=30)
    (o,) = core.run_pass([t], deps).outcomes
    assert o.action == core.UP_TO_DATE, log.text()  # the index digest is recognised
    assert o.remote_digest == index1
    index2 = push_index(ref, v2, v1)  # amd64 now 2.0
    (o,) = core.run_pass([t], deps).outcomes
    assert o.action == core.UPGRADED, log.text()
    assert podman("exec", c, "cat", "/etc/psq-version").stdout.strip() == "2.0"
    (o,) = core.run_pass([t], deps).outcomes
    assert o.action == core.UP_TO_DATE
    assert o.remote_digest == index2


def test_failed_health_rolls_back_to_the_previous_image(
    registry: Registry,
    plain_images: dict[str, Any],
    units: PodmanRunUnits,
    podman_url: str,
    tmp_path: Path,
) -> None:
    repo = unique("perfsonar/testpoint")
    ref, c, old = deploy(registry, plain_images["1.0"], units, repo)
    old_id = container_info(c)["Image"]
    broken = images.build_plain("3.0", broken=True)
    bad = images.push(broken, ref)
    deps, log = real_deps(podman_url, str(tmp_path), units)
    t = target(c, c, ref, health_cmd=HEALTH, health_timeout=3)
    (o,) = core.run_pass([t], deps).outcomes
    assert o.action == core.ROLLED_BACK, log.text()
    assert podman("exec", c, "cat", "/etc/psq-version").stdout.strip() == "1.0"
    cs = FileStateStore(str(tmp_path)).load().get(c)
    assert cs.is_bad(bad) is not None
    assert cs.running_image_id == old_id
    old_info = json.loads(podman("image", "inspect", old_id).stdout)[0]
    old_digests = {rd.partition("@")[2] for rd in old_info["RepoDigests"]}
    assert {old, cs.running_digest} <= old_digests  # the stand-in has several names
    (o,) = core.run_pass([t], deps).outcomes
    assert o.action == core.KNOWN_BAD


# ------------------------------------------------------------------ through the CLI
def cli(config: Path, state: Path, podman_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "psquadlet",
            "upgrade",
            "-c",
            str(config),
            "--state-dir",
            str(state),
            "--podman-url",
            podman_url,
            "--dbus-address",
            "unix:path=/nonexistent",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "PSQUADLET_REGISTRY_TIMEOUT": "2"},
    )


def write_config(path: Path, name: str, ref: str, host: str, extra: str = "") -> Path:
    path.write_text(
        f'[registries."{host}"]\ntls_verify = false\n\n'
        f'[containers.{name}]\nimage = "{ref}"\ncontainer_name = "{name}"\n'
        f'[containers.{name}.update]\npolicy = "auto"\n{extra}'
    )
    return path


def test_cli_dry_run_json(
    registry: Registry,
    plain_images: dict[str, Any],
    units: PodmanRunUnits,
    podman_url: str,
    tmp_path: Path,
) -> None:
    repo = unique("perfsonar/testpoint")
    ref, c, _ = deploy(registry, plain_images["1.0"], units, repo)
    new = images.push(plain_images["2.0"], ref)
    cfg = write_config(tmp_path / "p.toml", c, ref, registry.host)
    res = cli(cfg, tmp_path / "state", podman_url, "--dry-run", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    (entry,) = data["containers"]
    assert entry["action"] == "would-upgrade"
    assert entry["remote_digest"] == new
    assert data["dry_run"] is True
    assert not (tmp_path / "state" / "state.json").exists()


def _fault_case(
    registry_host: str, ref: str, c: str, *, podman_url: str, tmp_path: Path, expect: str
) -> None:
    """Run `psquadlet upgrade` into a fault: nothing restarted, state intact, clear message."""
    cfg = write_config(tmp_path / "p.toml", c, ref, registry_host)
    state = tmp_path / "state"
    before = container_info(c)
    res = cli(cfg, state, podman_url)
    assert res.returncode == 1, res.stdout + res.stderr
    assert expect in res.stderr, res.stderr
    assert "left as it is" in res.stderr
    after = container_info(c)
    assert after["Id"] == before["Id"]
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]  # type: ignore[index]
    assert after["Image"] == before["Image"]
    data = json.loads((state / "state.json").read_text())
    entry = data["containers"][c]
    assert entry["phase"] == ""
    assert entry["last_result"].startswith("error:")


def test_registry_stopped(
    plain_images: dict[str, Any], units: PodmanRunUnits, podman_url: str, tmp_path: Path
) -> None:
    reg = Registry(workdir=tmp_path / "reg")
    reg.start()
    try:
        ref, c, _ = deploy(reg, plain_images["1.0"], units, unique("perfsonar/testpoint"))
        images.push(plain_images["2.0"], ref)
        reg.stop()
        _fault_case(
            reg.host, ref, c, podman_url=podman_url, tmp_path=tmp_path, expect="connection refused"
        )
    finally:
        reg.close()


def test_wrong_credentials(
    auth_registry: Registry,
    plain_images: dict[str, Any],
    units: PodmanRunUnits,
    podman_url: str,
    tmp_path: Path,
) -> None:
    host = auth_registry.host
    podman("login", "--tls-verify=false", "-u", "tester", "-p", "s3cret", host)
    try:
        ref, c, _ = deploy(auth_registry, plain_images["1.0"], units, unique("perfsonar/testpoint"))
        images.push(plain_images["2.0"], ref)
    finally:
        podman("logout", host, check=False)
    auth = tmp_path / "auth.json"
    import base64

    bad = base64.b64encode(b"tester:wrong").decode()
    auth.write_text(json.dumps({"auths": {host: {"auth": bad}}}))
    os.environ["REGISTRY_AUTH_FILE"] = str(auth)
    try:
        _fault_case(
            host, ref, c, podman_url=podman_url, tmp_path=tmp_path, expect="HTTP 401 unauthorized"
        )
    finally:
        del os.environ["REGISTRY_AUTH_FILE"]


def test_pull_cut_halfway_leaves_the_container(
    registry: Registry,
    units: PodmanRunUnits,
    plain_images: dict[str, Any],
    podman_url: str,
    tmp_path: Path,
) -> None:
    """A proxy in front of the real registry cuts every blob download in the middle."""
    repo = unique("perfsonar/testpoint")
    fresh = images.build_plain(unique("fresh"))  # a layer the local store will not have
    ref_direct, c, _ = deploy(registry, plain_images["1.0"], units, repo)
    images.push(fresh, ref_direct)
    images.remove(fresh.local)
    with CuttingProxy(registry.host) as proxy:
        proxy.cut_blobs = True
        ref = f"{proxy.host}/{repo}:systemd"
        _fault_case(proxy.host, ref, c, podman_url=podman_url, tmp_path=tmp_path, expect="pull of")
        assert proxy.cuts > 0


def test_hanging_registry(
    registry: Registry,
    plain_images: dict[str, Any],
    units: PodmanRunUnits,
    podman_url: str,
    tmp_path: Path,
) -> None:
    repo = unique("perfsonar/testpoint")
    _, c, _ = deploy(registry, plain_images["1.0"], units, repo)
    release = threading.Event()
    with FakeServer({"/v2/": lambda h: release.wait(30)}) as srv:
        try:
            _fault_case(
                srv.host,
                f"{srv.host}/{repo}:systemd",
                c,
                podman_url=podman_url,
                tmp_path=tmp_path,
                expect="timed out",
            )
        finally:
            release.set()


def test_registry_500(
    registry: Registry,
    plain_images: dict[str, Any],
    units: PodmanRunUnits,
    podman_url: str,
    tmp_path: Path,
) -> None:
    repo = unique("perfsonar/testpoint")
    _, c, _ = deploy(registry, plain_images["1.0"], units, repo)
    with FakeServer({"/v2/": reply(500)}) as srv:
        _fault_case(
            srv.host,
            f"{srv.host}/{repo}:systemd",
            c,
            podman_url=podman_url,
            tmp_path=tmp_path,
            expect="HTTP 500",
        )
