"""The Quadlet keys psquadlet knows: section, the Podman release that introduced each, and how
Quadlet reads its value.

Why a table: the value of one key is read by Quadlet in one of a few very different ways (the
whole rest of the line; a list of words with C escapes; a list of words without escapes), and
the same text means different things under each. Rendering and version gating both read this
table, so that nothing else in psquadlet hard-codes a key name or a quoting rule.

``since``: the first Podman release whose Quadlet accepts the key. Sources: the upstream pull
requests that added each key (merge date against the release branches) and podlet's
per-release lists of new Quadlet options (containers/podlet issues "Podman v4.6.0" .. "v5.3");
a key in Quadlet's first release (4.4, February 2023) says (4, 4). Rows for the systemd
sections ([Unit], [Service], [Install]) say (0, 0): systemd keys are not gated by Podman.
The oracle tests check the table against the real Podman 5.4.2 generator (every key with
since <= 5.4 is accepted, every later one refused; that moved ReloadCmd/ReloadSignal to 5.5),
and the same test passed against Debian sid's 5.8.6 generator. The bounds below 5.4 are not
machine-checked: no older Quadlet is installable here. Corrected from Podman's git tags
(issue 11): the Health* keys first appear in v4.5.0 (not 4.4), GroupAdd= in v5.1.0 (not 5.0).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


class Kind(enum.Enum):
    """How the consumer of a key splits and unescapes its value."""

    #: Quadlet takes the whole rest of the line as one value (``Lookup``/``LookupAll``) and
    #: passes it as one argument of the podman command line. No quoting or escapes exist.
    VERBATIM = "verbatim"
    #: Quadlet splits the value into words, honouring "..." and '...' and C escapes
    #: (``LookupAllArgs``/``LookupLastArgs``); each word becomes one podman argument.
    WORDS = "words"
    #: Like WORDS, but every word is an assignment ``NAME=VALUE`` (``LookupAllKeyVal``).
    KEYVAL = "keyval"
    #: Quadlet splits into words honouring quotes but NOT backslash escapes
    #: (``LookupAllStrv``, compatible with systemd's config_parse_strv).
    STRV = "strv"
    #: A boolean (Quadlet accepts 1/yes/true/on; anything else is false).
    BOOL = "bool"
    #: A systemd setting taking free text, read by systemd itself (e.g. Description=):
    #: specifiers are expanded, nothing else.
    UNIT_TEXT = "unit-text"
    #: A systemd list of unit names (After=, Wants=, WantedBy=).
    UNIT_NAMES = "unit-names"
    #: A systemd command line (ExecStart= of a plain .service).
    EXEC = "exec"


@dataclass(frozen=True)
class QuadletKey:
    """One key: where it lives, which Podman introduced it, how its value is read.

    ``multi`` says whether the key may be repeated (each occurrence adds values) rather than
    the last one winning.
    """

    section: str
    name: str
    since: tuple[int, int]
    kind: Kind
    multi: bool = False

    def __str__(self) -> str:
        return f"{self.name}= in [{self.section}]"


_V = Kind.VERBATIM
_W = Kind.WORDS
_KV = Kind.KEYVAL
_S = Kind.STRV
_B = Kind.BOOL

# (name, since, kind, multi) per section. Sources: podman-systemd.unit(5) of 4.4 .. 5.4 and
# the key tables in pkg/systemd/quadlet/quadlet.go of those releases.
_CONTAINER: tuple[tuple[str, tuple[int, int], Kind, bool], ...] = (
    ("AddCapability", (4, 4), _S, True),
    ("AddDevice", (4, 4), _S, True),
    ("AddHost", (5, 3), _V, True),
    ("Annotation", (4, 4), _KV, True),
    ("AutoUpdate", (4, 6), _V, False),
    ("CgroupsMode", (5, 3), _V, False),
    ("ContainerName", (4, 4), _V, False),
    ("ContainersConfModule", (4, 8), _V, True),
    ("DNS", (4, 7), _V, True),
    ("DNSOption", (4, 7), _V, True),
    ("DNSSearch", (4, 7), _V, True),
    ("DropCapability", (4, 4), _S, True),
    ("Entrypoint", (5, 0), _V, False),
    ("Environment", (4, 4), _KV, True),
    ("EnvironmentFile", (4, 4), _W, True),
    ("EnvironmentHost", (4, 4), _B, False),
    ("Exec", (4, 4), _W, False),
    ("ExposeHostPort", (4, 4), _V, True),
    ("GIDMap", (4, 8), _S, True),
    ("GlobalArgs", (4, 8), _W, True),
    ("Group", (4, 4), _V, False),
    ("GroupAdd", (5, 1), _V, True),
    ("HealthCmd", (4, 5), _V, False),
    ("HealthInterval", (4, 5), _V, False),
    ("HealthLogDestination", (5, 3), _V, False),
    ("HealthMaxLogCount", (5, 3), _V, False),
    ("HealthMaxLogSize", (5, 3), _V, False),
    ("HealthOnFailure", (4, 5), _V, False),
    ("HealthRetries", (4, 5), _V, False),
    ("HealthStartPeriod", (4, 5), _V, False),
    ("HealthStartupCmd", (4, 5), _V, False),
    ("HealthStartupInterval", (4, 5), _V, False),
    ("HealthStartupRetries", (4, 5), _V, False),
    ("HealthStartupSuccess", (4, 5), _V, False),
    ("HealthStartupTimeout", (4, 5), _V, False),
    ("HealthTimeout", (4, 5), _V, False),
    ("HostName", (4, 6), _V, False),
    ("HttpProxy", (5, 7), _B, False),
    ("Image", (4, 4), _V, False),
    ("IP", (4, 4), _V, False),
    ("IP6", (4, 4), _V, False),
    ("Label", (4, 4), _KV, True),
    ("LogDriver", (4, 5), _V, False),
    ("LogOpt", (5, 2), _S, True),
    ("Mask", (4, 6), _W, True),
    ("Memory", (5, 5), _V, False),
    ("Mount", (4, 5), _W, True),
    ("Network", (4, 4), _V, True),
    ("NetworkAlias", (5, 2), _V, True),
    ("NoNewPrivileges", (4, 4), _B, False),
    ("Notify", (4, 4), _V, False),
    ("PidsLimit", (4, 7), _V, False),
    ("Pod", (5, 0), _V, False),
    ("PodmanArgs", (4, 5), _W, True),
    ("PublishPort", (4, 4), _V, True),
    ("Pull", (4, 6), _V, False),
    ("ReadOnly", (4, 4), _B, False),
    ("ReadOnlyTmpfs", (4, 8), _B, False),
    ("ReloadCmd", (5, 5), _W, False),
    ("ReloadSignal", (5, 5), _V, False),
    ("RemapGid", (4, 4), _S, True),
    ("RemapUid", (4, 4), _S, True),
    ("RemapUidSize", (4, 4), _V, False),
    ("RemapUsers", (4, 4), _V, False),
    ("Retry", (5, 5), _V, False),
    ("RetryDelay", (5, 5), _V, False),
    ("Rootfs", (4, 5), _V, False),
    ("RunInit", (4, 4), _B, False),
    ("SeccompProfile", (4, 4), _V, False),
    ("Secret", (4, 5), _W, True),
    ("SecurityLabelDisable", (4, 5), _B, False),
    ("SecurityLabelFileType", (4, 5), _V, False),
    ("SecurityLabelLevel", (4, 5), _V, False),
    ("SecurityLabelNested", (4, 6), _B, False),
    ("SecurityLabelType", (4, 5), _V, False),
    ("ServiceName", (5, 3), _V, False),
    ("ShmSize", (4, 7), _V, False),
    ("StartWithPod", (5, 3), _B, False),
    ("StopSignal", (5, 2), _V, False),
    ("StopTimeout", (5, 0), _V, False),
    ("SubGIDMap", (4, 8), _V, False),
    ("SubUIDMap", (4, 8), _V, False),
    ("Sysctl", (4, 6), _S, True),
    ("Timezone", (4, 4), _V, False),
    ("Tmpfs", (4, 5), _V, True),
    ("UIDMap", (4, 8), _S, True),
    ("Ulimit", (4, 7), _V, True),
    ("Unmask", (4, 6), _W, True),
    ("User", (4, 4), _V, False),
    ("UserNS", (4, 5), _V, False),
    ("VolatileTmp", (4, 4), _B, False),
    ("Volume", (4, 4), _V, True),
    ("WorkingDir", (4, 6), _V, False),
)

_VOLUME: tuple[tuple[str, tuple[int, int], Kind, bool], ...] = (
    ("ContainersConfModule", (4, 8), _V, True),
    ("Copy", (4, 4), _B, False),
    ("Device", (4, 4), _V, False),
    ("Driver", (4, 8), _V, False),
    ("GlobalArgs", (4, 8), _W, True),
    ("Group", (4, 4), _V, False),
    ("Image", (4, 8), _V, False),
    ("Label", (4, 4), _KV, True),
    ("Options", (4, 4), _V, False),
    ("PodmanArgs", (4, 6), _W, True),
    ("ServiceName", (5, 3), _V, False),
    ("Type", (4, 4), _V, False),
    ("User", (4, 4), _V, False),
    ("VolumeName", (4, 7), _V, False),
)

# systemd keys psquadlet writes itself (not gated by Podman version).
_SYSTEMD: tuple[tuple[str, str, Kind, bool], ...] = (
    ("Unit", "Description", Kind.UNIT_TEXT, False),
    ("Unit", "Documentation", Kind.UNIT_TEXT, True),
    ("Unit", "After", Kind.UNIT_NAMES, True),
    ("Unit", "Before", Kind.UNIT_NAMES, True),
    ("Unit", "Wants", Kind.UNIT_NAMES, True),
    ("Unit", "Requires", Kind.UNIT_NAMES, True),
    ("Unit", "StartLimitIntervalSec", Kind.UNIT_TEXT, False),
    ("Unit", "StartLimitBurst", Kind.UNIT_TEXT, False),
    ("Service", "Type", Kind.UNIT_TEXT, False),
    ("Service", "NotifyAccess", Kind.UNIT_TEXT, False),
    ("Service", "Restart", Kind.UNIT_TEXT, False),
    ("Service", "RestartSec", Kind.UNIT_TEXT, False),
    ("Service", "TimeoutStartSec", Kind.UNIT_TEXT, False),
    ("Service", "TimeoutStopSec", Kind.UNIT_TEXT, False),
    ("Service", "KillMode", Kind.UNIT_TEXT, False),
    ("Service", "Delegate", Kind.UNIT_TEXT, False),
    ("Service", "SyslogIdentifier", Kind.UNIT_TEXT, False),
    ("Service", "ExecStartPre", Kind.EXEC, True),
    ("Service", "ExecStart", Kind.EXEC, False),
    ("Service", "ExecStop", Kind.EXEC, True),
    ("Service", "ExecStopPost", Kind.EXEC, True),
    ("Install", "WantedBy", Kind.UNIT_NAMES, True),
    ("Install", "RequiredBy", Kind.UNIT_NAMES, True),
)


def _build() -> Mapping[tuple[str, str], QuadletKey]:
    table: dict[tuple[str, str], QuadletKey] = {}
    for section, rows in (("Container", _CONTAINER), ("Volume", _VOLUME)):
        for name, since, kind, multi in rows:
            table[(section, name)] = QuadletKey(section, name, since, kind, multi)
    for section, name, kind, multi in _SYSTEMD:
        table[(section, name)] = QuadletKey(section, name, (0, 0), kind, multi)
    return MappingProxyType(table)


#: Every key, by (section, name).
KEYS: Mapping[tuple[str, str], QuadletKey] = _build()

#: The oldest Podman with Quadlet at all.
QUADLET_MIN_VERSION: tuple[int, int] = (4, 4)


def key(section: str, name: str) -> QuadletKey:
    """The row for a key; a KeyError names the key when psquadlet asks for one it lacks."""
    try:
        return KEYS[(section, name)]
    except KeyError:
        raise KeyError(f"no Quadlet key {name}= in [{section}] in psquadlet's table") from None


_VERSION_RE = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+~].*)?\s*$")


def parse_version(text: str) -> tuple[int, int, int]:
    """``"4.4"``, ``"v5.4.2"``, ``"5.4.2-1"``, ``"podman version 5.4.2"`` -> (major, minor, patch).

    Raises ValueError with a readable message on anything else, so that a bad
    ``--podman-version`` becomes a usage error and not a traceback.
    """
    candidate = text.strip()
    for prefix in ("podman version ", "podman "):
        if candidate.lower().startswith(prefix):
            candidate = candidate[len(prefix) :]
    match = _VERSION_RE.match(candidate)
    if match is None:
        raise ValueError(f"not a Podman version: {text!r} (expected e.g. 4.4 or 5.4.2)")
    major, minor, patch = (int(g) if g is not None else 0 for g in match.groups())
    return (major, minor, patch)


def format_version(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def check_version(used: Iterable[QuadletKey], version: tuple[int, int, int]) -> list[str]:
    """One message per key (in the order given, without repeats) the target cannot read.

    An empty list means the target Podman understands every key. Targets older than the first
    Quadlet get one message for that instead: no key of a .container can work there.
    """
    target = format_version(version)
    if version[:2] < QUADLET_MIN_VERSION:
        return [
            f"Podman {target} has no Quadlet (needs {format_version(QUADLET_MIN_VERSION)} "
            "or newer); use --format service"
        ]
    messages: list[str] = []
    seen: set[tuple[str, str]] = set()
    for item in used:
        if (item.section, item.name) in seen:
            continue
        seen.add((item.section, item.name))
        if item.since == (0, 0):
            continue
        if version[:2] < item.since:
            messages.append(
                f"key {item.name}= in [{item.section}] needs Podman "
                f"{format_version(item.since)} or newer (target is {target})"
            )
    return messages
