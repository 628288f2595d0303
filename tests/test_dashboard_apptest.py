"""Dashboard pages under streamlit.testing.v1.AppTest, plus its plain-Python helpers.

Most tests swap ``dashboard.runtime.load_inspector`` for the model-free FakeInspector
(tests/dashboard_fakes.py), so every page's widgets, session state and error paths are
exercised without trained models; ``test_inspect_real_models`` uses the real ONNX
models and skips when models.manifest.json is absent.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from streamlit.testing.v1 import AppTest  # noqa: E402

import dashboard_fakes as fakes  # noqa: E402
from dashboard import config as dconfig  # noqa: E402
from dashboard import history_logic, live, modelcard, render, runtime, tuning  # noqa: E402
from dashboard.inspect_logic import inspect_items  # noqa: E402
from edge_runtime.manifest import threshold_origin  # noqa: E402
from edge_runtime.sinks import Record, SqliteLog  # noqa: E402

APP = ROOT / "dashboard" / "app.py"
REAL_LOAD_INSPECTOR = runtime.load_inspector  # before the fixtures swap in a fake
MANIFEST = ROOT / "models.manifest.json"
NEU_IMAGES = ROOT.parent / "shared" / "data" / "neu-det" / "images"


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def verdicts(at) -> list[str]:
    return [m.value.split("[")[1].replace("&nbsp;", "").strip("] ") for m in at.markdown
            if "-background[" in m.value]


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Configured folders in tmp, a FakeInspector behind the runtime cache, fresh caches."""
    images = tmp_path / "images"
    (images / "line2").mkdir(parents=True)
    for i, value in enumerate((20, 120, 200)):
        (images / f"img{i}.png").write_bytes(fakes.png(value))
    (images / "line2" / "deep.png").write_bytes(fakes.png(210))
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    val = tmp_path / "val"
    for cls, base in (("normal", 40), ("scratch", 150), ("pits", 130)):
        (val / cls).mkdir(parents=True)
        for i in range(8):
            (val / cls / f"{cls}{i}.png").write_bytes(fakes.png(base + 6 * i))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(fakes.png(50))
    values = {
        "IMAGE_DIRS": str(images), "VALIDATION_DIRS": str(val), "LIVE_DIRS": str(images),
        "LOG_DB": str(tmp_path / "log" / "inspections.sqlite"), "RESULTS_DIR": str(tmp_path / "results"),
        "MANIFEST": str(tmp_path / "models.manifest.json"),
    }
    for key, value in values.items():
        monkeypatch.setenv(dconfig.ENV_PREFIX + key, value)
    fake = fakes.FakeInspector()
    fake.manifest_path = Path(values["MANIFEST"])
    loads = []

    def load(manifest, profile, threads=1):
        """Like Inspector.from_manifest: thresholds come from the manifest when there is one."""
        loads.append((manifest, profile))
        if manifest and Path(manifest).is_file():
            entry = json.loads(Path(manifest).read_text())["profiles"][profile or "neu-steel"]
            fake.thresholds = type(fake.thresholds)(entry["thresholds"]["warn"], entry["thresholds"]["defect"])
        return fake

    monkeypatch.setattr(runtime, "load_inspector", load)
    runtime.get_config.clear()
    runtime._cached_inspector.clear()
    yield types.SimpleNamespace(tmp=tmp_path, images=images, val=val, outside=outside, fake=fake, loads=loads,
                                log_db=Path(values["LOG_DB"]))
    runtime.get_config.clear()
    runtime._cached_inspector.clear()


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    if page:
        at.switch_page(f"views/{page}.py").run()
    return at


# ----------------------------------------------------------------------------- Inspect

def test_inspect_upload_many_with_corrupt_file(env):
    at = app()
    assert not at.exception
    at.file_uploader(key="uploads").set_value([
        ("low.png", fakes.png(20), "image/png"),
        ("mid.png", fakes.png(120), "image/png"),
        ("corrupt.jpg", b"\x89PNG\r\n\x1a\n truncated", "image/jpeg"),
        ("high.png", fakes.png(200), "image/png"),
    ]).run()
    assert not at.exception
    assert verdicts(at) == ["OK", "WARN", "DEFECT"]
    assert len(errors(at)) == 1 and "corrupt.jpg" in errors(at)[0] and "not a readable image" in errors(at)[0]
    # class + confidences only where the gate fired; the probability chart lists every class
    assert sum("Predicted class **scratches**" in m.value for m in at.markdown) == 2
    assert any("Classifier not run" in c.value for c in at.caption)
    # anomaly overlay for the 3 good images, Grad-CAM for the 2 flagged ones, plain frame for the ok one
    captions = [c for img in at.image for c in img.captions]
    assert sum(c.startswith("Grad-CAM") for c in captions) == 2
    assert sum(c.startswith("Anomaly map") for c in captions) == 3
    labels = [b.label for b in at.download_button]
    assert labels[:3] == ["Results JSON", "Results CSV", "Overlays (zip of PNGs)"]
    assert labels.count("Grad-CAM overlay PNG") == 2 and labels.count("Anomaly overlay PNG") == 3
    assert len(at.dataframe) == 1  # summary table for several images
    results = at.session_state["inspect_results"]
    assert [r.verdict for r in results] == ["ok", "warn", "error", "defect"]


def test_inspect_always_classify_toggle(env):
    at = app()
    at.file_uploader(key="uploads").set_value(("low.png", fakes.png(20), "image/png")).run()
    assert verdicts(at) == ["OK"] and not any("Predicted class" in m.value for m in at.markdown)
    at.toggle(key="always_classify").set_value(True).run()
    assert not at.exception
    assert verdicts(at) == ["OK"]  # the verdict stays the gate's
    assert any("Predicted class" in m.value for m in at.markdown)
    assert any(c.startswith("Grad-CAM") for img in at.image for c in img.captions)


def test_inspect_names_the_frame_level_share_of_the_score_where_the_gate_has_one(env):
    at = app()
    at.file_uploader(key="uploads").set_value(("low.png", fakes.png(20), "image/png")).run()
    assert not any("Whole-frame texture" in c.value for c in at.caption)
    env.fake.frame_term = 0.05
    at.file_uploader(key="uploads").set_value(("mid.png", fakes.png(120), "image/png")).run()
    assert not at.exception
    shares = [c.value for c in at.caption if "Whole-frame texture" in c.value]
    assert len(shares) == 1 and "frame-level autoencoder) 0.05, local peak" in shares[0]
    pictures = [c.value for c in at.caption if c.value.startswith("Picture: mean grey")]
    mean = (120 * (64 * 64 - 16 * 16) + 135 * 16 * 16) / (64 * 64) / 255  # the PNG's flat field and square
    assert len(pictures) == 1 and f"mean grey {mean:.3f}, neighbour correlation" in pictures[0]


def test_inspect_opacity_slider_does_not_reinspect(env):
    at = app()
    at.file_uploader(key="uploads").set_value(("high.png", fakes.png(200), "image/png")).run()
    calls = env.fake.calls
    at.slider(key="cam_alpha").set_value(0.9).run()
    assert not at.exception and env.fake.calls == calls
    assert at.slider(key="cam_alpha").value == 0.9
    assert verdicts(at) == ["DEFECT"]


def test_uploads_shown_again_after_another_page_until_cleared(env):
    at = app()
    at.file_uploader(key="uploads").set_value([("low.png", fakes.png(20), "image/png"),
                                               ("high.png", fakes.png(200), "image/png")]).run()
    assert verdicts(at) == ["OK", "DEFECT"] and not at.info
    at.switch_page("views/history.py").run()
    at.switch_page("views/inspect.py").run()
    assert verdicts(at) == ["OK", "DEFECT"]  # Streamlit's uploader forgot them; the page did not
    assert "uploaded before you left" in at.info[0].value
    at.slider(key="cam_alpha").set_value(0.2).run()  # any rerun keeps them
    assert verdicts(at) == ["OK", "DEFECT"]
    at.button(key="inspect_clear_kept").click().run()
    assert verdicts(at) == [] and "kept_uploads" not in at.session_state


def test_uploads_removed_in_the_uploader_are_not_shown_again(env):
    at = app()
    at.file_uploader(key="uploads").set_value(("high.png", fakes.png(200), "image/png")).run()
    assert verdicts(at) == ["DEFECT"]
    at.file_uploader(key="uploads").set_value([]).run()
    assert verdicts(at) == [] and not at.info
    at.switch_page("views/history.py").run()
    at.switch_page("views/inspect.py").run()
    assert verdicts(at) == []


def test_corrupt_upload_alone_then_app_keeps_working(env):
    at = app()
    at.file_uploader(key="uploads").set_value(("bad.png", b"definitely not an image", "image/png")).run()
    assert not at.exception
    assert len(errors(at)) == 1 and "bad.png" in errors(at)[0]
    assert verdicts(at) == []
    at.file_uploader(key="uploads").set_value(("good.png", fakes.png(200), "image/png")).run()
    assert not at.exception and errors(at) == [] and verdicts(at) == ["DEFECT"]
    at.file_uploader(key="uploads").set_value(("empty.png", b"", "image/png")).run()
    assert not at.exception and "empty" in errors(at)[0]


def test_inspect_runtime_exception_is_an_error_not_a_crash(env, monkeypatch):
    def boom(image, source=None):
        raise RuntimeError("onnxruntime exploded")

    monkeypatch.setattr(env.fake, "inspect", boom)
    at = app()
    at.file_uploader(key="uploads").set_value(("x.png", fakes.png(200), "image/png")).run()
    assert not at.exception
    assert "onnxruntime exploded" in errors(at)[0]


