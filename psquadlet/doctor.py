"""Pre-flight checks for a host that is to run the perfSONAR testpoint.

The checks are pure functions over small probes (``Host``): the kernel's socket tables under
``/proc``, the cgroup file system, a command runner and ``adjtimex``. Every probe is a
field of ``Host`` so that tests can point the checks at a fake cgroup tree or a PATH without
Podman, while the port check still reads the real kernel tables of the test's own sockets.

Nothing here binds a port or changes the host: an operator may run ``doctor`` next to a
testpoint that is already up, so the sockets the testpoint itself holds are left out.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from psquadlet import __version__, imageref, perfsonar
from psquadlet.config import DEFAULT_CONFIG_PATH, default_config, load_config
from psquadlet.errors import PsquadletError
from psquadlet.host import oci_arch
from psquadlet.model import Config
from psquadlet.presets import PERFSONAR_TESTPOINT
from psquadlet.tomlpos import tomllib

PASS = "pass"  # noqa: S105 - a verdict, not a password
WARN = "warn"
FAIL = "fail"
SKIP = "skip"

# Bumped only when a key is removed or changes meaning; new keys may appear in any version.
JSON_SCHEMA = "psquadlet-doctor/1"

# Exit codes follow the Nagios plugin convention, which fleet tools already understand.
EXIT_OK = 0
EXIT_WARN = 1
EXIT_FAIL = 2

QUADLET_MIN_PODMAN = (4, 4)

# What the testpoint binds on host networking (upstream guide, "ports" section).
TESTPOINT_TCP_PORTS: tuple[int, ...] = (
    80,
    443,
    861,
    862,
    5000,
    5001,
    5101,
    5201,
    *range(5890, 5901),
)
TESTPOINT_UDP_PORTS: tuple[int, ...] = (
    5000,
    5001,
    5101,
    5201,
    *range(8760, 9961),
    *range(18760, 19961),
)
# Bound on loopback only (postgres, node exporter, pscheduler's internal API).
TESTPOINT_LOOPBACK_TCP_PORTS: tuple[int, ...] = (5432, 9100, 11284)

_TCP_LISTEN = "0A"

Runner = Callable[[Sequence[str]], "tuple[int, str]"]


def run_command(argv: Sequence[str], timeout: float = 10.0) -> tuple[int, str]:
    """Run a probe program; a missing program reads as exit 127, like a shell would say."""
    try:
        done = subprocess.run(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        return 127, ""
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 126, str(exc)
    return done.returncode, done.stdout


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _Timex(ctypes.Structure):
    # Linux struct timex (glibc <sys/timex.h>); the trailing padding is part of the ABI.
    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_pad", ctypes.c_int * 11),
    )


_STA_UNSYNC = 0x0040
_TIME_ERROR = 5


def kernel_clock_synchronized() -> bool | None:
    """The kernel's own view (what every NTP daemon updates): None when it cannot be asked."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))  # modes = 0: read only, unprivileged
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR and not (timex.status & _STA_UNSYNC)


@dataclass(frozen=True)
class Host:
    """Where the checks look. Defaults are the real host."""

    proc_root: Path = Path("/proc")
    cgroup_root: Path = Path("/sys/fs/cgroup")
    path: str | None = None  # PATH used to find podman & co; None: the process's PATH
    machine: str = field(default_factory=platform.machine)
    run: Runner = run_command
    clock_synchronized: Callable[[], bool | None] = kernel_clock_synchronized
    quadlet_dirs: tuple[Path, ...] = (Path("/etc/containers/systemd"),)

    def which(self, program: str) -> str | None:
        return shutil.which(program, path=self.path)

    def run_program(self, program: str, *args: str) -> tuple[int, str]:
        found = self.which(program)
        if found is None:
            return 127, ""
        return self.run([found, *args])


@dataclass(frozen=True)
class Target:
    """What doctor needs to know about one configured container."""

    name: str
    image: str
    variant: str = ""  # "systemd", "supervisord" or "" (not a perfSONAR preset)
    host_network: bool = False
    testpoint: bool = False
    net_raw: bool = True  # CAP_NET_RAW granted (ping and traceroute need it under Podman)


