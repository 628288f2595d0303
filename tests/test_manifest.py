"""models.manifest.json describes both profiles and every hash matches its file."""

import json
from pathlib import Path

import pytest

from edge_runtime.manifest import sha256_of
from tests.conftest import ROOT, needs_models, needs_neu, needs_tf, needs_tile

pytestmark = needs_models


def _files(entry):
    yield entry["autoencoder"]
    yield entry["classifier"]
    yield entry["classifier"]["head"]
    yield from entry["autoencoder"].get("keras_weights", [])
    yield from entry["classifier"].get("keras_weights", [])


def test_both_profiles_are_present_and_neu_is_the_default(manifest):
    assert manifest["default_profile"] == "neu-steel"
    assert {"neu-steel", "magnetic-tile"} <= set(manifest["profiles"])


@pytest.mark.parametrize("profile", ["neu-steel", "magnetic-tile"])
def test_every_sha256_matches_its_file(manifest, profile):
    for item in _files(manifest["profiles"][profile]):
        assert sha256_of(ROOT / item["path"]) == item["sha256"], item["path"]


@pytest.mark.parametrize("profile", ["neu-steel", "magnetic-tile"])
def test_profile_entry_is_complete(manifest, profile):
    entry = manifest["profiles"][profile]
    for key in ("preprocessing", "class_names", "thresholds", "split", "metrics", "training", "dataset"):
        assert key in entry, key
    assert entry["thresholds"]["warn"] <= entry["thresholds"]["defect"]
    assert entry["thresholds"]["false_alarm_rate"] == 0.01
    assert entry["training"]["tensorflow"].startswith("2.21") and entry["training"]["tf2onnx"].startswith("1.17")
    ae, clf = entry["autoencoder"], entry["classifier"]
    assert ae["opset"] >= 13 and clf["opset"] >= 13
    assert ae["inputs"][0]["shape"][1:3] == [None, None], "autoencoder must accept any frame size"
    assert [o["name"] for o in clf["outputs"]][:2] == ["probabilities", "features"]
    assert clf["outputs"][0]["shape"][-1] == len(entry["class_names"])
    # The classifier head continues from the gate's stem: its input is the gate's second output.
    extra_outputs = [ae["score"][part]["output"] for part in ("frame_term", "residual_detector") if ae["score"].get(part)]
    assert [o["name"] for o in ae["outputs"]] == ["error_map", ae["stem_output"], *extra_outputs]
    assert clf["inputs"][0]["shape"][-1] == ae["outputs"][1]["shape"][-1]
    assert all(ae["parity_max_abs_diff"][o["name"]] <= 1e-3 for o in ae["outputs"])
    assert clf["parity_max_abs_diff"]["probabilities"] <= 1e-4


def test_the_magnetic_tile_gate_has_a_frame_level_term_and_neu_none(manifest):
    """The tile's gate adds a frame-level autoencoder (chosen by measurement, docs/gate_design.md); its
    references are typical errors of normal frames, and its weights travel with it."""
    tile = manifest["profiles"]["magnetic-tile"]["autoencoder"]
    term = tile["score"]["frame_term"]
    assert term["output"] == "frame_error" and term["map_reference"] > 0 and term["frame_reference"] > 0
    assert term["weight"] > 0
    assert {"frame_bottleneck.weights.h5", "frame_whitening.npz"} <= {
        item["path"].rsplit("/", 1)[-1] for item in tile["keras_weights"]}
    assert "frame_term" not in manifest["profiles"]["neu-steel"]["autoencoder"]["score"]


def test_the_neu_gate_has_a_residual_detector_and_the_tile_none(manifest):
    """neu-steel's gate joins a residual detector to its error map (docs/gate_design.md, step 10): its
    map is an output of the same graph, its scale was set on the validation crops, and its weights and
    how it was trained travel with the gate."""
    neu = manifest["profiles"]["neu-steel"]["autoencoder"]
    detector = neu["score"]["residual_detector"]
    assert detector["output"] == "residual_map" and detector["scale"] > 0 and detector["sigma_cells"] >= 0
    assert detector["hidden"] and 0 < detector["strength"] and detector["n_painted_cells"] > 0
    assert "residual_detector.weights.h5" in {item["path"].rsplit("/", 1)[-1] for item in neu["keras_weights"]}
    assert "residual_detector" not in manifest["profiles"]["magnetic-tile"]["autoencoder"]["score"]