def test_inspect_models_missing_shows_error(env, monkeypatch):
    def fail(*a, **k):
        raise FileNotFoundError("models.manifest.json not found")

    monkeypatch.setattr(runtime, "load_inspector", fail)
    at = app()
    assert not at.exception
    assert "could not be loaded" in errors(at)[0]


def test_inspect_local_folder_and_path_traversal(env):
    at = app()
    at.radio(key="inspect_source").set_value("Local folder").run()
    assert not at.exception
    assert at.selectbox(key="inspect_sub").options == ["(top)", "line2"]
    at.multiselect(key="inspect_files").set_value(["img0.png", "img2.png", "broken.jpg"]).run()
    assert verdicts(at) == ["OK", "DEFECT"] and len(errors(at)) == 1
    at.selectbox(key="inspect_sub").set_value("line2").run()
    assert at.multiselect(key="inspect_files").options == ["deep.png"]
    for bad in ("../outside", "/etc", "line2/../../outside", "~/x", "..\\outside", "C:/Windows"):
        at.text_input(key="inspect_typed").set_value(bad).run()
        assert not at.exception
        assert any("Path refused" in e for e in errors(at)), bad
        assert verdicts(at) == []
    at.text_input(key="inspect_typed").set_value("line2").run()
    assert not any("Path refused" in e for e in errors(at))


# ------------------------------------------------------------------------ path safety

def test_safe_join_rejects_escapes(tmp_path):
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "link_out").symlink_to(tmp_path / "outside")
    assert dconfig.safe_join(root, "a/b") == (root / "a" / "b").resolve()
    assert dconfig.safe_join(root, "") == root.resolve()
    assert dconfig.safe_join(root, "./a") == (root / "a").resolve()
    for bad in ("..", "../outside", "a/../../outside", "/etc/passwd", "~", "link_out", "link_out/x",
                "a\\..\\..", "C:\\x", "a\x00b"):
        with pytest.raises(dconfig.UnsafePathError):
            dconfig.safe_join(root, bad)


def test_list_images_skips_symlinks_out_of_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.png").write_bytes(fakes.png(1))
    (tmp_path / "secret.png").write_bytes(fakes.png(2))
    (root / "b.png").symlink_to(tmp_path / "secret.png")
    assert [p.name for p in dconfig.list_images(root)] == ["a.png"]


def test_config_from_env(tmp_path):
    cfg = dconfig.load_config({"STEEL_DASH_IMAGE_DIRS": f"{tmp_path}{os.pathsep}/nonexistent",
                               "STEEL_DASH_MAX_UPLOAD_MB": "7", "STEEL_DASH_PROFILE": "magnetic-tile"})
    assert cfg.image_roots == (tmp_path.resolve(),)
    assert cfg.validation_roots == (tmp_path.resolve(),)
    assert cfg.max_upload_mb == 7 and cfg.profile == "magnetic-tile" and cfg.live_source == "synthetic"


# ------------------------------------------------------------------------ render helpers

def test_render_exports(env):
    items = inspect_items(env.fake, [("a.png", fakes.png(20)), ("b.png", fakes.png(200)), ("c.png", b"xx")])
    data = json.loads(render.results_json(items))
    assert [d["verdict"] for d in data] == ["ok", "defect", "error"]
    assert data[1]["class_probabilities"]["scratches"] > 0 and data[2]["error"]
    csv_lines = render.results_csv(items).decode().splitlines()
    assert csv_lines[0].startswith("source,profile,verdict,anomaly_score") and len(csv_lines) == 4
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(render.overlays_zip(items))).namelist()
    assert names == ["a_anomaly.png", "b_anomaly.png", "b_gradcam.png", "results.json"]
    png = render.png_bytes(render.gradcam_overlay(items[1].result, 0.5))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert render.stem("../../etc/passwd") == "passwd" and render.stem("a b?.png") == "a_b_"
    spec = render.score_bar_spec(0.7, 0.3, 0.6)
    assert {r["zone"] for r in spec["data"]["values"]} == {"ok", "warn", "defect", "score"}


def test_inspect_cache_reuses_results(env):
    cache: dict = {}
    inspect_items(env.fake, [("a.png", fakes.png(20))], cache)
    inspect_items(env.fake, [("a.png", fakes.png(20))], cache)
    assert env.fake.calls == 1
    inspect_items(env.fake, [("b.png", fakes.png(90))], cache)  # another upload: a.png's full-size maps let go
    assert [key[-2] for key in cache] == ["b.png"]


# ----------------------------------------------------------------------------- History

def _fill_log(db: Path, n: int = 60) -> None:
    from edge_runtime.sinks import Record, SqliteLog

    overlay_dir = db.parent / "overlays"
    overlay_dir.mkdir(parents=True, exist_ok=True)
    import cv2

    for frame_id in ("f3", "f57"):  # an ok frame's overlay and the newest reject's
        cv2.imwrite(str(overlay_dir / f"{frame_id}.png"), np.full((40, 40, 3), 128, np.uint8))
    cv2.imwrite(str(overlay_dir / "f57_frame.png"), np.full((40, 40), 90, np.uint8))  # the reject as captured
    now = time.time()
    records = []
    for i in range(n):
        verdict = ("ok", "warn", "defect", "ok", "error")[i % 5]
        records.append(Record(
            source="synthetic" if i % 2 else "camera:0", frame_id=f"f{i}", verdict=verdict,
            captured_at=now - 3600 + i * 30, score=0.1 * (i % 9),
            defect_class={"warn": "patches", "defect": "scratches"}.get(verdict),
            overlay_path=str(overlay_dir / f"f{i}.png") if i == 3 or verdict == "defect" else None,
            frame_path=str(overlay_dir / "f57_frame.png") if i == 57 else None,
            error="decode failed" if verdict == "error" else None))
    records[52] = dataclasses.replace(records[52], overlay_path="/etc/passwd")  # a tampered row (a recent reject): never shown
    with SqliteLog(db) as log:
        log.write(records)


def test_history_empty_log(env):
    from edge_runtime.sinks import SqliteLog

    at = app("history")
    assert not at.exception
    assert any(f"No inspection log at `{env.log_db}` yet" in i.value for i in at.info)  # not "no production"
    SqliteLog(env.log_db).close()
    at = app("history")
    assert any("No inspections logged" in i.value for i in at.info)


def test_history_shows_the_times_in_local_time_as_the_cli_prints_them(monkeypatch):
    import datetime as dt

    stamps = pd.Series([1_780_000_000.0, 1_800_000_000.0])  # one in summer, one in winter
    monkeypatch.setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")  # Berlin's rule, spelt out: no time-zone files needed
    time.tzset()
    try:
        shown = history_logic.local_times(stamps)
        assert [t.strftime("%Y-%m-%d %H:%M:%S") for t in shown] == [
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s)) for s in stamps]
        assert [t.hour for t in shown] != [dt.datetime.fromtimestamp(s, dt.timezone.utc).hour for s in stamps]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_history_counts_filters_export(env):
    _fill_log(env.log_db)
    at = app("history")
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Frames"] == "60" and metrics["Inspected"] == "48" and metrics["Rejects"] == "12"
    assert metrics["Reject rate"] == "25.0%"
    assert at.multiselect(key="hist_verdicts").value == ["defect"]
    table = at.dataframe[0].value
    assert len(table) == 12 and set(table["verdict"]) == {"defect"}
    at.multiselect(key="hist_verdicts").set_value(["warn", "defect"]).run()
    at.multiselect(key="hist_sources").set_value(["synthetic"]).run()
    table = at.dataframe[0].value
    assert set(table["verdict"]) <= {"warn", "defect"} and set(table["source"]) == {"synthetic"}
    at.number_input(key="hist_min_score").set_value(0.5).run()
    assert (at.dataframe[0].value["score"] >= 0.5).all()
    # overlays shown only for files inside the allowed folders
    at = app("history")
    images = at.get("image")
    assert len(images) == 1  # f57's; the row pointing at /etc/passwd (f52) and rejects without a file show none
    assert images[0].proto.imgs[0].caption.endswith("· defect · scratches")
    rows = history_logic.filter_rows(history_logic.load_history(env.log_db)[0], ["defect"])
    csv = history_logic.to_csv(rows).decode().splitlines()
    assert csv[0].startswith("id,time,time_utc,source,frame_id,verdict") and len(csv) == 13


def test_history_names_rejects_the_reject_hook_could_not_fire(env):
    from edge_runtime.sinks import Record, SqliteLog

    _fill_log(env.log_db)
    at = app("history")
    assert not any("reject hook failed" in e for e in errors(at))
    now = time.time()
    with SqliteLog(env.log_db) as log:
        log.write([Record("camera:0", name, "defect", captured_at=now + i, score=0.9, defect_class="scratches",
                          error="reject hook failed: ejector exited with status 1")
                   for i, name in enumerate(("coil-7", "coil-8"))])
    at = app("history")
    assert any(e.startswith("2 frame(s) in this window were to be rejected but the reject hook failed")
               and "frame `coil-8` of `camera:0`" in e for e in errors(at))
    assert len(history_logic.unfired_rejects(history_logic.load_history(env.log_db)[0])) == 2


