"""The doctor's built-in checks, and their registration.

A check is a function of a ``Context`` returning one ``Check``; adding one is writing the
function and listing it in ``CHECKS``. Extensions (perfSONAR's host files) hand in their own
functions of the same shape, run after these (see ``diagnose``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from psquadlet import host as host_facts
from psquadlet import imageref
from psquadlet.doctor.context import CheckFunction, Context, Host
from psquadlet.doctor.report import FAIL, PASS, SKIP, WARN, Check
from psquadlet.doctor.sockets import (
    describe,
    find_port_conflicts,
    read_sockets,
    socket_owners,
)
from psquadlet.doctor.stack import check_stack
from psquadlet.doctor.watcher import check_watcher
from psquadlet.model import ContainerSpec

QUADLET_MIN_PODMAN = (4, 4)

# --------------------------------------------------------------------------- podman


def check_podman(ctx: Context) -> Check:
    host = ctx.host
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
    version = host_facts.podman_version_in(out) if code == 0 else None
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


def check_cgroup(ctx: Context) -> Check:
    layout = cgroup_layout(ctx.host.cgroup_root)
    needing = [t.container for t in ctx.targets if ctx.variant(t) == "systemd"]
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


# --------------------------------------------------------------------------- SELinux

# The commands for which 'podman run --systemd=true' (its default) runs the container in
# systemd mode (Podman's --systemd documentation).
_INIT_COMMANDS = ("/usr/sbin/init", "/sbin/init", "/usr/local/sbin/init")


def _image_command(host: Host, image: str) -> tuple[list[str], list[str]]:
    """The image's own entrypoint and command, ([], []) when podman or the image is missing."""
    if host.which("podman") is None:
        return [], []
    code, out = host.run_program(
        "podman",
        "image",
        "inspect",
        "--format",
        "{{json .Config.Entrypoint}}\t{{json .Config.Cmd}}",
        image,
    )
    parts = out.strip().split("\t")
    if code != 0 or len(parts) != 2:
        return [], []
    try:
        entry, cmd = (json.loads(p) or [] for p in parts)
    except ValueError:
        return [], []
    if not isinstance(entry, list) or not isinstance(cmd, list):
        return [], []
    return [str(e) for e in entry], [str(c) for c in cmd]


def runs_systemd(host: Host, spec: ContainerSpec, variant: str | None) -> bool:
    """The container's PID 1 is systemd: the systemd variant, or a command that Podman runs in
    systemd mode (the configured entrypoint and command over the image's own)."""
    if variant == "systemd":
        return True
    if spec.entrypoint.strip():
        command = spec.entrypoint.split()
    else:
        entry, cmd = _image_command(host, spec.image)
        command = [*entry, *(spec.command or cmd)]
    program = command[0] if command else ""
    return program in _INIT_COMMANDS or program.rsplit("/", 1)[-1] == "systemd"


SELINUX_FIX = "setsebool -P container_manage_cgroup on"


def check_selinux(ctx: Context) -> Check:
    """systemd in a container writes to the cgroup file system, which SELinux denies unless
    the ``container_manage_cgroup`` boolean is on (Podman's --systemd documentation)."""
    code, out = ctx.host.run_program("getenforce")
    mode = out.strip().lower() if code == 0 else ""
    if mode not in ("enforcing", "permissive"):
        return Check("selinux", SKIP, "SELinux is not enabled on this host")
    needing = [
        t.container for t in ctx.targets if runs_systemd(ctx.host, ctx.spec(t), ctx.variant(t))
    ]
    if not needing:
        return Check("selinux", SKIP, f"SELinux {mode}; no container runs systemd")
    code, out = ctx.host.run_program("getsebool", "container_manage_cgroup")
    value = out.strip().rsplit(" ", 1)[-1] if code == 0 else ""
    items = ({"mode": mode, "container_manage_cgroup": value or None, "containers": needing},)
    if value == "on":
        return Check("selinux", PASS, f"SELinux {mode}; container_manage_cgroup is on", items=items)
    if mode == "permissive":
        return Check(
            "selinux",
            WARN,
            "SELinux is permissive; container_manage_cgroup is not on: systemd in "
            f"{', '.join(needing)} would be denied once SELinux enforces",
            SELINUX_FIX,
            items=items,
        )
    said = f"is {value}" if value else f"cannot be read ({out.strip()[:100] or f'exit {code}'})"
    return Check(
        "selinux",
        FAIL,
        f"SELinux is enforcing and container_manage_cgroup {said}: systemd in "
        f"{', '.join(needing)} cannot manage its cgroups",
        SELINUX_FIX,
        items=items,
    )


