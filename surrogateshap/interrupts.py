"""Stopping a long run cleanly on SIGTERM (what a cluster scheduler sends before it kills a job) and SIGINT (Ctrl-C).

Inside :func:`stop_on_signals` both signals raise :class:`RunInterrupted` in the main thread. Every file
is written atomically (:mod:`surrogateshap.io`), so wherever the exception lands, the bank rows already
written stay complete and the next run resumes from them. It is not a ``KeyboardInterrupt``: Lightning's
loops turn that into ``sys.exit(1)``, while other exceptions pass through them after their teardown.
Lightning's own SIGTERM handler (it only records the signal) keeps running: it calls the handler it
found installed, this one.

>>> import os, signal
>>> with stop_on_signals():
...     os.kill(os.getpid(), signal.SIGTERM)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
surrogateshap.interrupts.RunInterrupted: stopped by SIGTERM
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["RunInterrupted", "stop_on_signals"]

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunInterrupted(Exception):
    """A run stopped by a signal; ``signum`` is the signal's number (exit status ``128 + signum``)."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"stopped by {signal.Signals(self.signum).name}")


def _raise(signum: int, _frame: FrameType | None) -> None:
    # a second signal while the first one unwinds must not interrupt the clean-up
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise RunInterrupted(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`RunInterrupted` while the block runs (main thread only; elsewhere a no-op).

    The previous handlers are restored when the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:
        signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