def test_history_names_camera_faults_among_the_frames_not_inspected(env):
    from edge_runtime.sinks import Record, SqliteLog

    _fill_log(env.log_db)
    with SqliteLog(env.log_db) as log:
        log.write([Record("camera:0", f"n{i}", "error", captured_at=time.time(),
                          error="FrameQualityError: noise frame: neighbouring pixels correlate 0.01") for i in range(4)])
    at = app("history")
    assert not at.exception, at.exception
    assert any("by cause: " in w.value and "FrameQualityError 4" in w.value and "check the camera and the lighting" in w.value
               for w in at.warning)
    assert history_logic.load_history(env.log_db).error_causes["FrameQualityError"] == 4


def test_history_counts_unfired_rejects_beyond_the_row_limit(env, monkeypatch):
    from edge_runtime.sinks import Record, SqliteLog

    now = time.time()
    with SqliteLog(env.log_db) as log:
        log.write([Record("camera:0", f"coil-{i}", "defect", captured_at=now - 100 + i, score=0.9,
                          error="reject hook failed: ejector exited with status 1") for i in range(3)])
    _fill_log(env.log_db)  # written after them: the rows held are these
    monkeypatch.setattr(history_logic, "ROW_LIMIT", 10)
    at = app("history")
    assert not at.exception, at.exception
    assert any(e.startswith("3 frame(s) in this window were to be rejected") for e in errors(at))
    assert history_logic.load_history(env.log_db, "1h").unfired_rejects == 3


def test_history_totals_count_the_whole_window_beyond_the_row_limit(env, monkeypatch):
    _fill_log(env.log_db)
    monkeypatch.setattr(history_logic, "ROW_LIMIT", 10)
    at = app("history")
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Frames"] == "60" and metrics["Rejects"] == "12"  # counted in SQL, not from the 10 rows held
    assert any("newest 10 of the window's 60 records" in w.value for w in at.warning)
    assert len(at.dataframe[0].value) <= 10


def test_history_says_when_the_scores_or_the_pictures_have_drifted_from_commissioning(env):
    from edge_runtime.drift import Baseline
    from edge_runtime.sinks import Record, SqliteLog

    at = app("history")
    assert not at.exception  # no log and no manifest: the page says so, nothing else
    rng = np.random.default_rng(0)
    baseline = Baseline.from_values(rng.lognormal(0.5, 0.1, 300), measured_at=time.time() - 3600)
    now = time.time()
    image = Baseline.from_values(rng.normal(0.90, 0.02, 300), measured_at=time.time() - 3600)
    (env.tmp / "models.manifest.json").write_text(json.dumps({"default_profile": "neu-steel", "profiles": {"neu-steel": {
        "thresholds": {"warn": 2.0, "defect": 3.0, "score_baseline": baseline.to_dict(),
                       "image_baseline": image.to_dict()}}}}))
    risen = rng.lognormal(0.5, 0.1, 300) * 1.15  # a dirty lens: every frame scores higher ...
    smoother = rng.normal(0.95, 0.02, 300)  # ... and its pictures are smoother
    with SqliteLog(env.log_db) as log:
        log.write([Record(source="camera:0", frame_id=f"f{i}", verdict="ok", score=float(score), profile="neu-steel",
                          captured_at=now - 300 + i, neighbour_correlation=float(correlation))
                   for i, (score, correlation) in enumerate(zip(risen, smoother))])
    at = app("history")
    assert not at.exception, at.exception
    assert any("Scores have risen" in w.value for w in at.warning)
    assert any("Pictures are smoother than at commissioning" in w.value for w in at.warning)
    charts = at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    assert len(charts) == 3  # frames per verdict, the score and the smoothness beside their baselines (no classes)
    assert any("No brightness baseline" in i.value for i in at.info)  # this manifest holds none for it
    assert any("Anomaly score of the `neu-steel` frames passed or warned on" in m.value for m in at.markdown)
    assert any("Neighbour correlation (picture smoothness) of the `neu-steel`" in m.value for m in at.markdown)


def test_history_review_a_frame_and_see_the_summary(env):
    from edge_runtime.sinks import SqliteLog

    _fill_log(env.log_db)
    with SqliteLog(env.log_db, create=False) as log:
        ids = {row["frame_id"]: row["id"] for row in log.rows()}
    at = app("history")
    assert any("no frames reviewed by an operator" in c.value for c in at.caption)
    at.number_input(key="review_id").set_value(ids["f4"]).run()  # an error record: nothing to review
    assert any("no frame was inspected" in i.value for i in at.info)
    at.number_input(key="review_id").set_value(ids["f57"]).run()  # a reject with its overlay and frame: shown
    assert [image.proto.imgs[0].caption for image in at.get("image")][-2:] == [
        f"overlay of record {ids['f57']}", f"record {ids['f57']} as captured"]
    at.number_input(key="review_id").set_value(ids["f2"]).run()  # a reject, classified scratches, no overlay file
    assert any("No overlay or frame stored for this record" in c.value for c in at.caption)
    assert "scratches" in at.selectbox(key="review_class").options
    at.radio(key="review_shows").set_value("good strip").run()
    at.button(key="review_save").click().run()
    assert any("reviewer" in e.value for e in at.error)  # nobody named: not saved
    at.text_input(key="review_by").set_value("anna").run()
    at.text_input(key="review_note").set_value("water drop").run()
    at.button(key="review_save").click().run()
    assert not at.exception and any("record" in s.value and "shows good, by anna" in s.value for s in at.success)
    at = app("history")
    assert any("1 flagged frame(s) reviewed: 0 defect(s) confirmed, 1 false alarm(s)" in c.value for c in at.caption)
    with SqliteLog(env.log_db, create=False) as log:
        [review] = log.latest_reviews()
    assert (review["frame_id"], review["shows"], review["reviewer"], review["note"]) == ("f2", "good", "anna", "water drop")
    rows = history_logic.load_history(env.log_db).rows
    assert rows.loc[rows["id"] == ids["f2"], "reviewed_as"].item() == "good"
    assert "reviewed_as" in history_logic.to_csv(rows).decode().splitlines()[0]


def test_history_helpers(env):
    _fill_log(env.log_db)
    df = history_logic.load_history(env.log_db)[0]
    wide = history_logic.counts_over_time(df, "verdict")
    assert set(wide.columns) == {"ok", "warn", "defect", "error"} and int(wide.to_numpy().sum()) == 60
    assert history_logic.overlay_file("/etc/passwd", [env.log_db.parent]) is None
    assert history_logic.overlay_file("overlays/f3.png", [env.log_db.parent]) is not None
    assert history_logic.overlay_file("../../etc/passwd", [env.log_db.parent]) is None


def test_history_summary_does_not_count_source_outages_as_frames():
    counts = {"ok": 4, "warn": 1, "defect": 1, "error": 2, "dropped": 1, "source_error": 3}
    assert history_logic.summary(counts) == {"frames": 9, "inspected": 6, "rejects": 1, "reject_rate": 1 / 6}


# ----------------------------------------------------------------------------- Tuning

def _threshold(at, which: str):
    """The tuning page's "Warn threshold" or "Defect threshold" input (its key changes with each scoring)."""
    found, = [n for n in at.number_input if n.label == f"{which} threshold"]
    return found


def test_tuning_score_propose_and_save(env):
    manifest = _fake_manifest(env)
    at = app("tuning")
    assert not at.exception
    assert any("Score images" in i.value for i in at.info)
    at.text_input(key="tune_normal").set_value("normal").run()
    at.button(key="tune_run").click().run()
    assert not at.exception and errors(at) == []
    table = at.dataframe[0].value
    assert list(table["setting"]) == ["current", "current", "proposed", "proposed"]
    assert len(at.image) == 2  # score histograms + ROC curve (st.pyplot)
    at.slider(key="tune_target").set_value(0.0).run()
    at.button(key="tune_use").click().run()
    proposed = _threshold(at, "Defect").value
    assert proposed == pytest.approx(tuning.threshold_for_false_alarm(tuning.score_samples(
        env.fake, tuning.load_samples(env.val, "class folders", "normal")), 0.0))
    assert proposed != env.fake.thresholds.defect
    table = at.dataframe[0].value.set_index(["setting", "threshold"])
    assert table.loc[("proposed", "defect"), "false-alarm rate"] == 0.0
    loads_before = len(env.loads)
    assert at.button(key="tune_save").disabled  # a change by hand needs a reason first
    at.text_input(key="tune_by").set_value("J. Quality").run()
    at.text_input(key="tune_reason").set_value("fewer false alarms on coil 4711").run()
    assert not at.button(key="tune_save").disabled
    at.button(key="tune_save").click().run()
    assert not at.exception and errors(at) == []
    # edge_runtime.manifest.save_thresholds wrote the manifest and kept a backup of the old one
    written = json.loads(manifest.read_text())["profiles"]["neu-steel"]["thresholds"]
    assert written["defect"] == pytest.approx(proposed)
    change, = written["changes"]
    assert (change["by"], change["reason"], change["how"]) == ("J. Quality", "fewer false alarms on coil 4711",
                                                                 "set by hand")
    assert (change["previous_defect"], change["defect"]) == (0.6, pytest.approx(proposed))
    card = app("model_card")
    rows, = [table.value for table in card.dataframe if "reason" in table.value.columns]
    assert list(rows["reason"]) == ["fewer false alarms on coil 4711"] and list(rows["by"]) == ["J. Quality"]
    backups = list(manifest.parent.glob("models.manifest.json.*.bak"))
    assert len(backups) == 1 and json.loads(backups[0].read_text())["profiles"]["neu-steel"]["thresholds"]["defect"] == 0.6
    assert any("Saved warn" in s.value for s in at.success)
    assert len(env.loads) > loads_before  # cached inspector was dropped and reloaded ...
    assert env.fake.thresholds.defect == pytest.approx(proposed)  # ... and runs with the new thresholds
    assert _threshold(at, "Defect").value == pytest.approx(proposed)


