"""The .deb recommends what notifications and metrics load, by names both Debian releases have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.notify.debs import CACHE

ROOT = Path(__file__).resolve().parents[2]
RECOMMENDED = ("apprise", "python3-prometheus-client")
# The cached Debian 12 and 13 roots of tests/support/testbed.py carry their apt lists.
PACKAGE_LISTS = {
    "bookworm": CACHE / "bookworm-root/var/lib/apt/lists",
    "trixie": CACHE / "testbed-root/var/lib/apt/lists",
}


def _recommends() -> set[str]:
    text = (ROOT / "packaging/debian/control").read_text()
    match = re.search(r"^Recommends:(.*?)(?=^\S)", text, re.M | re.S)
    assert match is not None
    return {word.strip().split()[0] for word in match.group(1).split(",") if word.strip()}


def test_deb_recommends_the_notification_and_metrics_libraries() -> None:
    assert set(RECOMMENDED) <= _recommends()


@pytest.mark.parametrize("release", sorted(PACKAGE_LISTS))
def test_recommended_names_exist_in_debian(release: str) -> None:
    lists = sorted(PACKAGE_LISTS[release].glob(f"*_dists_{release}_main_binary-*_Packages"))
    if not lists:
        pytest.skip(f"no {release} apt lists under {PACKAGE_LISTS[release]}")
    names = set(re.findall(r"^Package: (\S+)$", lists[0].read_text(), re.M))
    assert set(RECOMMENDED) <= names
