"""History page: the SQLite inspection log over time, rejects with overlays, CSV export."""

import streamlit as st

from dashboard import history_logic as hl
from dashboard import runtime
from edge_runtime.drift import BRIGHTNESS, SCORE, SMOOTHNESS
from edge_runtime.errors import FrameQualityError
from edge_runtime.sinks import Review
from edge_runtime.sinks.record import INSPECTED
from edge_runtime.sinks.reviews import summary_line

config = runtime.get_config()
st.title("History")
st.caption(f"Inspection log: `{config.log_db}` · times are this PC's local time")

if not config.log_db.is_file():
    st.info(f"No inspection log at `{config.log_db}` yet: start the capture loop on the **Live line** page (or "
            "`steel-inspect watch` on the line), or start the dashboard with `--log-db` naming the line's log.")
    st.stop()
window = st.selectbox("Time window", list(hl.WINDOWS), index=3, key="hist_window")
try:
    history = hl.load_history(config.log_db, hl.WINDOWS[window])
except Exception as exc:
    st.error(f"The inspection log could not be read: {exc}")
    st.stop()
df, counts = history.rows, history.counts
if df.empty:
    st.info("No inspections logged in this window yet. Start the capture loop on the **Live line** page "
            "(or `steel-inspect` on the line) and come back.")
    st.stop()

s = hl.summary(counts)
m = st.columns(4)
m[0].metric("Frames", s["frames"])
m[1].metric("Inspected", s["inspected"])
m[2].metric("Rejects", s["rejects"])
m[3].metric("Reject rate", f"{s['reject_rate']:.1%}")

st.caption("Operator reviews in this window: " + summary_line(history.reviews)
           + " (review a frame at the bottom of the page, or with `python -m edge_runtime review`).")

if history.unfired_rejects:
    unfired = hl.unfired_rejects(df)
    newest = (f" (newest: frame `{unfired.iloc[0]['frame_id']}` of `{unfired.iloc[0]['source']}`)"
              if len(unfired) else "")
    st.error(f"{history.unfired_rejects} frame(s) in this window were to be rejected but the reject hook failed for them, so "
             f"they may still be on the line{newest}. Their error column reads \"reject hook failed\".")

if history.error_causes:
    text = "Frames not inspected, and source outages, by cause: " + ", ".join(
        f"{k} {v}" for k, v in history.error_causes.items())
    if FrameQualityError.__name__ in history.error_causes:
        st.warning(f"{text}. {FrameQualityError.__name__}: {FrameQualityError.hint}.")
    else:
        st.caption(text)

if len(df) >= hl.ROW_LIMIT:
    st.warning(f"The charts, the table and the CSV export below cover the newest {len(df):,} of the window's "
               f"{s['frames']:,} records; the totals above count them all. Pick a shorter window to chart or export "
               "all of it (export a day at a time before retention deletes it).")
freq = hl.bucket_for(df)
left, right = st.columns(2)
with left:
    st.markdown(f"**Frames per verdict** (per {freq})")
    by_verdict = hl.counts_over_time(df, "verdict", freq)
    colours = {"ok": "#21a366", "warn": "#f0a202", "defect": "#d62728", "error": "#7f7f7f",
               "dropped": "#bbbbbb", "source_error": "#9467bd"}
    st.bar_chart(by_verdict, color=[colours.get(c, "#1f77b4") for c in by_verdict.columns], height=260)
with right:
    st.markdown(f"**Classified frames per defect class** (per {freq})")
    by_class = hl.counts_over_time(df, "defect_class", freq)
    if by_class.empty:
        st.caption("No classified frames in this window.")
    else:
        st.bar_chart(by_class, height=260)

DRIFT_SECTIONS = ((SCORE, "Score drift", "Anomaly score"),
                  (SMOOTHNESS, "Image drift", "Neighbour correlation (picture smoothness)"),
                  (BRIGHTNESS, "Brightness drift", "Mean grey level"))
manifest = None
try:
    manifest = runtime.read_manifest(config.manifest_path)
    profile = hl.drift_profile(config.log_db, manifest, runtime.current_profile(), hl.WINDOWS[window])
    checks = [(*section, *hl.drift_check(config.log_db, manifest, profile, section[0])) for section in DRIFT_SECTIONS]
except Exception as exc:
    st.subheader("Drift")
    st.info(f"No drift check: the profile's thresholds could not be read ({exc}).")
    checks = []
for measure, title, chart, drift, baseline in checks:
    st.subheader(title)
    if measure is SCORE:
        st.caption(f"Drift checks: profile `{profile}`, the profile the log's frames were inspected with "
                   "(the sidebar's where the log holds several).")
    {"high": st.warning, "low": st.warning, "clock_behind": st.warning, "ok": st.success}.get(drift.status, st.info)(drift.message)
    trend = hl.values_over_time(df[df["profile"] == profile] if "profile" in df else df, freq, baseline,
                                measure.column)
    if not trend.empty:
        st.markdown(f"**{chart} of the `{profile}` frames passed or warned on** (per {freq})")
        st.line_chart(trend, height=240)

