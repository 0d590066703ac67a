"""Pure tests of psquadlet.unitfile: exact renderings, refusals and their reasons, and
round trips through the module's own readers (which mirror Quadlet's Go splitter and
systemd's Exec parsing; the oracle tests hold those readers to the real programs)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from psquadlet.quadlet_keys import KEYS, Kind, QuadletKey
from psquadlet.unitfile import (
    MAX_VALUE_LENGTH,
    UnitValueError,
    check_raw,
    check_text,
    escape_dollars,
    escape_specifiers,
    exec_command,
    join_words,
    quote_word,
    render_value,
)
from tests.support.unitread import split_exec, split_words, unescape_dollars, unescape_specifiers

HOSTNAME = KEYS[("Container", "HostName")]
TMPFS = KEYS[("Container", "Tmpfs")]
EXEC = KEYS[("Container", "Exec")]
ENV = KEYS[("Container", "Environment")]
SYSCTL = KEYS[("Container", "Sysctl")]
DESCRIPTION = KEYS[("Unit", "Description")]
AFTER = KEYS[("Unit", "After")]
READONLY = KEYS[("Container", "ReadOnly")]
EXECSTART = KEYS[("Service", "ExecStart")]

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)


# --- check_text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("a\nb", "newline at position 2"),
        ("a\rb", "carriage return"),
        ("\x00", "NUL"),
        ("x\x1b[0m", "U+001B"),
        ("del\x7f", "DEL"),
        ("nel\x85", "U+0085"),
        ("c1\x9f", "U+009F"),
        ("\ud800", "surrogate"),
    ],
)
def test_check_text_refuses_control_characters_with_a_reason(value: str, fragment: str) -> None:
    with pytest.raises(UnitValueError) as info:
        check_text(value)
    assert fragment in info.value.reason
    assert info.value.value == value


@pytest.mark.parametrize("value", ["", "plain", "tab\tinside", "ünï € 😀", "\u2028", "\xa0"])
def test_check_text_accepts_tab_and_unicode(value: str) -> None:
    check_text(value)


def test_check_text_refuses_huge_values() -> None:
    check_text("x" * MAX_VALUE_LENGTH)
    with pytest.raises(UnitValueError, match="limited to"):
        check_text("x" * (MAX_VALUE_LENGTH + 1))


def test_check_text_refuses_non_strings() -> None:
    with pytest.raises(UnitValueError, match="expected a string"):
        check_text(42)  # type: ignore[arg-type]


# --- specifiers and dollars ------------------------------------------------------------


def test_escape_specifiers_and_dollars() -> None:
    assert escape_specifiers("100% of %n") == "100%% of %%n"
    assert escape_dollars("$HOME ${X} $$") == "$$HOME $${X} $$$$"
    assert unescape_dollars("$$HOME") == "$HOME"


def test_unescape_specifiers_refuses_a_live_specifier() -> None:
    assert unescape_specifiers("a%%b") == "a%b"
    with pytest.raises(UnitValueError, match="'%n'"):
        unescape_specifiers("a%nb")


@given(TEXT)
def test_specifier_escaping_round_trips(value: str) -> None:
    assert unescape_specifiers(escape_specifiers(value)) == value


# --- words ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "quoted"),
    [
        ("plain", "plain"),
        ("a b", '"a b"'),
        ('x"y', '"x\\"y"'),
        ("it's", '"it\'s"'),
        ("back\\slash", '"back\\\\slash"'),
        ("tab\there", '"tab\\there"'),
        ("", '""'),
        (";", '";"'),
        ("100%", "100%"),
        ("ünï", "ünï"),
        ("nb\xa0sp", '"nb\xa0sp"'),
    ],
)
def test_quote_word(word: str, quoted: str) -> None:
    assert quote_word(word) == quoted


def test_join_words_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError):
        join_words("abc")


@given(st.lists(TEXT.filter(lambda w: w != ""), max_size=5))
def test_join_then_split_round_trips(words: list[str]) -> None:
    try:
        text = join_words(words)
    except UnitValueError:
        return
    assert split_words(text) == words


def test_split_words_follows_quadlet() -> None:
    assert split_words("a  'b c'\"d\" e\\x41 \\\\") == ["a", "b cd", "eA", "\\"]
    assert split_words('a "" b') == ["a"], "Quadlet's Go splitter stops at an empty word"
    assert split_words('trailing "unbalanced') == ["trailing", "unbalanced"]
    assert split_words("a\\") == ["a"]
    assert split_words("'a b' c\\d", cunescape=False) == ["a b", "c\\d"]
    with pytest.raises(UnitValueError, match="unsupported escape"):
        split_words("bad\\q")


# --- Exec lines -------------------------------------------------------------------------


def test_exec_command_escapes_everything_systemd_interprets() -> None:
    argv = ["/usr/bin/podman", "run", "a b", "%n", "$HOME", ";", "", 'q"']
    assert exec_command(argv) == '/usr/bin/podman run "a b" %%n $$HOME \\; "" "q\\""'


@given(st.lists(TEXT, max_size=6))
def test_exec_command_round_trips_through_systemd_rules(args: list[str]) -> None:
    argv = ["/usr/bin/podman", *args]
    try:
        text = exec_command(argv)
    except UnitValueError:
        return
    assert split_exec(text) == [argv]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "empty"),
        (["podman", "run"], "absolute"),
        (["/usr/bin/pod man"], "whitespace"),
        (["/usr/bin/%n"], "'%'"),
        (["/usr/bin/"], "directory"),
        (["/usr/bin/podman", "a\nb"], "newline"),
    ],
)
def test_exec_command_refusals(argv: list[str], fragment: str) -> None:
    with pytest.raises(UnitValueError) as info:
        exec_command(argv)
    assert fragment in info.value.reason


def test_exec_command_refuses_a_bare_string() -> None:
    with pytest.raises(TypeError):
        exec_command("/usr/bin/podman run")


def test_split_exec_reads_systemd_syntax() -> None:
    assert split_exec('-/usr/bin/podman rm "a b" %%t ; /bin/true \\; $$X') == [
        ["/usr/bin/podman", "rm", "a b", "%t"],
        ["/bin/true", ";", "$X"],
    ]
    # live specifiers and variables are marked, never equal to an accepted value
    assert split_exec("/bin/echo %n ${HOME} $USER a$B") == [
        ["/bin/echo", "\x00%n", "\x00${HOME}", "\x00$USER", "a$B"]
    ]
    assert split_exec(":/bin/echo $USER") == [["/bin/echo", "$USER"]]


# --- render_value per kind --------------------------------------------------------------


def test_verbatim_values_are_escaped_not_quoted() -> None:
    assert render_value(HOSTNAME, "host with space") == "host with space"
    assert render_value(HOSTNAME, "a%b$c") == "a%%b$$c"
    assert render_value(TMPFS, '"/run"') == '"/run"', "repeatable keys keep quotes"


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        (HOSTNAME, "", "empty"),
        (HOSTNAME, " x", "whitespace"),
        (HOSTNAME, "x\t", "whitespace"),
        (HOSTNAME, "x\u3000", "whitespace"),
        (HOSTNAME, "x\\", "backslash"),
        (HOSTNAME, '"x', "double quote"),
        (HOSTNAME, 'x"', "double quote"),
        (HOSTNAME, ";", "';'"),
        (HOSTNAME, "a\nb", "newline"),
        (TMPFS, "/t\\", "backslash"),
        (DESCRIPTION, " lead", "whitespace"),
        (DESCRIPTION, "end\\", "backslash"),
        (EXEC, [], "empty list"),
        (EXEC, ["a", ""], "empty"),
        (EXEC, [";"], "';'"),
        (ENV, ["NOEQUALS"], "NAME=VALUE"),
        (SYSCTL, [""], "empty"),
        (READONLY, "maybe", "boolean"),
        (AFTER, "not a unit", "unit name"),
        (AFTER, [], "empty list"),
    ],
)
def test_render_value_refusals(key: QuadletKey, value: str | list[str], fragment: str) -> None:
    with pytest.raises(UnitValueError) as info:
        render_value(key, value)
    assert fragment in info.value.reason


def test_words_kinds() -> None:
    assert render_value(EXEC, ["sh", "-c", "echo $HOME 100%"]) == 'sh -c "echo $$HOME 100%%"'
    assert render_value(EXEC, "single word") == '"single word"'
    assert render_value(ENV, ["TZ=UTC", "MSG=a b"]) == 'TZ=UTC "MSG=a b"'
    assert render_value(SYSCTL, ["a'b\"c", "x y", "back\\slash"]) == (
        '"a\'b"\'"c\' "x y" "back\\slash"'
    )


@given(st.lists(TEXT, min_size=1, max_size=4))
def test_strv_rendering_round_trips(words: list[str]) -> None:
    try:
        text = render_value(SYSCTL, words)
    except UnitValueError:
        return
    read = split_words(text, cunescape=False)
    assert [unescape_dollars(unescape_specifiers(w)) for w in read] == words


@given(st.lists(TEXT, min_size=1, max_size=4))
def test_words_rendering_round_trips(words: list[str]) -> None:
    try:
        text = render_value(EXEC, words)
    except UnitValueError:
        return
    read = split_words(text)
    assert [unescape_dollars(unescape_specifiers(w)) for w in read] == words


def test_other_kinds() -> None:
    assert render_value(READONLY, "Yes") == "true"
    assert render_value(READONLY, "0") == "false"
    assert render_value(DESCRIPTION, 'perfSONAR "testpoint" 100%') == (
        'perfSONAR "testpoint" 100%%'
    )
    assert render_value(AFTER, ["network-online.target", "a@b.service"]) == (
        "network-online.target a@b.service"
    )
    assert render_value(EXECSTART, ["/usr/bin/podman", "ps"]) == "/usr/bin/podman ps"


def test_render_value_type_errors() -> None:
    with pytest.raises(TypeError):
        render_value(HOSTNAME, ["a", "b"])
    with pytest.raises(TypeError):
        render_value(EXECSTART, "/usr/bin/podman ps")


def test_every_kind_is_rendered() -> None:
    samples: dict[Kind, str | list[str]] = {
        Kind.VERBATIM: "v",
        Kind.WORDS: ["w"],
        Kind.KEYVAL: ["K=V"],
        Kind.STRV: ["s"],
        Kind.BOOL: "true",
        Kind.UNIT_TEXT: "t",
        Kind.UNIT_NAMES: ["a.target"],
        Kind.EXEC: ["/bin/true"],
    }
    assert set(samples) == set(Kind)
    for row in KEYS.values():
        assert render_value(row, samples[row.kind])


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (" ", "whitespace"),
        ("x ", "whitespace"),
        ("\u3000x", "whitespace"),
        ("a\\", "backslash"),
        ("a\nb", "newline"),
    ],
)
def test_check_raw_refusals(value: str, fragment: str) -> None:
    with pytest.raises(UnitValueError) as info:
        check_raw(value)
    assert fragment in info.value.reason


@pytest.mark.parametrize("value", ["", "%n raw specifier", '"quoted"', "a b", "x\\y"])
def test_check_raw_accepts_operator_syntax(value: str) -> None:
    check_raw(value)
