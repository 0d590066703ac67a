"""One row per configuration setting: the single description that the rest reads.

A ``Setting`` names a TOML key, its type and check, its documented default, a help text, the
Quadlet key and the ``podman run`` flag it renders to, and the Podman versions that introduced
that flag (and, through ``quadlet_keys``, that key). From these rows:

* ``config`` reads every simple ``[containers.NAME]`` key (type, check, bounds);
* ``render`` writes every simple key in both formats and gates keys, values and flags by
  version (``PodmanVersionError``);
* ``import`` orders the keys of the files it writes;
* the reference tables of docs/configuration.md are generated (``python -m psquadlet.schema
  docs``), and the man page's CONFIGURATION section is written from the same cells
  (``reference_cells``); tests check that both agree with the rows.

The values themselves default to the model's dataclass defaults (``model.ContainerSpec``): a
row's ``default`` is only how the reference describes that default. A test checks that parsing a
table without the key yields the model default, so there is no second default anywhere.

Special cases (``render = SPECIAL``) are rendered by hand, in one loop in
``render._container_options``, because one key becomes several lines or depends on another key.
Adding a simple key is one row here, one model field, plus its tests.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from psquadlet import checks, quadlet_keys
from psquadlet.checks import one_of

Version = tuple[int, int]

TEXT = "string"
FLAG = "boolean"
INTEGER = "integer"
DURATION = "duration"
LIST = "array of strings"
MAP = "table of strings"
TABLE = "table"

SIMPLE = "simple"
"""Rendered from the row alone: each value (each item, each pair) is one key / one flag."""
SPECIAL = "special"
"""Rendered by hand in ``render`` (see the module docstring)."""
ELSEWHERE = "elsewhere"
"""Not a [Container] option: read by the preset merge, the [Unit] section or the watcher."""

DAY = 86400
MAX_DURATION = 30 * DAY
"""The largest duration any setting accepts unless its row says otherwise."""


@dataclass(frozen=True)
class Setting:
    """One key of a configuration table."""

    key: str
    type: str
    help: str
    default: str = ""
    """How the reference states the default; the value is the model's dataclass default."""
    check: Callable[[str], str] | None = None
    """Check of each string (each item of a list, each value of a map)."""
    key_check: Callable[[str], str] | None = None
    """Check of each key of a map."""
    quadlet: str | None = None
    """The [Container] key; None with a ``flag``: PodmanArgs= carries the flag."""
    systemd: str | None = None
    """A systemd key written in both formats, as ``SECTION.KEY`` ("Unit.StartLimitBurst")."""
    flag: str | None = None
    """The ``podman run`` flag ("--hostname"); for booleans the whole argument."""
    flag_since: Version = (0, 0)
    """First Podman whose ``podman run`` has the flag; (0, 0): older than any target."""
    values_since: Mapping[str, tuple[Version, Version]] = field(default_factory=dict)
    """Values that came later than their key: value -> (Quadlet version, podman run version)."""
    fallback: bool = False
    """On a Quadlet older than the key, write ``PodmanArgs=FLAG=VALUE`` instead of refusing."""
    render: str = SIMPLE
    maximum: int | None = None
    """Largest integer / duration in seconds (durations default to ``MAX_DURATION``)."""

    @property
    def quadlet_since(self) -> Version | None:
        """The Podman version whose Quadlet reads ``quadlet`` (None: no key)."""
        if self.quadlet is None:
            return None
        return quadlet_keys.key("Container", self.quadlet).since

    @property
    def bound(self) -> int | None:
        if self.type == DURATION:
            return self.maximum if self.maximum is not None else MAX_DURATION
        return self.maximum


def _rows(*rows: Setting) -> Mapping[str, Setting]:
    return MappingProxyType({row.key: row for row in rows})


