"""Ctrl-C and SIGTERM during training: finish the step, save a checkpoint, then stop.

Schedulers (Slurm, Kubernetes, `timeout`) send SIGTERM before they kill; a person presses
Ctrl-C. Either one only raises a flag that the loop reads between optimiser steps, so the
checkpoint it writes is of a whole step. A second signal stops at once: the newest complete
checkpoint is still there, since checkpoints are written whole or not at all.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

from ftcli import ui

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Within `with StopRequest() as stop:`, `stop.signal` is the first SIGINT/SIGTERM received, else None.

    Handlers can only be installed from the main thread; elsewhere the default behaviour stays.
    `finishing` says what the loop does before it stops (the training loop's default, or `ilf`'s chunk).
    """

    def __init__(self, finishing: str = "finishing this step and saving a checkpoint") -> None:
        self.signal: signal.Signals | None = None
        self.finishing = finishing
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:
            self._restore()
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum)
        ui.info(f"\n[bold]{self.signal.name}[/]: {self.finishing} (send it again to stop at once)")
