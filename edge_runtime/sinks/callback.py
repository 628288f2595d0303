"""Callback sink: calls a function for every reject, e.g. a PLC hook that fires the ejector.

The loop delivers records in a batch right after inspection, before later sinks run,
so put this sink first for the lowest reject latency. After a crash, frames whose
records were not committed are inspected again, so the hook is at-least-once.
"""

from __future__ import annotations

import importlib
import shlex
import shutil
import subprocess
from typing import Callable, Sequence

from .record import Record

RejectHook = Callable[[Record], None]


class RejectHookError(RuntimeError):
    """The hook failed for some records of a batch; it was still called for every other one."""

    def __init__(self, failures: list[tuple[Record, BaseException]]) -> None:
        self.failures = failures
        first_record, first_error = failures[0]
        super().__init__(f"the reject hook failed for {len(failures)} record(s), first for frame "
                         f"{first_record.frame_id} of {first_record.source}: {first_error}")


class CallbackSink:
    def __init__(self, callback: RejectHook, predicate: Callable[[Record], bool] = lambda r: r.is_reject) -> None:
        self.callback = callback
        self.predicate = predicate
        self.calls = 0
        self.failed = 0

    def write(self, records: Sequence[Record], cancelled: Callable[[], bool] | None = None) -> None:
        """Calls the hook for each matching record, in order. A failing call does not skip the
        rejects after it (each is an ejector firing); the failures are raised together at the end
        (``InspectionLoop`` notes them in the records the log gets after this sink). Once
        ``cancelled()`` is true (a forced stop), the hook is not called for the rest: each of
        those rejects is a failure "not fired"."""
        failures: list[tuple[Record, BaseException]] = []
        for record in records:
            if self.predicate(record):
                if cancelled is not None and cancelled():
                    failures.append((record, RuntimeError("not fired: the loop was stopped before the hook's turn")))
                    continue
                self.calls += 1
                try:
                    self.callback(record)
                except (Exception, SystemExit) as error:  # noqa: BLE001 - a hook's sys.exit() too: none stops the log
                    failures.append((record, error))
                    self.failed += 1
        if failures:
            raise RejectHookError(failures)

    def close(self) -> None:
        pass


# Verdicts a reject command may fire on: inspected ones, and frames that were never judged (could not
# be inspected, or dropped from a full queue), which a fail-safe line rejects too.
REJECTABLE = ("defect", "warn", "error", "dropped")


class CommandHook:
    """A reject hook that runs a command (no shell) once per reject, with the record as one line of JSON on
    its standard input (newline-terminated, so a shell's ``read`` takes it): how a line wires the ejector or a PLC signal without touching this code
    (``watch --reject-command``). A non-zero exit or a run past ``timeout_s`` is a failure of that
    reject, reported by ``CallbackSink`` like any hook failure. The sink thread waits for each run, so
    the command should hand the signal on and return; a slow one holds back the log and, once the loop's
    record queue is full, the inspection and the capture (``LoopConfig.record_queue_size``)."""

    def __init__(self, command: Sequence[str], timeout_s: float = 5.0) -> None:
        if not command:
            raise ValueError("the reject command is empty")
        if shutil.which(command[0]) is None:
            raise ValueError(f"reject command not found or not executable: {command[0]}")
        self.command, self.timeout_s = list(command), timeout_s

    def __call__(self, record: Record) -> None:
        try:
            done = subprocess.run(self.command, input=record.to_json() + "\n", capture_output=True, text=True,
                                  timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{self.command[0]} did not finish within {self.timeout_s:g} s") from None
        if done.returncode != 0:
            raise RuntimeError(f"{self.command[0]} exited with status {done.returncode}: "
                               f"{done.stderr.strip()[-300:] or 'no message'}")


def verdict_predicate(verdicts: Sequence[str]) -> Callable[[Record], bool]:
    """True for a record whose verdict is one of ``verdicts`` (each in ``REJECTABLE``; blanks around or
    between them, as in a split "defect, error", are ignored)."""
    chosen = frozenset(v.strip() for v in verdicts if v.strip())
    if not chosen or chosen - set(REJECTABLE):
        raise ValueError(f"reject verdicts must be among {', '.join(REJECTABLE)}, got {', '.join(sorted(chosen)) or 'none'}")
    return lambda record: record.verdict in chosen


def command_reject_sink(command: str, verdicts: str = "defect", timeout_s: float = 5.0) -> CallbackSink:
    """The sink behind ``--reject-command CMD --reject-on VERDICTS`` (``watch``, the dashboard's Live line):
    CMD split like a shell line (no shell runs it), VERDICTS comma-separated. ``ValueError`` says what
    is wrong with either."""
    hook = CommandHook(shlex.split(command), timeout_s)
    return CallbackSink(hook, verdict_predicate(verdicts.split(",")))


def python_reject_sink(spec: str, verdicts: str = "defect") -> CallbackSink:
    """The sink behind ``--reject-hook MODULE:FUNCTION``: FUNCTION(record) called in the loop's own process,
    the lowest-latency way to fire an ejector (no process per reject). MODULE must be importable (on
    PYTHONPATH); ``ValueError`` says what is wrong."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"expected MODULE:FUNCTION, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name}: {exc}") from None
    hook = getattr(module, function_name, None)
    if not callable(hook):
        raise ValueError(f"{module_name} has no function {function_name}")
    return CallbackSink(hook, verdict_predicate(verdicts.split(",")))
