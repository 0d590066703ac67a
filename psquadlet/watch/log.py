"""Log lines that read well both in the journal and on a terminal.

Under systemd (stderr is the stream named by ``$JOURNAL_STREAM``) each line starts with a
``<N>`` syslog priority that journald turns into the entry's priority and strips. On a
terminal, lines are plain and a pull shows one progress line that is overwritten in place.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TextIO

ERR, WARNING, INFO = 3, 4, 6


def under_journald(stream: TextIO) -> bool:
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


class Logger:
    def __init__(
        self, stream: TextIO | None = None, journal: bool | None = None, tty: bool | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.journal = under_journald(self.stream) if journal is None else journal
        self.tty = (not self.journal and self.stream.isatty()) if tty is None else tty
        self._lock = threading.Lock()
        self._progress_shown = False

    def _emit(self, priority: int, msg: str) -> None:
        with self._lock:
            if self._progress_shown:
                self.stream.write("\r\x1b[K")
                self._progress_shown = False
            for line in msg.splitlines() or [""]:
                if self.journal:
                    self.stream.write(f"<{priority}>{line}\n")
                else:
                    label = {ERR: "error: ", WARNING: "warning: "}.get(priority, "")
                    self.stream.write(f"{label}{line}\n")
            self.stream.flush()

    def info(self, msg: str) -> None:
        self._emit(INFO, msg)

    def warning(self, msg: str) -> None:
        self._emit(WARNING, msg)

    def error(self, msg: str) -> None:
        self._emit(ERR, msg)

    def progress(self, msg: str) -> None:
        if not self.tty:
            self._emit(INFO, msg)
            return
        with self._lock:
            width = 100
            self.stream.write("\r\x1b[K" + msg[:width])
            self.stream.flush()
            self._progress_shown = True
