"""Release tags against the real loopback docker-registry (and a paging proxy in front of it).

The tag set is issue 13's: what upstream publishes on ghcr.io/perfsonar/testpoint. Tags are
added through the registry API (one manifest, many tags), so hundreds cost a second.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from httpfakes import FakeServer, reply
from watchfakes import FakeClock, FakeImages, FakeUnits, ListLog, MemoryStore

from psquadlet.imageref import parse
from psquadlet.watch import core
from psquadlet.watch.interfaces import RegistryError
from psquadlet.watch.registry import HttpRegistry, next_page
from psquadlet.watch.schedule import Schedule
from psquadlet.watch.targets import Target
from tests.support.registry import UPSTREAM_TAGS, PagingProxy, Registry

UPSTREAM = list(UPSTREAM_TAGS)
REPO = "releases/testpoint"


def insecure(host: str) -> bool:
    return False


@pytest.fixture(scope="module")
def tagged(registry: Registry, plain_images: dict[str, Any]) -> str:
    """REPO with the upstream tag set (+ v5.2.0-systemd, which the containers start on)."""
    from tests.support import images

    images.push(plain_images["1.0"], f"{registry.host}/{REPO}:v5.2.0-systemd")
    registry.retag(REPO, "v5.2.0-systemd", *UPSTREAM)
    registry.retag(REPO, "v5.2.0-systemd", *(f"v1.{i}.0" for i in range(300)))
    return registry.host


@pytest.fixture
def proxy(registry: Registry, tagged: str) -> Iterator[PagingProxy]:
    p = PagingProxy(registry, page_size=4)
    try:
        yield p
    finally:
        p.close()


ALL = {*UPSTREAM, "v5.2.0-systemd", *(f"v1.{i}.0" for i in range(300))}


@pytest.mark.registry
def test_tags_is_one_get_of_the_listing(registry: Registry, tagged: str) -> None:
    reg = HttpRegistry(tls_verify=insecure)
    mark = registry.mark()
    assert set(reg.tags(parse(f"{tagged}/{REPO}:systemd"))) == ALL
    reqs = registry.requests(since=mark)
    assert [(r.method, r.path, r.status) for r in reqs] == [("GET", f"/v2/{REPO}/tags/list", 200)]
    assert reg.requests == 1


@pytest.mark.registry
def test_tags_follow_link_pages_through_the_paging_proxy(proxy: PagingProxy) -> None:
    reg = HttpRegistry(tls_verify=insecure)
    tags = reg.tags(parse(f"{proxy.host}/{REPO}:systemd"))
    assert sorted(tags) == sorted(ALL)
    assert len(tags) == len(ALL)  # no page read twice
    assert proxy.pages == math.ceil(len(ALL) / 4)
    assert reg.requests == proxy.pages


def _target(host: str, track: str, image_tag: str = "v5.2.0-systemd") -> Target:
    return Target(
        name="perfsonar-testpoint",
        unit="perfsonar-testpoint.service",
        container="pt",
        image=parse(f"{host}/{REPO}:{image_tag}"),
        schedule=Schedule(),
        track=track,
        tag_pattern="v{version}-systemd",
    )


def _deps(host: str, registry: HttpRegistry) -> core.Deps:
    images = FakeImages()
    images.add_image("old", f"{host}/{REPO}", "sha256:" + "0" * 64, "v5.2.0-systemd")
    units = FakeUnits(images)
    units.add("perfsonar-testpoint.service", "pt", f"{host}/{REPO}:v5.2.0-systemd")
    return core.Deps(registry, images, units, FakeClock(), MemoryStore(), ListLog())


@pytest.mark.registry
@pytest.mark.parametrize(
    ("track", "adopts"),
    [("patch", "v5.2.1-systemd"), ("minor", "v5.3.0-systemd"), ("major", "v6.0.0-systemd")],
)
def test_each_policy_picks_its_release_with_one_listing_and_one_head(
    proxy: PagingProxy, track: str, adopts: str
) -> None:
    reg = HttpRegistry(tls_verify=insecure)
    deps = _deps(proxy.host, reg)
    (o,) = core.run_pass((_target(proxy.host, track),), deps, dry_run=True).outcomes
    assert o.action == core.WOULD_UPGRADE
    assert adopts in o.message
    assert reg.requests == proxy.pages + 1  # the listing's pages and one HEAD of the release


@pytest.mark.registry
def test_ten_containers_on_one_repository_cost_one_listing(proxy: PagingProxy) -> None:
    reg = HttpRegistry(tls_verify=insecure)
    deps = _deps(proxy.host, reg)
    targets = [
        Target(
            name=f"tp{i}",
            unit=f"tp{i}.service",
            container=f"c{i}",
            image=parse(f"{proxy.host}/{REPO}:v5.2.0-systemd"),
            track="patch",
            tag_pattern="v{version}-systemd",
        )
        for i in range(10)
    ]
    core.run_pass(targets, deps, dry_run=True)
    assert proxy.pages == math.ceil(len(ALL) / 4)  # one listing, however many containers


def test_link_header_parsing() -> None:
    assert next_page('</v2/a/tags/list?n=2&last=b>; rel="next"') == "/v2/a/tags/list?n=2&last=b"
    assert next_page('<https://x/y>; rel="prev", </z>; rel=next') == "/z"
    assert next_page("") == ""
    assert next_page('</v2/a>; rel="last"') == ""


def test_a_page_link_to_another_host_or_back_to_itself_is_refused() -> None:
    def to_other(h: Any) -> None:
        reply(200, {"Link": '<http://evil.example/v2/x>; rel="next"'}, b'{"tags": ["a"]}')(h)

    def loop(h: Any) -> None:
        reply(200, {"Link": '</v2/r/tags/list>; rel="next"'}, b'{"tags": ["a"]}')(h)

    with FakeServer({"/v2/o/tags/list": to_other, "/v2/r/tags/list": loop}) as srv:
        reg = HttpRegistry(tls_verify=insecure)
        with pytest.raises(RegistryError, match="another host"):
            reg.tags(parse(f"{srv.host}/o:latest"))
        with pytest.raises(RegistryError, match="loops back"):
            reg.tags(parse(f"{srv.host}/r:latest"))
