"""Dashboard configuration and the only way the UI touches the file system.

Every folder the UI may read is configured here (environment variables, set by
``python -m dashboard`` from its command-line options). User-typed paths are only
ever *relative* to one of these roots and are resolved with :func:`safe_join`,
which rejects absolute paths, ``..`` and symlinks that leave the root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from edge_runtime.datasets import IMAGE_SUFFIXES

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_LISTED_FILES = 2000

ENV_PREFIX = "STEEL_DASH_"


class UnsafePathError(ValueError):
    """A user-supplied path points outside the configured folders."""


@dataclass(frozen=True)
class DashboardConfig:
    manifest_path: Path | None = None  # None -> edge_runtime.manifest.default_manifest_path()
    profile: str | None = None  # None -> the manifest's default profile
    image_roots: tuple[Path, ...] = ()  # folders the Inspect page may pick images from
    validation_roots: tuple[Path, ...] = ()  # folders the Tuning page may score
    log_db: Path = REPO_ROOT / "cache" / "inspections.sqlite"
    results_dir: Path = REPO_ROOT / "results"
    live_source: str = "synthetic"  # default source of the Live line page
    live_roots: tuple[Path, ...] = field(default=())  # folders a folder-watch/video source may use
    max_upload_mb: int = 25
    threads: int = 1
    retain: str | None = None  # the Live line deletes records older than this (e.g. "30d") and their overlays
    reject_command: str | None = None  # the Live line runs it for every reject (``watch --reject-command``)
    reject_hook: str | None = None  # or calls this MODULE:FUNCTION for it (``watch --reject-hook``)
    reject_on: str = "defect"  # comma-separated verdicts that fire either

    @property
    def allowed_roots(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(self.image_roots + self.validation_roots + self.live_roots))


def _paths(value: str | None, default: list[Path]) -> tuple[Path, ...]:
    if value is None:
        candidates = default
    else:
        candidates = [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]
    return tuple(p.resolve() for p in candidates if p.is_dir())


def default_data_roots() -> list[Path]:
    """Repo ``data/`` and the shared data folder next to the repo, where present."""
    return [REPO_ROOT / "data", REPO_ROOT.parent / "shared" / "data"]


def load_config(env: dict[str, str] | None = None) -> DashboardConfig:
    env = dict(os.environ if env is None else env)

    def get(name: str) -> str | None:
        value = env.get(ENV_PREFIX + name)
        return value if value not in (None, "") else None

    manifest = get("MANIFEST")
    image_roots = _paths(get("IMAGE_DIRS"), default_data_roots())
    validation_roots = _paths(get("VALIDATION_DIRS"), list(image_roots))
    live_roots = _paths(get("LIVE_DIRS"), list(image_roots))
    return DashboardConfig(
        manifest_path=Path(manifest).expanduser().resolve() if manifest else None,
        profile=get("PROFILE"),
        image_roots=image_roots,
        validation_roots=validation_roots,
        log_db=Path(get("LOG_DB") or DashboardConfig.log_db).expanduser(),
        results_dir=Path(get("RESULTS_DIR") or DashboardConfig.results_dir).expanduser(),
        live_source=get("LIVE_SOURCE") or "synthetic",
        live_roots=live_roots,
        max_upload_mb=int(get("MAX_UPLOAD_MB") or 25),
        threads=int(get("THREADS") or 1),
        retain=get("RETAIN"),
        reject_command=get("REJECT_COMMAND"),
        reject_hook=get("REJECT_HOOK"),
        reject_on=get("REJECT_ON") or "defect",
    )


def safe_join(root: Path, relative: str | os.PathLike[str] | None) -> Path:
    """Resolve ``relative`` inside ``root``; raise :class:`UnsafePathError` if it escapes.

    Absolute paths, drive letters, ``~`` and any ``..`` component are refused outright
    (even when they would land back inside the root), and the resolved path (symlinks
    followed) must still be inside the resolved root.
    """
    root = Path(root).resolve()
    text = "" if relative is None else os.fspath(relative).strip()
    if "\x00" in text:
        raise UnsafePathError("path contains a NUL byte")
    text = text.replace("\\", "/")
    if text.startswith(("/", "~")) or (len(text) > 1 and text[1] == ":"):
        raise UnsafePathError(f"'{text}': only paths relative to the configured folder are allowed")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafePathError(f"'{text}': '..' is not allowed; stay inside the configured folder")
    candidate = root.joinpath(*parts).resolve()
    if candidate != root and not candidate.is_relative_to(root):
        raise UnsafePathError(f"'{text}' resolves outside the configured folder {root}")
    return candidate


def is_inside(roots: tuple[Path, ...], path: Path) -> bool:
    path = Path(path).resolve()
    return any(path == r.resolve() or path.is_relative_to(r.resolve()) for r in roots)


def list_subfolders(root: Path, max_depth: int = 3, limit: int = 500) -> list[str]:
    """Relative sub-folder names under ``root`` (no symlinks followed out of it)."""
    root = Path(root).resolve()
    found: list[str] = [""]
    frontier = [root]
    for _ in range(max_depth):
        nxt = []
        for folder in frontier:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
            for child in children:
                if not is_inside((root,), child):
                    continue
                found.append(child.relative_to(root).as_posix())
                nxt.append(child)
                if len(found) >= limit:
                    return found
        frontier = nxt
    return found


def list_images(folder: Path, root: Path | None = None, limit: int = MAX_LISTED_FILES) -> list[Path]:
    """Image files directly inside ``folder`` (sorted, capped at ``limit``).

    Symlinks that resolve outside ``root`` (default: ``folder``) are left out.
    """
    folder = Path(folder)
    root = Path(root if root is not None else folder).resolve()
    try:
        files = sorted(
            p for p in folder.iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and is_inside((root,), p)
        )
    except OSError:
        return []
    return files[:limit]
