"""Issue 17 item 5: ``WWW-Authenticate`` and ``Link`` are parsed in linear time.

A 64 KiB header cost 20 s of CPU with the backtracking regexes (quadratic: each start
position rescanned the rest), so 256 KiB would take minutes and 1 MiB hours. The bounds:
8x the text (32 KiB -> 256 KiB) may cost at most 40x the time plus half a second (linear
needs 8x, quadratic 64x; the slack absorbs a busy machine, best of three runs each), 256 KiB
at most 5 s (linear: a few hundredths), and an alarm ends a parse after 30 s so a quadratic
parser fails in seconds instead of running for minutes.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from typing import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psquadlet.watch.headers import next_page, parse_challenge

Parser = Callable[[str], object]


def challenge(text: str) -> object:
    """parse_challenge of *text* as the parameters of a Bearer challenge (the first word is
    the scheme: a header without a space has no parameters to parse)."""
    return parse_challenge("Bearer " + text)


# --------------------------------------------------------------------------- what they read
@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:perfsonar/testpoint:pull"',
            (
                "bearer",
                {
                    "realm": "https://auth.docker.io/token",
                    "service": "registry.docker.io",
                    "scope": "repository:perfsonar/testpoint:pull",
                },
            ),
        ),
        ('Basic realm="fake"', ("basic", {"realm": "fake"})),
        ("Bearer realm=plain, service=x", ("bearer", {"realm": "plain", "service": "x"})),
        ('Bearer realm = "spaced" , Service="A"', ("bearer", {"realm": "spaced", "service": "A"})),
        (
            'Bearer realm="with, comma \\"and quote\\""',
            ("bearer", {"realm": 'with, comma "and quote"'}),
        ),
        ('Bearer realm="unclosed', ("bearer", {"realm": "unclosed"})),
        (
            'Bearer error="insufficient_scope",realm="r"',
            ("bearer", {"error": "insufficient_scope", "realm": "r"}),
        ),
        ("Bearer", ("bearer", {})),
        ("", ("", {})),
        ('Bearer =x, "=", a=, ,=, b', ("bearer", {})),
    ],
)
def test_challenges(header: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_challenge(header) == expected


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ('</v2/r/tags/list?n=2&last=b>; rel="next"', "/v2/r/tags/list?n=2&last=b"),
        ("</v2/r/tags/list?last=b>; rel=next", "/v2/r/tags/list?last=b"),
        ('</a>; rel="prev", </b>; rel="next"', "/b"),
        ('</a>; title="x"; REL="Next"', "/a"),
        ('</a>; rel="prev next"', "/a"),
        ('</a>; rel="prev", </b>; rel="last"', ""),
        ('</a>; rel="nextpage"', ""),
        ("<unclosed; rel=next", ""),
        ("", ""),
        ('rel="next"', ""),
    ],
)
def test_links(header: str, target: str) -> None:
    assert next_page(header) == target


# --------------------------------------------------------------------------- how long it takes
class TookTooLong(Exception):
    pass


@contextlib.contextmanager
def _at_most(seconds: float) -> Iterator[None]:
    """Interrupt a parse that runs too long (the regex engine checks for signals), so the
    quadratic parsers fail these tests in seconds instead of running for hours."""

    def expired(signum: int, frame: object) -> None:
        raise TookTooLong(f"not done within {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _best_of_three(parse: Parser, text: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        parse(text)
        best = min(best, time.perf_counter() - start)
    return best


def _linear(parse: Parser, fragment: str, size: int = 32 * 1024) -> None:
    small = (fragment * (size // len(fragment) + 1))[:size]
    big = small * 8
    with _at_most(30):
        t_small = _best_of_three(parse, small)
        t_big = _best_of_three(parse, big)
    # 256 KiB: a quadratic parser needs minutes here (64 KiB took 20 s)
    assert t_big < 5.0, (fragment, t_big)
    assert t_big < 40 * t_small + 0.5, (fragment, t_small, t_big)


# the shapes that made the old regexes quadratic, and the parsers' own separators
HOSTILE = ["a", "a=", "<", "<a>;", '"\\', 'a="x",', '<a>; rel="nexty",']


@pytest.mark.parametrize("fragment", HOSTILE)
@pytest.mark.parametrize("parse", [challenge, next_page], ids=["challenge", "link"])
def test_headers_parse_in_linear_time(parse: Parser, fragment: str) -> None:
    _linear(parse, fragment)


@settings(max_examples=25, deadline=None)
@given(
    fragment=st.text(alphabet='ab =,;<>"\\rel', min_size=1, max_size=8),
    which=st.sampled_from([challenge, next_page]),
)
def test_any_repeated_fragment_parses_in_bounded_time(fragment: str, which: Parser) -> None:
    # 256 KiB of any repetition of separators and letters: linear, a fraction of a second
    text = (fragment * (256 * 1024 // len(fragment) + 1))[: 256 * 1024]
    start = time.perf_counter()
    with _at_most(10):
        which(text)
    assert time.perf_counter() - start < 5.0
