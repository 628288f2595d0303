"""models.manifest.json: the one description of the deployed models.

The runtime reads preprocessing, class names, thresholds and file hashes from here.
Thresholds can be edited (``save_thresholds``) without re-exporting any model.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import math
import os
import shutil
import stat
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .drift import BASELINE_KEYS, SCORE
from .errors import ManifestError, ModelIntegrityError
from .preprocess import PreprocessSpec
from .result import Thresholds
from .timestamps import audit_stamp

MANIFEST_NAME = "models.manifest.json"
MANIFEST_ENV = "STEEL_INSPECT_MANIFEST"  # where a line PC keeps its manifest, for commands run from anywhere (cron)
# The manifest format this runtime reads. Raise it with every field that changes how frames are scored or judged:
# a runtime refuses a manifest of a newer format, where it would otherwise ignore the new field and give other
# verdicts in silence. 1: the format before runtimes checked it (read with the defaults of the fields it lacks).
MANIFEST_SCHEMA = 2


def default_manifest_path() -> Path:
    """``$STEEL_INSPECT_MANIFEST`` where it is set; else the manifest in the current directory if there is one, else
    the one in this checkout (an editable install, or commands run in the checkout)."""
    if os.environ.get(MANIFEST_ENV):
        return Path(os.environ[MANIFEST_ENV]).expanduser()
    local = Path.cwd() / MANIFEST_NAME
    if local.is_file():
        return local
    return Path(__file__).resolve().parents[1] / MANIFEST_NAME


def load_manifest(path: str | Path | None = None) -> dict:
    path = Path(path) if path is not None else default_manifest_path()
    if not path.is_file():
        raise ManifestError(f"model manifest not found: {path} (run the command in the folder that holds "
                            f"{MANIFEST_NAME} and models/, pass --manifest, or set {MANIFEST_ENV})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ManifestError(f"{path} is not valid JSON: {error}") from error
    except OSError as error:
        raise ManifestError(f"{path} cannot be read: {error}") from error
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path} is not a model manifest (a JSON object with profiles expected)")
    schema = manifest.get("schema_version", 1)
    if not isinstance(schema, int) or isinstance(schema, bool) or schema > MANIFEST_SCHEMA:
        raise ManifestError(f"{path} has manifest format {schema!r}, and this runtime reads formats up to "
                            f"{MANIFEST_SCHEMA}: it was written for newer software, whose scoring this one would "
                            "misread; update the software on this PC, or use the manifest that came with it")
    if "profiles" not in manifest or not manifest["profiles"]:
        raise ManifestError(f"{path} lists no model profiles")
    return manifest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelFile:
    """A file the manifest lists with its sha256; ``kind`` names it in errors ("model file", "golden frame")."""

    path: Path
    sha256: str
    kind: str = "model file"

    def verify(self) -> Path:
        """Return the path if the file exists and matches its recorded sha256."""
        if not self.path.is_file():
            raise ModelIntegrityError(f"{self.kind} missing: {self.path}")
        actual = sha256_of(self.path)
        if actual != self.sha256:
            raise ModelIntegrityError(
                f"{self.kind} {self.path.name} does not match the manifest (sha256 {actual[:12]}..., "
                f"expected {self.sha256[:12]}...): refusing a file that was changed or corrupted"
            )
        return self.path


@dataclass(frozen=True)
class FrameTerm:
    """How a gate's frame-level reconstruction error joins its map (``anomaly.AnomalyScorer``).

    Both parts are divided by their typical (median) value on normal frames, so each reads
    "times its usual error" and neither dominates by its units; the frame part, times
    ``weight`` (chosen on the validation split), is then added to every scored cell of the map."""

    map_reference: float
    frame_reference: float
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not (self.map_reference > 0 and self.frame_reference > 0 and self.weight > 0):
            raise ValueError(f"frame term references and weight must be positive, not {self.map_reference!r}, "
                             f"{self.frame_reference!r} and {self.weight!r}")


@dataclass(frozen=True)
class ResidualDetector:
    """How a gate's residual detector joins its map (``anomaly.AnomalyScorer``).

    The detector is a small per-cell network that reads the bottleneck's residual (each whitened
    cell minus its reconstruction; neu-steel's also reads the whitened cell beside it) and gives the
    probability that it is a defect's, having learned from synthetic defects painted on defect-free
    texture. What it reads is inside the graph: the runtime only places and scales its output. Its
    map is smoothed over ``sigma`` cells, multiplied by ``scale`` (the gate map's warn-rate quantile
    on the validation normals over the detector's own), and the gate's map at each pixel is the
    larger of the two."""

    sigma: float
    scale: float

    def __post_init__(self) -> None:
        if not (self.sigma >= 0 and self.scale > 0):
            raise ValueError(f"residual detector sigma must be non-negative and scale positive, not {self.sigma!r} "
                             f"and {self.scale!r}")


@dataclass(frozen=True)
class ProfileConfig:
    """The parts of one manifest profile the runtime needs."""

    name: str
    preprocess: PreprocessSpec
    thresholds: Thresholds
    class_names: tuple[str, ...]
    autoencoder: ModelFile
    classifier: ModelFile
    classifier_head: ModelFile
    feature_stride: int
    input_multiple: int
    score_sigma: float
    ignore_border: float
    pad_margin: int
    stem_window: tuple[int, int] | None  # most stem cells the classifier head sees, around the anomaly peak
    raw: dict
    precision: str = "fp32"
    score_normalise: str = "none"
    score_cell_centre: str = "middle"
    frame_term: FrameTerm | None = None  # the gate's frame-level autoencoder, where it has one
    score_level_cap: float | None = None  # most a normalised map is divided by (see anomaly.AnomalyScorer)
    score_level_power: float = 1.0  # the normalising level is raised to it (see anomaly.AnomalyScorer)
    score_views: int = 1  # 3: the error cells averaged over the frame and its two mirror images
    score_views_from: float | None = None  # one-view score from which the mirror views run (None: always)
    residual_detector: ResidualDetector | None = None  # the gate's residual detector, where it has one


def _residual_detector(score: dict) -> ResidualDetector | None:
    detector = score.get("residual_detector")
    if detector is None:
        return None
    return ResidualDetector(float(detector["sigma_cells"]), float(detector["scale"]))


def _frame_term(score: dict) -> FrameTerm | None:
    term = score.get("frame_term")
    if term is None:
        return None
    return FrameTerm(float(term["map_reference"]), float(term["frame_reference"]), float(term.get("weight", 1.0)))


def _level_cap(score: dict, profile: str) -> float | None:
    cap = score.get("level_cap")
    if cap is None:
        return None
    if not float(cap) > 0:
        raise ManifestError(f"profile '{profile}': score level_cap must be positive, not {cap!r}")
    return float(cap)


def _level_power(score: dict, profile: str) -> float:
    power = float(score.get("level_power", 1.0))
    if not 0.0 < power < float("inf"):
        raise ManifestError(f"profile '{profile}': score level_power must be a positive number, not {power!r}")
    return power


def _views(score: dict, profile: str) -> int:
    views = score.get("views", 1)
    if views not in VIEWS:
        raise ManifestError(f"profile '{profile}': score views must be one of {VIEWS}, not {views!r}")
    return int(views)


def _views_from(score: dict, profile: str) -> float | None:
    start = score.get("views_from")
    if start is None:
        return None
    if not 0.0 <= float(start) < float("inf"):
        raise ManifestError(f"profile '{profile}': score views_from must be a non-negative number, not {start!r}")
    return float(start)


def _choice(value: str, allowed: tuple[str, ...], what: str, profile: str) -> str:
    if value not in allowed:
        raise ManifestError(f"profile '{profile}': score {what} {value!r} is not one of {allowed}")
    return value


def _model_file(entry: dict, root: Path) -> ModelFile:
    return ModelFile(root / entry["path"], entry["sha256"])


PRECISIONS = ("fp32", "int8")
# How the anomaly map is normalised before its maximum becomes the score (see anomaly.AnomalyScorer).
NORMALISATIONS = ("none", "frame_mean", "frame_median")
# Where each error-map cell is placed in the frame (see preprocess.FrameGeometry.to_frame).
CELL_CENTRES = ("middle", "receptive")
# How many views of a frame the gate scores: 1, the frame; 3, also its left-right and top-bottom mirror images.
VIEWS = (1, 3)


def _precision_files(entry: dict, precision: str, name: str) -> tuple[dict, dict]:
    """(autoencoder, classifier) file entries for a precision; int8 falls back to fp32 for a model without one."""
    anomaly, classifier = entry["autoencoder"], entry["classifier"]
    if precision not in PRECISIONS:
        raise ManifestError(f"profile '{name}': precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == "fp32":
        return anomaly, classifier
    if "int8" not in classifier:
        raise ManifestError(f"profile '{name}' has no int8 classifier (run python -m export.quantize)")
    return anomaly.get("int8", anomaly), classifier["int8"]


def profile_name(manifest: dict, requested: str | None = None) -> str:
    """The profile a command or page works on: the one asked for, else the manifest's ``default_profile``,
    else its only profile. Every command and dashboard page resolves a profile through here."""
    profiles = manifest.get("profiles") or {}
    name = requested or manifest.get("default_profile") or (next(iter(profiles)) if len(profiles) == 1 else None)
    if name is None:
        raise ManifestError(f"the manifest names no default_profile and holds {len(profiles)} profiles "
                            f"({', '.join(sorted(profiles)) or 'none'}): name one with --profile")
    if name not in profiles:
        raise ManifestError(f"profile '{name}' is not in the manifest; available: {', '.join(sorted(profiles))}")
    return name


def logged_profile_name(manifest: dict, logged: list[str], requested: str | None = None) -> str:
    """The profile whose drift an inspection log is checked for: the one asked for, else the one profile the
    log's frames were inspected with (``profile_name``'s default for an empty log). A log of several profiles
    needs one named, since each profile's scores drift against its own baseline."""
    if requested is None and len(logged) > 1:
        raise ManifestError(f"the log holds frames of the profiles {', '.join(logged)}; name one with --profile")
    return profile_name(manifest, requested or (logged[0] if logged else None))


