"""Live line control: run ``edge_runtime.capture`` on a background thread and watch it (no UI).

The dashboard never inspects here itself: the capture package's ``InspectionLoop``
does, with the cached Inspector wrapped in :class:`TapInspector` (which only
remembers the latest result so the page can draw it) and a :class:`RollingSink` that
keeps recent verdicts for the reject rate. Records also go to the SQLite log, so the
History page shows what the live loop saw.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from dashboard.config import UnsafePathError, safe_join
from edge_runtime.sinks.record import INSPECTED
from edge_runtime.sinks.retention import image_folders

SOURCE_KINDS = ("synthetic", "folder", "video", "camera")


class TapInspector:
    """Delegates to the real Inspector; keeps the latest successful result."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.latest: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _keep(self, result: Any) -> None:
        with self._lock:
            self.latest = result

    def inspect(self, image: Any, source: str | None = None) -> Any:
        result = self._inner.inspect(image, source=source)
        self._keep(result)
        return result

    def inspect_batch(self, images: Sequence[Any], sources: Sequence[str] | None = None) -> list:
        results = self._inner.inspect_batch(images, sources=sources)
        good = [r for r in results if not isinstance(r, BaseException)]
        if good:
            self._keep(good[-1])
        return results


class RollingSink:
    """Loop sink keeping the last ``window`` records' (time, verdict, class) for live charts."""

    def __init__(self, window: int = 2000) -> None:
        self._lock = threading.Lock()
        self.records: deque[tuple[float, str, str | None]] = deque(maxlen=window)

    def write(self, records: Sequence[Any]) -> None:
        with self._lock:
            self.records.extend((r.recorded_at, r.verdict, r.defect_class) for r in records)

    def close(self) -> None:
        pass

    def verdicts(self) -> list[str]:
        with self._lock:
            return [v for _, v, _ in self.records]

    def reject_rate(self, last: int = 100) -> float | None:
        inspected = [v for v in self.verdicts() if v in INSPECTED][-last:]
        return sum(v == "defect" for v in inspected) / len(inspected) if inspected else None

    def rate_series(self, last: int = 50, points: int = 200) -> list[dict]:
        """Rolling reject rate after each inspected frame (the last ``points`` of them)."""
        inspected = [v for v in self.verdicts() if v in INSPECTED]
        out, window = [], deque(maxlen=last)
        for i, v in enumerate(inspected):
            window.append(v == "defect")
            out.append({"frame": i + 1, "reject rate": sum(window) / len(window)})
        return out[-points:]


@dataclass
class SourceSpec:
    kind: str = "synthetic"
    root: Path | None = None  # configured folder for folder/video sources
    relative: str = ""  # sub-folder (folder) or file (video) inside root
    camera: int = 0
    fps: float | None = 5.0  # synthetic pacing; None = as fast as possible
    defect_rate: float = 0.15
    seed: int = 0


def processed_ids(log_db: Path | None, folder: Path) -> set[str]:
    """Files of ``folder`` the log already has (a restarted folder watch skips them)."""
    if log_db is None or not Path(log_db).is_file():
        return set()
    from edge_runtime.sinks import SqliteLog

    with SqliteLog(log_db, create=False) as log:
        return log.processed_ids(str(Path(folder).resolve()))


def build_source(spec: SourceSpec, allowed_roots: Sequence[Path], log_db: Path | None = None):
    """A capture source for ``spec``; folder/video paths must lie inside a configured folder."""
    from edge_runtime.capture.sources import FolderWatcher, VideoSource
    from edge_runtime.capture.synthetic import SyntheticStripSource

    if spec.kind == "synthetic":
        return SyntheticStripSource(defect_rate=spec.defect_rate, seed=spec.seed, fps=spec.fps)
    if spec.kind == "camera":
        return VideoSource(int(spec.camera))
    if spec.kind not in ("folder", "video"):
        raise ValueError(f"unknown source kind '{spec.kind}' (one of {', '.join(SOURCE_KINDS)})")
    roots = [Path(r).resolve() for r in allowed_roots]
    if spec.root is None or Path(spec.root).resolve() not in roots:
        raise UnsafePathError("pick one of the configured folders")
    path = safe_join(spec.root, spec.relative)
    if spec.kind == "folder":
        if not path.is_dir():
            raise FileNotFoundError(f"not a folder: {path}")
        return FolderWatcher(path, already_processed=processed_ids(log_db, path))
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    return VideoSource(path)


def reject_output(config) -> Any | None:
    """The sink firing the dashboard's ``--reject-hook`` or ``--reject-command`` on ``--reject-on``, or None."""
    from edge_runtime.sinks.callback import command_reject_sink, python_reject_sink

    if config.reject_hook:
        return python_reject_sink(config.reject_hook, config.reject_on)
    if config.reject_command:
        return command_reject_sink(config.reject_command, config.reject_on)
    return None


def reject_output_name(config) -> str:
    """How the Live page names the reject output ``reject_output`` builds."""
    return f"Reject hook `{config.reject_hook}`" if config.reject_hook else f"Reject command `{config.reject_command}`"


