"""Debian's prometheus-node-exporter reading a textfile folder, on a free loopback port."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.notify.debs import program
from tests.notify.receivers import free_port


@contextmanager
def node_exporter(folder: Path) -> Iterator[Callable[[], str]]:
    """Yields ``scrape()``: the exporter's /metrics text (never port 9100: the testpoint's)."""
    port = free_port()
    assert port != 9100
    exporter = subprocess.Popen(
        [
            program("prometheus-node-exporter"),
            f"--web.listen-address=127.0.0.1:{port}",
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={folder}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def scrape() -> str:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    return str(r.read().decode())
            except OSError:
                assert exporter.poll() is None, exporter.stderr.read() if exporter.stderr else ""
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    try:
        yield scrape
    finally:
        exporter.terminate()
        exporter.wait(10)
