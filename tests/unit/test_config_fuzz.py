"""Property: whatever a TOML file holds, the loader and renderer either succeed or raise
ConfigError(s) naming a key of the file; they never crash with another exception."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psquadlet import config, containerconfig
from psquadlet.errors import ConfigError, ConfigErrors
from psquadlet.render import render_units
from psquadlet.tomlwriter import inline as toml_value
from psquadlet.tomlwriter import key as toml_key

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
SCALARS = st.one_of(TEXT, st.integers(-5, 70000), st.booleans())
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(TEXT, SCALARS, max_size=2),
)
KEYS = st.one_of(st.sampled_from(containerconfig.CONTAINER_KEYS), TEXT)
SUBKEYS = {
    "health": containerconfig.HEALTH_KEYS,
    "unit": containerconfig.UNIT_KEYS,
    "service": containerconfig.SERVICE_KEYS,
    "install": containerconfig.INSTALL_KEYS,
    "update": containerconfig.UPDATE_KEYS,
}


@st.composite
def documents(draw: st.DrawFn) -> str:
    table: dict[str, Any] = draw(st.dictionaries(KEYS, VALUES, max_size=6))
    if draw(st.booleans()):
        table["image"] = "docker.io/library/busybox:1"
    lines = ["[containers.c]"]
    lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    for name in draw(st.lists(st.sampled_from(sorted(SUBKEYS)), max_size=2, unique=True)):
        sub = draw(st.dictionaries(st.sampled_from(SUBKEYS[name]), VALUES, max_size=3))
        lines.append(f"[containers.c.{name}]")
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in sub.items()]
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_loader_and_renderer_fail_only_with_located_config_errors(text: str) -> None:
    try:
        cfg = config.parse_config(text, "f.toml")
        for fmt in ("quadlet", "service"):
            render_units(cfg, fmt)
    except (ConfigError, ConfigErrors) as exc:
        for error in exc.errors:
            assert error.file == "f.toml"
            assert error.key_path.startswith("containers.c") or error.line is not None, error