NOTIFY_HEALTHY = "healthy"
NOTIFY_HEALTHY_WHEN_SUPPORTED = "healthy-when-supported"
"""``notify`` resolved per target by ``render``: ``healthy`` where the target Podman has it (and
a health check is set), else off; never a refusal, never a reason to leave Quadlet."""
NOTIFY_HEALTHY_SINCE: tuple[Version, Version] = ((5, 0), (4, 7))
"""Quadlet ``Notify=healthy`` came with 5.0, ``podman run --sdnotify=healthy`` with 4.7."""
_NOTIFY_HEALTHY = {NOTIFY_HEALTHY: NOTIFY_HEALTHY_SINCE}

# [containers.NAME], in the order the renderer writes them (golden files depend on it).
CONTAINER: Mapping[str, Setting] = _rows(
    Setting("preset", TEXT, '`"perfsonar-testpoint"`: the upstream docker run lines',
            "none", render=ELSEWHERE),
    Setting("variant", TEXT, "preset variant: `systemd` or `supervisord`", '`"systemd"`',
            render=ELSEWHERE),
    Setting("registry", TEXT, "preset registry: `ghcr.io` (where upstream publishes), "
            "`docker.io` or a mirror host", '`"ghcr.io"`', render=ELSEWHERE),
    Setting("image", TEXT, "fully qualified reference; short names are refused with the "
            "suggestion", "**required** (or preset)", checks.check_image, quadlet="Image",
            render=SPECIAL),
    Setting("container_name", TEXT, "", "`NAME`", checks.check_name, quadlet="ContainerName",
            flag="--name", render=SPECIAL),
    Setting("description", TEXT, "`[Unit] Description=`", '`"NAME container"`',
            render=ELSEWHERE),
    Setting("command", LIST, "arguments after the image (`Exec=`)", "`[]`", quadlet="Exec",
            render=SPECIAL),
    Setting("entrypoint", TEXT, "", "image's", quadlet="Entrypoint", flag="--entrypoint"),
    Setting("network", TEXT, "`host`, `none`, `bridge`, `pasta`, `slirp4netns`, a network name",
            "podman's", checks.check_word, quadlet="Network", flag="--network"),
    Setting("hostname", TEXT, "", "", checks.check_hostname, quadlet="HostName",
            flag="--hostname"),
    Setting("dns", LIST, "IP addresses", "`[]`", checks.check_ip, quadlet="DNS", flag="--dns"),
    Setting("dns_search", LIST, "domains", "`[]`", checks.check_word, quadlet="DNSSearch",
            flag="--dns-search"),
    Setting("add_hosts", LIST, '`"name:ip"`', "`[]`", checks.check_add_host, quadlet="AddHost",
            flag="--add-host"),
    Setting("ports", LIST, '`"[IP:][HOST_PORT:]CONTAINER_PORT[/tcp\\|udp\\|sctp]"`', "`[]`",
            checks.check_port, quadlet="PublishPort", flag="--publish"),
    Setting("volumes", LIST, '`"SRC:DST[:OPTS]"`; SRC an absolute path (bind mount) or a '
            "volume name (gets `NAME.volume`)", "`[]`", checks.check_volume, quadlet="Volume",
            flag="--volume", render=SPECIAL),
    Setting("mounts", LIST, "podman `--mount` syntax (no `\"`)", "`[]`", checks.check_mount,
            quadlet="Mount", flag="--mount"),
    Setting("tmpfs", LIST, '`"PATH[:OPTS]"`', "`[]`", checks.check_tmpfs, quadlet="Tmpfs",
            flag="--tmpfs"),
    Setting("environment", MAP, "plain values only: secrets belong in `secrets` or "
            "`environment_files`", "`{}`", key_check=checks.check_env_name,
            quadlet="Environment", flag="--env"),
    Setting("environment_files", LIST, "absolute paths of `NAME=VALUE` files; keep secrets "
            "there in a 0600 file", "`[]`", checks.check_abs_path, quadlet="EnvironmentFile",
            flag="--env-file"),
    Setting("environment_host", FLAG, "", "`false`", quadlet="EnvironmentHost",
            flag="--env-host"),
    # --secret: Podman 3.1.0 (RELEASE_NOTES.md "3.1.0": "the `--secret` option to
    # `podman run`"); type=env came with 3.2.0, target= for type=mount with 3.4.3.
    Setting("secrets", LIST, "Podman secrets (`podman secret create`): "
            '`"NAME[,type=mount\\|env][,target=T]"`', "`[]`", checks.check_secret,
            quadlet="Secret", flag="--secret", flag_since=(3, 1)),
    Setting("cap_add", LIST, "", "`[]`", checks.check_capability, quadlet="AddCapability",
            flag="--cap-add"),
    Setting("cap_drop", LIST, "", "`[]`", checks.check_capability, quadlet="DropCapability",
            flag="--cap-drop"),
    Setting("devices", LIST, '`"HOST[:CONTAINER][:PERMS]"`', "`[]`", checks.check_device,
            quadlet="AddDevice", flag="--device"),
    Setting("labels", MAP, "", "`{}`", key_check=checks.check_label_key, quadlet="Label",
            flag="--label"),
    Setting("annotations", MAP, "", "`{}`", key_check=checks.check_label_key,
            quadlet="Annotation", flag="--annotation"),
    Setting("user", TEXT, "", "image's", checks.check_word, quadlet="User", flag="--user",
            render=SPECIAL),
    Setting("group", TEXT, "needs `user` (`--user USER:GROUP`)", "image's", checks.check_word,
            quadlet="Group", render=SPECIAL),
    Setting("group_add", LIST, "", "`[]`", checks.check_word, quadlet="GroupAdd",
            flag="--group-add"),
    Setting("working_dir", TEXT, "", "image's", checks.check_abs_path, quadlet="WorkingDir",
            flag="--workdir"),
    Setting("userns", TEXT, "e.g. `keep-id`, `auto`, `host`", "", checks.check_word,
            quadlet="UserNS", flag="--userns"),
    Setting("ulimits", LIST, '`"nofile=1024:2048"`', "`[]`", checks.check_ulimit,
            quadlet="Ulimit", flag="--ulimit"),
    Setting("sysctls", MAP, "", "`{}`", key_check=checks.check_sysctl, quadlet="Sysctl",
            flag="--sysctl"),
    # --cgroupns: Podman 1.5.0 (RELEASE_NOTES.md "1.5.0": "`--cgroupns=private`"), older
    # than every target; checked in podman 3.0.1's `podman run --help` (Debian 11).
    Setting("cgroupns", TEXT, "`host` or `private`", "", one_of("host", "private"),
            flag="--cgroupns"),
    Setting("tty", FLAG, "", "`false`", flag="--tty"),
    Setting("init", FLAG, "", "`false`", quadlet="RunInit", flag="--init"),
    Setting("read_only", FLAG, "", "`false`", quadlet="ReadOnly", flag="--read-only"),
    Setting("no_new_privileges", FLAG, "", "`false`", quadlet="NoNewPrivileges",
            flag="--security-opt=no-new-privileges"),
    Setting("privileged", FLAG, "", "`false`", flag="--privileged"),
    # --tz: Podman 2.1.0 (RELEASE_NOTES.md "2.1.0": "a `--tz` option").
    Setting("timezone", TEXT, "e.g. `local`", "", checks.check_word, quadlet="Timezone",
            flag="--tz", flag_since=(2, 1)),
    Setting("log_driver", TEXT, "", "", checks.check_word, quadlet="LogDriver",
            flag="--log-driver"),
    Setting("memory", TEXT, "memory limit, e.g. `512m`",
            "", checks.check_memory, quadlet="Memory", flag="--memory", fallback=True),
    Setting("stop_signal", TEXT, "e.g. `SIGRTMIN+3`", "podman's", checks.check_signal,
            quadlet="StopSignal", flag="--stop-signal"),
    Setting("stop_timeout", INTEGER, "seconds (at most 3600)", "`0` (podman's)",
            quadlet="StopTimeout", flag="--stop-timeout", maximum=3600),
    # --pull=newer: podman-run(1) of v4.2.0 is the first to list it (v4.1.0 and v3.4.4:
    # always|missing|never); Quadlet's Pull= (4.6) takes it from the start.
    Setting("pull", TEXT, "`missing`, `always`, `newer`, `never`", "not emitted",
            one_of("missing", "always", "newer", "never"), quadlet="Pull", flag="--pull",
            values_since={"newer": ((4, 6), (4, 2))}),
    Setting("notify", TEXT, '`true`, `"healthy"`, or `"healthy-when-supported"` (`healthy` '
            "where the target has it, else off)", "`false`",
            quadlet="Notify",
            flag="--sdnotify", values_since=_NOTIFY_HEALTHY, render=SPECIAL),
    Setting("health", TABLE, "Podman's own health check: see `[containers.NAME.health]`", "none",
            render=SPECIAL),
    Setting("podman_args", LIST, "raw `podman run` arguments, one word each", "`[]`",
            checks.check_nonempty, quadlet="PodmanArgs", render=SPECIAL),
    Setting("global_args", LIST, "raw global podman arguments", "`[]`", checks.check_nonempty,
            quadlet="GlobalArgs", render=SPECIAL),
)  # fmt: skip

