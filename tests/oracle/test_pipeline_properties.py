"""Property (issue 2): for arbitrary strings in every string-valued setting of the TOML
schema, psquadlet either refuses the value with a ConfigError naming the key, or the real
Quadlet generator reads back exactly that value and no extra argument or line.

The whole pipeline runs: TOML text -> psquadlet.config.parse_config -> render_units ->
Quadlet 5.4.2 (dry run) -> the podman argv systemd would execute. Units are rendered for the
generator's own version, so that keys newer than it take their documented fallback. Values are
batched: one Hypothesis example is a batch of configurations converted by one generator run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from psquadlet.config import parse_config
from psquadlet.errors import ConfigError, ConfigErrors
from psquadlet.render import render_units
from tests.support.oracle import UnitText, quadlet_version, run_quadlet
from tests.support.unitread import unescape_specifiers

pytestmark = pytest.mark.oracle

IMAGE = "docker.io/library/busybox:latest"
NAME = "t"

AWKWARD = " \t\"'\\%$;=:,#[]{}`*?~!@&|<>()-./\n\r\x00\x01\x1b\x7f\x85\xa0\u2028\u3000\ufeffé€😀"
CHARS = st.one_of(
    st.sampled_from(AWKWARD),
    st.characters(exclude_categories=("Cs",)),
    st.sampled_from("abcxyz0189/=:"),
)
TEXT = st.text(CHARS, max_size=14)
BATCH = 12
SETTINGS = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def toml_str(value: str) -> str:
    """A TOML basic string holding exactly ``value``."""
    out = ['"']
    for char in value:
        code = ord(char)
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif code < 0x20 or 0x7F <= code <= 0x9F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def flag_values(argv: Sequence[str], flag: str) -> list[str]:
    """Values of ``flag VALUE`` and ``flag=VALUE`` (Quadlet releases differ in the form)."""
    found: list[str] = []
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv) and (i == 0 or argv[i - 1] != flag):
            found.append(argv[i + 1])
        elif arg.startswith(flag + "="):
            found.append(arg[len(flag) + 1 :])
    return found


def without_flag(argv: Sequence[str], flag: str) -> list[str]:
    out: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == flag and i + 1 < len(argv):
            skip = True
            continue
        if arg.startswith(flag + "="):
            continue
        out.append(arg)
    return out


@dataclass
class Setting:
    """One string-valued setting: how to write a value into TOML and read it back."""

    path: str  # key path below containers.t, as ConfigError names it
    toml: Callable[[str], str]  # lines inside [containers.t] (may open sub-tables)
    check: Callable[[str, UnitText, UnitText], None]  # value, unit, baseline unit
    baseline_toml: str = ""
    extra_lines: frozenset[str] = field(default_factory=frozenset)


def flag_setting(
    path: str,
    flag: str,
    toml: Callable[[str], str],
    *,
    expect: Callable[[str], str] = lambda v: v,
    baseline_toml: str = "",
    extra_lines: frozenset[str] = frozenset(),
) -> Setting:
    def check(value: str, unit: UnitText, base: UnitText) -> None:
        argv = unit.exec_argv()
        if value == "" and toml is not None and toml("").endswith('""'):
            # a scalar set to "" means "not set": the run line must be the baseline's
            assert argv == base.exec_argv()
            return
        assert flag_values(argv, flag) == [expect(value)], f"{flag}: {flag_values(argv, flag)}"
        assert without_flag(argv, flag) == without_flag(base.exec_argv(), flag)

    return Setting(path, toml, check, baseline_toml, extra_lines)


def scalar(key: str) -> Callable[[str], str]:
    return lambda v: f"{key} = {toml_str(v)}"


def one_item(key: str) -> Callable[[str], str]:
    return lambda v: f"{key} = [{toml_str(v)}]"


def map_value(key: str, name: str) -> Callable[[str], str]:
    return lambda v: f"{key} = {{ {name} = {toml_str(v)} }}"


def map_key(key: str) -> Callable[[str], str]:
    return lambda v: f'{key} = {{ {toml_str(v)} = "v" }}'


def words_setting(path: str, where: str) -> Setting:
    def check(value: str, unit: UnitText, base: UnitText) -> None:
        argv = unit.exec_argv()
        b = base.exec_argv()
        if where == "after-image":
            expected = [*b, value]
        elif where == "before-image":
            expected = [*b[:-1], value, b[-1]]
        else:  # global: between podman and every podman subcommand
            expected = [b[0], value, *b[1:]]
            for key in ("ExecStop", "ExecStopPost"):
                stop, base_stop = unit.exec_argv(key), base.exec_argv(key)
                assert stop == [base_stop[0], value, *base_stop[1:]], key
        assert argv == expected

    extra = frozenset({"ExecStop", "ExecStopPost"}) if where == "global" else frozenset()
    return Setting(path, one_item(path), check, extra_lines=extra)


def description_setting(path: str, toml: Callable[[str], str]) -> Setting:
    def check(value: str, unit: UnitText, base: UnitText) -> None:
        read = unescape_specifiers(unit.value("Unit", "Description"))
        # "" means "not set": the default description stays
        assert read == (value or unescape_specifiers(base.value("Unit", "Description")))
        assert unit.exec_argv() == base.exec_argv()

    return Setting(path, toml, check, extra_lines=frozenset({"Description"}))


def unit_words(unit: UnitText, section: str, key: str) -> list[str]:
    """systemd's reading of a unit-name list: whitespace-split words, specifiers resolved."""
    return [unescape_specifiers(w) for v in unit.values(section, key) for w in v.split()]


