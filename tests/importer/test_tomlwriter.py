"""The one TOML writer (``psquadlet.tomlwriter``, used by ``init`` and ``import``): whatever it
writes, a TOML reader reads back as the same data."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from psquadlet import presets
from psquadlet import tomlwriter as emit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("plain", '"plain"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("tab\there", '"tab\\there"'),
        ("line\nbreak", '"line\\nbreak"'),
        ("nul\x00bell\x07del\x7f", '"nul\\u0000bell\\u0007del\\u007F"'),
        ("été €", '"été €"'),
    ],
)
def test_strings_are_escaped(text: str, written: str) -> None:
    assert emit.string(text) == written
    assert tomllib.loads(f"v = {written}")["v"] == text


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        emit.string("\ud800")


@pytest.mark.parametrize(
    ("name", "written"),
    [
        ("image", "image"),
        ("cap_add", "cap_add"),
        ("a.b", '"a.b"'),
        ("x y", '"x y"'),
        ("", '""'),
        ("0\n", '"0\\n"'),
    ],
)
def test_keys_are_bare_only_when_toml_allows(name: str, written: str) -> None:
    assert emit.key(name) == written


def test_inline_values() -> None:
    assert emit.inline(True) == "true"
    assert emit.inline(0) == "0"
    assert emit.inline([]) == "[]"
    assert emit.inline({}) == "{}"
    assert emit.inline({"TZ": "UTC", "a.b": "c"}) == '{ TZ = "UTC", "a.b" = "c" }'
    with pytest.raises(TypeError):
        emit.inline(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="64-bit"):
        emit.inline(2**63)


def test_long_arrays_are_spread_and_long_maps_become_tables() -> None:
    long_list = [f"/a/very/long/path/number/{i}:/target/{i}" for i in range(4)]
    long_map = {f"VARIABLE_{i}": "x" * 30 for i in range(4)}
    text = emit.document(
        [emit.Table(("containers", "app"), (("volumes", long_list), ("environment", long_map)))]
    )
    assert "volumes = [\n" in text
    assert "[containers.app.environment]" in text
    assert all(len(line) <= emit.INLINE_WIDTH for line in text.splitlines())
    data = tomllib.loads(text)
    assert data["containers"]["app"] == {"volumes": long_list, "environment": long_map}


def test_comments_stay_comments() -> None:
    text = emit.document(
        [emit.Table(("t",), (("k", 1),), ("two\nlines [x]\x1b",))], header=("head\n= 1",)
    )
    assert tomllib.loads(text) == {"t": {"k": 1}}
    assert "# two\n# lines [x]?\n" in text


# Text that TOML must escape or quote: control characters, quotes, backslashes, unicode.
TRICKY = st.sampled_from(
    [
        "\x00",
        "\x1f",
        "\x7f",
        '"',
        "'",
        "\\",
        "\n",
        "\r\n",
        "\t",
        "é",
        "€",
        "😀",
        " ",
        ".",
        "=",
        "#",
        "[",
        "]",
        "\u2028",
        "\ufeff",
    ]
)
TEXT = st.lists(
    st.one_of(TRICKY, st.text(st.characters(exclude_categories=("Cs",)), max_size=4)), max_size=6
).map("".join)
SCALARS = st.one_of(
    TEXT,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(TEXT, inner, max_size=4),
    ),
    max_leaves=12,
)
TABLE_KEYS = TEXT.filter(bool)


@given(st.dictionaries(TABLE_KEYS, st.dictionaries(TABLE_KEYS, VALUES, max_size=5), max_size=3))
def test_documents_read_back_as_written(data: dict[str, dict[str, Any]]) -> None:
    tables = [emit.Table(("containers", name), tuple(body.items())) for name, body in data.items()]
    text = emit.document(tables, header=("generated",))
    assert tomllib.loads(text) == ({"containers": data} if data else {})


@given(st.dictionaries(TEXT, VALUES, max_size=4))
def test_inline_values_read_back_as_written(data: dict[str, Any]) -> None:
    text = "".join(f"{emit.key(k)} = {emit.inline(v)}\n" for k, v in data.items())
    assert tomllib.loads(text) == data


@given(TABLE_KEYS, st.sampled_from(presets.variants(presets.PERFSONAR_TESTPOINT)))
def test_init_text_reads_back_as_the_preset_for_any_container_name(
    container: str, variant: str
) -> None:
    """``init`` writes through the same writer: any table name reads back as written."""
    values = presets.preset_values(presets.PERFSONAR_TESTPOINT, variant, container)
    table = tomllib.loads(presets.init_text(variant, container))["containers"][container]
    assert table == {
        "preset": presets.PERFSONAR_TESTPOINT,
        "variant": variant,
        **values,
    }


def test_a_key_path_that_cannot_be_written_is_named() -> None:
    table = emit.Table(("containers", "web"), (("environment", {"A": "\ud800"}),))
    with pytest.raises(emit.TomlWriteError, match=r"^containers\.web\.environment: .*surrogate"):
        emit.document([table])
