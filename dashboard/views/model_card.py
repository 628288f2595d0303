"""Model card: active profile, model files with sha256 check, classes, preprocessing, metrics, plots."""

import streamlit as st

from dashboard import modelcard, runtime
from edge_runtime.manifest import CHANGE_LOG_KEY, threshold_origin, unlogged_change

config = runtime.get_config()
st.title("Model card")

path = runtime.manifest_path(config)
try:
    manifest = runtime.read_manifest(path)
    name, entry = modelcard.profile_entry(manifest, runtime.current_profile())
except Exception as exc:
    st.error(f"No usable model manifest at `{path}`: {exc}")
    st.info("Train and export the models to create models.manifest.json.")
    st.stop()

st.markdown(f"### Profile `{name}`" + (" (default)" if name == manifest.get("default_profile") else ""))
if entry.get("description"):
    st.markdown(entry["description"])
st.caption(f"Manifest: `{path}`")

try:
    inspector = runtime.get_inspector(name)
    st.success(f"Runtime loaded this profile: thresholds warn {inspector.thresholds.warn:.6g}, "
               f"defect {inspector.thresholds.defect:.6g}.")
except Exception as exc:
    inspector = None
    st.error(f"The runtime refuses to load this profile: {exc}")

st.subheader("Model files")
files = modelcard.model_files(entry, path)


def show_file(row: dict) -> None:
    # Material icons ship with Streamlit (emoji fonts may be missing on a line PC)
    mark = ":green[:material/verified:]" if row["status"] == "verified" else ":red[:material/error:]"
    st.markdown(f"{mark} **{row['role']}** `{row['file']}` · {row['status']}"
                + (f" · {row['size_mb']} MB" if row["size_mb"] is not None else ""))
    st.code(f"manifest sha256: {row['expected_sha256']}\nfile sha256:     {row['sha256']}", language=None)


for row in files:
    if row["runtime"]:
        show_file(row)
if not any(row["runtime"] for row in files):
    st.warning("The manifest lists no model files for this profile.")
training_files = [row for row in files if not row["runtime"]]
if training_files:
    with st.expander(f"Training artefacts ({len(training_files)}; not needed on the line)"):
        for row in training_files:
            show_file(row)

st.subheader("Self-test")
st.caption("Scores the profile's golden frames with this PC's runtime and compares them with what the export "
           "computed (`python -m edge_runtime selftest`). Run it after a software update or on new hardware.")
if inspector is not None and st.button("Run the self-test", key="card_selftest"):
    try:
        rows = modelcard.selftest_rows(inspector)
    except Exception as exc:  # shown to the operator: a missing golden set, an altered file
        st.error(f"The self-test cannot run: {exc}")
    else:
        if all(row["passed"] for row in rows):
            st.success(f"All {len(rows)} golden frames score as the export recorded.")
        else:
            st.error("DRIFT: this PC does not compute what the export computed. Check the onnxruntime, OpenCV and "
                     "numpy versions against the manifest before inspecting.")
        st.dataframe(rows, hide_index=True, width="stretch", key="card_selftest_table")

left, right = st.columns(2)
with left:
    st.subheader("Classes")
    classes = modelcard.find_section(entry, manifest, "class_names", "classes", "labels")
    if inspector is not None:
        classes = inspector.class_names
    st.write(", ".join(map(str, classes)) if classes else "not recorded")
    thresholds = modelcard.find_section(entry, manifest, "thresholds")
    if thresholds:
        st.subheader("Thresholds (manifest)")
        commissioned, origin = threshold_origin(thresholds)
        (st.success if commissioned and not unlogged_change(thresholds) else st.warning)(origin)
        st.json({k: v for k, v in thresholds.items() if k != CHANGE_LOG_KEY})
        changes = modelcard.threshold_changes(thresholds)
        if changes:
            carried = sum(bool(change["carried over from"]) for change in changes)
            st.markdown(f"**Changes since the export** ({len(changes) - carried}"
                        + (f", and {carried} a restore carried over from an earlier manifest" if carried else "")
                        + ", newest first)")
            st.dataframe(changes, hide_index=True, width="stretch", key="card_threshold_changes")
    scoring = modelcard.score_description(entry)
    if scoring:
        st.subheader("How the score is computed")
        st.markdown(scoring)
    naming = modelcard.classifier_description(entry)
    if naming:
        st.subheader("How a defect is named")
        st.markdown(naming)
with right:
    st.subheader("Preprocessing")
    st.json(modelcard.find_section(entry, manifest, "preprocess", "preprocessing") or {})

st.subheader("Training and evaluation")
metrics = modelcard.find_section(entry, manifest, "metrics", "evaluation", "training")
if metrics:
    if note := modelcard.figures_at_other_thresholds(entry.get("thresholds") or {}):
        st.warning(note)
    st.dataframe(modelcard.flatten(metrics), hide_index=True, width="stretch")
else:
    st.caption("No metrics recorded in the manifest.")
extra = {k: v for k, v in entry.items() if k in ("created", "created_at", "exported_at", "dataset", "data", "split",
                                                 "training", "training_data", "seed", "versions", "framework")}
if extra:
    st.json(extra)

plots = modelcard.result_plots(config.results_dir, name)
if plots:
    st.subheader(f"Plots from `{config.results_dir.name}/`")
    cols = st.columns(3)
    for i, plot in enumerate(plots):
        cols[i % 3].image(str(plot), caption=plot.name, width="stretch")