def unit_list_setting(path: str, toml: Callable[[str], str], section: str, key: str) -> Setting:
    def check(value: str, unit: UnitText, base: UnitText) -> None:
        words = unit_words(unit, section, key)
        assert value in words, f"{key}= words {words!r}"
        others = set(words) - {value}
        assert others <= set(unit_words(base, section, key)), f"extra {key}= words {others!r}"
        assert unit.exec_argv() == base.exec_argv()

    return Setting(path, toml, check, extra_lines=frozenset({key}))


def raw_extra_setting(path: str, table: str, section: str, key: str) -> Setting:
    """``extra`` keys are raw systemd syntax: the line's value must be exactly the value."""

    def check(value: str, unit: UnitText, base: UnitText) -> None:
        assert unit.values(section, key) == [value]
        assert unit.exec_argv() == base.exec_argv()

    return Setting(
        path,
        lambda v: f"[containers.t.{table}]\n{key} = {toml_str(v)}",
        check,
        extra_lines=frozenset({key}),
    )


def health_exec_setting() -> Setting:
    def check(value: str, unit: UnitText, base: UnitText) -> None:
        argv = unit.exec_argv()
        (cmd,) = flag_values(argv, "--health-cmd")
        assert json.loads(cmd) == [value]
        assert without_flag(argv, "--health-cmd") == without_flag(base.exec_argv(), "--health-cmd")

    return Setting(
        "health.cmd",
        lambda v: f"[containers.t.health]\ncmd = [{toml_str(v)}]",
        check,
        baseline_toml=HEALTH_BASE,
    )


HEALTH_BASE = '[containers.t.health]\ncmd = "true"'