CONTAINER_KEYS: tuple[str, ...] = tuple(k for k, row in CONTAINER.items() if row.type != TABLE)

# [containers.NAME.health]: Podman's own health check (rendered by hand: every key but
# on_failure is always written). Quadlet's Health* keys came with 4.5; podman run's
# --health-cmd/-interval/-timeout/-retries/-start-period came with health checks in Podman
# 1.2.0 (RELEASE_NOTES.md "1.2.0": "Podman now supports image healthchecks"), older than every
# target (checked in podman 3.0.1 on Debian 11); --health-on-failure with 4.3.0 (RELEASE_NOTES.md
# "4.3.0": "a new option, `--on-failure`", the manual's --health-on-failure). Below 4.3 it is
# left out, never refused: psquadlet's health supervisor (issue 17) does the kill there.
HEALTH: Mapping[str, Setting] = _rows(
    Setting("cmd", TEXT, "a string runs via `/bin/sh -c`, an array is the exec form; `\"none\"`: "
            "no health check (Podman's; turns off the preset's)",
            "**required**", quadlet="HealthCmd", flag="--health-cmd", render=SPECIAL),
    Setting("interval", DURATION, "", '`"30s"`', quadlet="HealthInterval",
            flag="--health-interval", maximum=DAY, render=SPECIAL),
    Setting("timeout", DURATION, "", '`"30s"`', quadlet="HealthTimeout",
            flag="--health-timeout", maximum=DAY, render=SPECIAL),
    Setting("retries", INTEGER, "at most 1000", "`3`", quadlet="HealthRetries",
            flag="--health-retries", maximum=1000, render=SPECIAL),
    Setting("start_period", DURATION, "", '`"0s"`', quadlet="HealthStartPeriod",
            flag="--health-start-period", maximum=DAY, render=SPECIAL),
    Setting("on_failure", TEXT, "`none`, `kill`, `restart`, `stop`", "",
            one_of("none", "kill", "restart", "stop"), quadlet="HealthOnFailure",
            flag="--health-on-failure", flag_since=(4, 3), render=SPECIAL),
    # psquadlet's health supervisor (psquadlet heal, psquadlet-health.timer): not Podman's.
    Setting("restart_budget", INTEGER, "restarts of an unhealthy container by psquadlet per "
            "`budget_window`, when Podman itself takes no action (`on_failure` unset or "
            "`none`); then it keeps running, unhealthy. At most 100; `0`: psquadlet never "
            "restarts it", "`0` (preset: `3`)", maximum=100, render=ELSEWHERE),
    Setting("budget_window", DURATION, "the window of `restart_budget` (at most `1d`)",
            '`"1h"`', maximum=DAY, render=ELSEWHERE),
    Setting("retry_after", DURATION, "once the budget is spent: one restart after this, "
            "doubling up to `retry_max` while the check keeps failing (at most `1d`)",
            '`"1h"`', maximum=DAY, render=ELSEWHERE),
    Setting("retry_max", DURATION, "the longest wait between those retries (at most `7d`)",
            '`"24h"`', maximum=7 * DAY, render=ELSEWHERE),
)  # fmt: skip