# --------------------------------------------------------------------------- architecture


def check_arch(ctx: Context) -> Check:
    host = ctx.host
    host_arch = host_facts.oci_arch(host.machine)
    if host.which("podman") is None:
        return Check("arch", SKIP, f"host is {host_arch}; podman missing, images not inspected")
    images = sorted({ctx.spec(t).image for t in ctx.targets})
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
        if host_facts.oci_arch(arch) != host_arch:
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


def check_time_sync(ctx: Context) -> Check:
    """Any one source that says synchronised is enough; owping needs a disciplined clock."""
    advice = (
        "enable a time daemon and wait for it to synchronise: 'apt-get install chrony' "
        "(or systemd-timesyncd / ntpd); OWAMP/TWAMP latency tests (owping) need it"
    )
    host = ctx.host
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


def grants_net_raw(spec: ContainerSpec) -> bool:
    """CAP_NET_RAW granted: podman drops first, then adds (--cap-drop=all --cap-add=net_raw)."""
    caps = {c.upper().removeprefix("CAP_") for c in spec.cap_add}
    dropped = {c.upper().removeprefix("CAP_") for c in spec.cap_drop}
    return (
        spec.privileged or "NET_RAW" in caps or ("ALL" in caps and not dropped & {"NET_RAW", "ALL"})
    )


def check_capabilities(ctx: Context) -> Check:
    """Podman, unlike Docker, does not grant CAP_NET_RAW by default: ping fails without it."""
    testpoints = ctx.testpoints()
    if not testpoints:
        return Check("capabilities", SKIP, "no perfSONAR testpoint is configured")
    missing = [t.container for t in testpoints if not grants_net_raw(ctx.spec(t))]
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


def check_ports(ctx: Context) -> Check:
    testpoints = [t for t in ctx.testpoints() if ctx.spec(t).network == "host"]
    if not testpoints:
        return Check("ports", SKIP, "no perfSONAR testpoint on host networking is configured")
    host = ctx.host
    sockets = read_sockets(host.proc_root)
    owners = socket_owners(host.proc_root, (s.inode for s in sockets))
    exclude = container_pids(host, [t.container for t in testpoints])
    conflicts = find_port_conflicts(sockets, owners, exclude)
    if not conflicts:
        return Check("ports", PASS, "none of the testpoint's ports is in use by another process")
    return Check(
        "ports",
        FAIL,
        f"{len(conflicts)} of the testpoint's ports already in use",
        "stop or reconfigure the processes named (e.g. a host httpd on 80/443 or postgresql on "
        "5432), or run the testpoint on another host",
        tuple(describe(c) for c in conflicts),
        tuple(conflicts),
    )


# --------------------------------------------------------------------------- image names


def quadlet_images(dirs: Sequence[Path]) -> tuple[list[tuple[str, str]], list[str]]:
    """``Image=`` lines of installed .container units, and the unit files that were unreadable.

    Only regular files of bounded size are read (a FIFO or /dev/zero in the folder must not
    hang or exhaust the doctor), and a file that is not UTF-8 is named, not a traceback.
    """
    found: list[tuple[str, str]] = []
    unreadable: list[str] = []
    for folder in dirs:
        try:
            files = sorted(folder.glob("*.container"))
        except OSError:
            continue
        for path in files:
            try:
                text = host_facts.read_host_text(path)
            except FileNotFoundError:
                continue
            except host_facts.HostFileError as exc:
                unreadable.append(f"{path}: not read: {exc.reason}")
                continue
            for line in text.splitlines():
                key, sep, value = line.partition("=")
                if sep and key.strip() == "Image":
                    found.append((str(path), value.strip()))
    return found, unreadable