ALL_SETTINGS = [
    flag_setting("hostname", "--hostname", scalar("hostname")),
    flag_setting(
        "container_name",
        "--name",
        scalar("container_name"),
        extra_lines=frozenset({"ExecStop", "ExecStopPost"}),  # newer Quadlet: rm NAME
    ),
    flag_setting("entrypoint", "--entrypoint", scalar("entrypoint")),
    flag_setting("network", "--network", scalar("network")),
    flag_setting("user", "--user", scalar("user")),
    flag_setting("userns", "--userns", scalar("userns")),
    flag_setting("working_dir", "--workdir", scalar("working_dir")),
    flag_setting("timezone", "--tz", scalar("timezone")),
    flag_setting("log_driver", "--log-driver", scalar("log_driver")),
    flag_setting("stop_signal", "--stop-signal", scalar("stop_signal")),
    flag_setting("dns", "--dns", one_item("dns")),
    flag_setting("dns_search", "--dns-search", one_item("dns_search")),
    flag_setting("add_hosts", "--add-host", one_item("add_hosts")),
    flag_setting("ports", "--publish", one_item("ports")),
    flag_setting("tmpfs", "--tmpfs", one_item("tmpfs")),
    flag_setting("environment_files", "--env-file", one_item("environment_files")),
    flag_setting("cap_add", "--cap-add", one_item("cap_add"), expect=str.lower),
    flag_setting("cap_drop", "--cap-drop", one_item("cap_drop"), expect=str.lower),
    flag_setting("devices", "--device", one_item("devices")),
    flag_setting("group_add", "--group-add", one_item("group_add")),
    flag_setting("ulimits", "--ulimit", one_item("ulimits")),
    flag_setting("mounts", "--mount", one_item("mounts")),
    flag_setting("secrets", "--secret", one_item("secrets")),
    flag_setting("memory", "--memory", scalar("memory")),  # PodmanArgs= below Quadlet 5.5
    flag_setting(
        "volumes",
        "-v",
        one_item("volumes"),
        extra_lines=frozenset({"RequiresMountsFor", "Requires", "After"}),
    ),
    flag_setting("environment", "--env", map_value("environment", "E"), expect=lambda v: f"E={v}"),
    flag_setting("environment", "--env", map_key("environment"), expect=lambda v: f"{v}=v"),
    flag_setting("labels", "--label", map_value("labels", "l"), expect=lambda v: f"l={v}"),
    flag_setting("labels", "--label", map_key("labels"), expect=lambda v: f"{v}=v"),
    flag_setting(
        "annotations", "--annotation", map_value("annotations", "a"), expect=lambda v: f"a={v}"
    ),
    flag_setting(
        "sysctls", "--sysctl", map_value("sysctls", "net.x"), expect=lambda v: f"net.x={v}"
    ),
    flag_setting(
        "health.cmd",
        "--health-cmd",
        lambda v: f"[containers.t.health]\ncmd = {toml_str(v)}",
        baseline_toml=HEALTH_BASE,
    ),
    health_exec_setting(),
    flag_setting(
        "group",
        "--user",
        lambda v: f'user = "u"\ngroup = {toml_str(v)}',
        expect=lambda v: f"u:{v}",
        baseline_toml='user = "u"',
    ),
    flag_setting("annotations", "--annotation", map_key("annotations"), expect=lambda v: f"{v}=v"),
    flag_setting("sysctls", "--sysctl", map_key("sysctls"), expect=lambda v: f"{v}=v"),
    unit_list_setting(
        "unit.after", lambda v: f"[containers.t.unit]\nafter = [{toml_str(v)}]", "Unit", "After"
    ),
    unit_list_setting(
        "unit.wants", lambda v: f"[containers.t.unit]\nwants = [{toml_str(v)}]", "Unit", "Wants"
    ),
    unit_list_setting(
        "install.wanted_by",
        lambda v: f"[containers.t.install]\nwanted_by = [{toml_str(v)}]",
        "Install",
        "WantedBy",
    ),
    raw_extra_setting("unit.extra", "unit.extra", "Unit", "Documentation"),
    raw_extra_setting("service.extra", "service.extra", "Service", "RuntimeMaxSec"),
    words_setting("command", "after-image"),
    words_setting("podman_args", "before-image"),
    words_setting("global_args", "global"),
    description_setting("description", scalar("description")),
    description_setting(
        "unit.description", lambda v: f"[containers.t.unit]\ndescription = {toml_str(v)}"
    ),
]


def config_text(lines: str) -> str:
    return f'[containers.{NAME}]\nimage = "{IMAGE}"\n{lines}\n'


_BASELINES: dict[str, UnitText] = {}


def baseline(setting: Setting) -> UnitText:
    if setting.baseline_toml not in _BASELINES:
        config = parse_config(config_text(setting.baseline_toml), "/etc/psquadlet/test.toml")
        files = {f.filename: f.text for f in render_units(config, podman_version=quadlet_version())}
        _BASELINES[setting.baseline_toml] = run_quadlet(files).check().service(f"{NAME}.service")
    return _BASELINES[setting.baseline_toml]


def other_lines(unit: UnitText, ignore: frozenset[str]) -> list[tuple[str, str, str]]:
    return [
        (s, k, v)
        for s, k, v in unit.entries
        if not s.startswith("X-") and k not in ("ExecStart", "SourcePath") and k not in ignore
    ]


def names_the_key(exc: ConfigError | ConfigErrors, setting: Setting) -> bool:
    errors = exc.errors if isinstance(exc, ConfigErrors) else (exc,)
    root = f"containers.{NAME}.{setting.path}"
    return all(e.key_path.startswith(root) for e in errors)


# Always tried, for every setting: the classic troublemakers.
CLASSICS = [" ", "a b", '"q"', "x\\", "100%", "$HOME", ";", "", "a\nb", "ü €", "it's", "t\tx"]