def profile_config(
    manifest: dict, manifest_path: Path, profile: str | None = None, precision: str | None = None
) -> ProfileConfig:
    """``precision`` None = the profile's ``precision`` entry (default fp32)."""
    name = profile_name(manifest, profile)
    entry = manifest["profiles"][name]
    root = manifest_path.resolve().parent
    try:
        anomaly, classifier = entry["autoencoder"], entry["classifier"]
        precision = precision or entry.get("precision", "fp32")
        anomaly_file, classifier_file = _precision_files(entry, precision, name)
        thresholds = Thresholds(float(entry["thresholds"]["warn"]), float(entry["thresholds"]["defect"]))
        check_thresholds(thresholds.warn, thresholds.defect, f"profile '{name}': ")
        _choice(anomaly["score"].get("reduce", "max"), ("max",), "reduce", name)  # the runtime scores by the maximum
        return ProfileConfig(
            name=name,
            preprocess=PreprocessSpec.from_dict(entry["preprocessing"]),
            thresholds=thresholds,
            class_names=tuple(entry["class_names"]),
            autoencoder=_model_file(anomaly_file, root),
            classifier=_model_file(classifier_file, root),
            classifier_head=_model_file(classifier["head"], root),
            feature_stride=int(anomaly["feature_stride"]),
            input_multiple=int(anomaly["input_multiple"]),
            score_sigma=float(anomaly["score"]["sigma_cells"]),
            ignore_border=float(anomaly["score"].get("ignore_border", 0.0)),
            pad_margin=int(anomaly.get("pad_margin", 0)),
            stem_window=tuple(classifier["stem_window"]) if classifier.get("stem_window") else None,
            raw=entry,
            precision=precision,
            score_normalise=_choice(anomaly["score"].get("normalise", "none"), NORMALISATIONS, "normalise", name),
            score_cell_centre=_choice(anomaly["score"].get("cell_centre", "middle"), CELL_CENTRES, "cell_centre", name),
            frame_term=_frame_term(anomaly["score"]),
            score_level_cap=_level_cap(anomaly["score"], name),
            score_level_power=_level_power(anomaly["score"], name),
            score_views=_views(anomaly["score"], name),
            score_views_from=_views_from(anomaly["score"], name),
            residual_detector=_residual_detector(anomaly["score"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ManifestError(f"profile '{name}' in {manifest_path} is incomplete or malformed: {error!r}") from error


def backup_manifest(path: Path) -> Path:
    """A copy of ``path`` under a new name stamped in UTC to the millisecond, so that the names sort in the order
    the backups were made, summer time or not; never overwrites an earlier backup (a name taken waits for the next
    millisecond), so the shipped values always survive somewhere."""
    for _ in range(1000):
        now = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
        backup = path.with_name(f"{path.name}.{stamp}.bak")
        try:
            with open(backup, "xb") as out, open(path, "rb") as source:
                shutil.copyfileobj(source, out)
            return backup
        except FileExistsError:
            time.sleep(0.001)
    raise ManifestError(f"cannot find a free backup name for {path}")


CHANGE_LOG_KEY = "changes"
EXPORT_WORDS = ("false_alarm_rate", "warn_false_alarm_rate", "note")  # the export's word on the thresholds it set
CARRIED_OVER_KEY = "carried_over"  # in a restore's change entry: the restored manifest's entries this log lacked


def _account() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment nor in the password database
        return "unknown"


def change_reason(reason: str | None) -> str:
    """The reason a threshold change is logged with. Every change needs one, commissioning and restores
    included: the change log is how the line's quality engineer traces an inspection parameter, and "why"
    is the one thing in it nobody can reconstruct later."""
    if not (reason or "").strip():
        raise ManifestError("a threshold change needs a reason (--reason, or the dashboard's Reason field): the "
                            "change log is how the line's quality engineer traces it; nothing was written")
    return reason.strip()


def threshold_change(thresholds: dict, warn: float, defect: float, stamp: str, commissioned: dict | None,
                     reason: str, changed_by: str | None, backup: str, restored_from: str | None = None,
                     how: str | None = None) -> dict:
    """One entry of the thresholds' change log: the values before and after, and who, how and why. ``how``
    defaults to what the other arguments say (restored, commissioned, or set by hand)."""
    how = how or (f"restored from {restored_from}" if restored_from
                  else f"commissioned on {commissioned.get('frames', '?')} defect-free frames" if commissioned
                  else "set by hand")
    return {"at": stamp, "by": changed_by or _account(), "how": how, "reason": reason.strip(),
            "warn": warn, "defect": defect,
            "previous_warn": thresholds.get("warn"), "previous_defect": thresholds.get("defect"), "backup": backup}


def threshold_origin(thresholds: dict) -> tuple[bool, str]:
    """(commissioned on this line?, one line saying where the thresholds come from). A manifest whose thresholds are
    not those its change log ends with was edited outside ``save_thresholds``: the line says so first."""
    unlogged = unlogged_change(thresholds)
    warning = f"WARNING: {unlogged} " if unlogged else ""
    record = thresholds.get("commissioned")
    if record:
        return True, (f"{warning}Commissioned on {record.get('frames', '?')} defect-free frames of this line "
                      f"({record.get('false_alarm_rate', '?')} / {record.get('warn_false_alarm_rate', '?')} false alarms "
                      f"at defect / warn), {_commissioning_date(record, thresholds)}.")
    last = (thresholds.get(CHANGE_LOG_KEY) or [{}])[-1]
    if str(last.get("how", "")).startswith("restored from"):
        return False, (f"{warning}Restored on {last.get('at')} ({last['how']}); not commissioned on defect-free "
                       "frames (`python -m edge_runtime calibrate`).")
    if thresholds.get("edited_at"):
        return False, (f"{warning}Edited by hand on {thresholds['edited_at']}; not commissioned on defect-free frames "
                       "(`python -m edge_runtime calibrate`).")
    return False, (f"{warning}As shipped, set on the training data's normals; not commissioned on this line's "
                   "defect-free frames (`python -m edge_runtime calibrate`, or Threshold tuning with defect-free frames).")


def _commissioning_date(record: dict, thresholds: dict) -> str:
    """A commissioning record's own date; an older version's record carries none, and was saved with the
    thresholds' ``edited_at``; a restore that could not date one leaves ``at`` None."""
    if "at" in record:
        return record["at"] or "date not recorded"
    return thresholds.get("edited_at", "date not recorded")


def unlogged_change(thresholds: dict) -> str | None:
    """What of the thresholds the change log does not account for, or None: values in use that are not the last
    entry's, or an entry that does not start where the one before it ended (a manifest edited by hand, or a backup
    copied over it)."""
    changes = thresholds.get(CHANGE_LOG_KEY) or []
    for before, after in zip(changes, changes[1:]):
        if (after.get("previous_warn"), after.get("previous_defect")) != (before.get("warn"), before.get("defect")):
            return (f"the change log has a gap: the change of {after.get('at')} starts from warn "
                    f"{after.get('previous_warn')}, defect {after.get('previous_defect')}, not from the values the "
                    f"change of {before.get('at')} set (warn {before.get('warn')}, defect {before.get('defect')}).")
    if changes and (thresholds.get("warn"), thresholds.get("defect")) != (changes[-1].get("warn"),
                                                                       changes[-1].get("defect")):
        return (f"the thresholds in use (warn {thresholds.get('warn')}, defect {thresholds.get('defect')}) are not "
                f"the last logged change's (warn {changes[-1].get('warn')}, defect {changes[-1].get('defect')}, "
                f"{changes[-1].get('at')}): the manifest was edited outside the change log.")
    return None


def changes_newest_first(thresholds: dict) -> list[dict]:
    """A profile's threshold change log (``save_thresholds``), newest first. A restore's entry is followed by the
    changes it carried over from the manifest it restored (a line's history from before a software update, marked
    ``carried_over_from``), and theirs by their own."""
    def flat(changes: list[dict]) -> Iterator[dict]:
        for change in reversed(changes):
            yield {key: value for key, value in change.items() if key != CARRIED_OVER_KEY}
            yield from flat(change.get(CARRIED_OVER_KEY) or [])

    return list(flat(thresholds.get(CHANGE_LOG_KEY) or []))


def _write_frame_term(entry: dict, frame_term: FrameTerm, commissioned: dict | None) -> None:
    entry["autoencoder"]["score"]["frame_term"].update(
        map_reference=frame_term.map_reference, frame_reference=frame_term.frame_reference,
        references_from="median over the commissioning frames" if commissioned else "set by hand",
        edited_at=audit_stamp())


def check_thresholds(warn: float, defect: float, where: str = "") -> None:
    """``ManifestError`` unless 0 < warn <= defect, both finite: an infinite or NaN threshold would pass
    every frame as ``ok``, one of 0 would flag every frame."""
    if not (math.isfinite(warn) and math.isfinite(defect)):
        raise ManifestError(f"{where}thresholds must be finite numbers, got warn {warn} and defect {defect}")
    if warn <= 0:
        raise ManifestError(f"{where}thresholds must be above 0 (a score is never below 0, so 0 flags every frame), "
                            f"got warn {warn}")
    if not warn <= defect:
        raise ManifestError(f"{where}warn threshold {warn} must not exceed defect threshold {defect}")


def save_thresholds(path: str | Path, profile: str, warn: float, defect: float, *, reason: str,
                    commissioned: dict | None = None, frame_term: FrameTerm | None = None,
                    baselines: dict[str, dict | None] | None = None, changed_by: str | None = None,
                    restored_from: str | None = None, views_from: float | None = None,
                    carried_over: list[dict] | None = None, export_words: dict | None = None) -> Path:
    """Write new thresholds into the manifest, keeping a timestamped backup. Returns the backup path.

    ``commissioned`` records where thresholds set on the line's own frames came from
    (``edge_runtime.commissioning``); any earlier record is dropped with the old values.
    ``frame_term``: new references of the gate's frame-level term, set on the same frames (the
    thresholds are in its units). ``baselines``: the drift checks' baselines (manifest key, one of
    ``edge_runtime.drift.BASELINE_KEYS``, -> ``Baseline.to_dict()`` or None): where the line's
    defect-free frames lay. A new commissioning or a restore replaces all of them (a key given None, or
    not given, is dropped); new ``frame_term`` references replace the score's, whose units they change;
    thresholds moved by hand keep them, since they leave the frames as they are. ``views_from``: the
    one-view score from which a three-view gate runs its mirror views, set again on the same frames
    (it changes which frames get three-view scores, so it too replaces the score baseline).
    ``carried_over``: a restore's earlier change entries this manifest's log lacks (``restore_thresholds``),
    kept inside its own entry. A commissioning record is dated (``at``) when it is first saved. What the export
    said of the values it set (``EXPORT_WORDS``) goes with them; ``export_words``: a restore's, brought back.

    Every save appends an entry to the profile's ``thresholds.changes`` (when, who, from what to
    what, how, why and the backup's name): the audit trail a quality system asks of an inspection
    parameter. ``reason`` is required (``change_reason``); ``changed_by`` defaults to the operating-system
    account."""
    path = Path(path).resolve()  # a linked manifest: write beside the file it links to, keep the link
    reason = change_reason(reason)
    try:
        warn, defect = float(warn), float(defect)
    except (TypeError, ValueError) as error:
        raise ManifestError(f"thresholds must be numbers: {error}") from None
    check_thresholds(warn, defect)
    with manifest_lock(path):  # the change log is read and written whole: one save at a time
        manifest = load_manifest(path)
        if profile not in manifest["profiles"]:
            raise ManifestError(f"profile '{profile}' is not in {path}")
        score = manifest["profiles"][profile].get("autoencoder", {}).get("score", {})
        if frame_term is not None and not score.get("frame_term"):
            raise ManifestError(f"profile '{profile}' has no frame-level term to set references for")
        if views_from is not None and score.get("views", 1) != 3:
            raise ManifestError(f"profile '{profile}' scores one view: it has no band for mirror views to set")
        backup = backup_manifest(path)
        thresholds = manifest["profiles"][profile]["thresholds"]
        stamp = audit_stamp()
        change = threshold_change(thresholds, float(warn), float(defect), stamp, commissioned, reason, changed_by,
                                  backup.name, restored_from)
        if carried_over:
            change[CARRIED_OVER_KEY] = carried_over
        thresholds.setdefault(CHANGE_LOG_KEY, []).append(change)
        thresholds.update(warn=float(warn), defect=float(defect), edited_at=stamp)
        thresholds.pop("commissioned", None)
        for key in EXPORT_WORDS:  # what the export said of the values it set, which are gone (a restore brings
            thresholds.pop(key, None)  # back an earlier manifest's)
        thresholds.update(export_words or {})
        if commissioned:
            thresholds["commissioned"] = {"at": stamp, **commissioned}
        _set_baselines(thresholds, baselines or {}, replace_all=bool(commissioned) or restored_from is not None,
                       new_score_units=frame_term is not None or views_from is not None)
        if frame_term is not None:
            _write_frame_term(manifest["profiles"][profile], frame_term, commissioned)
        if views_from is not None:
            score["views_from"] = float(views_from)
        write_manifest(path, manifest)
        return backup


def _set_baselines(thresholds: dict, baselines: dict[str, dict | None], replace_all: bool,
                   new_score_units: bool) -> None:
    unknown = set(baselines) - set(BASELINE_KEYS)
    if unknown:
        raise ManifestError(f"unknown drift baseline(s) {sorted(unknown)}; expected among {list(BASELINE_KEYS)}")
    for key in BASELINE_KEYS:
        if replace_all or key in baselines or (new_score_units and key == SCORE.baseline_key):
            thresholds.pop(key, None)
        if baselines.get(key) is not None:
            thresholds[key] = baselines[key]


def restore_thresholds(path: str | Path, profile: str, earlier: str | Path, reason: str,
                       changed_by: str | None = None) -> Path:
    """Set a profile's thresholds back to those of an earlier manifest (a backup ``save_thresholds`` kept),
    with its commissioning record, drift baselines and frame-level references, as one more logged change.
    Refuses an earlier manifest of other models: thresholds hold only for the graphs they were set on.
    Returns the backup of the manifest as it was before the restore."""
    reason = change_reason(reason)
    current, old = load_manifest(path), load_manifest(earlier)
    for manifest, source in ((current, path), (old, earlier)):
        if not isinstance(manifest["profiles"].get(profile), dict):
            raise ManifestError(f"profile '{profile}' is not in {source}")
    entry, old_entry = current["profiles"][profile], old["profiles"][profile]
    deployed, then = _deployed_files(entry), _deployed_files(old_entry)
    differ = [name for name in deployed if deployed[name] != then[name]]
    if differ:
        raise ManifestError(f"{earlier} describes another {', '.join(differ)} (its sha256 differs): its thresholds "
                            "were not set on the models deployed now")
    rescored = _scoring_changes(old_entry, entry)
    if rescored:
        raise ManifestError(f"{earlier} scored frames otherwise ({', '.join(rescored)} changed since): its thresholds "
                            "are in other units than today's scores; commission the line again (python -m edge_runtime "
                            "calibrate FRAMES --write --reason ...) instead")
    if _restored_part(old_entry) == _restored_part(entry):
        raise ManifestError(f"{earlier} holds the thresholds profile '{profile}' has now: nothing to restore (another "
                            "profile? name it with --profile)")
    thresholds, score, old_score = old_entry.get("thresholds"), entry["autoencoder"].get("score", {}), \
        old_entry["autoencoder"].get("score", {})
    if not isinstance(thresholds, dict) or "warn" not in thresholds or "defect" not in thresholds:
        raise ManifestError(f"{earlier} has no warn and defect thresholds for profile '{profile}'")
    term = _frame_term(old_score) if score.get("frame_term") else None
    views_from = old_score.get("views_from") if score.get("views", 1) == 3 else None
    commissioned = thresholds.get("commissioned")
    if isinstance(commissioned, dict) and "at" not in commissioned:  # an older version's: dated by its change log
        commissioned = {"at": _commissioned_at(thresholds), **commissioned}
    known = [_without_carry_mark(change) for change in changes_newest_first(entry["thresholds"])]
    carried = [{**_without_carry_mark(change), "carried_over_from": Path(earlier).name}
               for change in reversed(changes_newest_first(thresholds)) if _without_carry_mark(change) not in known]
    return save_thresholds(path, profile, thresholds["warn"], thresholds["defect"], reason=reason,
                           commissioned=commissioned, frame_term=term,
                           baselines={key: thresholds.get(key) for key in BASELINE_KEYS}, changed_by=changed_by,
                           restored_from=Path(earlier).name, views_from=views_from, carried_over=carried,
                           export_words={key: thresholds[key] for key in EXPORT_WORDS if key in thresholds})


def _commissioned_at(thresholds: dict) -> str | None:
    """When an older version's undated commissioning was done: the newest "commissioned on" change entry of its
    frame count that set these values (a restore dates nothing); None where the log does not say."""
    how = f"commissioned on {thresholds['commissioned'].get('frames', '?')} defect-free frames"
    for change in changes_newest_first(thresholds):
        if change.get("how") == how and (change.get("warn"), change.get("defect")) == (thresholds.get("warn"),
                                                                                      thresholds.get("defect")):
            return change.get("at")
    return None


def _without_carry_mark(change: dict) -> dict:
    """A change entry as it was first logged: without the mark a restore carrying it over adds."""
    return {key: value for key, value in change.items() if key not in ("carried_over_from", CARRIED_OVER_KEY)}


# Preprocessing limits that accept or refuse a frame and never change a score: a line sets them (docs/commissioning.md,
# the size refusal's message), and thresholds set before still hold.
FRAME_CHECK_KEYS = ("min_side", "min_contrast", "min_mean_grey", "max_pixels", "min_neighbour_correlation")


def _scoring_changes(old_entry: dict, entry: dict) -> list[str]:
    """The settings that turn a frame into its score (the preprocessing and the gate's scoring) that differ between
    two profile entries, leaving out what a restore sets with the thresholds: the frame-level term's references and
    the mirror views' band. An update can change them without touching a model file (``export --thresholds-only``),
    and thresholds set under the old ones compare today's scores with numbers of another scale. A number that moved
    by less than the self-test's score tolerance (a recalibration's last digits) counts as unchanged."""
    from .selftest import SCORE_RTOL  # the self-test's own tolerance: a PC within it computes "the same" scores

    def settings(profile_entry: dict) -> dict:
        score = json.loads(json.dumps(profile_entry.get("autoencoder", {}).get("score", {})))
        score.pop("views_from", None)
        for key in ("map_reference", "frame_reference", "references_from", "edited_at"):
            (score.get("frame_term") or {}).pop(key, None)
        preprocessing = {key: value for key, value in (profile_entry.get("preprocessing") or {}).items()
                         if key not in FRAME_CHECK_KEYS}
        return _flat({"preprocessing": preprocessing, "score": score})

    def same(a: object, b: object) -> bool:
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        return math.isclose(a, b, rel_tol=SCORE_RTOL) if numbers else a == b

    old, new = settings(old_entry), settings(entry)
    return sorted(key for key in old.keys() | new.keys() if not same(old.get(key), new.get(key)))


def _flat(tree: dict, prefix: str = "") -> dict:
    """Nested settings as ``{"score.residual_detector.scale": 6.09, ...}``."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat



def _restored_part(entry: dict) -> tuple:
    """What a restore sets of a profile entry (the thresholds, the commissioning record, the drift baselines, the
    frame-level term's references, the mirror views' band), not the record of how it came (the change log, when
    it was edited)."""
    thresholds, score = entry.get("thresholds"), entry["autoencoder"].get("score", {})
    if isinstance(thresholds, dict):
        thresholds = {key: thresholds.get(key) for key in ("warn", "defect", "commissioned", *BASELINE_KEYS,
                                                           *EXPORT_WORDS)}
        if isinstance(thresholds["commissioned"], dict):  # its date: dated by a restore where an older version left none
            thresholds["commissioned"] = {k: v for k, v in thresholds["commissioned"].items() if k != "at"}
    return thresholds, _frame_term(score), score.get("views_from")


def _deployed_files(entry: dict) -> dict[str, object]:
    """The sha256 of every model file a profile entry runs (fp32 and int8 graphs, the classifier head)."""
    try:
        files = {"head": entry["classifier"].get("head", {}).get("sha256")}
        for model in ("autoencoder", "classifier"):
            files[model] = entry[model].get("sha256")
            files[f"{model} int8"] = (entry[model].get("int8") or {}).get("sha256")
        return files
    except (AttributeError, KeyError, TypeError) as error:
        raise ManifestError(f"malformed profile entry: {error!r}") from None


def write_manifest(path: Path, manifest: dict) -> None:
    """Write the manifest atomically (a temporary file of its own, flushed to disk, then a rename): a crash or
    a power cut never leaves half a file, and two writers never share a temporary file. The file keeps its
    permissions (a dashboard running under another account still reads it)."""
    path = Path(path).resolve()
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(json.dumps(manifest, indent=2) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def manifest_lock(path: Path) -> Iterator[None]:
    """Hold ``<manifest>.lock`` while a change is read, made and written: two saves at once (``calibrate --write``
    and the Tuning page) each wrote the manifest they had read, and the later one dropped the earlier one's
    change-log entry. Without POSIX file locks (not a Linux PC) saves are not serialised."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(Path(path).with_name(Path(path).name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
