"""``python -m edge_runtime inspect / evaluate`` as a line-side PC runs them."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.conftest import MAGNETIC_TILE, NEU, ROOT, needs_models, needs_neu, needs_tile, textured

pytestmark = needs_models


def _recorded_gate_metrics(profile: str) -> dict:
    """What ``python -m export`` measured and wrote into the manifest for this profile's gate."""
    return json.loads((ROOT / "models.manifest.json").read_text())["profiles"][profile]["metrics"]["gate_test"]


def _run(*args, cwd=ROOT, timeout=600):
    return subprocess.run([sys.executable, "-m", "edge_runtime", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_inspect_json_reports_each_image_and_fails_at_the_end_on_bad_files(tmp_path):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), textured((200, 200)))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(cv2.imencode(".jpg", np.full((200, 200), 90, np.uint8))[1].tobytes()[:100])
    out = _run("inspect", str(empty), str(good), str(truncated), "--json", "--save-overlays", str(tmp_path / "ov"))
    assert out.returncode == 1, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(empty), str(good), str(truncated)]
    assert set(records[0]) == set(records[1])  # an error line has the keys of a result line
    assert records[0]["profile"] == records[1]["profile"] == "neu-steel" and records[0]["source"] == str(empty)
    assert records[0]["error"] and records[0]["verdict"] == "error" and "empty" in records[0]["error"]
    assert records[0]["error_type"] == "ImageDecodeError"
    assert records[1]["error"] is None and records[1]["verdict"] in ("ok", "warn", "defect")
    assert records[2]["error"] and records[2]["verdict"] == "error"
    assert (tmp_path / "ov" / "good_anomaly.png").is_file()


def test_inspect_takes_folders_and_says_when_one_holds_no_image(tmp_path):
    line = tmp_path / "line"
    for name in ("shift1/a.png", "shift2/a.png", "shift2/b.png"):
        (line / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(line / name), textured((200, 200)))
    (tmp_path / "empty").mkdir()
    out = _run("inspect", str(line), str(tmp_path / "empty"), "--json", "--save-overlays", str(tmp_path / "ov"))
    assert out.returncode == 1, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(line / "shift1" / "a.png"), str(line / "shift2" / "a.png"),
                                            str(line / "shift2" / "b.png"), str(tmp_path / "empty")]
    assert all(r["error"] is None for r in records[:3])
    assert records[3]["verdict"] == "error" and "holds no image files" in records[3]["error"]
    # two a.png from different folders keep an overlay each
    assert {p.name for p in (tmp_path / "ov").glob("*_anomaly.png")} == {
        "shift1__a_anomaly.png", "shift2__a_anomaly.png", "shift2__b_anomaly.png"}


def test_inspect_survives_file_names_that_are_not_utf8_and_follows_linked_folders(tmp_path):
    """OpenCV's own file functions crash the process on such a name; the overlays are written without them."""
    import os

    line = tmp_path / "line"
    (line / "day1").mkdir(parents=True)
    elsewhere = tmp_path / "other-disk" / "day2"
    elsewhere.mkdir(parents=True)
    (line / "day2").symlink_to(elsewhere, target_is_directory=True)
    (line / "loop").symlink_to(line, target_is_directory=True)  # a link back up is walked once, not forever
    png = cv2.imencode(".png", textured((200, 200)))[1].tobytes()
    (line / "day1" / "a.png").write_bytes(png)
    (elsewhere / "b.png").write_bytes(png)
    with open(os.path.join(os.fsencode(line / "day1"), b"bad\xff.png"), "wb") as handle:
        handle.write(png)
    out = _run("inspect", str(line), "--json", "--save-overlays", str(tmp_path / "ov"))
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(records) == 3 and all(r["error"] is None for r in records)
    assert any("day2" in r["path"] for r in records)
    assert len(list((tmp_path / "ov").glob("*_anomaly.png"))) == 3


def test_inspect_refuses_more_threads_than_cores(tmp_path):
    import os

    out = _run("inspect", str(tmp_path), "--threads", str((os.cpu_count() or 1) + 1))
    assert out.returncode == 2 and "this PC's cores" in out.stderr


