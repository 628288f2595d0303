"""Threshold tuning: score a validation folder, compare thresholds, save to the manifest."""

import streamlit as st

from dashboard import runtime, tuning
from dashboard.config import UnsafePathError, list_subfolders, safe_join

config = runtime.get_config()
st.title("Threshold tuning")

inspector = runtime.inspector_or_stop()
if not config.validation_roots:
    st.warning("No validation folder is configured (start with `python -m dashboard --validation-dir PATH`).")
    st.stop()

c1, c2 = st.columns(2)
root = c1.selectbox("Configured folder", config.validation_roots, format_func=str, key="tune_root")
sub = c2.selectbox("Validation sub-folder", list_subfolders(root, max_depth=2), format_func=lambda s: s or "(top)",
                   key="tune_sub")
c3, c4, c5 = st.columns(3)
layout = c3.radio("Layout", tuning.LAYOUTS, key="tune_layout",
                  help="class folders: one sub-folder per class; magnetic-tile: MT_*/Imgs with MT_Free normal; "
                       "defect-free frames: every image is good strip (commissioning a line)")
normal = c4.text_input("Normal-class folder name", "normal", key="tune_normal",
                       disabled=layout not in tuning.NAMED_NORMALS)
commissioning = layout == "defect-free frames"
per_class = c5.number_input("Max images per class (0 = all)", 0, 100_000, 40, step=10, key="tune_per_class",
                            disabled=commissioning, help="a commissioning scores every defect-free frame of the folder")
if commissioning:
    per_class = 0

try:
    folder = safe_join(root, sub)
except UnsafePathError as exc:
    st.error(f"Path refused: {exc}")
    st.stop()

key = (str(folder), layout, normal, int(per_class), inspector.profile, str(inspector.manifest_path))
if st.button("Score images", type="primary", key="tune_run"):
    try:
        samples = tuning.subsample(tuning.load_samples(folder, layout, normal), int(per_class))
    except Exception as exc:
        st.error(f"Cannot use {folder} as a validation folder: {exc}")
        st.stop()
    bar = st.progress(0.0, text=f"Scoring {len(samples)} images ...")
    progress = lambda d, n: bar.progress(d / n, text=f"Scored {d}/{n}")  # noqa: E731
    try:
        line, scores = tuning.commission_folder(inspector, samples, progress) if commissioning \
            else (None, tuning.score_samples(inspector, samples, progress))
    except ValueError as exc:  # CommissioningError: no frame readable
        st.error(f"Cannot commission on {folder}: {exc}")
        st.stop()
    bar.empty()
    st.session_state["tune_scores"] = (key, scores, line)

stored = st.session_state.get("tune_scores")
if not stored or stored[0] != key:
    st.info("Pick a folder of class sub-folders (with the normal class named) and press **Score images**.")
    st.stop()
_, scores, line = stored  # line: the Commissioning of a defect-free folder, None for labelled folders
remeasured = line is not None and (line.frame_term is not None or line.views_from is not None)
failed = scores[scores["error"].notna()]
if len(failed):
    st.warning(f"{len(failed)} image(s) could not be inspected and are left out.")
    with st.expander("Which, and why"):
        st.dataframe(failed[["path", "error"]], hide_index=True, width="stretch")

current = (inspector.thresholds.warn, inspector.thresholds.defect)
st.subheader("Proposed thresholds")
if remeasured:
    st.caption("This gate's score is relative to references (its frame-level term's typical values, or the band "
               "its mirror views start from): re-measured on these frames, as `python -m edge_runtime calibrate` "
               "does; the scores and thresholds below are in their units, and saving writes them too.")
elif inspector.frame_term_references is not None:
    st.caption("This gate adds a frame-level term in units of its typical value on the frames it was set on. "
               "Here the thresholds keep those units; after a camera change, commission on the line's "
               "defect-free frames (this page's *defect-free frames* layout, or `python -m edge_runtime calibrate`), "
               "which re-measures them (docs/commissioning.md).")
target = st.slider("Target false-alarm rate for a suggestion", 0.0, 0.2, 0.01, 0.005, format="%.3f", key="tune_target")
warn_target = st.slider("Target share of these good frames flagged at warn", 0.0, 0.3, 0.05, 0.005, format="%.3f",
                        key="tune_warn_target", help="calibrate's --warn-false-alarm-rate") if commissioning else None
try:
    suggested = tuning.threshold_for_false_alarm(scores, target)
    # A commissioning sets the warn threshold on the frames too, as calibrate does; otherwise it stays as set.
    suggested_warn = tuning.threshold_for_false_alarm(scores, max(warn_target, target)) if commissioning else None
except ValueError as exc:
    st.error(str(exc))
    st.stop()
# The proposal lives in a plain session key: Streamlit drops a widget's state in a run that stops before
# drawing it (a new folder not scored yet), and the inputs would then come back at 0. Each scoring
# starts from the thresholds in use; the inputs' keys change with the scoring and with each suggestion
# taken, so they are drawn again from the proposal.
proposal = st.session_state.setdefault("tune_proposal", {})
if proposal.get("key") != key:
    proposal.clear()
    proposal.update(key=key, warn=float(current[0]), defect=float(current[1]), version=0)
