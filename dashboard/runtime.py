"""The dashboard's only door to the models: one cached Inspector per (manifest, profile).

Pages call :func:`get_inspector` at use time (never at import), so tests can swap
``load_inspector`` for a fake and the process loads each model once
(``st.cache_resource``). :func:`reload_inspectors` drops the cache after thresholds
were saved, so the next call picks up the new manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from dashboard.config import DashboardConfig, load_config


@st.cache_resource(show_spinner=False)
def get_config() -> DashboardConfig:
    return load_config()


def manifest_path(config: DashboardConfig | None = None) -> Path:
    from edge_runtime.manifest import default_manifest_path

    config = config or get_config()
    return config.manifest_path if config.manifest_path is not None else Path(default_manifest_path())


def read_manifest(path: Path | None = None) -> dict:
    """The manifest as a dict, through the runtime's loader; raises on missing/malformed."""
    from edge_runtime.manifest import load_manifest

    return load_manifest(Path(path or manifest_path()))


def profile_names(manifest: dict) -> tuple[list[str], str | None]:
    """(profile names, the profile a command would use without ``--profile``, None where it would need one)."""
    from edge_runtime.errors import ManifestError
    from edge_runtime.manifest import profile_name

    try:
        default = profile_name(manifest)
    except ManifestError:
        default = None
    return list(manifest.get("profiles") or {}), default


def load_inspector(manifest: str | None, profile: str | None, threads: int = 1) -> Any:
    from edge_runtime import Inspector

    return Inspector.from_manifest(manifest_path=manifest, profile=profile, intra_op_threads=threads)


def warm_up(inspector: Any) -> None:
    """One inspection of a synthetic strip so the first real upload does not pay ORT's start-up."""
    try:
        import numpy as np

        from edge_runtime.capture.synthetic import synthetic_frame

        inspector.inspect(synthetic_frame(np.random.default_rng(0), "scratch", 200), source="warm-up")
    except Exception:  # warm-up is best effort; real errors show on real images
        pass


@st.cache_resource(show_spinner="Loading models ...", max_entries=4)
def _cached_inspector(manifest: str | None, profile: str | None, threads: int, version: tuple) -> Any:
    """``version``: the manifest file's modification (``manifest_version``), so thresholds written by
    ``calibrate --write`` or another dashboard while this one runs are loaded, not shown stale."""
    inspector = load_inspector(manifest, profile, threads)
    warm_up(inspector)
    return inspector


def manifest_version(manifest: str | None) -> tuple:
    """(modification time in ns, size) of the manifest the runtime would read; () if it cannot be read."""
    from edge_runtime.manifest import default_manifest_path

    try:
        stat = Path(manifest or default_manifest_path()).stat()
    except OSError:
        return ()
    return (stat.st_mtime_ns, stat.st_size)


def current_profile() -> str | None:
    return st.session_state.get("profile") or get_config().profile


def get_inspector(profile: str | None = None) -> Any:
    """The process-wide Inspector for ``profile`` (default: the sidebar's choice)."""
    config = get_config()
    manifest = str(config.manifest_path) if config.manifest_path else None
    return _cached_inspector(manifest, profile or current_profile(), config.threads, manifest_version(manifest))


def inspector_or_stop(hint: str | None = None) -> Any:
    """The Inspector, or an error on the page (and the page stops) when the models cannot load."""
    try:
        return get_inspector()
    except Exception as exc:  # shown to the operator; any loading failure is reported the same way
        st.error(f"The models could not be loaded: {exc}")
        if hint:
            st.info(hint)
        st.stop()


def reload_inspectors() -> None:
    """Forget every loaded Inspector (after the manifest changed)."""
    _cached_inspector.clear()
    st.session_state.pop("inspect_cache", None)
