"""Which optional extra a package needs, said plainly: a line PC installs only the runtime, and ``python -m export``
or ``python -m dashboard`` there should name the extra to install, not end in a traceback about scipy."""

from __future__ import annotations

import importlib.util


def require(package: str, extra: str, *modules: str) -> None:
    """``ImportError`` naming ``extra`` when one of ``modules`` is not installed."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"{package} needs the '{extra}' extra, which this install lacks ({', '.join(missing)} "
                          f"missing): pip install '.[{extra}]'")
