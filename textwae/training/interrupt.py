"""Ctrl-C, SIGTERM and SIGHUP while training: finish the step under way, then stop with a
resumable state.

A signal in the middle of a step could land between the optimiser's update and the step
count, and a state saved then would not resume exactly. So inside the training loop the first
signal only asks the loop to stop at the next step boundary; a second one stops at once.
Outside the loop (reading data, training the tokenizer) a signal stops at once too, as a
`Stopped` exception rather than the default kill of SIGTERM and SIGHUP, so that what a new run
wrote before its first state is removed and the same command can run again. A closed terminal
(SIGHUP), `timeout` or a cluster scheduler (SIGTERM) are thereby handled as Ctrl-C is.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exit_status(number: int) -> int:
    """The shell's status of a process a signal stopped: 128 + its number (130, 143, 129)."""
    return 128 + number


def stop_reason(number: int) -> str:
    """How a message names the signal: Ctrl-C interrupts, the others stop."""
    return "interrupted" if number == signal.SIGINT else f"stopped by {signal.Signals(number).name}"


class Stopped(KeyboardInterrupt):
    """A signal stopped the process at once. A KeyboardInterrupt, as Ctrl-C's own, so that no
    `except Exception` in between swallows it and clean-ups see it as Ctrl-C."""

    def __init__(self, number: int) -> None:
        super().__init__(stop_reason(number))
        self.number = number
        self.exit_status = exit_status(number)


class OnSignal:
    """While active (`with`), SIGINT, SIGTERM and SIGHUP raise `Stopped`; with `defer`, the
    first one only sets `requested` to its number and a second one raises."""

    def __init__(self, defer: bool) -> None:
        self.defer = defer
        self.requested = 0  # the number of the signal that asked to stop; 0: none
        self._previous: dict[int, Any] = {}

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.requested or not self.defer:
            raise Stopped(number)
        self.requested = number

    def __enter__(self) -> OnSignal:
        if threading.current_thread() is threading.main_thread():  # signals reach it alone
            self._previous = {number: signal.signal(number, self._handle) for number in SIGNALS}
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for number, handler in self._previous.items():
            # None: a handler installed outside Python, which cannot be put back
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        self._previous = {}
