from __future__ import annotations

from collections.abc import Iterator

import pytest

from psquadlet import config as config_mod
from tests.notify.receivers import SmtpSink, Webhook


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    try:
        yield hook
    finally:
        hook.close()


@pytest.fixture
def accepts_notifications(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until [notifications] and [metrics] are wired into config.parse_config, let them pass."""
    missing = tuple(k for k in ("notifications", "metrics") if k not in config_mod.TOP_KEYS)
    monkeypatch.setattr(config_mod, "TOP_KEYS", (*config_mod.TOP_KEYS, *missing))