def test_tuning_commissions_on_defect_free_frames_only(env):
    """A line's own good frames, no defect examples: thresholds by false-alarm rate alone."""
    at = app("tuning")
    at.radio(key="tune_layout").set_value("defect-free frames").run()
    assert at.text_input(key="tune_normal").disabled
    at.selectbox(key="tune_sub").set_value("normal").run()
    at.button(key="tune_run").click().run()
    assert not at.exception
    assert any("both normal and defect" in w.value for w in at.warning)  # no ROC without defects
    at.slider(key="tune_target").set_value(0.125).run()  # 8 frames: enough for 1 in 8, not for the 1% default
    at.button(key="tune_use").click().run()
    assert errors(at) == []
    table = at.dataframe[0].value.set_index(["setting", "threshold"])
    assert table.loc[("proposed", "defect"), "false-alarm rate"] == 0.125  # 1 of the 8 good frames
    assert len(tuning.load_samples(env.val / "normal", "defect-free frames", None)) == 8
    assert not any("frame-level term" in c.value for c in at.caption)  # neu-steel's gate has none
    manifest = _fake_manifest(env)
    assert at.button(key="tune_save").disabled  # a commissioning needs a reason too
    at.text_input(key="tune_reason").set_value("line 2 start-up").run()
    at.button(key="tune_save").click().run()
    assert any("commissioned on 8 defect-free frames, no drift baseline (it needs 200 frames under the defect threshold)" in s.value
               for s in at.success)
    thresholds = json.loads(manifest.read_text())["profiles"]["neu-steel"]["thresholds"]
    assert thresholds["commissioned"]["false_alarm_rate"] == 0.125 and "score_baseline" not in thresholds


def _commissioning_scored(env, frames: int):
    """The Tuning page with ``frames`` good frames (a folder "good") scored as defect-free frames."""
    good = env.val / "good"
    good.mkdir()
    for i in range(frames):
        (good / f"g{i:03d}.png").write_bytes(fakes.png(30 + i % 90))
    at = app("tuning")
    at.radio(key="tune_layout").set_value("defect-free frames").run()
    at.selectbox(key="tune_sub").set_value("good").run()
    at.button(key="tune_run").click().run()
    return at, good


def test_tuning_on_defect_free_frames_saves_a_commissioning_and_the_drift_baselines(env):
    """Saved from defect-free frames, the thresholds count as commissioned on them (the model card says
    so) and, from 200 frames on, their scores and picture smoothness become the drift checks' baselines, as
    ``calibrate --write``."""
    from edge_runtime.drift import BRIGHTNESS, SMOOTHNESS, Baseline

    manifest = _fake_manifest(env)
    at, good = _commissioning_scored(env, 210)
    assert at.number_input(key="tune_per_class").disabled  # a commissioning scores every frame, not 40
    at.slider(key="tune_target").set_value(0.01).run()
    at.button(key="tune_use").click().run()
    defect = _threshold(at, "Defect").value
    at.text_input(key="tune_reason").set_value("line 2 start-up").run()
    at.button(key="tune_save").click().run()
    assert not at.exception and errors(at) == []
    assert any("commissioned on 210 defect-free frames, drift baselines recorded" in s.value for s in at.success)
    thresholds = json.loads(manifest.read_text())["profiles"]["neu-steel"]["thresholds"]
    assert thresholds["defect"] == pytest.approx(defect)
    record = thresholds["commissioned"]
    assert record["frames"] == 210 and record["sources"] == [str(good)] and record["false_alarm_rate"] <= 0.01
    assert threshold_origin(thresholds)[0]
    scores = tuning.score_samples(env.fake, tuning.load_samples(good, "defect-free frames", None))["score"].to_numpy()
    expected = Baseline.from_values(scores[scores < defect])
    baseline = Baseline.from_manifest(thresholds)
    assert (baseline.p10, baseline.p50, baseline.p90, baseline.frames) == pytest.approx(
        (expected.p10, expected.p50, expected.p90, expected.frames))
    assert baseline.frames < 210  # the frames the new defect threshold flags are not in it, as calibrate leaves them out
    samples = tuning.score_samples(env.fake, tuning.load_samples(good, "defect-free frames", None))
    for measure in (SMOOTHNESS, BRIGHTNESS):  # the same frames' picture smoothness and brightness
        saved = Baseline.from_manifest(thresholds, measure)
        expected = Baseline.from_values(samples[measure.column].to_numpy()[scores < defect])
        assert (saved.p10, saved.p50, saved.p90, saved.frames) == pytest.approx(
            (expected.p10, expected.p50, expected.p90, baseline.frames))


def test_tuning_on_class_folders_points_a_frame_term_gate_to_a_commissioning_for_a_new_camera(env):
    from edge_runtime.manifest import FrameTerm

    env.fake.frame_term_references = FrameTerm(3.0, 0.8, 2.0)
    at = app("tuning")
    at.text_input(key="tune_normal").set_value("normal").run()
    at.button(key="tune_run").click().run()
    assert not at.exception
    assert any("frame-level term" in c.value and "edge_runtime calibrate" in c.value for c in at.caption)


def test_tuning_refuses_to_commission_on_frames_the_deployed_gate_reads_mostly_as_defects(env):
    """As ``calibrate --write`` refuses them without --despite-shift: another product, camera or lamp, or defects."""
    manifest = _fake_manifest(env)
    bright = env.val / "bright"
    bright.mkdir()
    for i in range(10):
        (bright / f"b{i}.png").write_bytes(fakes.png(220 + i))  # every one over the deployed defect threshold
    (bright / "wide.png").write_bytes(fakes.png(225, size=96))
    at = app("tuning")
    at.radio(key="tune_layout").set_value("defect-free frames").run()
    at.selectbox(key="tune_sub").set_value("bright").run()
    at.button(key="tune_run").click().run()
    at.slider(key="tune_target").set_value(0.125).run()
    at.button(key="tune_use").click().run()
    assert any("The deployed gate flags 100% of these frames at its defect threshold" in e for e in errors(at))
    assert any("The frames come in 2 sizes (64x64, 96x96)" in w.value for w in at.warning)
    at.text_input(key="tune_reason").set_value("new lamp, checked by eye").run()
    assert at.button(key="tune_save").disabled
    at.checkbox(key="tune_despite_shift").check().run()
    at.button(key="tune_save").click().run()
    assert any("commissioned on 11 defect-free frames" in s.value for s in at.success)
    assert json.loads(manifest.read_text())["profiles"]["neu-steel"]["thresholds"]["commissioned"]["frames"] == 11


@pytest.mark.skipif(not (ROOT / "models" / "magnetic-tile" / "autoencoder.onnx").is_file()
                    or not (ROOT.parent / "shared" / "data" / "magnetic-tile").is_dir(),
                    reason="needs the committed models and the magnetic-tile data in ../shared")
def test_tuning_commissions_a_frame_term_gate_as_calibrate_does(tmp_path, monkeypatch):
    """The real tile gate, its frame-level term re-measured on the line's frames: the page proposes what
    ``calibrate`` proposes, in the same units."""
    from edge_runtime import Inspector
    from edge_runtime.commissioning import commission

    good = tmp_path / "val" / "good"
    good.mkdir(parents=True)
    tiles = sorted((ROOT.parent / "shared" / "data" / "magnetic-tile" / "MT_Free" / "Imgs").glob("*.jpg"))[:24]
    for tile in tiles:
        (good / tile.name).symlink_to(tile)
    for key, value in {"MANIFEST": ROOT / "models.manifest.json", "VALIDATION_DIRS": tmp_path / "val",
                       "LOG_DB": tmp_path / "log.sqlite", "PROFILE": "magnetic-tile"}.items():
        monkeypatch.setenv(dconfig.ENV_PREFIX + key, str(value))
    runtime.get_config.clear()
    runtime._cached_inspector.clear()
    try:
        at = app("tuning")
        at.radio(key="tune_layout").set_value("defect-free frames").run()
        at.selectbox(key="tune_sub").set_value("good").run()
        at.button(key="tune_run").click().run()
        assert not at.exception, at.exception
        assert any("re-measured on these frames, as `python -m edge_runtime calibrate` does" in c.value
                   for c in at.caption)
        at.slider(key="tune_target").set_value(0.05).run()
        line = commission(Inspector.from_manifest(ROOT / "models.manifest.json", "magnetic-tile"), sorted(good.iterdir()))
        assert line.frame_term is not None
        assert f"**{line.propose(0.05, 0.05)['defect']:.6g}**" in "".join(c.value for c in at.caption)
    finally:
        runtime.get_config.clear()
        runtime._cached_inspector.clear()


def test_tuning_names_a_folder_it_cannot_use_and_refuses_warn_above_defect(env):
    at = app("tuning")
    at.text_input(key="tune_normal").set_value("no-such-class").run()
    at.button(key="tune_run").click().run()
    assert not at.exception
    assert any("Cannot use" in e for e in errors(at))
    # a warn threshold above the defect threshold cannot be saved
    at.text_input(key="tune_normal").set_value("normal").run()
    at.button(key="tune_run").click().run()
    _threshold(at, "Warn").set_value(0.9).run()
    assert any("must not be above" in e for e in errors(at))


