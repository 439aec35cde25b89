"""Progress reporting and cancellation shared by every long computation.

A long loop takes ``progress`` (a callable receiving a ``ProgressEvent``) and ``cancel``
(a ``CancelToken``, or any object with ``is_cancelled() -> bool``); it calls
``check(cancel)`` once per iteration and never prints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from reconstruction.errors import Cancelled


@dataclass
class ProgressEvent:
    """One progress report: ``fraction`` in [0, 1], a stage name, the step, latest error values."""

    fraction: float
    stage: str = ""
    step: int = 0
    total: int = 0
    values: dict[str, float] = field(default_factory=dict)
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


class CancelLike(Protocol):
    def is_cancelled(self) -> bool: ...


class CancelToken:
    """A thread-safe flag; ``cancel()`` asks the computation to stop at its next check."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the computation to stop."""
        self._event.set()

    def is_cancelled(self) -> bool:
        """Return True once ``cancel()`` was called."""
        return self._event.is_set()


class CallbackCancelToken:
    """A cancel token that asks a function (e.g. a database poll), at most every ``period_s``."""

    def __init__(self, func: Callable[[], bool], period_s: float = 1.0) -> None:
        import time

        self._func = func
        self._period_s = period_s
        self._last = -float("inf")
        self._cancelled = False
        self._time = time.monotonic

    def is_cancelled(self) -> bool:
        """Return True once ``func`` returned True (polled at most every ``period_s``)."""
        if self._cancelled:
            return True
        now = self._time()
        if now - self._last >= self._period_s:
            self._last = now
            self._cancelled = bool(self._func())
        return self._cancelled


def check(cancel: CancelLike | None) -> None:
    """Raise ``Cancelled`` if the token says so; a None token never cancels."""
    if cancel is not None and cancel.is_cancelled():
        raise Cancelled("cancelled by the user")


def report(progress: ProgressCallback | None, event: ProgressEvent) -> None:
    """Send ``event`` to the callback if there is one."""
    if progress is not None:
        progress(event)
