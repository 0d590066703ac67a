"""Registry requests per pass: release tracking (track = "patch") vs the digest policy.

    scripts/test-deps                      # once, as root
    .venv/bin/python bench/release_requests.py [--page-size 50]

A loopback docker-registry holds one repository with issue 13's tag set plus 300 more
release tags; a paging proxy (tests/support/registry.py: PagingProxy, a fake: Debian's
docker-registry never pages) serves the tag listing in pages of --page-size tags, as GHCR and
Docker Hub do. For 1 and 10 containers on that repository, one watcher pass (a dry run: the
decision, no pull) is made with the real HTTP adapter against fake Podman/systemd, under
``track = "digest"`` (one HEAD of the moving tag) and ``track = "patch"`` (the listing's
pages, then one HEAD of the chosen release). The count is the adapter's answered requests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests" / "watch"))

from watchfakes import FakeClock, FakeImages, FakeUnits, ListLog, MemoryStore  # noqa: E402

from psquadlet.imageref import parse  # noqa: E402
from psquadlet.watch import core  # noqa: E402
from psquadlet.watch.registry import HttpRegistry  # noqa: E402
from psquadlet.watch.targets import Target  # noqa: E402
from tests.support import images  # noqa: E402
from tests.support.registry import UPSTREAM_TAGS, PagingProxy, Registry  # noqa: E402

REPO = "perfsonar/testpoint"
TAGS = [
    *UPSTREAM_TAGS,
    *(f"v4.{i}.0-systemd" for i in range(300)),
]


def one_pass(host: str, track: str, containers: int) -> int:
    reg = HttpRegistry(tls_verify=lambda h: False)
    imgs = FakeImages()
    tag = "systemd" if track == "digest" else "v5.2.0-systemd"
    imgs.add_image("old", f"{host}/{REPO}", "sha256:" + "0" * 64, tag)
    units = FakeUnits(imgs)
    targets = []
    for i in range(containers):
        units.add(f"tp{i}.service", f"c{i}", f"{host}/{REPO}:{tag}")
        targets.append(
            Target(
                name=f"tp{i}",
                unit=f"tp{i}.service",
                container=f"c{i}",
                image=parse(f"{host}/{REPO}:{tag}"),
                track=track,
                tag_pattern="v{version}-systemd",
            )
        )
    deps = core.Deps(reg, imgs, units, FakeClock(), MemoryStore(), ListLog())
    core.run_pass(targets, deps, dry_run=True)
    return reg.requests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--page-size", type=int, default=50)
    args = ap.parse_args()
    registry = Registry().start()
    try:
        stand_in = images.build_plain("1.0")
        images.push(stand_in, f"{registry.host}/{REPO}:v5.2.0-systemd")
        registry.retag(REPO, "v5.2.0-systemd", *TAGS)
        proxy = PagingProxy(registry, page_size=args.page_size)
        try:
            print(f"{len(TAGS) + 1} tags, pages of {args.page_size}")
            print(f"{'containers':>10} {'track':>8} {'requests/pass':>14}")
            for containers in (1, 10):
                for track in ("digest", "patch"):
                    n = one_pass(proxy.host, track, containers)
                    print(f"{containers:>10} {track:>8} {n:>14}")
        finally:
            proxy.close()
    finally:
        registry.close()


if __name__ == "__main__":
    main()