def test_thresholds_written_while_the_dashboard_runs_are_loaded_not_shown_stale(env):
    """`calibrate --write` on the line PC, or another dashboard, changes the manifest under a running one."""
    manifest = _fake_manifest(env)
    app("inspect")
    loads = len(env.loads)
    app("inspect")
    assert len(env.loads) == loads  # unchanged manifest: the loaded models are reused
    data = json.loads(manifest.read_text())
    data["profiles"]["neu-steel"]["thresholds"].update(warn=5.6, defect=7.1)
    manifest.write_text(json.dumps(data, indent=2))
    app("inspect")
    assert len(env.loads) == loads + 1 and env.fake.thresholds.defect == 7.1


def test_tuning_inputs_start_from_the_thresholds_in_use_for_every_new_scoring(env):
    """Scoring a second folder once dropped the inputs' state and they came back at 0, which a save wrote."""
    at = app("tuning")
    at.text_input(key="tune_normal").set_value("normal").run()
    at.button(key="tune_run").click().run()
    _threshold(at, "Warn").set_value(0.55).run()
    at.number_input(key="tune_per_class").set_value(5).run()  # another scoring: the page waits for the button
    assert not at.number_input or all(n.label not in ("Warn threshold", "Defect threshold") for n in at.number_input)
    at.button(key="tune_run").click().run()
    assert (_threshold(at, "Warn").value, _threshold(at, "Defect").value) == pytest.approx(
        (env.fake.thresholds.warn, env.fake.thresholds.defect))


def test_tuning_refuses_to_commission_on_fewer_frames_than_the_rate_needs(env):
    at = app("tuning")
    at.radio(key="tune_layout").set_value("defect-free frames").run()
    at.selectbox(key="tune_sub").set_value("normal").run()
    at.button(key="tune_run").click().run()
    assert any("needs at least 100 defect-free frames; 8 were scored" in e for e in errors(at))
    assert not [b for b in at.button if b.key == "tune_save"]


def test_tuning_maths():
    import pandas as pd

    df = pd.DataFrame({"is_normal": [True] * 4 + [False] * 4, "score": [0.1, 0.2, 0.3, 0.4, 0.35, 0.5, 0.6, 0.7],
                       "label": ["normal"] * 4 + ["x"] * 4, "error": [None] * 8, "path": [""] * 8})
    r = tuning.rates(df, 0.35)
    assert r["false_alarm_rate"] == 0.25 and r["escape_rate"] == 0.0
    assert tuning.roc(df)["auc"] == pytest.approx(15 / 16)
    t = tuning.threshold_for_false_alarm(df, 0.0)
    assert t > 0.4 and tuning.rates(df, t)["false_alarm_rate"] == 0.0
    t = tuning.threshold_for_false_alarm(df, 0.25)
    assert 0.3 < t <= 0.4 and tuning.rates(df, t)["false_alarm_rate"] == 0.25


# ---------------------------------------------------------------------------- Model card

def _fake_manifest(env) -> Path:
    """A manifest in the runtime's format (edge_runtime/manifest.py), one file tampered with."""
    models = env.tmp / "models"
    models.mkdir()
    (models / "ae.onnx").write_bytes(b"autoencoder bytes")
    (models / "clf.onnx").write_bytes(b"classifier bytes")
    (models / "head.npz").write_bytes(b"head bytes")
    from edge_runtime.manifest import sha256_of as sha

    manifest = {
        "default_profile": "neu-steel",
        "profiles": {
            "neu-steel": {
                "autoencoder": {"path": "models/ae.onnx", "sha256": sha(models / "ae.onnx"), "feature_stride": 8,
                                "score": {"sigma_cells": 1.0, "normalise": "frame_mean"}},
                "classifier": {"path": "models/clf.onnx", "sha256": "0" * 64, "camera_copies": 1,
                               "head": {"path": "models/head.npz", "sha256": sha(models / "head.npz")}},
                "class_names": fakes.CLASSES,
                "preprocessing": {"interpolation": "area"},
                "thresholds": {"warn": 0.3, "defect": 0.6},
                "metrics": {"classifier": {"test_accuracy": 0.97, "confusion_matrix": [[3, 0], [1, 2]],
                                           "misclassified": ["a.jpg"]},
                            "anomaly": {"auroc": 0.91, "split": "val"}},
            },
            "magnetic-tile": {"class_names": ["blowhole", "crack"]},
        },
    }
    path = env.tmp / "models.manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def test_model_card_marks_verified_and_failed(env):
    _fake_manifest(env)
    (env.tmp / "results").mkdir()
    import cv2

    cv2.imwrite(str(env.tmp / "results" / "neu-steel_confusion.png"), np.zeros((20, 20, 3), np.uint8))
    at = app("model_card")
    assert not at.exception, at.exception
    marks = [m.value for m in at.markdown if "models/" in m.value]
    assert len(marks) == 3
    assert any(m.startswith(":green[:material/verified:]") and "ae.onnx" in m and "verified" in m for m in marks)
    assert any(m.startswith(":green[:material/verified:]") and "classifier.head" in m and "head.npz" in m for m in marks)
    assert any(m.startswith(":red[:material/error:]") and "clf.onnx" in m and "MISMATCH" in m for m in marks)
    flat = at.dataframe[0].value.set_index("metric")["value"]  # mixed types render as one text column
    assert flat["classifier.test_accuracy"] == "0.97" and flat["anomaly.split"] == "val"
    assert flat["classifier.confusion_matrix"].startswith("2x2 matrix")
    assert [c for img in at.image for c in img.captions] == ["neu-steel_confusion.png"]
    assert at.selectbox(key="profile").options == ["neu-steel", "magnetic-tile"]
    assert any("not commissioned" in w.value for w in at.warning)
    assert any("maximum of the anomaly map" in m.value and "its own mean" in m.value for m in at.markdown)
    assert "How a defect is named" in [h.value for h in at.subheader]
    assert any("MobileNetV2 head" in m.value and "seen through another camera" in m.value for m in at.markdown)


def test_score_description_names_the_level_cap_and_power_of_a_normalised_map():
    text = modelcard.score_description({"autoencoder": {"score": {
        "sigma_cells": 1.0, "normalise": "frame_mean", "level_cap": 2.5, "level_power": 1.1}}})
    assert "divided by its own mean (at most 2.5) raised to the power 1.1" in text
    plain = modelcard.score_description({"autoencoder": {"score": {"sigma_cells": 1.0, "normalise": "frame_mean"}}})
    assert "power" not in plain and "at most" not in plain


def test_score_description_names_the_mirror_views_where_the_gate_scores_three():
    three = modelcard.score_description({"autoencoder": {"score": {"sigma_cells": 1.0, "views": 3}}})
    assert "averaged over the frame and its two mirror images" in three
    assert "mirror" not in modelcard.score_description({"autoencoder": {"score": {"sigma_cells": 1.0, "views": 1}}})
    cascade = modelcard.score_description({"autoencoder": {"score": {"sigma_cells": 1.0, "views": 3, "views_from": 1.9}}})
    assert "mirror images where the frame alone scores 1.9 or more" in cascade


def test_score_description_names_the_residual_detector_where_the_gate_has_one():
    text = modelcard.score_description({"autoencoder": {"score": {
        "sigma_cells": 1.0, "residual_detector": {"sigma_cells": 4.0, "scale": 5.2063}}}})
    assert "residual detector" in text and "smoothed 4 cells, times 5.206" in text and "larger of the two" in text
    assert "beside the cell itself" not in text
    assert "residual" not in modelcard.score_description({"autoencoder": {"score": {"sigma_cells": 1.0}}})
    reading_the_cell = modelcard.score_description({"autoencoder": {"score": {
        "sigma_cells": 1.0, "residual_detector": {"sigma_cells": 4.0, "scale": 5.0, "input": "residual+cell"}}}})
    assert "departs from its reconstruction, beside the cell itself;" in reading_the_cell
    assert "synthetic defects painted" in reading_the_cell  # an entry that does not record its kinds
    with_kinds = modelcard.score_description({"autoencoder": {"score": {
        "sigma_cells": 4.0, "residual_detector": {"sigma_cells": 4.0, "scale": 5.0, "kinds": ["blob", "streak"]}}}})
    assert "synthetic defects (blob, streak) painted on defect-free texture" in with_kinds


def test_the_model_card_says_what_the_models_were_trained_to_tolerate():
    detector = modelcard.score_description({"autoencoder": {"score": {
        "sigma_cells": 1.0, "residual_detector": {"sigma_cells": 4.0, "scale": 5.0, "camera_copies": 2}}}})
    assert "texture, also on 2 copies of each training frame seen through another camera (a random defocus" in detector
    plain = modelcard.score_description({"autoencoder": {"score": {
        "sigma_cells": 1.0, "residual_detector": {"sigma_cells": 4.0, "scale": 5.0}}}})
    assert "painted on defect-free texture, reads how" in plain and "camera" not in plain
    windowed = modelcard.classifier_description({"precision": "int8", "classifier": {
        "stem_window": [13, 13], "region_side": 176, "camera_copies": 1}})
    assert "(int8)" in windowed and "13x13 stem cells (176 px) around the anomaly peak" in windowed
    assert "on 1 copy of each training frame seen through another camera" in windowed
    whole = modelcard.classifier_description({"classifier": {"stem_window": None}})
    assert "(fp32)" in whole and "sees the whole frame" in whole and "camera" not in whole
    assert modelcard.classifier_description({}) is None


def test_score_description_names_the_frame_level_term_where_the_gate_has_one():
    plain = modelcard.score_description({"autoencoder": {"score": {"sigma_cells": 1.0, "ignore_border": 0.1}}})
    assert "maximum of the anomaly map" in plain and "outer 10%" in plain and "frame-level" not in plain
    tile = modelcard.score_description({"autoencoder": {"score": {
        "sigma_cells": 1.0, "normalise": "frame_median",
        "frame_term": {"map_reference": 2.0, "frame_reference": 0.5, "weight": 4.0}}}})
    assert "its own median" in tile and "frame-level autoencoder" in tile and "weighted 4" in tile
    assert modelcard.score_description({"autoencoder": {}}) is None


