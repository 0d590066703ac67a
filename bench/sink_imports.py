#!/usr/bin/env python3
"""What the notification and metrics sinks add to the watcher's process: imports and RSS.

Each case runs in a fresh interpreter: the watcher's own modules first (the baseline), then
the case's imports and work; printed are the import time of the case's modules (the
``-X importtime`` cumulative figure of each top-level import) and VmRSS before and after.
Measured, not asserted: this is not a test.

    PYTHONPATH=. .venv/bin/python bench/sink_imports.py
"""

from __future__ import annotations

import re
import subprocess
import sys

BASELINE = "import psquadlet.watch.app, psquadlet.watch.core, psquadlet.watch.state"
CASES = {
    "notifications (queue + flush, nothing queued)": (
        "import psquadlet.notifications.deliver, psquadlet.notifications.commands",
        "from psquadlet.notifications.deliver import Notifier\n"
        "from psquadlet.notifications.settings import NotificationSettings, Channel\n"
        "import tempfile\n"
        "n = Notifier(NotificationSettings(channels=(Channel('c'),)), tempfile.mkdtemp(),"
        " {'c': 'json://127.0.0.1:9/'})\n"
        "n.flush()\n",
    ),
    "metrics module (no file written)": ("import psquadlet.metrics", ""),
    "metrics, one file written (loads prometheus_client)": (
        "import psquadlet.metrics",
        "import tempfile\n"
        "from psquadlet.metrics import MetricsWriter\n"
        "from psquadlet.watch.state import WatchState, ContainerState\n"
        "d = tempfile.mkdtemp()\n"
        "assert MetricsWriter(d, d).write(WatchState(containers=(ContainerState('x'),)))\n",
    ),
    "apprise (only in the sender child process)": ("import apprise", ""),
}
RSS = "print(int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]))"


def run(imports: str, work: str) -> tuple[int, int, float]:
    code = f"{BASELINE}\n{RSS}\n{imports}\n{work}\n{RSS}\n"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    before, after = (int(x) for x in proc.stdout.split())
    wanted = {m.strip() for m in imports.replace("import", "").split(",")}
    micros = sum(
        int(m.group(1))
        for m in re.finditer(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)", proc.stderr)
        if m.group(2) in wanted
    )
    return before, after, micros / 1000


def main() -> None:
    print(f"{'case':55} {'import ms':>9} {'RSS before':>11} {'after':>8}")
    for name, (imports, work) in CASES.items():
        before, after, ms = run(imports, work)
        print(f"{name:55} {ms:9.1f} {before:8d} kB {after:5d} kB")


if __name__ == "__main__":
    main()
