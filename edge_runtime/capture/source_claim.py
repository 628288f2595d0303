"""One capture loop per watched folder or camera on a PC.

Two loops on one folder (a second ``watch``, or the dashboard's Live line beside it) each inspect
and reject every file: the log gets two records per frame and the ejector fires twice. A camera
opened twice gives each loop half the frames, or none. A loop claims such a source with an
exclusive lock on a file in the system's temporary folder, named after the source, and holds it
while it runs; the operating system lets go of it when the process ends, however it ends.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from .sources import CaptureError, FolderWatcher, VideoSource


class SourceBusyError(CaptureError):
    """Another capture loop on this PC holds the source."""


class SourceClaim:
    """The held lock of one source; ``release`` lets go of it (also when the process ends)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def release(self) -> None:
        if not self._handle.closed:
            self._handle.close()


def claim_source(source: Any) -> SourceClaim | None:
    """Claim a watched folder or a camera for this loop; None for sources two loops may share (the synthetic strip,
    a video file, a list of files) and where the OS has no POSIX file locks. ``SourceBusyError`` names the process
    holding it."""
    if not (isinstance(source, FolderWatcher) or (isinstance(source, VideoSource) and source.is_camera)):
        return None
    try:
        import fcntl
    except ImportError:
        return None
    digest = hashlib.sha256(source.name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"steel-inspect-source-{digest}.lock"
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        return None  # a lock file of another account that this one may not open: the claim cannot be checked
    try:
        os.fchmod(descriptor, 0o666)  # loops of other accounts (the dashboard's service) claim the same file
    except OSError:
        pass
    handle = os.fdopen(descriptor, "r+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise SourceBusyError(f"{source.name} is already inspected by another capture loop on this PC ({holder}): "
                              "stop it first (two loops would inspect and reject every frame twice)") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return SourceClaim(handle)