HEAL_SINCE: Version = HEALTH["on_failure"].flag_since
"""``--health-on-failure`` (Quadlet ``HealthOnFailure=`` 4.5): below it, ``render.for_target``
leaves ``on_failure`` out and psquadlet's supervisor restarts under ``restart_budget``."""

# [containers.NAME.unit] keys with a row (the others are read by hand in config): systemd's
# start limit, written in both formats. Unset: not written (systemd's default, 5 starts in
# 10s, which a unit whose start takes minutes never reaches); 0 turns the limit off.
UNIT: Mapping[str, Setting] = _rows(
    Setting("start_limit_interval", DURATION, "window of the start limit (at most `1d`); `0`: "
            "no limit", "systemd's (`10s`)", systemd="Unit.StartLimitIntervalSec", maximum=DAY),
    Setting("start_limit_burst", INTEGER, "starts allowed in the window, at most 1000 (restarts "
            "count); `0`: no limit", "systemd's (`5`)", systemd="Unit.StartLimitBurst",
            maximum=1000),
)  # fmt: skip

# Bounds of the other durations and integers (config reads these tables by hand).
BOUNDS: Mapping[str, int] = MappingProxyType({
    "service.restart_sec": 3600,
    "service.timeout_start": DAY,
    "service.timeout_stop": DAY,
    "update.randomized_delay": DAY,
    "update.interval": MAX_DURATION,
    "update.min_age": 365 * DAY,
    "update.health_timeout": DAY,
    "update.keep_images": 100,
    "watch.parallel": 64,
    "notifications.quiet_period": MAX_DURATION,
    # A flush delays a pass and a unit's ExecStopPost= hook (systemd's TimeoutStopSec= is
    # 90s by default; the watcher's WatchdogSec= 5min).
    "notifications.timeout": 300,
})  # fmt: skip