def check_short_names(ctx: Context) -> Check:
    """Images of a configuration that did not load, plus Image= lines of installed units."""
    installed, unreadable = quadlet_images(ctx.host.quadlet_dirs)
    refused = []
    items: list[Mapping[str, object]] = []
    for where, image in [*ctx.raw_images, *installed]:
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
            (*refused, *unreadable),
            tuple(items),
        )
    if unreadable:
        return Check(
            "short-names",
            WARN,
            f"{len(unreadable)} installed unit file(s) could not be read",
            "replace them by regular UTF-8 text files, or remove them",
            tuple(unreadable),
            tuple({"where": u.split(": ", 1)[0], "unreadable": True} for u in unreadable),
        )
    return Check("short-names", PASS, "all image names are fully qualified")


# --------------------------------------------------------------------------- name resolution


def check_name_resolution(ctx: Context) -> Check:
    """Each registry host the containers pull from resolves (a testpoint's tests and its
    pSConfig and lookup service need DNS too)."""
    hosts = sorted({t.image.registry for t in ctx.targets if t.image.registry != "localhost"})
    if not hosts:
        return Check("name-resolution", SKIP, "no registry host to resolve")
    failed = [(h, why) for h in hosts if (why := ctx.host.resolve(_hostname(h)))]
    if not failed:
        return Check("name-resolution", PASS, f"resolves {', '.join(hosts)}")
    return Check(
        "name-resolution",
        WARN,
        f"cannot resolve {', '.join(h for h, _ in failed)}",
        "check /etc/resolv.conf and the DNS servers it names ('resolvectl status', "
        "'getent hosts HOST')",
        tuple(f"{h}: {why}" for h, why in failed),
    )


def _hostname(registry: str) -> str:
    """The name to resolve in ``host[:port]`` (``[v6]:port`` too)."""
    if registry.startswith("["):
        return registry[1 : registry.find("]")]
    return registry.rsplit(":", 1)[0]


# --------------------------------------------------------------------------- disk space

DISK_LOW_BYTES = 1 << 30  # below 1 GiB free, or
DISK_LOW_FRACTION = 0.05  # below 5 % free


def check_disk_space(ctx: Context) -> Check:
    """Podman's storage and the watcher's state folder have room (a full disk breaks pulls,
    pScheduler's database and the state file alike)."""
    folders = dict.fromkeys((*ctx.host.storage_folders(), ctx.config.watch.state_dir))
    low, seen = [], []
    for folder in folders:
        usage = ctx.host.disk_free(folder)
        if usage is None:
            continue
        free, total = usage
        text = f"{folder}: {free / (1 << 30):.1f} GiB free of {total / (1 << 30):.1f} GiB"
        seen.append(text)
        if free < DISK_LOW_BYTES or (total and free / total < DISK_LOW_FRACTION):
            low.append(text)
    if not seen:
        return Check("disk-space", SKIP, "cannot read the free space of any storage folder")
    if low:
        return Check(
            "disk-space",
            WARN,
            "low disk space: " + "; ".join(low),
            "free space ('podman system prune', old logs), or grow the file system",
            tuple(seen),
        )
    return Check("disk-space", PASS, "enough free space", details=tuple(seen))


# --------------------------------------------------------------------------- registration

CHECKS: tuple[CheckFunction, ...] = (
    check_podman,
    check_cgroup,
    check_selinux,
    check_arch,
    check_time_sync,
    check_capabilities,
    check_ports,
    check_short_names,
    check_stack,
    check_name_resolution,
    check_disk_space,
    check_watcher,
)
HEAL_CHECKS: tuple[CheckFunction, ...] = (
    check_name_resolution,
    check_time_sync,
    check_disk_space,
    check_selinux,
)
"""The checks most likely to explain a testpoint's failing health check (``psquadlet heal``)."""
