"""Splitting a pasted command line as a POSIX shell would."""

from __future__ import annotations

import shlex

import pytest

from psquadlet.importer.shellwords import Expansion, ShellSyntaxError, split


@pytest.mark.parametrize(
    "line",
    [
        "docker run -d nginx",
        "docker run -e 'A=b c' -e \"D=e'f\" nginx",
        r"docker run -e A=b\ c nginx",
        'docker run --health-cmd "curl -f http://x/ || exit 1" img',
        "docker run -e 'X=\\n' img",
    ],
)
def test_agrees_with_shlex_on_plain_lines(line: str) -> None:
    assert split(line, {})[0] == shlex.split(line)


def test_continuations_prompt_and_comments() -> None:
    text = "# docker run -d \\\n  --name web \\\n  -e A=b#c nginx  # the web server\n"
    assert split(text, {})[0] == ["docker", "run", "-d", "--name", "web", "-e", "A=b#c", "nginx"]


def test_dollar_prompt_is_removed() -> None:
    assert split("$ docker run img", {})[0] == ["docker", "run", "img"]


def test_variables_are_expanded_and_reported() -> None:
    words, expansions = split(
        'docker run -v $HOME/d:/d -e "U=${USER}" -e N=$NOPE img',
        {
            "HOME": "/home/op",
            "USER": "op",
        },
    )
    assert words == ["docker", "run", "-v", "/home/op/d:/d", "-e", "U=op", "-e", "N=", "img"]
    assert expansions == [
        Expansion("HOME", "/home/op"),
        Expansion("USER", "op"),
        Expansion("NOPE", None),
    ]


def test_single_quotes_and_escapes_keep_dollars() -> None:
    words, expansions = split(
        "docker run -e 'A=$HOME' -e B=\\$HOME -e \"C=\\$x\" img", {"HOME": "h"}
    )
    assert words[3:8:2] == ["A=$HOME", "B=$HOME", "C=$x"]
    assert expansions == []


def test_empty_quotes_make_an_empty_word() -> None:
    assert split("docker run --entrypoint '' img", {})[0] == [
        "docker", "run", "--entrypoint", "", "img",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("docker run -e 'A=b img", "unbalanced quotes"),
        ('docker run -e "A=b img', "unbalanced quotes"),
        ("docker run img \\", "lone backslash"),
        ("docker run -e A=$(id -u) img", "command substitution"),
        ("docker run -e A=`id -u` img", "command substitution"),
        ("docker pull img && docker run img", "shell operator"),
        ("docker run img; echo done", "shell operator"),
        ("docker run img | tee log", "shell operator"),
        ("docker run -e A=${B:-c} img", "unsupported parameter expansion"),
        ("docker run -e A=${B img", "unbalanced ${"),
    ],
)
def test_what_a_shell_would_do_differently_is_refused(line: str, message: str) -> None:
    with pytest.raises(ShellSyntaxError, match=message.replace("$", r"\$").replace("{", r"\{")):
        split(line, {})
