"""Live line: start/stop a capture loop and watch the latest frame, rate and verdicts."""

import streamlit as st

from dashboard import live, render, runtime
from dashboard.config import list_subfolders

config = runtime.get_config()
st.title("Live line")


@st.cache_resource
def registry() -> live.LiveRegistry:
    return live.LiveRegistry()


reg = registry()
session = reg.session
running = session is not None and session.running

labels = {"synthetic": "Synthetic steel strip", "folder": "Folder watch", "video": "Video file", "camera": "Camera"}
kinds = list(live.SOURCE_KINDS)
default = config.live_source if config.live_source in kinds else "synthetic"
kind = st.segmented_control("Source", kinds, format_func=labels.get, default=default, key="live_kind",
                            disabled=running) or default
spec = live.SourceSpec(kind=kind)
if kind == "synthetic":
    c1, c2 = st.columns(2)
    spec.fps = c1.slider("Line speed (frames/s)", 1, 30, 5, key="live_fps", disabled=running)
    spec.defect_rate = c2.slider("Injected defect rate", 0.0, 1.0, 0.15, 0.05, key="live_defects", disabled=running)
elif kind == "camera":
    spec.camera = st.number_input("Camera index", 0, 16, 0, key="live_camera", disabled=running)
elif not config.live_roots:
    st.warning("No folder is configured for live sources (start with `python -m dashboard --live-dir PATH`).")
else:
    c1, c2 = st.columns(2)
    spec.root = c1.selectbox("Configured folder", config.live_roots, format_func=str, key="live_root",
                             disabled=running)
    if kind == "folder":
        spec.relative = c2.selectbox("Watch sub-folder", list_subfolders(spec.root), key="live_sub",
                                     format_func=lambda s: s or "(top)", disabled=running)
    else:
        spec.relative = c2.text_input("Video file (relative to the folder)", key="live_video", disabled=running)

keep_frames = st.checkbox("Keep the flagged frames as captured, for review on the History page",
                          key="live_save_frames", disabled=running,
                          help="Saved as lossless PNG beside the log (frames/), as `watch --save-frames` does; "
                               "deleted with their records by the retention.")
b1, b2, _ = st.columns([1, 1, 4])
if b1.button("Start", type="primary", disabled=running, key="live_start", icon=":material/play_arrow:"):
    try:
        inspector = runtime.get_inspector()
        selftest = live.require_selftest(inspector)
        source = live.build_source(spec, config.live_roots, config.log_db)
        overlays = config.log_db.parent / "overlays"
        rejects = live.reject_output(config)
        frames = config.log_db.parent / "frames" if keep_frames else None
        reg.start(lambda: live.LiveSession(source, inspector, config.log_db, overlays, retain=config.retain,
                                           reject_sink=rejects, frame_dir=frames, selftest=selftest))
        st.rerun()
    except Exception as exc:
        st.error(f"Could not start the line: {exc}")
if b2.button("Stop", disabled=not running, key="live_stop", icon=":material/stop:"):
    with st.spinner("Stopping: finishing queued frames ..."):
        reg.stop()
    st.rerun()


@st.fragment(run_every=1.0 if running else None)
def show() -> None:
    session = reg.session
    if session is None:
        st.info("Pick a source and press **Start**. The synthetic steel strip needs no camera and no data set.")
        return
    snap = session.snapshot()
    state = "running" if session.running else "stopped"
    st.caption(f"Source `{session.source_name}` · {state} · profile **{session.profile}** (warn "
               f"{session.thresholds.warn:.6g}, defect {session.thresholds.defect:.6g}, as when it started) · "
               f"logging to `{config.log_db}` · " + (
        f"records older than {session.retain} deleted hourly" if session.retain else
        "every record kept (start with `--retain 30d` to delete old ones)"))
    if session.retention:
        st.caption(f"Retention {session.retention}")
    if session.reject_sink is not None:
        st.caption(f"{live.reject_output_name(config)} on {config.reject_on}: fired "
                   f"{session.reject_sink.calls} times, {session.reject_sink.failed} failed")
    if session.error:
        st.error(session.error)
    if snap.get("last_source_error"):
        st.warning(f"Source problem: {snap['last_source_error']}")
    if snap.get("dropped"):
        st.warning(f"{snap['dropped']} frame(s) dropped uninspected: the inspection does not keep up with the "
                   "source. They are logged as `dropped`; a fail-safe line rejects them (`--reject-on ...,dropped`).")
    counts = snap.get("verdicts", {})
    rate = session.rolling.reject_rate()
    m = st.columns(6)
    m[0].metric("Inspected/s", f"{snap.get('inspected', 0) / max(snap.get('elapsed_s', 0), 1e-9):.1f}")
    m[1].metric("OK", counts.get("ok", 0))
    m[2].metric("Warn", counts.get("warn", 0))
    m[3].metric("Defect", counts.get("defect", 0))
    m[4].metric("Errors / dropped", f"{snap.get('errored', 0)} / {snap.get('dropped', 0)}")
    m[5].metric("Reject rate (last 100)", "-" if rate is None else f"{rate:.1%}")
    result = session.tap.latest
    left, right = st.columns([1, 1.3])
    if result is not None:
        with left:
            st.markdown(render.verdict_markdown(result.verdict.value))
            st.markdown(f"score **{result.anomaly_score:.4g}** · {result.defect_class or 'no class'} · "
                        f"{result.latency_ms:.0f} ms")
            heat = render.gradcam_overlay(result, 0.45)
            st.image(heat if heat is not None else render.anomaly_overlay(result, 0.45),
                     caption=f"latest frame {result.source}", width="stretch")
    with right:
        series = session.rolling.rate_series()
        if series:
            st.markdown("**Rolling reject rate** (last 50 frames)")
            st.line_chart(series, x="frame", y="reject rate", height=260)
        lat = snap.get("latency_ms", {})
        st.caption(f"latency p50 {lat.get('p50')} ms · p99 {lat.get('p99')} ms · queue {snap.get('queue_depth', 0)}")
    if running and not session.running:
        st.rerun()  # loop ended by itself (source exhausted or failed): refresh the controls


show()