def test_evaluate_names_a_malformed_annotation(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    for name in ("crazing_1", "scratches_1"):
        cv2.imwrite(str(tmp_path / "images" / f"{name}.jpg"), textured((200, 200)))
    (tmp_path / "annotations" / "crazing_1.xml").write_text("")
    out = _run("evaluate", "--dataset", "neu-det", str(tmp_path))
    assert out.returncode == 2 and "crazing_1.xml: not a readable VOC annotation" in out.stderr


def test_evaluate_normal_crops_skip_an_image_that_does_not_decode(tmp_path):
    voc = ("<annotation><object><name>crazing</name><bndbox><xmin>10</xmin><ymin>10</ymin><xmax>60</xmax>"
           "<ymax>60</ymax></bndbox></object></annotation>")
    for folder in ("images", "annotations"):
        (tmp_path / folder).mkdir()
    for i in (1, 2, 3):
        (tmp_path / "annotations" / f"crazing_{i}.xml").write_text(voc)
        cv2.imwrite(str(tmp_path / "images" / f"crazing_{i}.jpg"), textured((200, 200), seed=i))
    (tmp_path / "images" / "crazing_3.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = _run("evaluate", "--dataset", "neu-det", str(tmp_path), "--normal-crops", "64", "--json")
    assert out.returncode == 1, out.stderr  # one image could not be inspected, and that is reported
    metrics = json.loads(out.stdout)
    assert [e["name"] for e in metrics["errors"]] == ["crazing_3.jpg"]
    assert metrics["n_defect"] == 2 and metrics["n_normal"] == 2  # one box-free crop from each readable image


def test_default_manifest_is_found_from_another_directory(tmp_path):
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), textured((100, 100), 100))
    out = _run("inspect", str(image), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["error"] is None


def test_unknown_profile_exits_with_a_message(tmp_path):
    out = _run("inspect", "whatever.png", "--profile", "nope")
    assert out.returncode == 2 and "nope" in out.stderr


def test_evaluate_folder_dataset_json(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("good", "crazing", "scratches"):
        (tmp_path / name).mkdir()
        for i in range(3):
            frame = cv2.GaussianBlur(rng.integers(60, 200, (200, 200), dtype=np.uint8), (0, 0), 2)
            cv2.imwrite(str(tmp_path / name / f"{i}.png"), frame)
    (tmp_path / "crazing" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = _run("evaluate", "--dataset", "folder", str(tmp_path), "--normal-class", "good", "--json")
    metrics = json.loads(out.stdout)
    assert out.returncode == 1  # one image could not be inspected, and that is reported
    assert metrics["n"] == 10 and len(metrics["errors"]) == 1 and "broken.jpg" in metrics["errors"][0]["name"]
    for key in ("classifier_accuracy", "gate_recall", "false_alarm_rate", "image_auroc", "end_to_end_accuracy",
                "confusion_matrix", "class_names"):
        assert key in metrics
    assert 0.0 <= metrics["image_auroc"] <= 1.0
    assert np.asarray(metrics["confusion_matrix"]).sum() == 6  # the broken file is an error, not a row


@needs_neu
def test_evaluate_neu_test_split_keeps_the_classifier_and_pointing_figures(tmp_path):
    out = _run("evaluate", "--dataset", "neu-det", str(NEU), "--split", "test", "--normal-crops", "64", "--json",
               "--plots", str(tmp_path))
    assert out.returncode == 0, out.stderr
    metrics = json.loads(out.stdout)
    assert metrics["n_defect"] >= 200 and metrics["n_normal"] > 50
    assert metrics["classifier_accuracy"] >= 0.99
    # 0.811 with the head on 13x13 stem cells around the anomaly peak (0.833 with the gate before
    # 2026-11-26, 0.797 on the whole 15x15 stem; 0.860 when the classifier ran its own backbone):
    # docs/results.md, "Classifier". Below 0.9.
    assert metrics["cam_pointing_game"] >= 0.80
    assert 0.5 < metrics["image_auroc"] <= 1.0
    assert (tmp_path / "confusion_matrix.png").is_file()
    # The runtime flags exactly the test images the export's calibration said it would (one image of slack).
    assert abs(metrics["gate_recall"] - _recorded_gate_metrics("neu-steel")["gate_recall_warn"]) <= 1 / 222
    # The committed gate keeps its measured level (0.847; 0.775 before 2026-11-26; #2 asks 0.99).
    assert metrics["gate_recall"] >= 0.83
    by_class = metrics["gate_recall_by_class"]
    assert set(by_class) == set(metrics["class_names"])
    assert sum(entry["n"] for entry in by_class.values()) == metrics["n_defect"]
    weighted = sum(entry["n"] * entry["flagged"] for entry in by_class.values()) / metrics["n_defect"]
    assert weighted == pytest.approx(metrics["gate_recall"])
    assert all(entry["at_defect"] <= entry["flagged"] for entry in by_class.values())


def _tile_subset(root, counts: dict[str, int]):
    """A magnetic-tile layout of symlinks: the first ``count`` images (and masks) of each class folder."""
    for folder, count in counts.items():
        (root / folder / "Imgs").mkdir(parents=True)
        for image in sorted((MAGNETIC_TILE / folder / "Imgs").glob("*.jpg"))[:count]:
            for path in (image, image.with_suffix(".png")):
                if path.is_file():
                    (root / folder / "Imgs" / path.name).symlink_to(path)
    return root


@needs_models
@needs_tile
def test_evaluate_held_out_images_of_one_defect_class_or_normals_only(tmp_path):
    """Held-out sets need not hold every class: one defect class, or defect-free images only."""
    one = _run("evaluate", "--dataset", "magnetic-tile", str(_tile_subset(tmp_path / "one", {"MT_Free": 8, "MT_Crack": 4})),
               "--profile", "magnetic-tile", "--json")
    assert one.returncode == 0, one.stderr
    metrics = json.loads(one.stdout)
    assert (metrics["n_normal"], metrics["n_defect"]) == (8, 4) and 0.0 <= metrics["image_auroc"] <= 1.0
    normals = _run("evaluate", "--dataset", "magnetic-tile", str(_tile_subset(tmp_path / "free", {"MT_Free": 8})),
                   "--profile", "magnetic-tile", "--json")
    assert normals.returncode == 0, normals.stderr
    metrics = json.loads(normals.stdout)
    assert (metrics["n_normal"], metrics["n_defect"]) == (8, 0) and 0.0 <= metrics["false_alarm_rate"] <= 1.0
    empty = tmp_path / "empty" / "MT_Free" / "Imgs"
    empty.mkdir(parents=True)
    out = _run("evaluate", "--dataset", "magnetic-tile", str(tmp_path / "empty"), "--profile", "magnetic-tile")
    assert out.returncode == 2 and "no images in MT_<Class> folders" in out.stderr


@needs_models
@needs_tile
def test_evaluate_magnetic_tile_reports_pixel_auroc():
    out = _run("evaluate", "--dataset", "magnetic-tile", str(MAGNETIC_TILE), "--profile", "magnetic-tile",
               "--split", "test", "--json")
    assert out.returncode == 0, out.stderr
    metrics = json.loads(out.stdout)
    assert metrics["n_normal"] > 50 and metrics["n_defect"] > 20
    assert 0.5 < metrics["image_auroc"] <= 1.0 and 0.5 < metrics["pixel_auroc"] <= 1.0
    recorded = _recorded_gate_metrics("magnetic-tile")  # same images, same protocol as the export's
    assert abs(metrics["image_auroc"] - recorded["image_auroc"]) <= 0.01
    assert abs(metrics["gate_recall"] - recorded["gate_recall_warn"]) <= 1 / 43
    assert abs(metrics["false_alarm_rate"] - recorded["false_alarm_rate_warn"]) <= 1 / 107
    # Issue #2's target for the tile, met since the frame-level autoencoder (0.971; docs/results.md, "The anomaly gate").
    assert metrics["image_auroc"] >= 0.95
    # The tile's map leaves a 10% border band out; about 40% of its defect pixels lie there (breaks and frays
    # at the tile edge), so the whole-frame pixel AUROC is low (0.59) and the scored area's high (0.93).
    assert 0.2 < metrics["defect_pixels_outside_scored_area"] < 0.7
    assert metrics["pixel_auroc_scored_area"] >= 0.85 > metrics["pixel_auroc"]


def test_overlay_names_never_repeat(tmp_path):
    from edge_runtime.cli import _expand_folders

    for name in ("d1/a.png", "d1/a-2.png", "d2/a.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    names = [name for _, name in _expand_folders([tmp_path / "d1", tmp_path / "d2"])]
    assert len(set(names)) == 3, names


def test_the_cli_reports_its_release(capsys):
    from importlib.metadata import version

    from edge_runtime.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0 and capsys.readouterr().out.strip() == f"steel-inspect {version('steel-inspect')}"


@needs_models
def test_the_runtime_leaves_no_telemetry_store_behind(tmp_path):
    """onnxruntime 1.32 keeps a device id and an event store under ~/.cache/Microsoft unless told not to; the
    offline line PC's runtime opts out before onnxruntime loads, and a plant can opt in."""
    import os

    def run(home, **env):
        home.mkdir()  # a bare environment: onnxruntime keeps no telemetry where it sees a CI variable such as CI=true
        subprocess.run([sys.executable, "-m", "edge_runtime", "selftest"], cwd=ROOT, check=True, capture_output=True,
                       env={"HOME": str(home), "PATH": os.environ.get("PATH", ""), **env})
        return sorted(p.name for p in home.rglob("*") if p.is_file())

    assert run(tmp_path / "line") == []
    assert "deviceid" in run(tmp_path / "opted_in", ORT_DISABLE_TELEMETRY="0")  # the check can fail: the store exists
