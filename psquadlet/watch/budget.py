"""How long one pass may wait on registries (``Deps.registry_budget``).

Every request has its own deadline and a tag listing one over its pages (``registry.py``);
this bounds their sum over a pass, however many containers and registries: ``PassRegistry``
is the ``Registry`` a pass runs on. It counts the time during which at least one registry call
is in flight (parallel HEADs count once), and once the budget is spent a call fails at once
with a ``RegistryError`` (that container's check fails, as for a registry that is down, and is
tried again next pass). An adapter that can cut a request in flight (``Bounded``: the HTTP
registry's ``within``) is told what is left, so a call started with one second left ends
within that second. Pulls, restarts and health gates do not count: they have their own limits.
"""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

from psquadlet.imageref import ImageRef
from psquadlet.watch.interfaces import Clock, Registry, RegistryError, RemoteImage


@runtime_checkable
class Bounded(Protocol):
    def within(self, seconds: float) -> Registry:
        """This registry with every request also ending within *seconds*."""
        ...


class PassRegistry:
    """*inner* as one pass sees it: calls share a budget of *seconds* of registry time."""

    def __init__(self, inner: Registry, clock: Clock, seconds: float) -> None:
        self.inner = inner
        self.clock = clock
        self.seconds = seconds
        self._lock = threading.Lock()
        self._spent = 0.0
        self._busy = 0  # calls in flight
        self._since = 0.0  # when the current busy stretch began

    def spent(self) -> float:
        """Registry time used so far, the stretch in progress included."""
        with self._lock:
            return self._spent_now(self.clock.monotonic())

    def left(self) -> float:
        return self.seconds - self.spent()

    def _spent_now(self, now: float) -> float:
        return self._spent + (max(now - self._since, 0.0) if self._busy else 0.0)

    def _begin(self) -> Registry:
        now = self.clock.monotonic()
        with self._lock:
            left = self.seconds - self._spent_now(now)
            if left <= 0:
                raise RegistryError(
                    f"not checked: this pass spent its {self.seconds:g}s for registry checks "
                    "(a slow registry); checked again next pass"
                )
            if not self._busy:
                self._since = now
            self._busy += 1
        if isinstance(self.inner, Bounded):
            return self.inner.within(left)
        return self.inner

    def _end(self) -> None:
        now = self.clock.monotonic()
        with self._lock:
            self._busy -= 1
            if not self._busy:
                self._spent += max(now - self._since, 0.0)

    def head(self, repo: ImageRef) -> RemoteImage:
        registry = self._begin()
        try:
            return registry.head(repo)
        finally:
            self._end()

    def tags(self, repo: ImageRef) -> list[str]:
        registry = self._begin()
        try:
            return registry.tags(repo)
        finally:
            self._end()

    def created(self, repo: ImageRef, digest: str) -> float:
        registry = self._begin()
        try:
            return registry.created(repo, digest)
        finally:
            self._end()
