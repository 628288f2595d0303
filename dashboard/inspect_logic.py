"""Run uploads / picked files through the Inspector, once per distinct image (no UI)."""

from __future__ import annotations

import hashlib
from typing import Any, MutableMapping, Sequence

from dashboard.render import Inspected


def cache_key(data: bytes, inspector: Any) -> tuple:
    thresholds = getattr(inspector, "thresholds", None)
    return (
        hashlib.sha256(data).hexdigest(),
        getattr(inspector, "profile", None),
        None if thresholds is None else (thresholds.warn, thresholds.defect),
    )


def inspect_one(inspector: Any, name: str, data: bytes, always_classify: bool = False) -> Inspected:
    """Never raises: a bad image becomes an ``Inspected`` with an operator-readable error.

    ``always_classify`` asks the runtime to run the classifier even when the gate passes
    the frame (the verdict stays the gate's).
    """
    from edge_runtime.errors import InspectionError

    if not data:
        return Inspected(name, error="the file is empty (0 bytes)")  # the page names the file
    try:
        extra = {"always_classify": True} if always_classify else {}
        return Inspected(name, result=inspector.inspect(data, source=name, **extra))
    except InspectionError as exc:
        return Inspected(name, error=str(exc) or type(exc).__name__)
    except Exception as exc:  # keep the page alive whatever the runtime throws
        return Inspected(name, error=f"{name}: could not be inspected ({type(exc).__name__}: {exc})")


def inspect_items(
    inspector: Any,
    items: Sequence[tuple[str, bytes]],
    cache: MutableMapping[tuple, Inspected] | None = None,
    max_cache: int = 256,
    always_classify: bool = False,
) -> list[Inspected]:
    """Inspect ``(name, bytes)`` pairs in order, reusing cached results across reruns (a slider moved, a download).
    The cache keeps only the images of this call: a result holds its frame and maps at full size (48 MB for a
    2000x2000 frame), so the results of images no longer on the page are let go."""
    cache = {} if cache is None else cache
    out, used = [], set()
    for name, data in items:
        key = cache_key(data, inspector) + (name, always_classify)
        item = cache.get(key)
        if item is None:
            item = inspect_one(inspector, name, data, always_classify)
            if len(cache) >= max_cache:
                cache.pop(next(iter(cache)))
            cache[key] = item
        used.add(key)
        out.append(item)
    for stale in [key for key in cache if key not in used]:
        del cache[stale]
    return out


def uploads_to_show(state: MutableMapping[str, Any], fresh: list[tuple[str, bytes]],
                    uploader_was_shown: bool) -> tuple[list[tuple[str, bytes]], bool]:
    """The uploads to inspect, and whether they are kept from before the operator left the page.

    Streamlit forgets a file uploader's files when another page is shown, so the page keeps the
    last uploads in ``state`` and shows them again on its return, until new files are uploaded, the
    uploaded files are removed in the uploader, or the kept ones are cleared."""
    if fresh:
        state["kept_uploads"], state["showing_kept"] = list(fresh), False
        return list(fresh), False
    if not uploader_was_shown and state.get("kept_uploads"):
        state["showing_kept"] = True  # the page was entered again
    if state.get("showing_kept"):
        return state["kept_uploads"], True
    forget_uploads(state)  # the operator removed the uploaded files
    return [], False


def forget_uploads(state: MutableMapping[str, Any]) -> None:
    state.pop("kept_uploads", None)
    state.pop("showing_kept", None)


def summary_rows(items: Sequence[Inspected]) -> list[dict]:
    rows = []
    for item in items:
        r = item.result
        rows.append({
            "image": item.name,
            "verdict": item.verdict,
            "anomaly score": None if r is None else round(float(r.anomaly_score), 6),
            "class": None if r is None else r.defect_class,
            "confidence": None if r is None or r.confidence is None else round(float(r.confidence), 4),
            "latency ms": None if r is None else round(float(r.latency_ms), 1),
            "error": item.error or "",
        })
    return rows