def bound(path: str) -> int:
    """The largest value of a duration or integer outside the rows (seconds for durations)."""
    return BOUNDS.get(path, MAX_DURATION)


# ---------------------------------------------------------------------------------------------
# Secret-looking environment names (validate and import warn about them)

_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    """True for an environment variable name like ``DB_PASSWORD``, ``api_token``, ``SECRET``."""
    return _SECRET_NAME.search(name) is not None


def secret_warnings(environment: Iterable[tuple[str, str]], base: str) -> list[str]:
    """One warning per secret-looking name in ``environment`` (pairs), at key path ``base``."""
    return [
        f"{base}.{name}: looks like a secret: environment values end up in world-readable "
        "unit files and on the command line; use 'secrets' (podman secret) or an "
        "'environment_files' file with mode 0600"
        for name, _value in environment
        if looks_secret(name)
    ]


_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#@]*:[^/?#@]*@")


def url_has_secret(url: str) -> bool:
    """A password in the URL's user part (``scheme://user:password@host``), or a query
    parameter whose name ``looks_secret`` (``?token=...``)."""
    if _URL_PASSWORD.match(url):
        return True
    query = url.partition("?")[2].partition("#")[0]
    return any(looks_secret(part.partition("=")[0]) for part in query.split("&") if part)


def url_secret_warnings(urls: Iterable[tuple[str, str]], base: str) -> list[str]:
    """One warning per (name, url) whose URL carries a secret, for a configuration that others
    can read, at key path ``base``."""
    return [
        f"{base}.{name}.url: carries a password or token and the configuration is readable by "
        "others; move the URL to 'urls_file' (a file with mode 0600)"
        for name, url in urls
        if url_has_secret(url)
    ]


# ---------------------------------------------------------------------------------------------
# The configuration reference: docs/configuration.md's tables and the man page's CONFIGURATION


