"""Inspect page: upload images or pick them from a configured folder."""

import streamlit as st

from dashboard import render, runtime
from dashboard.config import UnsafePathError, list_images, list_subfolders, safe_join
from dashboard.inspect_logic import forget_uploads, inspect_items, summary_rows, uploads_to_show

MAX_DETAILS = 30
config = runtime.get_config()
st.title("Inspect")

inspector = runtime.inspector_or_stop(
    "Train/export the models (models.manifest.json) or pick another profile in the sidebar.")

source = st.radio("Images from", ["Upload", "Local folder"], horizontal=True, key="inspect_source")
items: list[tuple[str, bytes]] = []
if source == "Upload":
    uploader_was_shown = "uploads" in st.session_state
    uploads = st.file_uploader(
        f"Drop images here (max {config.max_upload_mb} MB each)",
        type=["png", "jpg", "jpeg", "bmp", "tif", "tiff"],
        accept_multiple_files=True,
        max_upload_size=config.max_upload_mb,
        key="uploads",
    )
    items, kept = uploads_to_show(st.session_state, [(f.name, f.getvalue()) for f in uploads or []],
                                  uploader_was_shown)
    if kept:
        note, clear = st.columns([5, 1])
        note.info(f"Showing the {len(items)} image(s) uploaded before you left this page.")
        if clear.button("Clear", key="inspect_clear_kept"):
            forget_uploads(st.session_state)
            st.rerun()
elif not config.image_roots:
    st.warning("No image folder is configured (start with `python -m dashboard --image-dir PATH`).")
else:
    left, right = st.columns(2)
    root = left.selectbox("Configured folder", config.image_roots, format_func=str, key="inspect_root")
    sub = right.selectbox("Sub-folder", list_subfolders(root), format_func=lambda s: s or "(top)", key="inspect_sub")
    typed = st.text_input("…or type a sub-folder (relative to the configured folder)", key="inspect_typed")
    try:
        folder = safe_join(root, typed or sub)
    except UnsafePathError as exc:
        st.error(f"Path refused: {exc}")
        folder = None
    if folder is not None and not folder.is_dir():
        st.warning(f"Not a folder: {folder}")
    elif folder is not None:
        files = list_images(folder, root=root)
        picked = st.multiselect(
            f"Images in {folder.name or folder} ({len(files)})", [p.name for p in files],
            max_selections=50, key="inspect_files",
        )
        for name in picked:
            try:
                items.append((name, (folder / name).read_bytes()))
            except OSError as exc:
                st.error(f"Cannot read {name}: {exc.strerror or exc}")

if not items:
    st.caption(f"Profile **{inspector.profile}** · thresholds warn {inspector.thresholds.warn:.4g}, "
               f"defect {inspector.thresholds.defect:.4g} · classes: {', '.join(inspector.class_names)}")
    st.stop()

always = st.toggle("Classify every image (also those the anomaly gate passes)", key="always_classify",
                   help="The verdict is always the anomaly gate's; this only adds the class and Grad-CAM for ok images.")
results = inspect_items(inspector, items, st.session_state.setdefault("inspect_cache", {}), always_classify=always)
st.session_state["inspect_results"] = results

alpha = st.slider("Grad-CAM / heat-map opacity", 0.0, 1.0, 0.45, 0.05, key="cam_alpha")
d1, d2, d3 = st.columns(3)
d1.download_button("Results JSON", render.results_json(results), "inspection_results.json", "application/json",
                   on_click="ignore", icon=":material/download:")
d2.download_button("Results CSV", render.results_csv(results), "inspection_results.csv", "text/csv",
                   on_click="ignore", icon=":material/download:")
d3.download_button("Overlays (zip of PNGs)", render.overlays_zip(results, alpha), "inspection_overlays.zip",
                   "application/zip", on_click="ignore", icon=":material/download:")
if len(results) > 1:
    st.dataframe(summary_rows(results), hide_index=True, width="stretch")

for n, item in enumerate(results[:MAX_DETAILS]):
    with st.container(border=True):
        st.subheader(item.name)
        if item.result is None:
            st.error(f"Could not inspect **{item.name}**: {item.error}")
            continue
        r = item.result
        c1, c2, c3 = st.columns([1.1, 1, 1])
        with c1:
            st.markdown(render.verdict_markdown(r.verdict.value))
            score, warn, defect = render.distinct_digits(r.anomaly_score, r.thresholds.warn, r.thresholds.defect)
            st.markdown(f"Anomaly score **{score}** (warn ≥ {warn}, defect ≥ {defect}) · {r.latency_ms:.0f} ms")
            if r.frame_term is not None:
                st.caption(render.frame_term_caption(r.anomaly_score, r.frame_term))
            if r.mean_grey is not None and r.neighbour_correlation is not None:
                st.caption(render.picture_caption(r.mean_grey, r.neighbour_correlation))
            st.vega_lite_chart(render.score_bar_spec(r.anomaly_score, r.thresholds.warn, r.thresholds.defect),
                               width="stretch", height=render.BAR_CHART_HEIGHT)
            probs = render.probabilities_table(r, inspector.class_names)
            if probs:
                st.markdown(f"Predicted class **{r.defect_class}** ({(r.confidence or 0):.1%})")
                st.bar_chart(probs, x="class", y="probability", horizontal=True, height=220)
            else:
                st.caption("Classifier not run: the score is below the warn threshold "
                           "(switch on *Classify every image* to see the classes).")
        anomaly = render.anomaly_overlay(r, alpha)
        c2.image(anomaly, caption="Anomaly map (defect threshold = mid colour)", width="stretch")
        c2.download_button("Anomaly overlay PNG", render.png_bytes(anomaly), f"{render.stem(item.name)}_anomaly.png",
                           "image/png", key=f"dl_anom_{n}", on_click="ignore")
        cam = render.gradcam_overlay(r, alpha)
        if cam is None:
            c3.image(render.frame_rgb(r.frame), caption="Frame (no Grad-CAM for ok frames)", width="stretch")
        else:
            c3.image(cam, caption=f"Grad-CAM: {r.defect_class}", width="stretch")
            c3.download_button("Grad-CAM overlay PNG", render.png_bytes(cam), f"{render.stem(item.name)}_gradcam.png",
                               "image/png", key=f"dl_cam_{n}", on_click="ignore")
if len(results) > MAX_DETAILS:
    st.info(f"Details shown for the first {MAX_DETAILS} of {len(results)} images; all are in the downloads.")