@pytest.mark.parametrize(
    "setting", ALL_SETTINGS, ids=[f"{s.path}-{i}" for i, s in enumerate(ALL_SETTINGS)]
)
@SETTINGS
@given(values=st.lists(TEXT, min_size=BATCH, max_size=BATCH))
@example(values=CLASSICS)
def test_every_string_setting_is_refused_or_read_back_exactly(
    setting: Setting, values: list[str]
) -> None:
    base = baseline(setting)
    folders: dict[str, dict[str, str]] = {}
    for index, value in enumerate(values):
        text = config_text(setting.toml(value))
        refused: ConfigError | ConfigErrors | None = None
        try:
            config = parse_config(text, "/etc/psquadlet/test.toml")
            files = render_units(config, podman_version=quadlet_version())
        except (ConfigError, ConfigErrors) as exc:
            refused = exc
        if refused is not None:
            assert names_the_key(refused, setting), f"{value!r}: error names another key: {refused}"
            continue
        folders[f"c{index}"] = {f.filename: f.text for f in files}
    # one generator run per batch: each configuration's .container gets its case id; the
    # .volume files a configuration needs keep their names (same name, same content).
    units: dict[str, str] = {}
    for case, files in folders.items():
        for filename, text in files.items():
            if filename.endswith(".container"):
                units[f"{case}.container"] = text
            else:
                assert units.setdefault(filename, text) == text, filename
    if not units:
        return
    result = run_quadlet(units)
    for case, files in folders.items():
        value = values[int(case[1:])]
        assert f"{case}.container" not in result.errors, (
            f"{value!r}: Quadlet refused what psquadlet wrote: {result.errors[case + '.container']}"
        )
        unit = result.service(f"{case}.service")
        try:
            setting.check(value, unit, base)
            assert other_lines(unit, setting.extra_lines) == other_lines(base, setting.extra_lines)
        except AssertionError as exc:
            raise AssertionError(
                f"{setting.path} = {value!r} was not read back exactly:\n{exc}\n"
                f"{files[NAME + '.container']}"
            ) from exc


@dataclass
class VolumeSetting:
    path: str  # below volumes.data
    toml: Callable[[str], str]  # lines inside [volumes.data]
    expected: Callable[[str], list[str]]  # the arguments the value becomes


VOLUME_SETTINGS = [
    VolumeSetting("driver", lambda v: f"driver = {toml_str(v)}", lambda v: ["--driver", v]),
    VolumeSetting("options", lambda v: f"options = [{toml_str(v)}]", lambda v: [f"--opt={v}"]),
    VolumeSetting(
        "labels", lambda v: f"labels = {{ k = {toml_str(v)} }}", lambda v: ["--label", f"k={v}"]
    ),
    VolumeSetting(
        "labels", lambda v: f'labels = {{ {toml_str(v)} = "v" }}', lambda v: ["--label", f"{v}=v"]
    ),
]
VOLUME_BASE = ["/usr/bin/podman", "volume", "create", "--ignore"]


@pytest.mark.parametrize(
    "setting", VOLUME_SETTINGS, ids=[f"{s.path}-{i}" for i, s in enumerate(VOLUME_SETTINGS)]
)
@SETTINGS
@given(values=st.lists(TEXT, min_size=BATCH, max_size=BATCH))
@example(values=CLASSICS)
def test_every_volume_setting_is_refused_or_read_back_exactly(
    setting: VolumeSetting, values: list[str]
) -> None:
    units: dict[str, str] = {}
    for index, value in enumerate(values):
        text = config_text(f"[volumes.data]\n{setting.toml(value)}")
        refused: ConfigError | ConfigErrors | None = None
        try:
            files = render_units(
                parse_config(text, "/etc/psquadlet/test.toml"), podman_version=quadlet_version()
            )
        except (ConfigError, ConfigErrors) as exc:
            refused = exc
        if refused is not None:
            errors = refused.errors if isinstance(refused, ConfigErrors) else (refused,)
            root = f"volumes.data.{setting.path}"
            assert all(e.key_path.startswith(root) for e in errors), f"{value!r}: {refused}"
            continue
        (volume,) = [f for f in files if f.filename == "data.volume"]
        units[f"c{index}-data.volume"] = volume.text
    if not units:
        return
    result = run_quadlet(units)
    assert result.errors == {}, result.errors
    for filename in units:
        value = values[int(filename[1:].split("-", 1)[0])]
        argv = result.service(filename.replace(".volume", "-volume.service")).exec_argv()
        expected = [*VOLUME_BASE, *setting.expected(value), "data"]
        if setting.path == "driver" and value == "":
            expected = [*VOLUME_BASE, "data"]
        assert argv == expected, f"volumes.data.{setting.path} = {value!r} read back as {argv!r}"
