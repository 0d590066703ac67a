"""The busctl adapter where real systemd cannot be made to misbehave on demand: busctl absent,
an answer that is not busctl's JSON. Everything else it does is proven against real systemd
in test_systemd_units_e2e.py, over both adapters."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from psquadlet.watch.busctl_units import BusctlUnits, unit_object_path
from psquadlet.watch.interfaces import UnitError


def answering(code: int, out: str, seen: list[list[str]] | None = None) -> BusctlUnits:
    def run(argv: Sequence[str]) -> tuple[int, str]:
        if seen is not None:
            seen.append(list(argv))
        return code, out

    return BusctlUnits("unix:path=/run/user/1000/bus", run=run)


def test_busctl_missing_says_so() -> None:
    with pytest.raises(UnitError, match=r"x.service: cannot read ActiveState: busctl not found"):
        answering(127, "").active_state("x.service")


def test_an_answer_that_is_not_json_is_a_unit_error() -> None:
    with pytest.raises(UnitError, match="unreadable answer from busctl"):
        answering(0, "{not json\n").active_state("x.service")
    with pytest.raises(UnitError, match="busctl answered 0 of 1 values"):
        answering(0, "").active_state("x.service")


def test_address_and_bounds_are_passed_and_the_system_bus_is_the_default() -> None:
    seen: list[list[str]] = []
    assert answering(0, '{"type":"s","data":"active"}\n', seen).active_state("a.service") == (
        "active"
    )
    assert seen[0][:5] == [
        "busctl",
        "--address=unix:path=/run/user/1000/bus",
        "--json=short",
        "--timeout=30",
        "--",  # busctl would take a unit name such as "-.mount" for an option
    ]
    system = answering(1, "Call failed: Access denied", seen)
    system.address = ""
    with pytest.raises(
        UnitError, match=r"a: systemd refused ResetFailedUnit: busctl \(system bus\)"
    ):
        system.reset_failed("a")
    assert seen[-1][1] == "--system"


@pytest.mark.parametrize(
    ("unit", "path"),
    [
        ("perfsonar-testpoint.service", "perfsonar_2dtestpoint_2eservice"),
        ("0day.service", "_30day_2eservice"),
        ("a@b.service", "a_40b_2eservice"),
        ("dbus.socket", "dbus_2esocket"),
    ],
)
def test_unit_object_path_is_sd_bus_label_escaping(unit: str, path: str) -> None:
    """The values systemd itself answers for LoadUnit (checked live in the e2e test)."""
    assert unit_object_path(unit) == f"/org/freedesktop/systemd1/unit/{path}"
