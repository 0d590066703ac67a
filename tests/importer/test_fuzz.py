"""Fuzz: ``import --compose`` over random YAML-ish files and ``import -- docker run ...`` over
random words end with a file or a located error (exit 1 or 2), never a traceback, within a
fixed hypothesis budget."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psquadlet.cli import main
from psquadlet.importer import runflags

BUDGET = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SECONDS_PER_CASE = 5.0


def _runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click >= 8.2 always keeps them apart
        return CliRunner()


def run_import(args: list[str]) -> tuple[int, str]:
    """Exit code and stderr; any exception other than SystemExit fails the test."""
    started = time.monotonic()
    result = _runner().invoke(main, ["import", *args])
    assert time.monotonic() - started < SECONDS_PER_CASE, args
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in (0, 1, 2), result.exit_code
    if result.exit_code:
        assert result.stderr.startswith("psquadlet: error: "), result.stderr
        assert "Traceback" not in result.stderr
    return result.exit_code, result.stderr


# ---- compose --------------------------------------------------------------------------------

COMPOSE_KEYS = [
    "image", "command", "entrypoint", "environment", "env_file", "ports", "volumes", "tmpfs",
    "labels", "networks", "network_mode", "healthcheck", "deploy", "logging", "restart",
    "stop_grace_period", "ulimits", "devices", "extra_hosts", "depends_on", "user", "cap_add",
    "sysctls", "security_opt", "pull_policy", "privileged", "cpus", "mem_limit", "build", "x-y",
]  # fmt: skip
SUBKEYS = [
    "test", "interval", "retries", "resources", "limits", "memory", "options", "driver", "type",
    "source", "target", "bind", "propagation", "tmpfs", "size", "mode", "soft", "hard", "path",
    "required", "published", "host_ip", "protocol", "condition", "name", "external",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 2**63, 10**30]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["nginx", "80:80", "/srv:/srv:ro", "CMD", "CMD-SHELL", "${X:-1}", "1m30s"]),
    st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(SUBKEYS), inner, max_size=4),
        st.dictionaries(st.text(max_size=6), inner, max_size=2),
    ),
    max_leaves=10,
)
SERVICES = st.dictionaries(
    st.one_of(st.sampled_from(["web", "db"]), st.text(min_size=1, max_size=8)),
    st.dictionaries(st.sampled_from(COMPOSE_KEYS), VALUES, max_size=6),
    min_size=1,
    max_size=2,
)
YAML_BITS = st.sampled_from(
    ["\n", "  ", "- ", ": ", "[", "]", "{", "}", ",", "&a ", "*a", "!!int ", "!!str ", "'", '"',
     "#", "|", ">", "services:", "image: nginx", "volumes:", "${", "}", "\\", "\t", "0x1F"]
)  # fmt: skip


@st.composite
def compose_texts(draw: st.DrawFn) -> str:
    services = draw(SERVICES)
    for body in services.values():
        if draw(st.integers(0, 9)):  # mostly with an image, or nothing else gets read
            body.setdefault("image", "nginx")
    document: dict[str, Any] = {"services": services}
    if draw(st.booleans()):
        document["volumes"] = draw(st.dictionaries(st.text(max_size=6), VALUES, max_size=2))
    try:
        text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    except yaml.YAMLError:
        text = "services: {}\n"
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 3]))):  # splice YAML punctuation in
        at = draw(st.integers(0, len(text)))
        text = text[:at] + "".join(draw(st.lists(YAML_BITS, max_size=4))) + text[at:]
    return text


@BUDGET
@given(text=compose_texts())
def test_compose_import_never_crashes(tmp_path: Path, text: str) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    code, err = run_import(["--compose", str(path)])
    if code:
        message = err.splitlines()[-1]
        assert str(path) in message or any(
            place in message for place in ("services.", "volumes.", "containers.", "$")
        ), message


# ---- docker run lines -----------------------------------------------------------------------

FLAG_WORDS = sorted(
    {f"--{name}" for flag in runflags.DOCKER_FLAGS for name in (flag.long, *flag.aliases)}
    | {f"-{flag.short}" for flag in runflags.DOCKER_FLAGS if flag.short}
)
VALUE_WORDS = st.one_of(
    st.sampled_from(
        [
            "nginx",
            "80:80",
            "/a:/b:ro",
            "1e23",
            "9" * 30,
            "on-failure:3",
            "a=b",
            "=",
            "",
            "-",
            "--",
            "host",
            "type=bind,src=/a,dst=/b",
            "perfsonar/testpoint:systemd",
            "$HOME",
            "'",
        ]
    ),
    st.text(max_size=10),
)
WORDS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(FLAG_WORDS), VALUE_WORDS),  # a flag and its value
        st.tuples(st.one_of(st.sampled_from(FLAG_WORDS), VALUE_WORDS)),  # a lone word
    ),
    max_size=6,
).map(lambda groups: [word for group in groups for word in group])


@BUDGET
@given(words=WORDS, program=st.sampled_from(["docker", "podman"]), joined=st.booleans())
def test_run_line_import_never_crashes(words: list[str], program: str, joined: bool) -> None:
    line = [program, "run", *words]
    code, err = run_import(["--", " ".join(line)] if joined else ["--", *line])
    if code:
        assert len(err.strip()) > len("psquadlet: error: "), err
