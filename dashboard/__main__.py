"""``python -m dashboard [--port N] [--address A] ...``: start the offline dashboard.

Runs ``streamlit run dashboard/app.py`` with the settings of the repo's ``.streamlit/config.toml`` passed on
the command line (headless, no usage statistics, bound to 127.0.0.1 unless --address says otherwise), so an
installed copy, which has no such file, runs with them too. Folder options become ``STEEL_DASH_*``
environment variables read by dashboard.config.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dashboard.config import ENV_PREFIX, REPO_ROOT
from edge_runtime.cli import positive_int, thread_count
from edge_runtime.manifest import default_manifest_path

APP = Path(__file__).resolve().parent / "app.py"
# .streamlit/config.toml's offline, line-side settings (tests/test_dashboard_apptest.py keeps the two equal).
STREAMLIT_SETTINGS = {
    "browser.gatherUsageStats": "false", "browser.serverAddress": "127.0.0.1", "server.headless": "true",
    "server.maxMessageSize": "200", "server.enableXsrfProtection": "true", "server.fileWatcherType": "none",
    "server.runOnSave": "false", "client.toolbarMode": "viewer", "client.showErrorDetails": "full",
    "theme.base": "light",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dashboard", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8501, help="TCP port (default 8501)")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; e.g. 0.0.0.0 to serve the plant network)")
    p.add_argument("--manifest", help="models.manifest.json to use (default: as the CLI finds it: "
                                      "$STEEL_INSPECT_MANIFEST, ./models.manifest.json, else the checkout's)")
    p.add_argument("--profile", help="model profile (default: the manifest's default)")
    p.add_argument("--image-dir", action="append", default=[], help="folder the Inspect page may read (repeatable)")
    p.add_argument("--validation-dir", action="append", default=[], help="folder for threshold tuning (repeatable)")
    p.add_argument("--live-dir", action="append", default=[], help="folder a folder-watch/video source may use")
    p.add_argument("--log-db", help="SQLite inspection log (History page, live loop; default: "
                                    "cache/inspections.sqlite beside the manifest)")
    p.add_argument("--live-source", default="synthetic", help="default Live line source (default: synthetic)")
    p.add_argument("--max-upload-mb", type=positive_int, default=25, help="upload limit per file in MB")
    p.add_argument("--threads", type=thread_count, default=1, help="onnxruntime intra-op threads (1 to the cores)")
    rejects = p.add_mutually_exclusive_group()
    rejects.add_argument("--reject-command", metavar="CMD",
                         help="the Live line runs CMD for every reject, the record as JSON on stdin, as "
                              "`python -m edge_runtime watch --reject-command` does")
    rejects.add_argument("--reject-hook", metavar="MODULE:FUNCTION",
                         help="the Live line calls FUNCTION(record) for every reject, in the dashboard's own process "
                              "(no process per reject), as `python -m edge_runtime watch --reject-hook` does; MODULE "
                              "is looked up from the current folder and PYTHONPATH")
    p.add_argument("--reject-on", default="defect", metavar="VERDICTS",
                   help="comma-separated verdicts that fire the reject command or hook (default: %(default)s)")
    p.add_argument("--retain", type=_age, metavar="AGE",
                   help="while the Live line runs, delete log records older than AGE (e.g. 30d) and their overlays, "
                        "at start and hourly (default: keep everything)")
    return p


def _age(text: str) -> str:
    """An age ``parse_since`` reads (30d, 12h, ...), refused at start rather than when the line runs."""
    from edge_runtime.sinks.sqlite_log import parse_since

    try:
        parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _check_reject_output(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Build the Live line's reject sink once, as the server will (``live.reject_output``), to refuse one
    that cannot run before the server starts."""
    from dashboard.live import reject_output

    if args.reject_hook and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # where the dashboard's process will look too
    try:
        reject_output(args)
    except ValueError as exc:
        parser.error(f"--reject-{'command' if args.reject_command else 'hook'}: {exc}")


def _absolute(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(os.path.expanduser(path))


def command_and_env(argv: list[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The streamlit command and its environment. Paths are made absolute here, as the operator typed them,
    and the current folder goes on PYTHONPATH with a reject hook. Without ``--manifest``, the manifest is the
    one the CLI would use from this folder (``edge_runtime.manifest.default_manifest_path``), and the log and
    results default to folders beside it. A reject command or hook that cannot run is refused here, before
    the server starts."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_reject_output(parser, args)
    env = dict(os.environ)
    manifest = Path(_absolute(args.manifest) or env.get(ENV_PREFIX + "MANIFEST") or default_manifest_path().resolve())
    beside = {"LOG_DB": str(manifest.parent / "cache" / "inspections.sqlite"),
              "RESULTS_DIR": str(manifest.parent / "results")}
    env.update({ENV_PREFIX + k: v for k, v in beside.items() if ENV_PREFIX + k not in env})
    values = {
        "MANIFEST": str(manifest), "PROFILE": args.profile, "LOG_DB": _absolute(args.log_db),
        "LIVE_SOURCE": args.live_source, "MAX_UPLOAD_MB": str(args.max_upload_mb), "THREADS": str(args.threads),
        "IMAGE_DIRS": os.pathsep.join(map(_absolute, args.image_dir)) or None,
        "VALIDATION_DIRS": os.pathsep.join(map(_absolute, args.validation_dir)) or None,
        "LIVE_DIRS": os.pathsep.join(map(_absolute, args.live_dir)) or None,
        "RETAIN": args.retain, "REJECT_COMMAND": args.reject_command, "REJECT_HOOK": args.reject_hook,
        "REJECT_ON": args.reject_on,
    }
    env.update({ENV_PREFIX + k: v for k, v in values.items() if v is not None})
    hook_folder = os.getcwd() if args.reject_hook else None
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), hook_folder, env.get("PYTHONPATH")]))
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(args.port), "--server.address", args.address,
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.maxUploadSize", str(args.max_upload_mb),
        *(item for key, value in STREAMLIT_SETTINGS.items() for item in (f"--{key}", value)),
    ]
    return cmd, env


def main(argv: list[str] | None = None) -> int:
    """Become the Streamlit server (exec, not a child): a SIGTERM from systemd or ``kill`` then stops the server
    itself, instead of leaving it serving on the port without its launcher."""
    cmd, env = command_and_env(argv)
    os.execve(sys.executable, cmd, env)
    return 1  # not reached: execve replaces this process or raises OSError


if __name__ == "__main__":
    raise SystemExit(main())
