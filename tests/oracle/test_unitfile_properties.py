"""Property: for arbitrary text in every kind of Quadlet value, psquadlet either refuses it
(UnitValueError) or the real Quadlet generator turns it into exactly that podman argument,
with no extra argument and no extra line.

Each Hypothesis example is a batch of values; one batch is one folder of .container/.volume
files and one run of the generator, so the whole suite stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psquadlet.quadlet_keys import KEYS, QuadletKey
from psquadlet.unitfile import UnitValueError, render_value
from tests.support.oracle import QuadletResult, UnitText, run_quadlet
from tests.support.unitread import unescape_specifiers

pytestmark = pytest.mark.oracle

IMAGE = "docker.io/library/busybox:latest"

# Characters that matter to one reader or another, mixed with arbitrary Unicode.
AWKWARD = (
    " \t\"'\\%$;=:#[]{}`*?~!@&|<>()-.,/"
    "\n\r\x00\x01\x08\x0b\x0c\x1b\x7f\x80\x85\x9f\xa0\u1680\u2028\u2029\u200b\u3000\ufeff"
    "éß€𝄞😀"
)
CHARS = st.one_of(
    st.sampled_from(AWKWARD),
    st.characters(exclude_categories=("Cs",)),
    st.sampled_from("abcxyz019"),
)
TEXT = st.text(CHARS, min_size=0, max_size=14)
WORD_LISTS = st.lists(TEXT, min_size=1, max_size=3)
ENV_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
ENV_LISTS = st.lists(st.tuples(ENV_NAME, TEXT), min_size=1, max_size=3, unique_by=lambda t: t[0])

BATCH = 24
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Values that need quoting or escaping but must never be refused: every batch carries them,
# so the property cannot pass by refusing everything.
MUST_ACCEPT = [
    "a b",
    'a "quoted" word',
    "it's",
    "back\\slash",
    "100%",
    "$HOME",
    "${X}",
    "x=y",
    "ü €",
]


def container(lines: Sequence[str], extra: str = "") -> str:
    body = "\n".join(lines)
    return f"[Container]\nImage={IMAGE}\n{body}\n{extra}"


@dataclass
class Case:
    name: str
    value: object
    text: str | None  # None: refused
    reason: str | None = None


def render_all(key: QuadletKey, values: Sequence[object]) -> list[Case]:
    cases = []
    for index, value in enumerate(values):
        try:
            text = render_value(key, value)  # type: ignore[arg-type]
        except UnitValueError as exc:
            cases.append(Case(f"v{index}", value, None, exc.reason))
        else:
            cases.append(Case(f"v{index}", value, text))
    return cases


def baseline_container() -> UnitText:
    result = run_quadlet({"base.container": container([])}).check()
    return result.service("base.service")


_BASELINE: dict[str, UnitText] = {}


def baseline() -> UnitText:
    if "c" not in _BASELINE:
        _BASELINE["c"] = baseline_container()
    return _BASELINE["c"]


def other_lines(unit: UnitText) -> list[tuple[str, str, str]]:
    """Everything but ExecStart=, SourcePath= and the X- copy of the Quadlet section."""
    return [
        (s, k, v)
        for s, k, v in unit.entries
        if not s.startswith("X-") and k not in ("ExecStart", "SourcePath")
    ]


def run_cases(
    cases: list[Case],
    make_unit: Callable[[str], str],
    check: Callable[[Case, UnitText], None],
    suffix: str = "container",
) -> QuadletResult | None:
    accepted = [c for c in cases if c.text is not None]
    if not accepted:
        return None
    result = run_quadlet({f"{c.name}.{suffix}": make_unit(c.text or "") for c in accepted})
    assert result.errors == {}, f"Quadlet rejected accepted values: {result.errors}"
    assert result.returncode == 0, result.stderr
    for case in accepted:
        service_name = (
            f"{case.name}.service" if suffix == "container" else f"{case.name}-volume.service"
        )
        try:
            check(case, result.service(service_name))
        except AssertionError as exc:
            raise AssertionError(
                f"value {case.value!r} rendered as {case.text!r} read back wrong: {exc}"
            ) from exc
    return result


def check_flag_values(flag: str, expected: list[str]) -> Callable[[Case, UnitText], None]:
    def check(case: Case, unit: UnitText) -> None:
        base = baseline()
        argv = unit.exec_argv()
        found = []
        rest = []
        i = 0
        while i < len(argv):
            if argv[i] == flag and i + 1 < len(argv):
                found.append(argv[i + 1])
                i += 2
                continue
            rest.append(argv[i])
            i += 1
        assert found == expected, f"{flag} values {found!r} != {expected!r}"
        assert rest == base.exec_argv(), f"other arguments changed: {rest!r}"
        assert other_lines(unit) == other_lines(base), "extra or changed lines"

    return check


def single_flag_property(section_key: tuple[str, str], flag: str, values: list[str]) -> None:
    key = KEYS[section_key]
    cases = render_all(key, [*MUST_ACCEPT, *values])
    for case in cases[: len(MUST_ACCEPT)]:
        assert case.text is not None, f"{case.value!r} refused: {case.reason}"

    def check(case: Case, unit: UnitText) -> None:
        check_flag_values(flag, [str(case.value)])(case, unit)

    run_cases(cases, lambda text: container([f"{key.name}={text}"]), check)


@SETTINGS
@given(st.lists(TEXT, min_size=BATCH, max_size=BATCH))
def test_verbatim_single_value_reads_back(values: list[str]) -> None:
    """HostName= (Quadlet's Lookup: last value, trailing space and surrounding quotes cut)."""
    single_flag_property(("Container", "HostName"), "--hostname", values)


@SETTINGS
@given(st.lists(TEXT, min_size=BATCH, max_size=BATCH))
def test_verbatim_repeatable_value_reads_back(values: list[str]) -> None:
    """Tmpfs= (Quadlet's LookupAll: every line, verbatim)."""
    single_flag_property(("Container", "Tmpfs"), "--tmpfs", values)


@SETTINGS
@given(st.lists(TEXT, min_size=BATCH, max_size=BATCH))
def test_strv_value_reads_back(values: list[str]) -> None:
    """Sysctl= (Quadlet's LookupAllStrv: words, quotes, no backslash escapes)."""
    single_flag_property(("Container", "Sysctl"), "--sysctl", values)


@SETTINGS
@given(st.lists(WORD_LISTS, min_size=BATCH, max_size=BATCH))
def test_strv_word_lists_read_back(lists: list[list[str]]) -> None:
    key = KEYS[("Container", "Sysctl")]
    cases = render_all(key, [["a b", "c'd\"e"], *lists])
    assert cases[0].text is not None

    def check(case: Case, unit: UnitText) -> None:
        check_flag_values("--sysctl", list(case.value))(case, unit)  # type: ignore[call-overload]

    run_cases(cases, lambda text: container([f"Sysctl={text}"]), check)


@SETTINGS
@given(st.lists(ENV_LISTS, min_size=BATCH, max_size=BATCH))
def test_keyval_reads_back(pairs_lists: list[list[tuple[str, str]]]) -> None:
    """Environment= (Quadlet's LookupAllKeyVal: words with C escapes, each NAME=VALUE)."""
    key = KEYS[("Container", "Environment")]
    values = [[f"{n}={v}" for n, v in pairs] for pairs in pairs_lists]
    cases = render_all(key, [[f"A{i}={v}" for i, v in enumerate(MUST_ACCEPT)], *values])
    assert cases[0].text is not None

    def check(case: Case, unit: UnitText) -> None:
        expected = sorted(case.value)  # type: ignore[call-overload]
        argv = unit.exec_argv()
        found = sorted(argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--env")
        assert found == expected, f"--env values {found!r} != {expected!r}"
        rest = [
            a for i, a in enumerate(argv) if a != "--env" and (i == 0 or argv[i - 1] != "--env")
        ]
        assert rest == baseline().exec_argv()
        assert other_lines(unit) == other_lines(baseline())

    run_cases(cases, lambda text: container([f"Environment={text}"]), check)


@SETTINGS
@given(st.lists(WORD_LISTS, min_size=BATCH, max_size=BATCH))
def test_podman_args_read_back(lists: list[list[str]]) -> None:
    """PodmanArgs= (Quadlet's LookupAllArgs): the words land just before the image."""
    key = KEYS[("Container", "PodmanArgs")]
    cases = render_all(key, [MUST_ACCEPT, *lists])
    assert cases[0].text is not None, cases[0].reason

    def check(case: Case, unit: UnitText) -> None:
        base = baseline().exec_argv()
        expected = [*base[:-1], *case.value, base[-1]]  # type: ignore[misc]
        assert unit.exec_argv() == expected
        assert other_lines(unit) == other_lines(baseline())

    run_cases(cases, lambda text: container([f"PodmanArgs={text}"]), check)


@SETTINGS
@given(st.lists(WORD_LISTS, min_size=BATCH, max_size=BATCH))
def test_exec_args_read_back(lists: list[list[str]]) -> None:
    """Exec= (Quadlet's LookupLastArgs): the words follow the image."""
    key = KEYS[("Container", "Exec")]
    cases = render_all(key, [MUST_ACCEPT, *lists])
    assert cases[0].text is not None, cases[0].reason

    def check(case: Case, unit: UnitText) -> None:
        assert unit.exec_argv() == [*baseline().exec_argv(), *case.value]  # type: ignore[misc]
        assert other_lines(unit) == other_lines(baseline())

    run_cases(cases, lambda text: container([f"Exec={text}"]), check)


@SETTINGS
@given(st.lists(TEXT, min_size=BATCH, max_size=BATCH))
def test_unit_description_reads_back(values: list[str]) -> None:
    """Description= in [Unit]: Quadlet copies it, systemd expands specifiers."""
    key = KEYS[("Unit", "Description")]
    cases = render_all(key, [*MUST_ACCEPT, *values])

    def check(case: Case, unit: UnitText) -> None:
        assert unescape_specifiers(unit.value("Unit", "Description")) == case.value
        assert unit.exec_argv() == baseline().exec_argv()
        others = [e for e in other_lines(unit) if e[1] != "Description"]
        assert others == other_lines(baseline())

    run_cases(cases, lambda text: container([], extra=f"[Unit]\nDescription={text}\n"), check)


@SETTINGS
@given(st.lists(TEXT, min_size=BATCH, max_size=BATCH))
def test_volume_name_reads_back(values: list[str]) -> None:
    """VolumeName= in [Volume]: the last argument of `podman volume create`."""
    key = KEYS[("Volume", "VolumeName")]
    cases = render_all(key, [*MUST_ACCEPT, *values])

    def check(case: Case, unit: UnitText) -> None:
        argv = unit.exec_argv()
        assert argv[:4] == ["/usr/bin/podman", "volume", "create", "--ignore"]
        assert argv[4:] == [case.value]

    run_cases(cases, lambda text: f"[Volume]\nVolumeName={text}\n", check, suffix="volume")