def test_committed_onnx_models_pass_the_checker(manifest):
    onnx = pytest.importorskip("onnx", reason="onnx (dev extra) checks the graphs")
    for entry in manifest["profiles"].values():
        for key in ("autoencoder", "classifier"):
            onnx.checker.check_model(onnx.load(str(ROOT / entry[key]["path"])), full_check=True)


def test_model_files_are_small(manifest):
    for entry in manifest["profiles"].values():
        for item in _files(entry):
            assert (ROOT / item["path"]).stat().st_size < 20 * 2**20, item["path"]


def test_reexport_names_the_int8_models_and_commissioned_thresholds_it_drops(tmp_path):
    from export.manifest_writer import update_manifest

    path = tmp_path / "models.manifest.json"
    old = {"autoencoder": {"path": "a.onnx"}, "classifier": {"path": "c.onnx", "int8": {"path": "c.int8.onnx"}},
           "thresholds": {"warn": 1.0, "defect": 2.0, "commissioned": {"frames": 300}}}
    assert update_manifest(path, "line-a", old) == []
    fresh = {"autoencoder": {"path": "a.onnx"}, "classifier": {"path": "c.onnx"}, "thresholds": {"warn": 1.5, "defect": 2.5}}
    dropped = update_manifest(path, "line-a", fresh)
    assert len(dropped) == 2
    assert "int8 classifier" in dropped[0] and "export.quantize" in dropped[0]
    assert "commissioned" in dropped[1] and "calibrate" in dropped[1]
    assert json.loads(path.read_text())["profiles"]["line-a"] == fresh


def test_a_manifest_of_a_newer_format_is_refused_by_name_and_the_export_writes_this_runtimes(manifest, tmp_path):
    """A runtime that read a newer manifest would ignore the fields it does not know and judge frames otherwise
    in silence: it refuses any format above its own. A manifest from before the check (no version) still loads."""
    from edge_runtime.errors import ManifestError
    from edge_runtime.manifest import MANIFEST_SCHEMA, load_manifest
    from export.manifest_writer import update_manifest

    assert manifest["schema_version"] == MANIFEST_SCHEMA  # the committed one is of this runtime's format
    path = tmp_path / "models.manifest.json"
    for schema in (MANIFEST_SCHEMA + 1, "2", 2.5, True, None):
        path.write_text(json.dumps({**manifest, "schema_version": schema}))
        with pytest.raises(ManifestError, match=f"manifest format {schema!r}, and this runtime reads formats up to"):
            load_manifest(path)
    path.write_text(json.dumps(["not", "a", "manifest"]))
    with pytest.raises(ManifestError, match="not a model manifest"):
        load_manifest(path)
    for document in ({k: v for k, v in manifest.items() if k != "schema_version"}, {**manifest, "schema_version": 1}):
        path.write_text(json.dumps(document))
        assert load_manifest(path)["profiles"].keys() == manifest["profiles"].keys()
        update_manifest(path, "line-a", {"autoencoder": {}, "classifier": {}, "thresholds": {"warn": 1, "defect": 2}})
        assert json.loads(path.read_text())["schema_version"] == MANIFEST_SCHEMA


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["magnetic-tile", "neu-steel"])
def test_thresholds_only_sets_the_committed_thresholds_again_and_leaves_the_models_alone(tmp_path, profile):
    """``python -m export --thresholds-only``: the same thresholds and gate metrics the manifest holds,
    from the deployed graph, with every model entry (files, hashes, int8) untouched; neu-steel's residual
    detector gets its scale set again as the export set it."""
    from edge_runtime.manifest import save_thresholds
    from export.__main__ import recalibrate_profile
    from tests.conftest import MAGNETIC_TILE, NEU, editable_manifest

    data = MAGNETIC_TILE if profile == "magnetic-tile" else NEU
    if not data.is_dir():
        pytest.skip(f"{profile} data not found at {data} (../shared absent)")
    path = editable_manifest(tmp_path)
    committed = json.loads(path.read_text())["profiles"][profile]
    edited = json.loads(path.read_text())
    detector = edited["profiles"][profile]["autoencoder"]["score"].get("residual_detector")
    if detector:
        detector["scale"] = 1.0
    path.write_text(json.dumps(edited))
    save_thresholds(path, profile, 1e-6, 2e-6, reason="a trial", changed_by="QE")  # stale values, to be set again
    backups = set(tmp_path.glob("*.bak"))
    recalibrate_profile(profile, path, tmp_path / "results")
    after = json.loads(path.read_text())["profiles"][profile]
    # the change log keeps the trial, and the recalibration is one more change with a backup of the manifest before it
    trial, again = after["thresholds"]["changes"]
    assert (trial["reason"], again["how"]) == ("a trial", "set again by python -m export --thresholds-only")
    assert (again["previous_warn"], again["warn"]) == (1e-6, after["thresholds"]["warn"])
    assert {again["backup"]} == {b.name for b in set(tmp_path.glob("*.bak")) - backups}
    assert bool(detector) == (profile == "neu-steel")
    for key in ("warn", "defect"):
        assert after["thresholds"][key] == pytest.approx(committed["thresholds"][key], rel=1e-6)
    assert after["metrics"]["gate_test"]["gate_recall_warn"] == committed["metrics"]["gate_test"]["gate_recall_warn"]
    intervals = after["metrics"]["gate_test"]["intervals_95"]
    assert intervals == committed["metrics"]["gate_test"]["intervals_95"]  # seeded: the same draws every time
    for figure, readings in intervals["bootstrap"].items():
        for low, high in readings.values():
            assert low <= after["metrics"]["gate_test"][figure] <= high, figure
    assert {k: after[k] for k in ("autoencoder", "classifier")} == {k: committed[k] for k in ("autoencoder", "classifier")}
    assert (tmp_path / "results" / "gate_scores.png").is_file()
    # neu-steel's detector scale was moved (edited above), and with it every score: its golden frames are dropped
    assert ("golden" in after) == (profile == "magnetic-tile") and "golden" in committed


