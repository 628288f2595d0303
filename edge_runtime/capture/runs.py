"""What judged a capture loop's frames, noted in the log's ``runs`` table at each start (``SqliteLog.start_run``).

A record carries its own thresholds and model files; a run adds what a record cannot: the software, the
manifest as a whole, the precision, whether the golden-frame self-test passed or was skipped, and the
options the loop was started with. An auditor reads them with ``history`` or from the SQLite file.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


def run_settings(inspector: Any, selftest: str, options: dict[str, Any]) -> dict[str, Any]:
    """What judges a capture loop's frames, for its ``runs`` row in the log: the software, the manifest (path and
    sha256: thresholds, scoring and model files all live in it), the profile, precision, thresholds and model
    files, whether the golden-frame self-test passed or was skipped, and the options the loop was started with."""
    try:
        software = version("steel-inspect")
    except PackageNotFoundError:
        software = None
    manifest = getattr(inspector, "manifest_path", None)
    head = getattr(getattr(getattr(inspector, "config", None), "classifier_head", None), "sha256", None)
    thresholds = getattr(inspector, "thresholds", None)  # the tests' fake inspectors lack some of these
    models = dict(getattr(inspector, "model_sha256", {}) or {})
    if head is not None:
        models["classifier_head"] = head
    try:
        manifest_sha256 = hashlib.sha256(Path(manifest).read_bytes()).hexdigest() if manifest else None
    except OSError:  # moved or unreadable since the models were loaded: the run starts all the same
        manifest_sha256 = None
    return {
        "software": software,
        "manifest": str(manifest) if manifest else None,
        "manifest_sha256": manifest_sha256,
        "profile": getattr(inspector, "profile", None), "precision": getattr(inspector, "precision", None),
        "thresholds": {"warn": thresholds.warn, "defect": thresholds.defect} if thresholds is not None else None,
        "models": models, "selftest": selftest, "options": options,
    }
