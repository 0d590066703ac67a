"""The kernel's socket tables under ``/proc``: who holds which of the testpoint's ports.

Only reads: nothing here binds a port, so that ``doctor`` may run next to a testpoint that is
already up.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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


def describe(conflict: Mapping[str, object]) -> str:
    procs = conflict["processes"]
    assert isinstance(procs, list)
    who = (
        ", ".join(f"{p['comm']} (pid {p['pid']})" for p in procs)
        or "an unknown process (run as root)"
    )
    address = conflict["address"]
    shown = f"[{address}]" if conflict["family"] == "ipv6" else str(address)
    return f"{str(conflict['proto']).upper()} {shown}:{conflict['port']} held by {who}"