@pytest.mark.parametrize("profile", ["neu-steel", "magnetic-tile"])
def test_selftest_scores_the_golden_frames_as_the_export_recorded(profile, capsys):
    from edge_runtime.cli import main as cli_main

    assert cli_main(["selftest", "--profile", profile, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and len(report["frames"]) == 4


def test_selftest_names_a_drifted_frame_and_refuses_a_changed_or_missing_golden_set(tmp_path, capsys):
    from edge_runtime.cli import main as cli_main
    from tests.conftest import editable_manifest

    path = editable_manifest(tmp_path)
    manifest = json.loads(path.read_text())
    golden = manifest["profiles"]["neu-steel"]["golden"]
    golden["frames"][1]["anomaly_score"] *= 1.01  # as if this PC computed 1% less than the export did
    path.write_text(json.dumps(manifest))
    assert cli_main(["selftest", "--manifest", str(path)]) == 1
    out = capsys.readouterr().out
    assert "scratch: score" in out and "DRIFTED" in out and out.count(": ok") == 3 and "DRIFT:" in out
    import numpy as np
    import onnxruntime

    exported_with = manifest["profiles"]["neu-steel"]["training"]["onnxruntime"]
    assert f"(the manifest's 'training' entry: {exported_with}, this PC: {onnxruntime.__version__})" in out
    assert f"numpy ({np.__version__})" in out

    copy = tmp_path / "strip.png"
    copy.write_bytes(Path(golden["frames"][0]["path"]).read_bytes() + b"\0")
    golden["frames"][0]["path"] = str(copy)
    path.write_text(json.dumps(manifest))
    assert cli_main(["selftest", "--manifest", str(path)]) == 2
    assert "golden frame strip.png does not match the manifest" in capsys.readouterr().err

    frames, golden["frames"] = golden["frames"], []  # an entry that would check nothing
    path.write_text(json.dumps(manifest))
    assert cli_main(["selftest", "--manifest", str(path)]) == 2
    assert "lists no frames" in capsys.readouterr().err
    golden["frames"] = frames

    del manifest["profiles"]["neu-steel"]["golden"]
    path.write_text(json.dumps(manifest))
    assert cli_main(["selftest", "--manifest", str(path)]) == 2
    assert "python -m export.golden --profile neu-steel" in capsys.readouterr().err


def test_selftest_checks_the_map_apart_from_a_large_frame_term(tmp_path, capsys):
    """The tile's golden scores are mostly its frame-level term; a drift of the map alone must still show."""
    from edge_runtime.cli import main as cli_main
    from tests.conftest import editable_manifest

    path = editable_manifest(tmp_path)
    manifest = json.loads(path.read_text())
    frame = manifest["profiles"]["magnetic-tile"]["golden"]["frames"][0]
    assert frame["frame_term"] > 0.9 * frame["anomaly_score"]  # the map is a few percent of the score
    frame["anomaly_score"] += 0.0009 * frame["anomaly_score"]  # within 0.1% of the total, all of it in the map
    path.write_text(json.dumps(manifest))
    assert cli_main(["selftest", "--profile", "magnetic-tile", "--manifest", str(path)]) == 1
    assert "strip: score" in capsys.readouterr().out


def test_thresholds_only_refuses_a_profile_commissioned_on_a_line(tmp_path):
    from export.__main__ import recalibrate_profile
    from tests.conftest import editable_manifest

    path = editable_manifest(tmp_path)
    manifest = json.loads(path.read_text())
    manifest["profiles"]["neu-steel"]["thresholds"]["commissioned"] = {"frames": 400}
    path.write_text(json.dumps(manifest))
    with pytest.raises(SystemExit, match="commissioned on a line"):
        recalibrate_profile("neu-steel", path, tmp_path / "results")


@needs_tf
def test_a_scoring_option_set_for_a_recalibration_goes_into_the_manifest_entry():
    """``python -m export --thresholds-only --set score_views=3``: the option is written into the
    entry's score before the thresholds are set on it; set back, it is written back."""
    from export.__main__ import _apply_scoring, main
    from training.profiles import PROFILES, with_overrides

    entry = json.loads((ROOT / "models.manifest.json").read_text())["profiles"]["neu-steel"]
    assert entry["autoencoder"]["score"].get("views", 1) == 1
    assert _apply_scoring(entry, with_overrides(PROFILES["neu-steel"], ["score_views=3"]))
    assert entry["autoencoder"]["score"]["views"] == 3
    assert not _apply_scoring(entry, with_overrides(PROFILES["neu-steel"], ["score_views=3"]))
    assert _apply_scoring(entry, PROFILES["neu-steel"]) and "views" not in entry["autoencoder"]["score"]
    with pytest.raises(SystemExit):  # a full export takes the profile as training recorded it
        main(["--profile", "neu-steel", "--set", "score_views=3"])


def test_the_manifest_says_how_the_residual_detector_was_trained_and_names_only_what_was_used():
    from types import SimpleNamespace

    from edge_runtime.manifest import ResidualDetector
    from export.__main__ import _residual_detector_entry

    scorer = SimpleNamespace(residual_detector=ResidualDetector(4.0, 6.3))
    trained = {"hidden": [64], "strength": 0.4, "copies": 4, "seed": 2, "n_normal_cells": 10, "n_painted_cells": 10,
               "input": "residual+cell", "kinds": ["blob", "streak"], "turns": False, "surface_copies": 0,
               "surface_amplitude": [0.25, 1.0], "camera_copies": 0}
    entry = _residual_detector_entry(scorer, {"residual_detector": trained})["residual_detector"]
    assert (entry["kinds"], entry["seed"], entry["scale"]) == (["blob", "streak"], 2, 6.3)
    assert not {"turns", "surface_copies", "surface_amplitude", "camera_copies"} & set(entry)
    marked = {**trained, "surface_copies": 1, "surface_amplitude": [0.25, 1.0]}
    entry = _residual_detector_entry(scorer, {"residual_detector": marked})["residual_detector"]
    assert (entry["surface_copies"], entry["surface_amplitude"]) == (1, [0.25, 1.0])
    camera = {**trained, "camera_copies": 1}
    assert _residual_detector_entry(scorer, {"residual_detector": camera})["residual_detector"]["camera_copies"] == 1
    assert _residual_detector_entry(scorer, {}) == {}


def test_one_rule_names_the_profile_a_command_or_page_works_on():
    from edge_runtime.errors import ManifestError
    from edge_runtime.manifest import logged_profile_name, profile_name

    two = {"profiles": {"a": {}, "b": {}}}
    assert profile_name({**two, "default_profile": "b"}) == "b" and profile_name(two, "a") == "a"
    assert profile_name({"profiles": {"only": {}}}) == "only"
    with pytest.raises(ManifestError, match="names no default_profile and holds 2 profiles .a, b.: name one"):
        profile_name(two)
    with pytest.raises(ManifestError, match="profile 'c' is not in the manifest; available: a, b"):
        profile_name(two, "c")
    assert logged_profile_name({**two, "default_profile": "a"}, ["b"]) == "b"
    assert logged_profile_name({**two, "default_profile": "a"}, []) == "a"
    assert logged_profile_name(two, ["a", "b"], "b") == "b"
    with pytest.raises(ManifestError, match="the log holds frames of the profiles a, b; name one with --profile"):
        logged_profile_name(two, ["a", "b"])


@needs_models
@pytest.mark.parametrize("command", [["thresholds"], ["inspect", "frame.png"], ["selftest"]])
def test_a_manifest_without_a_default_profile_asks_for_one_in_every_command(tmp_path, capsys, command):
    from edge_runtime.cli import main

    document = json.loads((ROOT / "models.manifest.json").read_text())
    del document["default_profile"]
    (tmp_path / "models.manifest.json").write_text(json.dumps(document))
    assert main([*command, "--manifest", str(tmp_path / "models.manifest.json")]) == 2
    assert "names no default_profile and holds 2 profiles (magnetic-tile, neu-steel)" in capsys.readouterr().err


@needs_neu
@needs_tile
@pytest.mark.parametrize("profile", ["neu-steel", "magnetic-tile"])
def test_the_recorded_split_digests_are_those_of_the_data_set_in_shared(manifest, profile):
    """``evaluate --split`` trusts them to tell the training data set from another: they must describe it."""
    from edge_runtime.datasets import split_digests, split_samples
    from edge_runtime.evaluation_cases import load_samples

    entry = manifest["profiles"][profile]
    samples = load_samples(entry["dataset"]["name"], ROOT / entry["dataset"]["path"])
    splits = split_samples(samples, entry["split"]["seed"], tuple(entry["split"]["fractions"]))
    assert split_digests(splits) == entry["split"]["digests"]


def test_a_command_run_outside_the_checkout_finds_the_manifest_the_line_names_or_says_how(tmp_path, monkeypatch):
    from edge_runtime.errors import ManifestError
    from edge_runtime.manifest import MANIFEST_ENV, default_manifest_path, load_manifest

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(MANIFEST_ENV, str(tmp_path / "line" / "models.manifest.json"))
    assert default_manifest_path() == tmp_path / "line" / "models.manifest.json"  # cron, in the home folder
    with pytest.raises(ManifestError, match="pass --manifest, or set STEEL_INSPECT_MANIFEST"):
        load_manifest()
    monkeypatch.delenv(MANIFEST_ENV)
    (tmp_path / "models.manifest.json").write_text("{}")
    assert default_manifest_path() == tmp_path / "models.manifest.json"


def test_a_golden_check_passes_only_when_every_part_agrees():
    from edge_runtime.selftest import GoldenCheck

    fine = dict(name="strip", expected_score=2.0, expected_frame_term=1.0, score=2.0, frame_term=1.0,
                max_probability_difference=0.01, same_top_class=True, probability_atol=0.05)
    assert GoldenCheck(**fine).passed
    for change in ({"same_top_class": False}, {"max_probability_difference": 0.06}, {"score": 2.01},
                   {"frame_term": 1.01, "score": 2.01}):  # the last: the map's part as recorded, the term drifted
        assert not GoldenCheck(**{**fine, **change}).passed, change


@pytest.mark.parametrize("edit, code, says", [
    (lambda g: g["frames"][1]["class_probabilities"].update(scratches=0.8), 1, "DRIFTED"),
    (lambda g: g["models"].update(autoencoder="0" * 64), 2, "other model files or another precision"),
    (lambda g: g.update(precision="fp32"), 2, "other model files or another precision"),
])
def test_selftest_refuses_drifted_probabilities_and_a_golden_set_of_other_models(tmp_path, capsys, edit, code, says):
    from edge_runtime.cli import main as cli_main
    from tests.conftest import editable_manifest

    path = editable_manifest(tmp_path)
    manifest = json.loads(path.read_text())
    assert manifest["profiles"]["neu-steel"]["precision"] == "int8"  # the golden set is the int8 head's
    edit(manifest["profiles"]["neu-steel"]["golden"])
    path.write_text(json.dumps(manifest))
    assert cli_main(["selftest", "--manifest", str(path)]) == code
    captured = capsys.readouterr()
    assert says in captured.out + captured.err


def test_an_export_names_its_profiles_so_a_new_lines_export_leaves_the_shipped_ones_alone(capsys):
    """``python -m export`` without --profile once re-exported every trained profile, dropping the shipped
    profiles' int8 heads and golden frames; it is refused before anything is read."""
    from export.__main__ import main

    with pytest.raises(SystemExit) as stopped:
        main([])
    assert stopped.value.code == 2 and "--profile" in capsys.readouterr().err
