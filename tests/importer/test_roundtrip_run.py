"""Round trip for docker run lines: import -> the config loader -> render -> Podman's own
Quadlet generator, whose ``podman run`` must carry the same flags as the input line.

Each corpus file under ``corpus/run`` holds one command line as an operator would paste it
(continuation lines, quotes, a prompt), ``## `` prose and ``#: expect-...`` lines:
``expect-extra`` (a flag the unit adds on purpose, e.g. the preset's persisted folder),
``expect-state-volumes`` (the preset's state volumes of that container), ``expect-global``,
``expect-restart`` (systemd's Restart=), ``expect-unit`` (a [Unit] line),
``expect-preset`` (variant) and ``expect-keys`` (the only keys of the container table).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from psquadlet import importer
from psquadlet.config import parse_config
from psquadlet.perfsonar import state_volumes
from psquadlet.render import render_units
from tests.importer import flags
from tests.support.oracle import run_quadlet

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.oracle

CORPUS = Path(__file__).parent / "corpus" / "run"
CASES = sorted(CORPUS.glob("*.txt"))


def _load(path: Path) -> tuple[str, dict[str, list[str]]]:
    meta: dict[str, list[str]] = {}
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#: "):
            key, _, value = line[3:].partition(":")
            meta.setdefault(key.strip(), []).append(value.strip())
        elif not line.startswith("## "):
            lines.append(line)
    return "\n".join(lines).strip(), meta


def _generated(text: str) -> tuple[str, dict[str, object], object]:
    """Import ONE string, render, convert with Quadlet: (toml, table, the service)."""
    result = importer.from_command_line([text], environ={}, cwd="/srv/cwd")
    assert len(result.containers) == 1
    toml_text = importer.to_toml(result)
    config = parse_config(toml_text, "/etc/psquadlet/imported.toml")
    units = {u.filename: u.text for u in render_units(config)}
    name = result.containers[0].name
    service = run_quadlet(units).check().service(f"{name}.service")
    table = tomllib.loads(toml_text)["containers"][name]
    return toml_text, table, service


def test_corpus_is_there() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_podman_run_carries_the_input_flags(path: Path) -> None:
    text, meta = _load(path)
    toml_text, table, service = _generated(text)
    wanted = flags.read(flags.input_words(text))
    got = flags.read(service.exec_argv())  # type: ignore[attr-defined]

    expected = flags.compared(wanted)
    preset_extra = flags.PRESET_HEALTH if "expect-preset" in meta else []
    for extra in [*meta.get("expect-extra", []), *preset_extra]:
        flag, _, value = extra.partition(" ")
        probe = flags.read(["podman", "run", flag, value, "img"])
        expected += flags.compared(probe)
    for container in meta.get("expect-state-volumes", []):
        # The preset persists perfSONAR's state folders in named volumes of its own.
        expected += [("volume", f"{v}:{folder}") for v, folder in state_volumes(container)]
    actual = flags.compared(got)
    if not any(f == "name" for f, _ in wanted.flags):
        # No --name on the line: the unit names the container after the image.
        derived = [v for f, v in actual if f == "name"]
        assert derived == [wanted.image.split("/")[-1].split(":")[0]]
        actual = [p for p in actual if p[0] != "name"]
    assert actual == sorted(expected), toml_text
    assert got.image == upstream_registry(flags.normalized_image(wanted.image))
    assert got.command == wanted.command
    assert got.global_args == meta.get("expect-global", [])
    assert (
        service.value("Service", "Restart")
        == meta.get(  # type: ignore[attr-defined]
            "expect-restart", ["on-failure"]
        )[0]
    )
    for line in meta.get("expect-unit", []):
        key, _, value = line.partition("=")
        assert service.values("Unit", key) == [value]  # type: ignore[attr-defined]
    if "expect-preset" in meta:
        assert table["preset"] == "perfsonar-testpoint"
        assert table["variant"] == meta["expect-preset"][0]
    else:
        assert "preset" not in table
    if "expect-keys" in meta:
        assert sorted(table) == sorted(meta["expect-keys"][0].split())


def upstream_registry(image: str) -> str:
    """The importer moves the perfSONAR testpoint from Docker Hub to ghcr.io (issue 11)."""
    return image.replace("docker.io/perfsonar/testpoint:", "ghcr.io/perfsonar/testpoint:")