def _version(version: Version | None) -> str:
    if version is None or version <= quadlet_keys.QUADLET_MIN_VERSION:
        return ""
    return f" ({quadlet_keys.format_version(version)})"


def _quadlet_cell(row: Setting) -> str:
    if row.systemd is not None:
        section, name = row.systemd.split(".")
        return f"`{name}=` in [{section}] (both formats)"
    if row.quadlet is None:
        return f"`PodmanArgs={row.flag}`" if row.flag else "-"
    if row.quadlet in ("PodmanArgs",):
        return "`PodmanArgs=`"
    return f"`{row.quadlet}=`{_version(row.quadlet_since)}"


def _flag_cell(row: Setting) -> str:
    if row.flag is None:
        return "-"
    since = f" ({quadlet_keys.format_version(row.flag_since)})" if row.flag_since > (0, 0) else ""
    extra = "".join(
        f"; `{row.flag}={value}` ({quadlet_keys.format_version(f)})"
        for value, (_q, f) in row.values_since.items()
    )
    return f"`{row.flag}`{since}{extra}"


def reference_cells(row: Setting) -> tuple[str, str, str, str, str]:
    """(key, default, Quadlet, ``podman run``, meaning) of one row, in Markdown: the one
    description that docs/configuration.md's tables and the man page both print."""
    quadlet = _quadlet_cell(row)
    for value, (q, _f) in row.values_since.items():
        quadlet += f"; `{row.quadlet}={value}` ({quadlet_keys.format_version(q)})"
    if row.fallback:
        quadlet += f", below: `PodmanArgs={row.flag}=`"
    return f"`{row.key}`", row.default, quadlet, _flag_cell(row), row.help


REFERENCE_HEADER = ("key", "default", "Quadlet", "`podman run`", "meaning")


def _table(rows: Iterable[Setting]) -> list[str]:
    lines = [
        "| " + " | ".join(REFERENCE_HEADER) + " |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append("| " + " | ".join(reference_cells(row)) + " |")
    return lines


DOC_FILE = "docs/configuration.md"
DOC_BEGIN = "<!-- BEGIN {name} table: generated by `python -m psquadlet.schema docs` -->"
DOC_END = "<!-- END {name} table -->"
DOC_TABLES: Mapping[str, Mapping[str, Setting]] = MappingProxyType(
    {"containers": CONTAINER, "health": HEALTH, "unit": UNIT}
)
DOC_TITLES: Mapping[str, str] = MappingProxyType(
    {
        "containers": "[containers.NAME]",
        "health": "[containers.NAME.health]",
        "unit": "[containers.NAME.unit]",
    }
)
"""The TOML table each generated table describes (the man page's subsection titles)."""


def doc_table(name: str) -> str:
    """The Markdown table of ``DOC_TABLES[name]``, between its BEGIN/END markers."""
    lines = [DOC_BEGIN.format(name=name), *_table(DOC_TABLES[name].values())]
    lines.append(DOC_END.format(name=name))
    return "\n".join(lines)


def update_doc(text: str) -> str:
    """``text`` with every generated table replaced by the current one."""
    for name in DOC_TABLES:
        begin = re.escape(DOC_BEGIN.format(name=name))
        end = re.escape(DOC_END.format(name=name))
        replacement = doc_table(name).replace("\\", "\\\\")  # a literal, not a template
        text = re.sub(f"{begin}.*?{end}", replacement, text, flags=re.S)
    return text


USAGE = f"usage: python -m psquadlet.schema docs [FILE]   (default: {DOC_FILE})"


def main(argv: list[str]) -> int:
    """``python -m psquadlet.schema docs [FILE]``: rewrite the generated tables in place.

    Every generated part of the checked-in documentation is these tables (the man page is
    generated when it is built); ``readme`` is the command's old name."""
    if len(argv) < 1 or argv[0] not in ("docs", "readme"):
        print(USAGE, file=sys.stderr)
        return 2
    path = argv[1] if len(argv) > 1 else DOC_FILE
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(update_doc(text))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