def test_threshold_origin_says_whether_the_line_was_commissioned():
    assert threshold_origin({"warn": 1, "defect": 2})[0] is False
    edited = threshold_origin({"warn": 1, "defect": 2, "edited_at": "2026-11-26T02:00:00"})
    assert edited[0] is False and "Edited by hand" in edited[1]
    done = threshold_origin({"warn": 1, "defect": 2, "edited_at": "2026-11-26T02:00:00",
                                       "commissioned": {"frames": 412, "false_alarm_rate": 0.01,
                                                        "warn_false_alarm_rate": 0.05}})
    assert done[0] is True and "412 defect-free frames" in done[1]


def test_model_card_runs_the_self_test_on_the_real_models(env, monkeypatch):
    from tests.conftest import editable_manifest

    (env.tmp / "real").mkdir()
    manifest = editable_manifest(env.tmp / "real")
    monkeypatch.setenv(dconfig.ENV_PREFIX + "MANIFEST", str(manifest))
    monkeypatch.setattr(runtime, "load_inspector", REAL_LOAD_INSPECTOR)
    runtime.get_config.clear()
    at = app("model_card")
    at.button(key="card_selftest").click().run()
    assert not at.exception, at.exception
    assert any("All 4 golden frames score as the export recorded" in s.value for s in at.success)
    table = at.dataframe[0].value  # the first table on the page; the metrics follow
    assert list(table["frame"]) == ["strip", "scratch", "patch", "inclusion"] and table["passed"].all()


def test_model_card_without_manifest(env):
    at = app("model_card")
    assert not at.exception
    assert any("No usable model manifest" in e for e in errors(at))


def test_model_files_refuses_paths_outside(tmp_path):
    (tmp_path / "m.json").write_text("{}")
    rows = modelcard.model_files({"models": {"x": {"path": "../../etc/passwd", "sha256": "1"}}}, tmp_path / "m.json")
    assert rows[0]["status"].startswith("refused")


# ----------------------------------------------------------------------------- Live line

def test_live_synthetic_start_stop(env):
    at = app("live")
    assert not at.exception
    assert at.segmented_control(key="live_kind").value == "synthetic"
    assert any("Start" in i.value for i in at.info)
    at.slider(key="live_fps").set_value(20).run()
    at.checkbox(key="live_save_frames").check().run()
    at.button(key="live_start").click().run()
    try:
        assert not at.exception and errors(at) == []
        deadline = time.time() + 20
        while time.time() < deadline:
            time.sleep(1.0)
            at.run()
            metrics = {m.label: m.value for m in at.metric}
            flagged_so_far = int(metrics["Warn"]) + int(metrics["Defect"]) if metrics else 0
            if metrics and int(metrics["OK"]) + flagged_so_far >= 5 and flagged_so_far and at.image:
                break
        assert metrics and float(metrics["Inspected/s"]) > 0
        assert verdicts(at) and at.image
    finally:
        at.button(key="live_stop").click().run()
    assert not at.exception
    assert any("stopped" in c.value for c in at.caption)
    # the live loop wrote the SQLite log the History page reads, with the flagged frames kept as asked
    rows = history_logic.load_history(env.log_db)[0]
    assert rows["verdict"].isin(["ok", "warn", "defect"]).sum() >= 5
    flagged = rows[rows["verdict"].isin(["warn", "defect"])]
    assert len(flagged) and flagged["frame_path"].map(lambda p: isinstance(p, str) and Path(p).is_file()).all()
    assert rows.loc[rows["verdict"] == "ok", "frame_path"].isna().all()


def test_live_line_started_with_retain_deletes_old_records_and_their_overlays(env, monkeypatch):
    from edge_runtime.sinks import Record, SqliteLog

    monkeypatch.setenv(dconfig.ENV_PREFIX + "RETAIN", "30d")
    runtime.get_config.clear()
    overlay = env.log_db.parent / "overlays" / "old.png"
    overlay.parent.mkdir(parents=True)
    overlay.write_bytes(b"png")
    old = time.time() - 40 * 86_400
    with SqliteLog(env.log_db) as log:
        log.write([Record("camera:0", "old-ok", "ok", recorded_at=old),
                   Record("camera:0", "old-reject", "defect", recorded_at=old, overlay_path=str(overlay))])
    at = app("live")
    at.slider(key="live_fps").set_value(20).run()
    at.button(key="live_start").click().run()
    try:
        deadline = time.time() + 20
        while time.time() < deadline and not any("Retention" in c.value for c in at.caption):
            time.sleep(0.5)
            at.run()
        assert any("records older than 30d deleted hourly" in c.value for c in at.caption)
        assert any("Retention" in c.value and "deleted 2 records" in c.value and "1 overlay images" in c.value
                   for c in at.caption)
    finally:
        at.button(key="live_stop").click().run()
    assert not at.exception and errors(at) == []
    rows = history_logic.load_history(env.log_db)[0]
    assert not rows["frame_id"].isin(["old-ok", "old-reject"]).any() and len(rows) > 0
    assert not overlay.exists()


def test_live_line_without_retain_says_it_keeps_every_record(env):
    at = app("live")
    at.button(key="live_start").click().run()
    try:
        assert any("every record kept" in c.value for c in at.caption)
    finally:
        at.button(key="live_stop").click().run()


def _live_line_rejects_reach(env, fired: Path, caption: str) -> None:
    """Run the Live line on strip the fake flags as defects until ``fired`` exists: the page shows
    ``caption`` and every defect the log holds is a line of ``fired``."""
    runtime.get_config.clear()
    env.fake.thresholds = type(env.fake.thresholds)(0.2, 0.3)  # the fake scores by grey level: strip is a defect
    at = app("live")
    at.slider(key="live_fps").set_value(20).run()
    at.button(key="live_start").click().run()
    try:
        deadline = time.time() + 20
        while time.time() < deadline and not fired.exists():
            time.sleep(0.5)
            at.run()
        at.run()
        assert any(c.value.startswith(caption) for c in at.caption), [c.value for c in at.caption]
    finally:
        at.button(key="live_stop").click().run()
    assert not at.exception and errors(at) == []
    rows = history_logic.load_history(env.log_db)[0]
    defects = set(rows.loc[rows["verdict"] == "defect", "frame_id"])
    assert defects and set(fired.read_text().split()) == defects


def test_live_line_fires_the_reject_command_for_every_reject(env, monkeypatch):
    """``python -m dashboard --reject-command CMD``: the Live line fires it as ``watch`` does."""
    import shlex

    fired = env.tmp / "fired.txt"
    hook = env.tmp / "hook.py"
    hook.write_text("import json, sys\nopen(sys.argv[1], 'a').write(json.load(sys.stdin)['frame_id'] + '\\n')\n")
    command = shlex.join([sys.executable, str(hook), str(fired)])
    monkeypatch.setenv(dconfig.ENV_PREFIX + "REJECT_COMMAND", command)
    _live_line_rejects_reach(env, fired, f"Reject command `{command}` on defect: fired")


def test_live_line_calls_the_reject_hook_for_every_reject(env, monkeypatch):
    """``python -m dashboard --reject-hook MODULE:FUNCTION``: called in the dashboard's own process."""
    hook_dir = env.tmp / "hooks"
    hook_dir.mkdir()
    fired = env.tmp / "fired_by_hook.txt"
    (hook_dir / "live_page_ejector.py").write_text(
        f"def eject(record):\n    open({str(fired)!r}, 'a').write(record.frame_id + '\\n')\n")
    monkeypatch.syspath_prepend(str(hook_dir))
    monkeypatch.setenv(dconfig.ENV_PREFIX + "REJECT_HOOK", "live_page_ejector:eject")
    _live_line_rejects_reach(env, fired, "Reject hook `live_page_ejector:eject` on defect: fired")


def test_live_folder_source_rejects_traversal(env):
    with pytest.raises(dconfig.UnsafePathError):
        live.build_source(live.SourceSpec(kind="folder", root=env.images, relative="../outside"), [env.images])
    with pytest.raises(dconfig.UnsafePathError):
        live.build_source(live.SourceSpec(kind="video", root=env.outside, relative="x.mp4"), [env.images])
    src = live.build_source(live.SourceSpec(kind="folder", root=env.images, relative="line2"), [env.images])
    assert Path(src.name) == (env.images / "line2").resolve()


def test_live_rolling_reject_rate():
    sink = live.RollingSink()
    recs = [types.SimpleNamespace(recorded_at=i, verdict=v, defect_class=None)
            for i, v in enumerate(["ok", "defect", "error", "ok", "defect"])]
    sink.write(recs)
    assert sink.reject_rate() == 0.5
    assert sink.rate_series(last=2)[-1]["reject rate"] == 0.5


# ------------------------------------------------------------------- launcher / config

def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_stopping_the_launcher_stops_the_dashboard_and_frees_its_port(tmp_path):
    """systemd (or kill) signals the process it started: the Streamlit server must not live on without it."""
    import signal
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "dashboard", "--port", str(port), "--log-db", str(tmp_path / "x.db")],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("the dashboard did not answer in time")
        proc.send_signal(signal.SIGTERM)  # the launcher's own pid only, as systemd's first signal
        proc.wait(30)
        assert not _listening(port)  # nothing serves on the port any more
    finally:
        if proc.poll() is None or _listening(port):
            os.killpg(proc.pid, signal.SIGKILL)