inputs = f"{abs(hash(key))}_{proposal['version']}"
p1, p2 = st.columns(2)
warn = p1.number_input("Warn threshold", value=proposal["warn"], format="%.6f", key=f"tune_warn_{inputs}")
defect = p2.number_input("Defect threshold", value=proposal["defect"], format="%.6f", key=f"tune_defect_{inputs}")
proposal.update(warn=float(warn), defect=float(defect))
st.caption(f"Suggested defect threshold for ≤ {target:.1%} false alarms: **{suggested:.6g}**" + (
    "" if suggested_warn is None else f"; warn threshold for ≤ {max(warn_target, target):.1%}: **{suggested_warn:.6g}**"))


def _use_suggestion(defect_value: float, warn_value: float | None) -> None:
    taken = st.session_state["tune_proposal"]
    warn_value = min(taken["warn"], defect_value) if warn_value is None else warn_value
    taken.update(defect=float(defect_value), warn=float(warn_value), version=taken["version"] + 1)


st.button("Use the suggestion", key="tune_use", on_click=_use_suggestion, args=(suggested, suggested_warn))
proposed = (warn, defect)

h, r = st.columns([1.6, 1])
h.pyplot(tuning.histogram_figure(scores, None if remeasured else current, proposed))
try:
    curve = tuning.roc(scores)
    points = {}
    for tag, (w, d) in (("current", current), ("proposed", proposed)):
        rd = tuning.rates(scores, d)
        points[f"{tag} defect"] = (rd["false_alarm_rate"], 1 - rd["escape_rate"])
    r.pyplot(tuning.roc_figure(curve, points))
except ValueError as exc:
    r.warning(str(exc))
table = tuning.rates_table(scores, current, proposed, tuning.in_deployed_units(scores, line) if remeasured else None)
st.dataframe(table, hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="percent") for c in ("false-alarm rate", "escape rate")})

if warn > defect:
    st.error("The warn threshold must not be above the defect threshold.")
    st.stop()
if commissioning:
    scored = int(scores["error"].isna().sum())
    needed = tuning.minimum_frames(target) if target > 0 else None
    if needed is None or scored < needed:
        st.error(f"A commissioning at a {target:.1%} false-alarm rate needs at least "
                 f"{needed or 'infinitely many'} defect-free frames; {scored} were scored. Record more good strip "
                 "(`python -m edge_runtime record`), or raise the target rate: `calibrate` refuses such a set too.")
        st.stop()
    flagged = tuning.rates(scores, defect)["false_alarm_rate"]
    if flagged > target:
        st.warning(f"The defect threshold flags {flagged:.1%} of these good frames, more than the {target:.1%} "
                   "target: saved, it would reject good strip.")
    if warning := line.size_warning():
        st.warning(tuning.sentence(warning))
    if line.shifted:
        st.error(tuning.sentence(line.shift_message("tick *Commission on them anyway*")))
    despite_shift = line.shifted and st.checkbox("Commission on them anyway", key="tune_despite_shift")
    st.caption("Saving records these frames as the line's commissioning, and, from 200 frames under the defect "
               "threshold on, where they "
               "score and how smooth and bright their pictures are as the baselines of the drift checks on the History "
               "page.")
who, why = st.columns([1, 2])
changed_by = who.text_input("Changed by", key="tune_by", help="kept in the manifest's change log of the thresholds")
reason = why.text_input("Reason for the change (required)", key="tune_reason",
                        help="kept in the change log; the Model card lists every change")
if not reason.strip():
    st.caption("Every threshold change needs a reason: the change log is how the line's quality engineer traces it.")
refused_shift = commissioning and line.shifted and not despite_shift
if st.button("Save thresholds to the manifest", type="primary", key="tune_save",
             disabled=(proposed == current and not commissioning) or not reason.strip() or refused_shift):
    try:
        from edge_runtime.manifest import save_thresholds

        commissioned = tuning.commissioning_to_save(line, float(warn), float(defect), folder) if commissioning else {}
        record, baselines = commissioned.get("commissioned"), commissioned.get("baselines", {})
        backup = save_thresholds(inspector.manifest_path, inspector.profile, float(warn), float(defect),
                                 reason=reason, changed_by=changed_by.strip() or None, **commissioned)
    except Exception as exc:
        st.error(f"Could not save thresholds: {exc}")
    else:
        runtime.reload_inspectors()
        st.session_state.pop("tune_proposal", None)
        st.session_state.pop("tune_reason", None)
        st.session_state["tune_saved"] = f"Saved warn {warn:.6g} / defect {defect:.6g} for {inspector.profile}" + (
            f" (backup: {backup})" if backup else "") + (
            "" if not commissioning else f", commissioned on {record['frames']} defect-free frames, " + (
                "drift baselines recorded" if baselines["score_baseline"]
                else "no drift baseline (it needs 200 frames under the defect threshold)"))
        st.rerun()
if msg := st.session_state.pop("tune_saved", None):
    st.success(msg + ". The runtime reloaded the models with the new thresholds "
               "(a running Live line keeps the old ones until it is restarted).")
