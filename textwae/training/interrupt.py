"""Ctrl-C while training: finish the step under way, then stop with a resumable state.

A SIGINT in the middle of a step could land between the optimiser's update and the step
count, and a state saved then would not resume exactly. So the first Ctrl-C only asks the
loop to stop at the next step boundary; a second one interrupts at once, as usual.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType


class StopOnInterrupt:
    """While active (`with`), the first SIGINT sets `requested`; the second raises."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: object = None

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():  # signals reach it alone
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