def test_launcher_defaults_to_localhost_and_port_option():
    from dashboard.__main__ import command_and_env

    cmd, env = command_and_env([])
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8501"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"
    cmd, env = command_and_env(["--port", "9123", "--address", "0.0.0.0", "--image-dir", "/data/a",
                                "--live-source", "synthetic"])
    assert cmd[cmd.index("--server.port") + 1] == "9123"
    assert cmd[cmd.index("--server.address") + 1] == "0.0.0.0"
    assert env["STEEL_DASH_IMAGE_DIRS"] == "/data/a" and env["STEEL_DASH_LIVE_SOURCE"] == "synthetic"
    assert "STEEL_DASH_RETAIN" not in env
    _, env = command_and_env(["--retain", "30d"])
    assert env["STEEL_DASH_RETAIN"] == "30d"
    with pytest.raises(SystemExit):  # refused at start, not when the line runs
        command_and_env(["--retain", "someday"])
    _, env = command_and_env(["--reject-command", "true", "--reject-on", "defect,error"])
    assert (env["STEEL_DASH_REJECT_COMMAND"], env["STEEL_DASH_REJECT_ON"]) == ("true", "defect,error")
    for bad in (["--reject-command", "no-such-ejector-tool-xyz"], ["--reject-command", "true", "--reject-on", "ok"],
                ["--reject-hook", "no_such_ejector_module:eject"], ["--reject-hook", "json"],
                ["--reject-hook", "json:dumps", "--reject-command", "true"]):  # one reject output, not two
        with pytest.raises(SystemExit):
            command_and_env(bad)


