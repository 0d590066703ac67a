"""Property: any mix of flag families, in any order and either spelling of each value flag
(``--flag value`` or ``--flag=value``), passed as words or as one shell-quoted string, comes out
of Podman's Quadlet generator as the same podman run flags."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psquadlet import importer
from psquadlet.config import parse_config
from psquadlet.render import render_units
from tests.importer import flags
from tests.importer.test_roundtrip_families import FAMILIES
from tests.support.oracle import run_quadlet

pytestmark = pytest.mark.oracle

# Two networks cannot both be the first; "host network" would also discard published ports.
POOL = sorted(f for f in FAMILIES if f != "host network")


def _groups(line: str) -> list[list[str]]:
    """Words grouped per flag: ['-p', '80:80'], ['--init'], ['-itd']."""
    words = shlex.split(line)
    groups: list[list[str]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--"):
            takes_value = "=" not in word and word[2:] not in flags.BOOLEAN
        else:
            takes_value = len(word) == 2 and flags.SHORT[word[1]] not in flags.BOOLEAN
        if takes_value:
            groups.append([word, words[i + 1]])
            i += 2
        else:
            groups.append([word])
            i += 1
    return groups


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    families=st.lists(st.sampled_from(POOL), min_size=1, max_size=5, unique=True),
    data=st.data(),
)
def test_mixed_families_round_trip(families: list[str], data: st.DataObject) -> None:
    groups = [g for family in families for g in _groups(FAMILIES[family])]
    groups = data.draw(st.permutations(groups))
    words: list[str] = []
    for group in groups:
        if len(group) == 2 and group[0].startswith("--") and data.draw(st.booleans()):
            words.append(f"{group[0]}={group[1]}")
        else:
            words.extend(group)
    argv = ["docker", "run", "--name", "mix", *words, "busybox", "sleep", "1d"]
    as_string = data.draw(st.booleans())
    result = importer.from_command_line(
        [shlex.join(argv)] if as_string else argv, environ={}, cwd="/srv"
    )
    config = parse_config(importer.to_toml(result), "/etc/psquadlet/mix.toml")
    units = {u.filename: u.text for u in render_units(config)}
    got = flags.read(run_quadlet(units).check().service("mix.service").exec_argv())
    wanted = flags.read(argv)
    assert flags.compared(got) == flags.compared(wanted)
    assert got.image == "docker.io/library/busybox:latest"
    assert got.command == ["sleep", "1d"]
