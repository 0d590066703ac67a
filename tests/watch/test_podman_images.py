"""The podman-py adapter against a real `podman system service` (host podman 4.3)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from realbed import podman, unique

from psquadlet.imageref import parse
from psquadlet.watch.interfaces import ImagesError, PullError
from psquadlet.watch.podman_images import PodmanImages
from tests.support import images
from tests.support.registry import Registry

pytestmark = pytest.mark.registry


@pytest.fixture
def running(plain_images: dict[str, Any]) -> Iterator[str]:
    name = unique("psq-img")
    podman("run", "-d", "--name", name, plain_images["1.0"].local)
    try:
        yield name
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def test_container_image_and_exec(
    podman_url: str, running: str, plain_images: dict[str, Any]
) -> None:
    imgs = PodmanImages(podman_url)
    ci = imgs.container_image(running)
    assert ci is not None
    assert ci.running
    local_id = podman("image", "inspect", "-f", "{{.Id}}", plain_images["1.0"].local).stdout
    assert ci.image_id == local_id.strip()
    assert imgs.container_image(unique("no-such")) is None
    ok = imgs.exec(running, ["/usr/local/bin/healthcheck"], timeout=20)
    assert (ok.exit_code, ok.output.strip()) == (0, "1.0")
    bad = imgs.exec(running, ["sh", "-c", "echo nope; exit 3"], timeout=20)
    assert (bad.exit_code, bad.output.strip()) == (3, "nope")
    slow = imgs.exec(running, ["sleep", "30"], timeout=1)
    assert slow.exit_code == 124
    assert "still running after 1s" in slow.output


def test_pull_tag_prune_and_refuse_to_remove_an_image_in_use(
    podman_url: str, registry: Registry, plain_images: dict[str, Any]
) -> None:
    repo = unique("perfsonar/img")
    ref = parse(f"{registry.host}/{repo}:latest")
    d1 = images.push(images.build_plain(unique("p1")), str(ref))
    imgs = PodmanImages(podman_url, tls_verify=lambda h: False)
    lines: list[str] = []
    id1 = imgs.pull(f"{ref.name}@{d1}", lines.append)
    assert any("Copying" in line for line in lines)
    imgs.tag(id1, ref)
    assert imgs.untagged_image_ids(ref) == []
    d2 = images.push(images.build_plain(unique("p2")), str(ref))
    id2 = imgs.pull(f"{ref.name}@{d2}")
    imgs.tag(id2, ref)
    # id1 is still tagged by the stand-in build (localhost/psquadlet-test/...): never pruned
    name = unique("psq-img")
    podman("run", "-d", "--name", name, id2)
    try:
        assert imgs.remove(id2) is False  # in use
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)
    with pytest.raises(ImagesError):
        imgs.tag("0" * 64, ref)


def test_pull_of_a_missing_digest_is_a_pull_error(podman_url: str, registry: Registry) -> None:
    imgs = PodmanImages(podman_url, tls_verify=lambda h: False)
    with pytest.raises(PullError, match=r"pull of .* failed"):
        imgs.pull(f"{registry.host}/perfsonar/none@sha256:" + "0" * 64)


def test_unreachable_podman_is_a_clear_error(tmp_path: Any) -> None:
    imgs = PodmanImages(f"unix://{tmp_path}/nope.sock")
    with pytest.raises(ImagesError, match=r"podman .*nope.sock.*inspect container"):
        imgs.container_image("x")


@pytest.fixture
def auth_pushed_digest(auth_registry: Registry, plain_images: dict[str, Any]) -> str:
    """The 1.0 stand-in pushed to the htpasswd registry; podman logged out again after."""
    import subprocess

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
        return images.push(plain_images["1.0"], f"{auth_registry.host}/perfsonar/auth:1")
    finally:
        subprocess.run(["podman", "logout", auth_registry.host], capture_output=True, check=False)


def test_pull_sends_the_credentials_of_a_non_default_auth_file(
    podman_url: str,
    auth_registry: Registry,
    auth_pushed_digest: str,
    plain_images: dict[str, Any],
    tmp_path: Any,
) -> None:
    """Issue 10 M7: the check used [watch] auth_file; the pull must use it too."""
    import base64
    import json

    from psquadlet.watch.registry import Credentials

    auth_file = tmp_path / "elsewhere.json"
    auth_file.write_text(
        json.dumps(
            {"auths": {auth_registry.host: {"auth": base64.b64encode(b"tester:s3cret").decode()}}}
        )
    )
    ref = f"{auth_registry.host}/perfsonar/auth@{auth_pushed_digest}"
    with pytest.raises(PullError):  # the service itself has no credentials
        PodmanImages(podman_url, tls_verify=lambda h: False).pull(ref)
    imgs = PodmanImages(
        podman_url, tls_verify=lambda h: False, auth=Credentials([str(auth_file)]).lookup
    )
    # the same image as the local 1.0 stand-in (pushed from it): nothing to clean up
    assert (
        imgs.pull(ref)
        == podman("image", "inspect", "-f", "{{.Id}}", plain_images["1.0"].local).stdout.strip()
    )