def test_launcher_checks_the_reject_hook_where_the_operator_runs_it(tmp_path, monkeypatch):
    """MODULE is found in the folder the dashboard is started from, as ``python -m ... watch`` finds it;
    the streamlit process, which runs in the repository, gets that folder on its PYTHONPATH."""
    from dashboard.__main__ import command_and_env

    (tmp_path / "plant_ejector.py").write_text("def fire(record):\n    pass\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    _, env = command_and_env(["--reject-hook", "plant_ejector:fire", "--reject-on", "defect,error"])
    assert (env["STEEL_DASH_REJECT_HOOK"], env["STEEL_DASH_REJECT_ON"]) == ("plant_ejector:fire", "defect,error")
    assert str(tmp_path) in env["PYTHONPATH"].split(os.pathsep)
    with pytest.raises(SystemExit):
        command_and_env(["--reject-hook", "plant_ejector:missing_function"])


def test_launcher_paths_are_the_operators_not_the_repositorys(tmp_path, monkeypatch):
    """streamlit runs in the repository; a relative path typed elsewhere must still mean the same folder."""
    from dashboard.__main__ import command_and_env

    monkeypatch.chdir(tmp_path)
    _, env = command_and_env(["--image-dir", "frames", "--log-db", "line.sqlite", "--manifest", "m.json"])
    assert env["STEEL_DASH_IMAGE_DIRS"] == str(tmp_path / "frames")
    assert env["STEEL_DASH_LOG_DB"] == str(tmp_path / "line.sqlite")
    assert env["STEEL_DASH_MANIFEST"] == str(tmp_path / "m.json")


def test_streamlit_config_is_offline_and_the_launcher_passes_all_of_it():
    """An installed copy has no .streamlit/config.toml: the launcher passes its settings on the command line."""
    import tomllib

    from dashboard.__main__ import command_and_env

    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["server"]["headless"] is True
    assert cfg["server"]["address"] == "127.0.0.1"
    assert 0 < cfg["server"]["maxUploadSize"] <= 100
    cmd, _ = command_and_env([])
    passed = dict(zip(cmd[5::2], cmd[6::2]))
    for section, settings in cfg.items():
        for key, value in settings.items():
            expected = str(value).lower() if isinstance(value, bool) else str(value)
            assert passed.get(f"--{section}.{key}") == expected or key == "maxUploadSize", (section, key)


def test_launched_outside_the_checkout_it_uses_the_manifest_the_cli_would_and_keeps_its_log_beside_it(
        tmp_path, monkeypatch):
    from dashboard.__main__ import command_and_env

    (tmp_path / "models.manifest.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    for key in ("MANIFEST", "LOG_DB", "RESULTS_DIR"):
        monkeypatch.delenv(dconfig.ENV_PREFIX + key, raising=False)
    _, env = command_and_env([])
    assert env["STEEL_DASH_MANIFEST"] == str(tmp_path / "models.manifest.json")
    assert env["STEEL_DASH_LOG_DB"] == str(tmp_path / "cache" / "inspections.sqlite")
    assert env["STEEL_DASH_RESULTS_DIR"] == str(tmp_path / "results")


# ------------------------------------------------------------------------- real models

@pytest.mark.slow
def test_inspect_real_models(monkeypatch):
    if not MANIFEST.is_file():
        pytest.skip("models.manifest.json is absent: train/export the models first")
    if not NEU_IMAGES.is_dir():
        pytest.skip(f"NEU-DET images not found at {NEU_IMAGES}")
    for key in [k for k in os.environ if k.startswith(dconfig.ENV_PREFIX)]:
        monkeypatch.delenv(key)
    runtime.get_config.clear()
    image = sorted(NEU_IMAGES.glob("scratches_*.jpg"))[0]
    at = app()
    assert not at.exception
    at.file_uploader(key="uploads").set_value([(image.name, image.read_bytes(), "image/jpeg"),
                                               ("bad.jpg", b"garbage", "image/jpeg")]).run(timeout=60)
    assert not at.exception
    assert len(verdicts(at)) == 1 and verdicts(at)[0] in ("OK", "WARN", "DEFECT")
    assert "bad.jpg" in errors(at)[0]
    result = at.session_state["inspect_results"][0].result
    assert result.profile == "neu-steel"
    if result.gradcam is not None:
        assert any(c.startswith("Grad-CAM") for img in at.image for c in img.captions)
    runtime._cached_inspector.clear()


def test_history_checks_drift_for_the_profile_the_log_was_inspected_with_as_the_cli_does(env):
    """The sidebar says neu-steel (the default); a log of magnetic-tile frames is checked as magnetic-tile, like
    ``history``; only a log of several profiles is checked for the sidebar's."""
    from edge_runtime.capture.commands import profile_drifts
    from edge_runtime.drift import Baseline
    from edge_runtime.sinks import Record, SqliteLog

    rng = np.random.default_rng(0)
    tile_baseline = Baseline.from_values(rng.lognormal(0.5, 0.1, 300), measured_at=time.time() - 3600)
    manifest = {"default_profile": "neu-steel", "profiles": {
        "neu-steel": {"thresholds": {"warn": 2.0, "defect": 3.0}},
        "magnetic-tile": {"thresholds": {"warn": 2.0, "defect": 3.0, "score_baseline": tile_baseline.to_dict()}}}}
    (env.tmp / "models.manifest.json").write_text(json.dumps(manifest))
    with SqliteLog(env.log_db) as log:
        log.write([Record("camera:0", f"f{i}", "ok", score=float(s) * 1.15, profile="magnetic-tile",
                          captured_at=time.time() - 300 + i) for i, s in enumerate(rng.lognormal(0.5, 0.1, 300))])
        cli_reading = profile_drifts(log, env.tmp / "models.manifest.json", None)["drift"]
    assert history_logic.drift_profile(env.log_db, manifest, "neu-steel") == cli_reading["profile"] == "magnetic-tile"
    at = app("history")
    assert not at.exception, at.exception
    assert any("Scores have risen" in w.value for w in at.warning) and cli_reading["status"] == "high"
    assert any("Drift checks: profile `magnetic-tile`" in c.value for c in at.caption)
    with SqliteLog(env.log_db) as log:
        log.write([Record("camera:0", "n", "ok", score=1.0, profile="neu-steel")])
    assert history_logic.drift_profile(env.log_db, manifest, "neu-steel") == "neu-steel"


@pytest.mark.skipif(not (ROOT / "models" / "neu-steel" / "autoencoder.onnx").is_file(), reason="needs the committed models")
def test_the_live_line_does_not_start_when_the_golden_frames_no_longer_score_as_recorded(tmp_path, monkeypatch):
    """As ``watch`` refuses to start: a PC that does not compute what the export computed inspects nothing."""
    document = json.loads((ROOT / "models.manifest.json").read_text())
    for frame in document["profiles"]["neu-steel"]["golden"]["frames"]:
        frame["anomaly_score"] *= 1.5
    (tmp_path / "models").symlink_to(ROOT / "models")
    (tmp_path / "models.manifest.json").write_text(json.dumps(document))
    for key, value in {"MANIFEST": tmp_path / "models.manifest.json", "LOG_DB": tmp_path / "log.sqlite",
                       "LIVE_DIRS": tmp_path, "IMAGE_DIRS": tmp_path, "VALIDATION_DIRS": tmp_path}.items():
        monkeypatch.setenv(dconfig.ENV_PREFIX + key, str(value))
    runtime.get_config.clear()
    runtime._cached_inspector.clear()
    try:
        at = app("live")
        at.button(key="live_start").click().run()
        assert not at.exception, at.exception
        assert any("Could not start the line: self-test failed: golden frame(s) strip" in e.value for e in at.error)
        assert not (tmp_path / "log.sqlite").exists()  # nothing captured, nothing logged
    finally:
        runtime.get_config.clear()
        runtime._cached_inspector.clear()


def test_a_commissioning_on_the_page_sets_both_thresholds_on_the_frames_as_calibrate_does(env):
    """The warn threshold too comes from the line's frames (5% of them flagged by default), not as shipped."""
    from edge_runtime.commissioning import propose_thresholds

    at, good = _commissioning_scored(env, 120)
    at.button(key="tune_use").click().run()
    scores = tuning.score_samples(env.fake, tuning.load_samples(good, "defect-free frames", None))["score"].to_numpy()
    expected = propose_thresholds(scores, 0.01, 0.05)
    assert (_threshold(at, "Warn").value, _threshold(at, "Defect").value) == pytest.approx(
        (expected["warn"], expected["defect"]))


def test_the_model_card_says_when_its_test_figures_are_of_other_thresholds():
    exported = {"warn": 2.5733, "defect": 3.2518}
    assert modelcard.figures_at_other_thresholds(exported) is None
    changed = {"warn": 2.5984, "defect": 2.6982, "changes": [
        {"previous_warn": 2.5733, "previous_defect": 3.2518, "warn": 2.6, "defect": 2.7},
        {"previous_warn": 2.6, "previous_defect": 2.7, "warn": 2.5984, "defect": 2.6982}]}
    note = modelcard.figures_at_other_thresholds(changed)
    assert "export's thresholds (warn 2.573, defect 3.252)" in note and "in use are warn 2.598, defect 2.698" in note
    restored = {**changed, "warn": 2.5733, "defect": 3.2518}
    assert modelcard.figures_at_other_thresholds(restored) is None


def test_a_score_just_under_a_threshold_does_not_read_as_equal_to_it():
    assert render.distinct_digits(1.23456, 2.0, 3.0) == ("1.235", "2", "3")
    score, warn, defect = render.distinct_digits(5.021511077880859, 5.02151107788086, 7.5)
    assert score != warn and float(score) < float(warn)


def test_the_current_rows_of_a_remeasured_commissioning_are_in_the_units_of_the_thresholds_in_use():
    """Re-measured references move every score: the thresholds in use are judged on the deployed scores, as calibrate
    reports them ("current"), the proposal on the re-measured ones."""
    from edge_runtime.commissioning import Commissioning, GateScores

    deployed = np.array([1.0, 2.0, 3.0, 4.0])
    line = Commissioning(GateScores(deployed, (("bad.png", "truncated"),), {"score": deployed}), deployed * 2, None,
                         None, 3.5, 3.5)
    df = pd.DataFrame({"path": ["a", "b", "c", "d", "bad.png"], "label": "normal", "is_normal": True,
                       "score": [*(deployed * 2), np.nan], "error": [None] * 4 + ["truncated"]})
    table = tuning.rates_table(df, (3.5, 3.5), (7.5, 7.5), tuning.in_deployed_units(df, line)).set_index(
        ["setting", "threshold"])
    assert table.loc[("current", "defect"), "false-alarm rate"] == line.deployed_rates["flagged_defect"] == 0.25
    assert table.loc[("proposed", "defect"), "false-alarm rate"] == 0.25  # 8.0 of 2, 4, 6, 8


def test_history_page_rows_hold_only_the_window(tmp_path):
    now = time.time()
    with SqliteLog(tmp_path / "i.db") as log:
        log.write([Record(source="s", frame_id="old", verdict="defect", score=0.9, recorded_at=now - 3 * 86400),
                   Record(source="s", frame_id="new", verdict="defect", score=0.9, recorded_at=now)])
    history = history_logic.load_history(tmp_path / "i.db", "24h")
    assert history.counts == {"defect": 1}
    assert list(history.rows["frame_id"]) == ["new"]  # the table, the charts and the CSV export of the window


def test_history_trend_leaves_out_rejects_as_the_drift_check_does():
    import pandas as pd

    t = pd.Timestamp("2026-01-01 08:00")
    df = pd.DataFrame({"time": [t] * 10, "verdict": ["ok"] * 8 + ["defect"] * 2,
                       "score": [1.0] * 8 + [50.0] * 2})
    trend = history_logic.values_over_time(df, "1h")
    assert trend["median"].iloc[0] == 1.0 and trend["90th percentile"].iloc[0] == 1.0


def test_inspect_cache_is_not_reused_after_the_thresholds_change():
    from edge_runtime.result import Thresholds

    fake, cache = fakes.FakeInspector(warn=0.3, defect=0.6), {}
    inspect_items(fake, [("a.png", fakes.png(200))], cache)
    fake.thresholds = Thresholds(50.0, 100.0)  # calibrate --write while the page is open
    (after,) = inspect_items(fake, [("a.png", fakes.png(200))], cache)
    assert fake.calls == 2 and after.result.thresholds.defect == 100.0


def test_score_bar_zones_follow_the_thresholds():
    zones = {row["zone"]: (row["start"], row["end"]) for row in render.score_bar_spec(0.5, 0.3, 0.6)["data"]["values"]}
    assert zones["ok"] == (0.0, 0.3) and zones["warn"] == (0.3, 0.6) and zones["defect"][0] == 0.6
    assert zones["score"] == (0.0, 0.5)


def test_results_csv_carries_each_images_verdict():
    import csv
    import io

    items = inspect_items(fakes.FakeInspector(), [("a.png", fakes.png(20)), ("b.png", fakes.png(200)), ("c.png", b"xx")])
    rows = list(csv.DictReader(io.StringIO(render.results_csv(items).decode())))
    assert [r["verdict"] for r in rows] == ["ok", "defect", "error"]


def test_live_reject_rate_counts_defects_not_warnings():
    sink = live.RollingSink()
    sink.write([types.SimpleNamespace(recorded_at=i, verdict=v, defect_class=None)
                for i, v in enumerate(["ok", "warn", "defect", "warn"])])
    assert sink.reject_rate() == 0.25


@pytest.mark.parametrize("output", ["hook", "command"])
def test_live_reject_output_fires_on_the_configured_verdicts(tmp_path, monkeypatch, output):
    (tmp_path / "gaps_hook.py").write_text("def eject(record):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = types.SimpleNamespace(reject_hook="gaps_hook:eject" if output == "hook" else None,
                                   reject_command="true" if output == "command" else None, reject_on="warn,defect")
    sink = live.reject_output(config)
    assert sink.predicate(Record(source="s", frame_id="1", verdict="warn"))
    assert not sink.predicate(Record(source="s", frame_id="2", verdict="ok"))


def test_tuning_rates_read_a_score_on_the_threshold_as_flagged():
    """The runtime's rule (``score >= threshold``): a normal frame on the threshold is a false alarm, a defect on it
    is caught."""
    df = pd.DataFrame({"is_normal": [True, True, False, False], "score": [1.0, 2.0, 2.0, 1.5]})
    out = tuning.rates(df, 2.0)
    assert (out["false_alarms"], out["escapes"]) == (1, 1)


def test_the_history_export_stands_alone_with_utc_times_and_model_files(tmp_path, monkeypatch):
    """Two records an hour apart when summer time ends read the same local wall-clock time: their offsets and the
    export's UTC column tell them apart, the chart counts them in two hours, and each row names the model files that
    judged it."""
    import csv
    import io

    monkeypatch.setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")  # Berlin's rule, spelt out: no time-zone files needed
    time.tzset()
    try:
        start = 1792888200.0  # 2026-10-25 00:30 UTC, 02:30 summer time in Berlin; an hour later 02:30 winter time
        models = {"autoencoder": "a" * 64, "classifier": "b" * 64}
        with SqliteLog(tmp_path / "i.db") as log:
            log.write([Record(source="s", frame_id=str(i), verdict="ok", score=1.0, recorded_at=start + 3600 * i,
                              model_sha256=models) for i in range(2)])
        history = history_logic.load_history(tmp_path / "i.db").rows
        rows = list(csv.DictReader(io.StringIO(history_logic.to_csv(history).decode())))
        per_hour = history_logic.counts_over_time(history, "verdict", "1h")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert [r["time"] for r in rows] == ["2026-10-25 02:30:00+01:00", "2026-10-25 02:30:00+02:00"]  # newest first
    assert list(per_hour["ok"]) == [1, 1]  # not one hour of two
    assert {r["time_utc"] for r in rows} == {"2026-10-25T00:30:00.000+00:00", "2026-10-25T01:30:00.000+00:00"}
    assert json.loads(rows[0]["model_sha256"]) == models


def test_the_live_line_does_not_start_on_a_folder_a_watch_inspects(env, tmp_path):
    from edge_runtime.capture.source_claim import SourceBusyError, claim_source
    from edge_runtime.capture.sources import FolderWatcher

    held = claim_source(FolderWatcher(env.images))  # as a running `watch` holds it
    try:
        with pytest.raises(SourceBusyError, match="already inspected"):
            live.LiveSession(FolderWatcher(env.images), env.fake, tmp_path / "live.db", selftest="passed")
    finally:
        held.release()
    session = live.LiveSession(FolderWatcher(env.images, exit_when_idle=True), env.fake, tmp_path / "live.db",
                               selftest=live.require_selftest(env.fake)).start()
    session._thread.join(30)
    assert not session.running and claim_source(FolderWatcher(env.images)) is not None  # let go when it ended
    with SqliteLog(tmp_path / "live.db", create=False) as log:  # the run is noted as watch notes its runs
        [run] = log.runs()
    assert run["settings"]["options"]["started_from"] == "dashboard Live line" and run["settings"]["selftest"] == "no golden frames"
    assert run["summary"]["captured"] == session.final["captured"] and run["stopped_at"] is not None
