#!/usr/bin/env python3
"""Idle ``psquadlet watch`` with [notifications] and [metrics] set: VmRSS and wake-ups.

No test bed: the daemon runs on the host with a schedule far away (recovery at start fails
against a missing Podman socket and is logged, as on a host where Podman is down), then
idles. Wake-ups are the voluntary context switches of all its threads over the window.
Compare two source trees (before/after a change) by giving their paths:

    .venv/bin/python bench/idle_watch.py [--idle 60] TREE [TREE ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """\
[notifications]
[notifications.channels.hook]
url = "json://127.0.0.1:9/hook"
[metrics]
textfile_dir = "{tmp}"
[containers.pt]
image = "registry.invalid/perfsonar/testpoint:systemd"
[containers.pt.update]
schedule = "{slot}"
randomized_delay = "0s"
"""


def _threads(pid: int) -> tuple[int, int]:
    """(VmRSS kB, voluntary context switches summed over threads)."""
    rss = int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0])
    switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                switches += int(line.split()[1])
    return rss, switches


def measure(tree: str, idle: float) -> tuple[int, float]:
    tmp = tempfile.mkdtemp(prefix="psq-idle-")
    slot = time.strftime("%H:%M", time.localtime(time.time() + 12 * 3600))
    cfg = Path(tmp, "p.toml")
    cfg.write_text(CONFIG.format(tmp=tmp, slot=slot))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "psquadlet",
            "watch",
            "-c",
            str(cfg),
            "--state-dir",
            tmp,
            "--podman-url",
            "unix:///nonexistent.sock",
            "--dbus-address",
            "unix:path=/nonexistent",
        ],
        env={**os.environ, "PYTHONPATH": tree},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(5)  # start and the failed recovery
        _, before = _threads(proc.pid)
        time.sleep(idle)
        rss, after = _threads(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
    return rss, (after - before) * 3600 / idle


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("trees", nargs="+")
    args = parser.parse_args()
    for tree in args.trees:
        rss, per_hour = measure(tree, args.idle)
        print(f"{tree}: VmRSS {rss / 1024:.1f} MB, {per_hour:.0f} wake-ups/hour")


if __name__ == "__main__":
    main()
