"""The Apprise adapter, run as its own short process: ``python -m psquadlet.notifications.send``.

Reads ``{"url": ..., "messages": [{"id", "title", "body"}, ...]}`` on stdin (never argv: the
URL is a secret and argv is public in ``ps``) and sends the messages in order. Writes one JSON
line per message sent (``{"sent": ID}``) and stops at the first failure with
``{"error": TEXT}``. Running apart means that a hanging SMTP server or webhook can be killed at
the channel's deadline, and that the watcher itself never imports Apprise (its memory stays
as small as before). The API used (``Apprise()``, ``add``, ``notify(body=, title=)``) is the
same from Apprise 1.2 (Debian 12) to 1.9 (Debian 13) and later.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _say(**item: str) -> None:
    sys.stdout.write(json.dumps(item) + "\n")
    sys.stdout.flush()


def send(request: dict[str, Any]) -> None:
    capture = _Capture()
    logger = logging.getLogger("apprise")
    logger.addHandler(capture)
    logger.propagate = False
    try:
        import apprise  # noqa: PLC0415 - the optional extra, only here
    except ImportError:
        _say(
            error="Apprise is not installed (pip install 'psquadlet[notify]', "
            "or apt install apprise)"
        )
        return
    sender = apprise.Apprise()
    if not sender.add(request["url"]):
        _say(error="Apprise does not accept the channel's URL")
        return
    for message in request["messages"]:
        capture.lines.clear()
        if not sender.notify(body=message["body"], title=message["title"]):
            _say(error="; ".join(capture.lines[-3:]) or "Apprise could not deliver the message")
            return
        _say(sent=message["id"])


if __name__ == "__main__":
    send(json.load(sys.stdin))
