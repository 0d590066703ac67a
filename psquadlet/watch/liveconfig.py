"""The configuration the daemon runs on, read again when its file changes.

``psquadlet watch`` is a long-running process; an operator who sets ``policy = "off"`` (or
another schedule, a pin, a new container) and runs ``generate`` expects the running watcher
to follow. ``LiveConfig.changed`` is called at each wake-up of the daemon: one ``stat`` of
the file, a parse only when it changed. A changed file that does not load (a typo half-way
through an edit) is reported once, with the located error, and the last good configuration
stays in force until the file changes again.

``[watch] state_dir`` is read once, at start: the state and its lock must not move under a
running daemon (a restart of ``psquadlet-watch.service`` applies a new one).
"""

from __future__ import annotations

import os
from pathlib import Path

from psquadlet.config import DEFAULT_CONFIG_PATH, load_config
from psquadlet.errors import PsquadletError
from psquadlet.model import Config
from psquadlet.watch.interfaces import Log

Stamp = tuple[int, int, int, int, int]


class LiveConfig:
    def __init__(self, path: Path | None, config: Config, log: Log) -> None:
        self.path = path
        self.config = config
        self.log = log
        self.stamp = self._stamp()

    @property
    def file(self) -> Path:
        """The file read: ``-c`` or the default (which may appear after the start)."""
        return self.path if self.path is not None else DEFAULT_CONFIG_PATH

    def _stamp(self) -> Stamp | None:
        try:
            st = os.stat(self.file)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def changed(self) -> Config | None:
        """The new configuration when the file changed and loads; else None."""
        stamp = self._stamp()
        if stamp == self.stamp:
            return None
        self.stamp = stamp  # a bad file is reported once, not at every wake-up
        try:
            config = load_config(self.path)
        except PsquadletError as e:
            self.log.error(
                f"configuration changed but cannot be used, keeping the last good one: {e}"
            )
            return None
        if config == self.config:
            return None
        if config.watch.state_dir != self.config.watch.state_dir:
            self.log.warning(
                f"[watch] state_dir changed to {config.watch.state_dir}: the running watcher "
                f"keeps {self.config.watch.state_dir} until psquadlet-watch is restarted"
            )
        self.log.info(f"configuration {self.file} changed: reloaded")
        self.config = config
        return config