@dataclass(frozen=True)
class Check:
    """One verdict. ``items`` carry machine-readable findings (e.g. one per port in use)."""

    id: str
    status: str
    summary: str
    advice: str = ""
    details: tuple[str, ...] = ()
    items: tuple[Mapping[str, object], ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "status": self.status,
            "summary": self.summary,
            "advice": self.advice,
            "details": list(self.details),
            "items": [dict(item) for item in self.items],
        }


_SEVERITY = {SKIP: 0, PASS: 0, WARN: 1, FAIL: 2}


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def status(self) -> str:
        worst = max((_SEVERITY[c.status] for c in self.checks), default=0)
        return {0: PASS, 1: WARN, 2: FAIL}[worst]

    @property
    def exit_code(self) -> int:
        return {PASS: EXIT_OK, WARN: EXIT_WARN, FAIL: EXIT_FAIL}[self.status]

    def to_json(self) -> dict[str, object]:
        return {
            "schema": JSON_SCHEMA,
            "psquadlet_version": __version__,
            "status": self.status,
            "exit_code": self.exit_code,
            "checks": [c.to_json() for c in self.checks],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n"

    def text(self) -> str:
        lines = []
        for check in self.checks:
            lines.append(f"[{check.status.upper():4}] {check.id}: {check.summary}")
            lines.extend(f"       {d}" for d in check.details)
            if check.advice and check.status in (WARN, FAIL):
                lines.append(f"       -> {check.advice}")
        lines.append(f"overall: {self.status}")
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- podman


_VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def parse_podman_version(text: str) -> tuple[int, int, int] | None:
    match = _VERSION_RE.search(text)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def check_podman(host: Host) -> Check:
    if host.which("podman") is None:
        return Check(
            "podman",
            FAIL,
            "podman is not installed (not found on PATH)",
            "install Podman: 'apt-get install podman' (Debian, Ubuntu) or 'dnf install podman' "
            "(Enterprise Linux, Fedora); with Podman older than 4.4 use "
            "'psquadlet generate --format service'",
        )
    code, out = host.run_program("podman", "--version")
    version = parse_podman_version(out) if code == 0 else None
    if version is None:
        return Check(
            "podman",
            FAIL,
            f"podman --version failed (exit {code}): {out.strip()[:200]}",
            "repair the Podman installation ('podman info' shows what is wrong)",
        )
    shown = ".".join(str(v) for v in version)
    if version[:2] < QUADLET_MIN_PODMAN:
        return Check(
            "podman",
            WARN,
            f"podman {shown} has no Quadlet (needs 4.4 or later)",
            "generate plain systemd services instead: 'psquadlet generate --format service'",
            items=({"version": shown, "quadlet": False},),
        )
    return Check(
        "podman",
        PASS,
        f"podman {shown} (Quadlet available)",
        items=({"version": shown, "quadlet": True},),
    )


# --------------------------------------------------------------------------- cgroups


def cgroup_layout(root: Path) -> str:
    """'v2' (unified), 'hybrid' (v1 controllers plus a v2 mount) or 'v1'."""
    if (root / "cgroup.controllers").is_file():
        return "v2"
    if (root / "unified" / "cgroup.controllers").is_file():
        return "hybrid"
    return "v1"


def check_cgroup(host: Host, targets: Sequence[Target]) -> Check:
    layout = cgroup_layout(host.cgroup_root)
    needing = [t.name for t in targets if t.variant == "systemd"]
    if layout == "v2":
        return Check("cgroup", PASS, "cgroup v2 (unified hierarchy)", items=({"layout": layout},))
    if not needing:
        return Check(
            "cgroup",
            PASS,
            f"cgroup {layout}: no container uses the systemd variant",
            items=({"layout": layout},),
        )
    return Check(
        "cgroup",
        FAIL,
        f"cgroup {layout} layout: the systemd variant ({', '.join(needing)}) needs cgroup v2",
        'set variant = "supervisord" for these containers, or boot the host with the unified '
        "hierarchy (kernel option systemd.unified_cgroup_hierarchy=1, then reboot)",
        items=({"layout": layout, "containers": needing},),
    )


# --------------------------------------------------------------------------- architecture

def check_arch(host: Host, targets: Sequence[Target]) -> Check:
    host_arch = oci_arch(host.machine)
    if host.which("podman") is None:
        return Check("arch", SKIP, f"host is {host_arch}; podman missing, images not inspected")
    images = sorted({t.image for t in targets})
    details: list[str] = []
    items: list[Mapping[str, object]] = []
    mismatched: list[str] = []
    unknown: list[str] = []
    for image in images:
        code, out = host.run_program(
            "podman", "image", "inspect", "--format", "{{.Architecture}}", image
        )
        arch = out.strip().splitlines()[0].strip() if code == 0 and out.strip() else ""
        if not arch:
            unknown.append(image)
            details.append(f"{image}: not present locally, architecture unknown")
            items.append({"image": image, "arch": None, "host_arch": host_arch})
            continue
        items.append({"image": image, "arch": arch, "host_arch": host_arch})
        details.append(f"{image}: {arch}")
        if oci_arch(arch) != host_arch:
            mismatched.append(image)
    if mismatched:
        return Check(
            "arch",
            FAIL,
            f"image architecture differs from the host's ({host_arch}): {', '.join(mismatched)}",
            f"use an image built for {host_arch} (a multi-arch tag, or pull with "
            f"--arch {host_arch})",
            tuple(details),
            tuple(items),
        )
    if unknown and len(unknown) == len(images):
        return Check(
            "arch",
            SKIP,
            f"host is {host_arch}; images not pulled yet, nothing to compare",
            "",
            tuple(details),
            tuple(items),
        )
    return Check(
        "arch", PASS, f"images match the host ({host_arch})", "", tuple(details), tuple(items)
    )


# --------------------------------------------------------------------------- time sync


def check_time_sync(host: Host) -> Check:
    """Any one source that says synchronised is enough; owping needs a disciplined clock."""
    advice = (
        "enable a time daemon and wait for it to synchronise: 'apt-get install chrony' "
        "(or systemd-timesyncd / ntpd); OWAMP/TWAMP latency tests (owping) need it"
    )
    evidence: list[str] = []
    code, out = host.run_program("timedatectl", "show", "-p", "NTPSynchronized", "--value")
    if code == 0 and out.strip() in ("yes", "no"):
        evidence.append(f"timedatectl: NTPSynchronized={out.strip()}")
        if out.strip() == "yes":
            return Check(
                "time-sync", PASS, "clock synchronised (systemd-timedated)", details=tuple(evidence)
            )
    code, out = host.run_program("chronyc", "-n", "tracking")
    if code == 0 and "Leap status" in out:
        leap = next(line for line in out.splitlines() if "Leap status" in line)
        evidence.append(f"chronyc: {leap.strip()}")
        if "Not synchronised" not in leap:
            return Check("time-sync", PASS, "clock synchronised (chrony)", details=tuple(evidence))
    code, out = host.run_program("ntpq", "-pn")
    if code == 0 and out.strip():
        peer = any(line.startswith("*") for line in out.splitlines())
        evidence.append(f"ntpq: {'a system peer is selected' if peer else 'no system peer'}")
        if peer:
            return Check("time-sync", PASS, "clock synchronised (ntpd)", details=tuple(evidence))
    kernel = host.clock_synchronized()
    if kernel is not None:
        evidence.append(f"kernel adjtimex: {'synchronised' if kernel else 'unsynchronised'}")
        if kernel:
            return Check("time-sync", PASS, "clock synchronised (kernel)", details=tuple(evidence))
    if not evidence:
        return Check("time-sync", WARN, "cannot tell whether the clock is synchronised", advice)
    return Check("time-sync", WARN, "clock is not synchronised", advice, tuple(evidence))


# --------------------------------------------------------------------------- capabilities


def check_capabilities(targets: Sequence[Target]) -> Check:
    """Podman, unlike Docker, does not grant CAP_NET_RAW by default: ping fails without it."""
    testpoints = [t for t in targets if t.testpoint]
    if not testpoints:
        return Check("capabilities", SKIP, "no perfSONAR testpoint is configured")
    missing = [t.name for t in testpoints if not t.net_raw]
    if missing:
        return Check(
            "capabilities",
            FAIL,
            f"no CAP_NET_RAW for {', '.join(missing)}: ping and traceroute tests will fail",
            'add "CAP_NET_RAW" to cap_add (the perfsonar-testpoint preset does)',
            items=tuple({"container": name, "missing": "CAP_NET_RAW"} for name in missing),
        )
    return Check("capabilities", PASS, "every testpoint has CAP_NET_RAW")


# --------------------------------------------------------------------------- ports


@dataclass(frozen=True)
class Socket:
    proto: str  # tcp | udp
    family: int  # 4 | 6
    address: str
    port: int
    inode: int


def _hex_ipv4(text: str) -> str:
    raw = int(text, 16).to_bytes(4, "little")
    return ".".join(str(b) for b in raw)


def _hex_ipv6(text: str) -> str:
    words = [int(text[i : i + 8], 16).to_bytes(4, "little") for i in range(0, 32, 8)]
    raw = b"".join(words)
    return str(ipaddress.IPv6Address(raw))


def parse_socket_table(text: str, proto: str, family: int) -> list[Socket]:
    """Bound sockets of one /proc/net table: TCP listeners, and every UDP socket."""
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, state, inode = fields[1], fields[3], int(fields[9])
        if proto == "tcp" and state != _TCP_LISTEN:
            continue
        host_hex, _, port_hex = local.partition(":")
        address = _hex_ipv4(host_hex) if family == 4 else _hex_ipv6(host_hex)
        sockets.append(Socket(proto, family, address, int(port_hex, 16), inode))
    return sockets


def read_sockets(proc_root: Path) -> list[Socket]:
    sockets: list[Socket] = []
    for name, proto, family in (
        ("tcp", "tcp", 4),
        ("tcp6", "tcp", 6),
        ("udp", "udp", 4),
        ("udp6", "udp", 6),
    ):
        try:
            text = (proc_root / "net" / name).read_text()
        except OSError:
            continue
        sockets.extend(parse_socket_table(text, proto, family))
    return sockets


def socket_owners(proc_root: Path, inodes: Iterable[int]) -> dict[int, list[tuple[int, str]]]:
    """Socket inode -> [(pid, comm)], by reading each process's fd links (root sees all)."""
    wanted = {f"socket:[{i}]": i for i in inodes}
    owners: dict[int, list[tuple[int, str]]] = {}
    if not wanted:
        return owners
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            fds = os.listdir(entry / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(entry / "fd" / fd)
            except OSError:
                continue
            inode = wanted.get(link)
            if inode is None:
                continue
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                comm = "?"
            holders = owners.setdefault(inode, [])
            if (pid, comm) not in holders:
                holders.append((pid, comm))
    return owners


def _is_loopback_or_wildcard(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def container_pids(host: Host, names: Sequence[str]) -> set[int]:
    """PIDs of the named running containers, found by their cgroup (libpod-<id>)."""
    if not names or host.which("podman") is None:
        return set()
    ids = []
    for name in names:
        code, out = host.run_program(
            "podman", "container", "inspect", "--format", "{{.Id}} {{.State.Running}}", name
        )
        if code != 0:
            continue
        parts = out.split()
        if len(parts) >= 2 and parts[1] == "true" and len(parts[0]) == 64:
            ids.append(parts[0])
    pids: set[int] = set()
    if not ids:
        return pids
    for entry in host.proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cgroup = (entry / "cgroup").read_text()
        except OSError:
            continue
        if any(cid in cgroup for cid in ids):
            pids.add(int(entry.name))
    return pids


def find_port_conflicts(
    sockets: Sequence[Socket],
    owners: Mapping[int, Sequence[tuple[int, str]]],
    exclude_pids: Iterable[int] = (),
) -> list[dict[str, object]]:
    tcp_any = set(TESTPOINT_TCP_PORTS)
    udp_any = set(TESTPOINT_UDP_PORTS)
    tcp_lo = set(TESTPOINT_LOOPBACK_TCP_PORTS)
    excluded = set(exclude_pids)
    found: list[dict[str, object]] = []
    seen: set[tuple[str, int, str, int]] = set()
    for sock in sockets:
        if sock.proto == "tcp":
            clash = sock.port in tcp_any or (
                sock.port in tcp_lo and _is_loopback_or_wildcard(sock.address)
            )
        else:
            clash = sock.port in udp_any
        if not clash:
            continue
        holders = list(owners.get(sock.inode, ()))
        if holders and all(pid in excluded for pid, _ in holders):
            continue
        key = (sock.proto, sock.family, sock.address, sock.port)
        if key in seen:
            continue
        seen.add(key)
        found.append(
            {
                "proto": sock.proto,
                "family": f"ipv{sock.family}",
                "address": sock.address,
                "port": sock.port,
                "processes": [{"pid": pid, "comm": comm} for pid, comm in holders],
            }
        )
    found.sort(key=lambda f: (str(f["proto"]), int(str(f["port"])), str(f["family"])))
    return found


def _describe(conflict: Mapping[str, object]) -> str:
    procs = conflict["processes"]
    assert isinstance(procs, list)
    who = (
        ", ".join(f"{p['comm']} (pid {p['pid']})" for p in procs)
        or "an unknown process (run as root)"
    )
    address = conflict["address"]
    shown = f"[{address}]" if conflict["family"] == "ipv6" else str(address)
    return f"{str(conflict['proto']).upper()} {shown}:{conflict['port']} held by {who}"


def check_ports(host: Host, targets: Sequence[Target]) -> Check:
    testpoints = [t for t in targets if t.testpoint and t.host_network]
    if not testpoints:
        return Check("ports", SKIP, "no perfSONAR testpoint on host networking is configured")
    sockets = read_sockets(host.proc_root)
    owners = socket_owners(host.proc_root, (s.inode for s in sockets))
    exclude = container_pids(host, [t.name for t in testpoints])
    conflicts = find_port_conflicts(sockets, owners, exclude)
    if not conflicts:
        return Check("ports", PASS, "none of the testpoint's ports is in use by another process")
    return Check(
        "ports",
        FAIL,
        f"{len(conflicts)} of the testpoint's ports already in use",
        "stop or reconfigure the processes named (e.g. a host httpd on 80/443 or postgresql on "
        "5432), or run the testpoint on another host",
        tuple(_describe(c) for c in conflicts),
        tuple(conflicts),
    )


# --------------------------------------------------------------------------- images and config


def _quadlet_images(dirs: Sequence[Path]) -> list[tuple[str, str]]:
    found = []
    for folder in dirs:
        try:
            files = sorted(folder.glob("*.container"))
        except OSError:
            continue
        for path in files:
            try:
                text = path.read_text()
            except OSError:
                continue
            for line in text.splitlines():
                key, sep, value = line.partition("=")
                if sep and key.strip() == "Image":
                    found.append((str(path), value.strip()))
    return found


def check_short_names(host: Host, images: Sequence[tuple[str, str]]) -> Check:
    """Configured images plus Image= lines of unit files already installed."""
    refused = []
    items: list[Mapping[str, object]] = []
    for where, image in [*images, *_quadlet_images(host.quadlet_dirs)]:
        if image.endswith(".image") or image.endswith(".build"):
            continue  # Quadlet references to other units, not image names
        try:
            imageref.parse(image)
        except imageref.ImageRefError as exc:
            if exc.suggestion is None:
                refused.append(f"{where}: {image!r}: {exc.reason}")
                items.append({"where": where, "image": image, "suggestion": None})
            else:
                refused.append(f"{where}: {image!r}: use {exc.suggestion!r}")
                items.append({"where": where, "image": image, "suggestion": exc.suggestion})
    if refused:
        return Check(
            "short-names",
            FAIL,
            f"{len(refused)} image name(s) Podman would not resolve unattended",
            "write images fully qualified, with their registry "
            "(e.g. docker.io/perfsonar/testpoint:systemd)",
            tuple(refused),
            tuple(items),
        )
    return Check("short-names", PASS, "all image names are fully qualified")


def config_check(source: str, error: Exception | None) -> Check:
    if error is None:
        return Check("config", PASS, f"configuration is valid ({source})")
    return Check(
        "config",
        FAIL,
        f"configuration is not valid ({source})",
        "fix the lines named, then run 'psquadlet validate'",
        tuple(str(error).splitlines()),
    )


def check_perfsonar_files(mounts: Sequence[tuple[str, str, str]], root: Path = Path("/")) -> Check:
    """The host files mounted over perfSONAR's: podman refuses to start without them.

    ``mounts`` are (container, host path, container path); a rendered file that is missing
    means 'generate' has not run since the table was added, a missing or non-JSON limits file
    is the operator's to fix.
    """
    if not mounts:
        return Check("perfsonar-files", SKIP, "no perfSONAR files are declared")
    problems: list[str] = []
    items: list[Mapping[str, object]] = []
    for container, host_path, target in mounts:
        path = root / host_path.lstrip("/")
        rendered = host_path.startswith(perfsonar.HOST_DIR + "/")
        problem = ""
        if not path.is_file():
            problem = "missing: run 'psquadlet generate'" if rendered else "missing"
        elif target == perfsonar.LIMITS_CONF:
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                problem = f"not JSON, pScheduler would not read it: {exc}"
        items.append(
            {"container": container, "host_path": host_path, "target": target, "problem": problem}
        )
        if problem:
            problems.append(f"{container}: {host_path} ({target}): {problem}")
    if problems:
        return Check(
            "perfsonar-files",
            FAIL,
            f"{len(problems)} perfSONAR file(s) the testpoint mounts are not usable",
            "run 'psquadlet generate' for rendered files; create or fix limits_file",
            tuple(problems),
            tuple(items),
        )
    return Check(
        "perfsonar-files", PASS, "every declared perfSONAR file is in place", items=tuple(items)
    )


def run_checks(
    host: Host,
    targets: Sequence[Target],
    config: Check,
    images: Sequence[tuple[str, str]] = (),
    perfsonar_mounts: Sequence[tuple[str, str, str]] = (),
) -> Report:
    return Report(
        (
            config,
            check_podman(host),
            check_cgroup(host, targets),
            check_arch(host, targets),
            check_time_sync(host),
            check_capabilities(targets),
            check_ports(host, targets),
            check_short_names(host, images),
            check_perfsonar_files(perfsonar_mounts),
        )
    )


# --------------------------------------------------------------------------- from the configuration


def targets_from_config(config: Config) -> list[Target]:
    targets = []
    for spec in config.containers:
        testpoint = spec.preset == PERFSONAR_TESTPOINT or spec.image_ref.repository == (
            "perfsonar/testpoint"
        )
        variant = spec.variant or ""
        if testpoint and not variant:
            variant = "systemd" if spec.image_ref.tag == "systemd" else "supervisord"
        caps = {c.upper().removeprefix("CAP_") for c in spec.cap_add}
        dropped = {c.upper().removeprefix("CAP_") for c in spec.cap_drop}
        # podman drops first, then adds: --cap-drop=all --cap-add=net_raw grants it.
        net_raw = (
            spec.privileged
            or "NET_RAW" in caps
            or ("ALL" in caps and not dropped & {"NET_RAW", "ALL"})
        )
        targets.append(
            Target(
                name=spec.effective_container_name,
                image=spec.image,
                variant=variant,
                host_network=spec.network == "host",
                testpoint=testpoint,
                net_raw=net_raw,
            )
        )
    return targets


def _raw_images(path: Path) -> list[tuple[str, str]]:
    """Images as written, when the configuration did not load (to still name short ones)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    containers = data.get("containers")
    found = []
    if isinstance(containers, dict):
        for name, table in containers.items():
            if isinstance(table, dict) and isinstance(table.get("image"), str):
                found.append((f"{path}: containers.{name}.image", table["image"]))
    return found


def diagnose(config_path: Path | None, host: Host | None = None) -> Report:
    """All checks for the configuration at ``config_path`` (None: the default one).

    A configuration that does not load is one failed check, not the end of the diagnosis:
    the other checks then run against the built-in default testpoint.
    """
    host = host or Host()
    path = config_path
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    images: list[tuple[str, str]] = []
    try:
        config = load_config(path)
        check = config_check(config.source, None)
    except PsquadletError as exc:
        config = default_config()
        check = config_check(str(path), exc)
        if path is not None:
            images = _raw_images(path)
    mounts = [
        (spec.name, source, target)
        for spec in config.containers
        if isinstance(spec.perfsonar, perfsonar.PerfsonarSpec)
        for source, target in (
            m.split(":")[:2] for m in perfsonar.bind_mounts(spec.name, spec.perfsonar)
        )
    ]
    return run_checks(host, targets_from_config(config), check, images, mounts)
