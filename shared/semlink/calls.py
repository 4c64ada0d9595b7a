"""Stopping work nobody waits for: a call's deadline and cancel reach every unit of work.

A :class:`Cancel` is a switch that work checks between steps (:meth:`Cancel.check`) and
that kills the subprocesses started under it (:meth:`Cancel.track`) the moment it is
set. A :class:`CallScope` is the one a service call runs under: it sets itself when the
call's deadline passes (a timer, so a subprocess is killed even while its thread waits
on it) or when the client goes away. The library below the services never takes it as
a parameter: :func:`current` finds the scope the running call installed with
:func:`running` (a context variable), and work that fans out to threads hands it on
with :meth:`Cancel.child`.

This module sits at the bottom of the package: it imports nothing from semlink.
"""

from __future__ import annotations

import contextvars
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Stopped(Exception):
    """The work was stopped on purpose: its result is no longer wanted."""


class DeadlineExceeded(Stopped):
    """The call's deadline passed; the rest of its work is skipped."""


class CallCancelled(Stopped):
    """The client cancelled the call (or went away); the rest of its work is skipped."""


class Cancel:
    """A switch for a piece of work: :meth:`set` kills the subprocesses it tracks (and any
    tracked later), sets its children, and makes :meth:`check` raise."""

    def __init__(self, parent: Cancel | None = None) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._children: list[Cancel] = []
        self.reason: Stopped | None = None
        if parent is not None:
            parent._adopt(self)

    @property
    def cancelled(self) -> bool:
        return self.reason is not None

    def set(self, reason: Stopped | None = None) -> None:
        """Stop: kill what runs, refuse what starts, pass ``reason`` on to the children."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason or Stopped("stopped")
            running = list(self._running)
            children = list(self._children)
        for process in running:
            process.kill()
        for child in children:
            child.set(self.reason)

    def check(self) -> None:
        """Raise the reason this was set for (nothing while it is not set)."""
        if self.reason is not None:
            raise self.reason

    def child(self) -> Cancel:
        """A switch set when this one is (and also settable on its own)."""
        return Cancel(self)

    def track(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.add(process)
            stopped = self.reason is not None
        if stopped:
            process.kill()

    def untrack(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.discard(process)

    def _adopt(self, child: Cancel) -> None:
        with self._lock:
            self._children.append(child)
            reason = self.reason
        if reason is not None:
            child.set(reason)


class CallScope(Cancel):
    """The switch of one call: set when ``timeout`` seconds have passed (None: never), or
    by :meth:`cancel_call` when the client goes away. :meth:`close` when the call ends."""

    def __init__(self, timeout: float | None = None) -> None:
        super().__init__()
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self._timer: threading.Timer | None = None
        if timeout is not None:
            self._timer = threading.Timer(max(0.0, timeout), self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        self.set(DeadlineExceeded("the call's deadline passed; its work was stopped"))

    def check(self) -> None:
        # The timer thread may be late under load: the clock decides.
        if self.deadline is not None and self.reason is None and time.monotonic() > self.deadline:
            self._expire()
        super().check()

    def cancel_call(self) -> None:
        self.set(CallCancelled("the client cancelled the call; its work was stopped"))

    def remaining(self) -> float | None:
        """Seconds left to the deadline (None: no deadline)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


_CURRENT: contextvars.ContextVar[Cancel | None] = contextvars.ContextVar(
    "semlink_call", default=None
)


def current() -> Cancel | None:
    """The switch of the work running in this thread (None outside a call)."""
    return _CURRENT.get()


def check() -> None:
    """Raise if the running call was stopped (nothing outside a call)."""
    scope = _CURRENT.get()
    if scope is not None:
        scope.check()


@contextmanager
def running(scope: Cancel | None) -> Iterator[Cancel | None]:
    """Run the block under ``scope``: :func:`current` and :func:`check` see it."""
    token = _CURRENT.set(scope)
    try:
        yield scope
    finally:
        _CURRENT.reset(token)