class SelftestFailed(RuntimeError):
    """The golden frames no longer score as the export recorded: the line is not started (``watch`` refuses too)."""


def require_selftest(inspector: Any) -> str:
    """Run the golden-frame self-test ``watch`` runs before it captures (``edge_runtime.selftest.startup_check``):
    what the run's record says of it ("passed", "no golden frames"), ``SelftestFailed`` where a frame drifted."""
    from edge_runtime.selftest import startup_check

    check = startup_check(inspector)
    if not check.allowed:
        raise SelftestFailed(check.message)
    return check.status


class LiveSession:
    """One capture loop on a background thread."""

    def __init__(self, source: Any, inspector: Any, log_db: Path | None = None, overlay_dir: Path | None = None,
                 workers: int = 1, queue_size: int = 8, retain: str | None = None,
                 retain_period_s: float = 3600.0, reject_sink: Any | None = None, frame_dir: Path | None = None,
                 *, selftest: str) -> None:
        from edge_runtime.capture.loop import InspectionLoop, LoopConfig
        from edge_runtime.capture.runs import run_settings
        from edge_runtime.capture.source_claim import claim_source

        self.claim = claim_source(source)  # SourceBusyError where a watch already inspects this folder or camera
        self.settings = run_settings(inspector, selftest, {"started_from": "dashboard Live line", "workers": workers,
                                                           "retain": retain, "log_db": log_db})
        self.tap = TapInspector(inspector)
        self.profile, self.thresholds = inspector.profile, inspector.thresholds  # the loop's, whatever changes later
        self.rolling = RollingSink()
        self.source_name = getattr(source, "name", "source")
        self.reject_sink = reject_sink  # first, for the lowest reject latency (``command_reject_sink``)
        sinks: list[Any] = ([reject_sink] if reject_sink is not None else []) + [self.rolling]
        self._log = None
        if log_db is not None:
            from edge_runtime.sinks import SqliteLog

            self._log = SqliteLog(log_db, synchronous="NORMAL")
            sinks.append(self._log)
        config = LoopConfig(workers=workers, queue_size=queue_size, drop_oldest=True,
                            overlay_dir=overlay_dir, frame_dir=frame_dir, drain_timeout_s=5.0, hung_grace_s=5.0)
        self.loop = InspectionLoop(source, self.tap, sinks, config, on_sink_error=self._sink_error)
        self.error: str | None = None
        self.final: dict | None = None
        self.retain = retain if self._log is not None else None
        self.retention: str | None = None  # what the latest prune did, or why it failed
        self._stop_pruning = threading.Event()
        self._pruning = self._pruning_thread(image_folders(log_db, overlay_dir, frame_dir) if log_db else [],
                                             retain_period_s)
        self._thread = threading.Thread(target=self._run, name="dashboard-live", daemon=True)

    def _pruning_thread(self, image_dirs: list[Path], period_s: float) -> threading.Thread | None:
        """Retention while the line runs (``python -m dashboard --retain AGE``), as ``watch --retain`` does."""
        if self.retain is None:
            return None
        from edge_runtime.sinks.retention import RetentionReport, keep_pruning

        def report(pruned: RetentionReport) -> None:
            self.retention = f"{time.strftime('%H:%M:%S')}: {pruned.line()}"

        def failed(exc: Exception) -> None:
            self.retention = f"{time.strftime('%H:%M:%S')}: retention failed: {exc}"

        return threading.Thread(target=keep_pruning, name="dashboard-retention", daemon=True, args=(
            self._log, self.retain, image_dirs, self._stop_pruning, report, failed, period_s))

    def _sink_error(self, sink: Any, exc: BaseException) -> None:
        self.error = f"{type(sink).__name__} failed to write records: {exc}"

    def _run(self) -> None:
        run_id = None
        try:
            run_id = self._log.start_run(self.source_name, self.settings) if self._log is not None else None
            self.final = self.loop.run(handle_signals=False)
        except Exception as exc:  # surfaced on the page
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._stop_pruning.set()
            if self._pruning is not None:
                self._pruning.join()
            if self._log is not None:
                self._note_stop(run_id)
                self._log.close()
            if self.claim is not None:
                self.claim.release()

    def _note_stop(self, run_id: int | None) -> None:
        import sqlite3

        try:
            if run_id is not None:
                self._log.end_run(run_id, self.final or {"error": self.error})
        except sqlite3.Error as exc:
            self.error = self.error or f"the run's stop could not be noted in the log: {exc}"

    def start(self) -> "LiveSession":
        if self._pruning is not None:
            self._pruning.start()
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 15.0) -> None:
        self.loop.request_stop(drain=True)
        self._thread.join(timeout)

    def snapshot(self) -> dict:
        snap = self.final if (self.final is not None and not self.running) else self.loop.snapshot()
        return dict(snap)


class LiveRegistry:
    """Process-wide holder of the (at most one) running live session."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.session: LiveSession | None = None

    def start(self, session_factory) -> LiveSession:
        with self.lock:
            if self.session is not None and self.session.running:
                return self.session
            self.session = session_factory().start()
            return self.session

    def stop(self) -> None:
        with self.lock:
            session = self.session
        if session is not None:
            session.stop()
