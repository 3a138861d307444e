"""Per-test time limits that fire under plain `pytest`, on every platform.

pytest-timeout raises pytest's `Failed` inside a looping test. Hypothesis takes that for an
ordinary failure and replays the example to shrink it — and the replay loops forever, with
no alarm left to stop it; after Ctrl-C the run is lost. Here a limit raises `TestTimeout`, a
BaseException: hypothesis does not catch it (it propagates at once), neither does a
student's `except Exception`, and pytest reports it as that test's failure and goes on with
the next test. If the code under test swallows it anyway (`except BaseException`), it is
raised again every second until the test ends.

How it fires: with `signal.setitimer` where the platform has it (Linux, macOS) and the test
runs in the main thread; otherwise (Windows, or a worker thread) a timer thread raises the
exception in the test's thread with `PyThreadState_SetAsyncExc`. Either way it interrupts
Python code, not a single long call into native code, which ends first.
"""

from __future__ import annotations

import ctypes
import signal
import threading

REPEAT_S = 1.0  # after the first timeout, raise again this often until the test ends
# Looked up now: under `llmlab grade` the audit hook refuses ctypes symbol look-ups later.
_SET_ASYNC_EXC = ctypes.pythonapi.PyThreadState_SetAsyncExc


class TestTimeout(BaseException):
    """The test ran past its time limit."""

    __test__ = False  # not a test class, whatever pytest's name rules say

    def __init__(self, seconds: float | None = None):
        super().__init__("the test ran past its time limit" + (f" of {seconds:g} s" if seconds else ""))


def _can_use_signals() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


class Alarm:
    """`with Alarm(seconds):` raises TestTimeout in this thread when the block runs too long.
    `seconds <= 0` or None means no limit."""

    def __init__(self, seconds: float | None, use_signals: bool | None = None):
        self.seconds = seconds or 0
        self.use_signals = _can_use_signals() if use_signals is None else use_signals
        self._previous = None
        self._timer: threading.Timer | None = None
        self._done = threading.Event()

    def __enter__(self) -> "Alarm":
        if self.seconds <= 0:
            return self
        if self.use_signals:
            self._previous = signal.signal(signal.SIGALRM, self._on_signal)
            signal.setitimer(signal.ITIMER_REAL, self.seconds, REPEAT_S)
        else:
            self._thread_id = threading.get_ident()
            self._schedule(self.seconds)
        return self

    def __exit__(self, *exc) -> None:
        if self.seconds <= 0:
            return
        if self.use_signals:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
        else:
            self._done.set()
            if self._timer is not None:
                self._timer.cancel()

    def _on_signal(self, signum, frame) -> None:
        raise TestTimeout(self.seconds)

    def _schedule(self, delay: float) -> None:
        self._timer = threading.Timer(delay, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        if self._done.is_set():
            return
        _SET_ASYNC_EXC(ctypes.c_ulong(self._thread_id), ctypes.py_object(TestTimeout))  # raised as TestTimeout()
        self._schedule(REPEAT_S)