st.subheader("Rejects and warnings")
f1, f2, f3, f4 = st.columns(4)
verdicts = f1.multiselect("Verdict", sorted(df["verdict"].unique()),
                          default=[v for v in ("defect",) if v in set(df["verdict"])], key="hist_verdicts")
classes = f2.multiselect("Class", sorted(df["defect_class"].dropna().unique()), key="hist_classes")
sources = f3.multiselect("Source", sorted(df["source"].dropna().unique()), key="hist_sources")
min_score = f4.number_input("Min score", value=None, format="%.4f", key="hist_min_score")
rows = hl.filter_rows(df, verdicts, classes, sources, min_score)

st.download_button("Export CSV", hl.to_csv(rows), "inspections.csv", "text/csv", on_click="ignore",
                   icon=":material/download:", key="hist_csv")
shown = [c for c in hl.EXPORT_COLUMNS if c in rows and c != "overlay_path"]
event = st.dataframe(rows[shown].head(5000), hide_index=True, width="stretch", on_select="rerun",
                     selection_mode="single-row", key="hist_table")
st.caption(f"{len(rows)} matching rows" + (" (first 5000 shown)" if len(rows) > 5000 else "")
           + " · select a row to see its overlay")

picked = rows.head(5000).iloc[event.selection.rows] if event and event.selection.rows else rows.head(0)
with_overlay = rows.dropna(subset=["overlay_path"]) if "overlay_path" in rows else rows.head(0)
gallery = picked if not picked.empty else with_overlay.head(8)
roots = [config.log_db.parent, config.results_dir, *config.live_roots]
cols = st.columns(4)
for i, (_, row) in enumerate(gallery.iterrows()):
    path = hl.overlay_file(row.get("overlay_path"), roots)
    caption = f"{row['time']:%Y-%m-%d %H:%M:%S} · {row['verdict']} · {row.get('defect_class') or '-'}"
    if path is not None:
        cols[i % 4].image(str(path), caption=caption, width="stretch")
    elif not picked.empty:
        st.caption(f"No overlay image stored for frame {row['frame_id']} ({caption}).")

st.subheader("Review a frame")
st.caption("Say what a logged frame really showed. The log keeps every review with its author; the newest one of "
           "a record counts in the summary above. Flagged frames found good are false alarms, passed frames found "
           "defective are misses.")
selected = int(picked.iloc[0]["id"]) if len(picked) == 1 else None
record_id = selected if selected is not None else st.number_input(
    "Record id (or select a row in the table)", min_value=1, value=None, step=1, key="review_id")
record = df[df["id"] == record_id] if record_id is not None else df.head(0)
if record_id is not None and record.empty:
    st.warning(f"Record {record_id} is not in this time window.")
elif not record.empty and record.iloc[0]["verdict"] not in INSPECTED:
    st.info(f"Record {record_id} is '{record.iloc[0]['verdict']}': no frame was inspected, so there is nothing to review.")
elif not record.empty:
    row = record.iloc[0]
    predicted, reviewed = hl.text_or_none(row.get("defect_class")), hl.text_or_none(row.get("reviewed_as"))
    st.markdown(f"Record **{record_id}**: `{row['frame_id']}` of `{row['source']}`, verdict **{row['verdict']}**"
                + (f", classified **{predicted}**" if predicted else "")
                + (f"; last reviewed as {reviewed} by {row['reviewed_by']}" if reviewed else ""))
    pictures = [(path, caption) for path, caption in (
        (hl.overlay_file(hl.text_or_none(row.get("overlay_path")), roots), f"overlay of record {record_id}"),
        (hl.overlay_file(hl.text_or_none(row.get("frame_path")), roots), f"record {record_id} as captured"))
        if path is not None]
    for column, (path, caption) in zip(st.columns(2), pictures):
        column.image(str(path), caption=caption, width="stretch")
    if not pictures:
        st.caption("No overlay or frame stored for this record (`watch --save-overlays` and `--save-frames` keep "
                   "those of flagged frames): look at the strip itself, or at the camera's own recording.")
    r1, r2 = st.columns(2)
    shows = r1.radio("The frame shows", ["a defect", "good strip"], horizontal=True, key="review_shows")
    known = sorted(set(df["defect_class"].dropna()) | set(hl.profile_classes(manifest, hl.text_or_none(row.get("profile")))))
    named = r2.selectbox("Its class", ["(not named)", *known], key="review_class", disabled=shows != "a defect")
    by = r1.text_input("Reviewed by", key="review_by")
    note = r2.text_input("Note (optional)", key="review_note")
    if st.button("Save review", key="review_save", type="primary"):
        try:
            review = Review(int(record_id), "defect" if shows == "a defect" else "good", by,
                            named if shows == "a defect" and named != "(not named)" else None, note or None)
            review_id = hl.save_review(config.log_db, review)
        except ValueError as exc:
            st.error(f"Not saved: {exc}")
        else:
            st.success(f"Review {review_id} saved: record {record_id} shows {review.shows}"
                       + (f" ({review.defect_class})" if review.defect_class else "") + f", by {review.reviewer}.")
