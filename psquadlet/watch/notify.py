"""sd_notify(3) in a few lines of Python: no libsystemd binding needed for the fields we send."""

from __future__ import annotations

import os
import socket


class Notifier:
    """Sends datagrams to ``$NOTIFY_SOCKET``; does nothing when not run by systemd."""

    def __init__(self, address: str | None = None) -> None:
        self.address = os.environ.get("NOTIFY_SOCKET", "") if address is None else address

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, **fields: str) -> bool:
        """``send(READY="1", STATUS="...")``; False when not under systemd or on error."""
        if not self.address:
            return False
        payload = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        addr = self.address
        if addr.startswith("@"):
            addr = "\0" + addr[1:]  # abstract namespace
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.settimeout(2.0)  # never let a stuck receiver stall the daemon
                s.connect(addr)
                s.sendall(payload)
        except OSError:
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send(READY="1", STATUS=status) if status else self.send(READY="1")

    def status(self, text: str) -> bool:
        return self.send(STATUS=text.replace("\n", " "))

    def watchdog(self) -> bool:
        return self.send(WATCHDOG="1")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for *seconds* more before systemd's start (or stop) time-out fires.

        ``EXTEND_TIMEOUT_USEC=`` (systemd >= 236) moves the deadline to now + *seconds*; it
        never shortens ``TimeoutStartSec=``. Older systemd ignores the field.
        """
        return self.send(EXTEND_TIMEOUT_USEC=str(max(round(seconds * 1_000_000), 1)))

    def stopping(self) -> bool:
        return self.send(STOPPING="1")


def watchdog_interval() -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds (when it is meant for this process), else None."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 2_000_000
