"""Training data problems are reported by name, or stop the run at once with a reason."""

import logging
import shutil
from dataclasses import replace

import cv2
import numpy as np
import pytest

from edge_runtime.datasets import DatasetError, load_class_folders
from edge_runtime.preprocess import PreprocessSpec
from tests.conftest import ROOT, make_class_folders, needs_tf


def test_unreadable_training_files_are_named_and_skipped(tmp_path, caplog):
    from training.data import read_frames

    root = make_class_folders(tmp_path, ["good", "a", "b"], n=4)
    (root / "a" / "empty.png").write_bytes(b"")
    (root / "b" / "truncated.jpg").write_bytes(cv2.imencode(".jpg", np.zeros((64, 64), np.uint8))[1].tobytes()[:50])
    (root / "b" / "tiny.png").write_bytes(cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1].tobytes())
    samples = load_class_folders(root, normal_class="good")
    with caplog.at_level(logging.WARNING):
        frames, kept = read_frames(samples, PreprocessSpec())
    assert len(frames) == len(kept) == 12
    skipped = " ".join(caplog.messages)
    for name in ("empty.png", "truncated.jpg", "tiny.png"):
        assert name in skipped


def test_a_folder_of_only_unreadable_images_fails_with_a_reason(tmp_path):
    from training.data import read_frames

    root = make_class_folders(tmp_path, ["a", "b"], n=0)
    (root / "a" / "x.png").write_bytes(b"junk")
    (root / "b" / "y.png").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="none of the 2 images could be read"):
        read_frames(load_class_folders(root), PreprocessSpec())


@needs_tf
def test_gate_training_without_normal_images_or_boxes_stops_at_once(tmp_path):
    from training.profiles import folder_profile
    from training.train_autoencoder import train_autoencoder

    root = make_class_folders(tmp_path / "data", ["a", "b"], n=4)
    with pytest.raises(DatasetError, match="no defect-free images"):
        train_autoencoder(folder_profile("t", root, None), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@needs_tf
def test_a_new_line_with_the_frame_level_autoencoder_trains_and_builds_a_graph_with_its_output(tmp_path):
    from training.profiles import FRAME_TAP, PROFILES, folder_profile
    from training.train_autoencoder import load_anomaly_model, train_autoencoder

    root = make_class_folders(tmp_path / "data", ["good", "dent", "scar"], n=30)
    profile = replace(folder_profile("t", root, "good", frame_level=True), frame_epochs=3, gate_epochs=1)
    config = train_autoencoder(profile, tmp_path / "out")
    assert config["frame"]["tap"] == FRAME_TAP and config["frame"]["n_vectors"] >= 20
    assert profile.gate_taps == PROFILES["magnetic-tile"].gate_taps  # the tile's measured recipe
    assert {"frame_bottleneck.weights.h5", "frame_whitening.npz"} <= {p.name for p in (tmp_path / "out").iterdir()}
    model = load_anomaly_model(tmp_path / "out")
    assert model.output_names == ["error_map", "stem", "frame_error"]
    outputs = model.predict(np.random.default_rng(0).random((2, 64, 96, 1), np.float32), verbose=0)
    assert outputs[0].shape == (2, 8, 12, 1) and outputs[2].shape == (2, 1, 1, 1)
    assert np.all(np.isfinite(outputs[2])) and np.all(outputs[2] >= 0)


@needs_tf
def test_camera_copies_of_the_gates_normal_frames_enter_its_cells_and_its_frame_level_vectors(tmp_path):
    from edge_runtime.datasets import split_samples
    from training.profiles import folder_profile
    from training.train_autoencoder import train_autoencoder

    root = make_class_folders(tmp_path / "data", ["good", "dent", "scar"], n=30)
    profile = replace(folder_profile("t", root, "good", frame_level=True), frame_epochs=1, gate_epochs=1,
                      gate_camera_copies=1)
    normals = [s for s in split_samples(profile.load(), profile.seed, profile.split_fractions)["train"] if s.is_normal]
    config = train_autoencoder(profile, tmp_path / "out")
    assert config["camera_copies"] == 1
    assert config["n_train_images"] == config["frame"]["n_vectors"] == 2 * len(normals)


@needs_tf
def test_the_frame_level_autoencoder_refuses_too_few_normal_frames(tmp_path):
    from training.profiles import folder_profile
    from training.train_autoencoder import train_autoencoder

    root = make_class_folders(tmp_path / "data", ["good", "dent", "scar"], n=6)
    profile = replace(folder_profile("t", root, "good", frame_level=True), gate_epochs=1)
    with pytest.raises(DatasetError, match="too few for the frame-level autoencoder"):
        train_autoencoder(profile, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before any training


@needs_tf
def test_gate_taps_that_disagree_with_the_feature_stride_stop_before_any_data_is_read(tmp_path):
    from training.profiles import folder_profile
    from training.train_autoencoder import train_autoencoder

    profile = replace(folder_profile("t", tmp_path / "no-such-folder", None), gate_taps="block6+13/16")
    with pytest.raises(ValueError, match="give stride 16, but feature_stride is 8"):
        train_autoencoder(profile, tmp_path / "out")


@needs_tf
def test_classifier_batches_keep_frames_of_one_size_together_and_cover_every_stem():
    from training.train_classifier import ShapeBatches

    stems = [np.full((15, 15, 2), i, np.float32) for i in range(7)] + [np.full((9, 20, 2), i, np.float32)
                                                                      for i in range(7, 10)]
    labels = np.array([0, 1] * 5)
    batches = ShapeBatches(stems, labels, {0: 1.0, 1: 3.0}, batch_size=4, shuffle=True, seed=0)
    seen = []
    for i in range(len(batches)):
        x, y, w = batches[i]
        assert len({s.shape for s in x}) == 1 and len(x) <= 4
        ids = x[:, 0, 0, 0].astype(int).tolist()
        assert y.tolist() == labels[ids].tolist() and w.tolist() == [1.0 if v == 0 else 3.0 for v in y]
        seen += ids
    assert sorted(seen) == list(range(10))


@needs_tf
def test_classifier_sees_windows_of_the_deployed_size_anywhere_in_training_and_centred_in_validation():
    from training.train_classifier import ShapeBatches

    rows, cols = np.meshgrid(np.arange(15), np.arange(15), indexing="ij")
    stem = np.stack([rows, cols], -1).astype(np.float32)  # each cell holds its own (row, col)
    small = stem[:9, :20 - 11]  # smaller than the window: passed whole
    train = ShapeBatches([stem] * 64 + [small], np.zeros(65, int), None, 65, True, seed=0, window=(13, 13))
    corners = set()
    for i in range(len(train)):
        x = train[i][0]
        if x.shape[1:3] == (13, 13):
            corners |= {(int(s[0, 0, 0]), int(s[0, 0, 1])) for s in x}
        else:
            assert x.shape[1:3] == small.shape[:2]
    assert corners == {(r, c) for r in range(3) for c in range(3)}  # every offset the runtime can pick
    val = ShapeBatches([stem], np.zeros(1, int), None, 1, False, seed=0, window=(13, 13))
    assert val[0][0][0, 0, 0].tolist() == [1.0, 1.0]  # centred


@needs_tf
@pytest.mark.parametrize("shuffle", [True, False])
def test_classifier_trains_on_frames_of_several_sizes(shuffle):
    """Keras fixes the input dimensions its first two batches share. Three shapes, two of which share each
    dimension with the first (a 200x120 frame turned both ways beside square ones), used to fail mid-epoch."""
    import keras

    from training.train_classifier import ShapeBatches

    shapes = [(15, 15, 4), (15, 10, 4), (10, 15, 4)]
    stems = [np.ones(shape, np.float32) for shape in shapes for _ in range(30)]
    labels = np.array([0, 1] * 45)
    batches = ShapeBatches(stems, labels, None, batch_size=8, shuffle=shuffle, seed=1)
    assert batches.shapes == set(shapes)
    model = keras.Sequential([keras.Input((None, None, 4)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(batches.for_fit(), validation_data=batches.for_fit(), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and len(history.history["val_loss"]) == 2
    same = ShapeBatches(stems[:30], labels[:30], None, batch_size=8, shuffle=shuffle, seed=1)
    assert same.for_fit() is same  # one shape: batches as before, the deployed profiles' training unchanged


@needs_tf
def test_classifier_training_inputs_are_the_gates_padded_frames():
    from edge_runtime.preprocess import model_input
    from training.profiles import PROFILES
    from training.train_classifier import gate_inputs

    profile = PROFILES["neu-steel"]
    frame = np.random.default_rng(0).random((200, 200), np.float32)
    inputs = gate_inputs([frame], profile, variants=(0, 1))
    padded, _ = model_input(frame, profile.preprocess, 16, profile.pad_margin)
    np.testing.assert_array_equal(inputs[0][0, :, :, 0], padded)
    assert inputs[1].shape == inputs[0].shape and not np.array_equal(inputs[1], inputs[0])  # rotated copy


@needs_tf
def test_normal_cells_follow_the_boxes_when_the_gate_resizes_the_frame():
    from edge_runtime.datasets import Box, Sample
    from edge_runtime.preprocess import model_input
    from training.train_autoencoder import normal_cell_mask

    sample = Sample(None, "patches", boxes=(Box(0, 0, 99, 199),))  # left half of a 200x200 frame
    for size in (None, (100, 100)):
        _, geometry = model_input(np.zeros((200, 200), np.float32), PreprocessSpec(anomaly_size=size), 16, 16)
        grid = (geometry.padded_shape[0] // 8, geometry.padded_shape[1] // 8)
        free = normal_cell_mask(sample, grid, geometry, margin=0, stride=8)
        columns = free.all(axis=0)
        scale = 200 / geometry.work_shape[1]
        centres_x = (np.arange(grid[1]) * 8 + 4 - geometry.left) * scale
        assert not columns[(centres_x >= 0) & (centres_x <= 99)].any()
        assert columns[centres_x > 99].all()


@needs_tf
def test_frame_cells_are_those_centred_inside_the_frame_not_on_its_reflected_margin():
    from edge_runtime.preprocess import model_input
    from training.train_autoencoder import frame_cell_mask

    _, geometry = model_input(np.zeros((200, 120), np.float32), PreprocessSpec(), 16, 16)
    grid = (geometry.padded_shape[0] // 8, geometry.padded_shape[1] // 8)
    inside = frame_cell_mask(grid, geometry, 8)
    assert inside.shape == grid and inside[grid[0] // 2, grid[1] // 2]
    assert not inside[0].any() and not inside[:, 0].any() and not inside[-1].any() and not inside[:, -1].any()
    assert inside.sum(axis=0).max() == 25 and inside.sum(axis=1).max() == 15  # 200 / 8 rows, 120 / 8 columns


@needs_tf
def test_mirrored_frames_carry_their_boxes_with_the_pixels():
    from edge_runtime.datasets import Box, Sample
    from training.train_autoencoder import mirrored

    frame = np.zeros((40, 60), np.float32)
    frame[5:10, 2:12] = 1.0  # the boxed defect
    sample = Sample(None, "patches", boxes=(Box(2, 5, 11, 9),))
    frames, samples = mirrored([frame], [sample])
    assert len(frames) == len(samples) == 2
    for mirror, mirrored_sample in zip(frames, samples):
        (box,) = mirrored_sample.boxes
        assert mirror[box.ymin: box.ymax + 1, box.xmin: box.xmax + 1].all() and mirror.sum() == frame.sum()


def test_turned_frames_carry_their_boxes_with_the_pixels():
    from edge_runtime.datasets import Box, Sample
    from training.train_autoencoder import turned

    frame = np.zeros((40, 60), np.float32)
    frame[5:10, 2:12] = 1.0  # the boxed defect
    sample = Sample(None, "patches", boxes=(Box(2, 5, 11, 9),))
    (turn,), (turned_sample,) = turned([frame], [sample])
    (box,) = turned_sample.boxes
    assert turn.shape == (60, 40) and turn.flags.c_contiguous
    assert turn[box.ymin: box.ymax + 1, box.xmin: box.xmax + 1].all() and turn.sum() == frame.sum()


@needs_tf
def test_aligned_upsampling_keeps_each_coarse_cell_on_the_fine_cell_it_is_centred_on():
    from training.autoencoder import AlignedUpsampling2

    x = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2)
    y = np.asarray(AlignedUpsampling2()(x))
    assert y.shape == (2, 6, 8, 2)
    np.testing.assert_array_equal(y[:, 1::2, 1::2], x)  # stride-16 cell m sits on stride-8 cell 2m+1
    np.testing.assert_allclose(y[:, 2::2, 1::2], 0.5 * (x[:, :-1] + x[:, 1:]))  # cell 2m: halfway
    np.testing.assert_array_equal(y[:, 0, 1::2], x[:, 0])  # the first row repeats


def _train(*args):
    from training.__main__ import main

    return main(list(args))


def test_a_data_set_too_small_to_split_stops_before_any_training(tmp_path, capsys):
    root = make_class_folders(tmp_path / "data", ["good", "dent", "scar"], n=3)
    out = tmp_path / "out"
    assert _train("all", "--profile", "line", "--data", str(root), "--normal-class", "good", "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert "no readable image of dent in val" in err and "from 6 images of it on" in err
    assert not out.exists()  # no record, and no empty folder, of a training that did not happen


def test_a_class_of_only_unreadable_files_stops_the_run_and_is_named(tmp_path, capsys, caplog):
    root = make_class_folders(tmp_path / "data", ["good", "dent", "scar"], n=8)
    (root / "oil_spot").mkdir()
    for name in ("empty.png", "text.jpg", "text.bmp"):
        (root / "oil_spot" / name).write_bytes(b"" if name == "empty.png" else b"not an image")
    with caplog.at_level(logging.WARNING):
        code = _train("classifier", "--profile", "line", "--data", str(root), "--normal-class", "good",
                      "--out", str(tmp_path / "out"))
    assert code == 2 and "no readable image of oil_spot in train" in capsys.readouterr().err
    assert all(name in " ".join(caplog.messages) for name in ("empty.png", "text.jpg", "text.bmp"))


@pytest.mark.parametrize("args,message", [
    (["--profile", "neu-steel"], "'neu-steel' is a built-in profile"),
    (["--profile", "line", "--epochs", "0"], "must be 1 or more"),
])
def test_training_arguments_that_cannot_be_meant_are_refused(tmp_path, capsys, args, message):
    root = make_class_folders(tmp_path / "data", ["good", "dent", "scar"], n=8)
    with pytest.raises(SystemExit) as stopped:
        _train("autoencoder", *args, "--data", str(root), "--normal-class", "good", "--out", str(tmp_path / "out"))
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_a_new_lines_name_and_normal_class_are_checked_before_anything_is_made(tmp_path, capsys):
    root = make_class_folders(tmp_path / "data", ["good", "dent", "scar"], n=8)
    with pytest.raises(SystemExit) as stopped:
        _train("all", "--profile", "../outside", "--data", str(root), "--normal-class", "good")
    assert stopped.value.code == 2 and "profile name '../outside'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        _train("all", "--profile", "line", "--data", str(root), "--out", str(tmp_path / "out"))
    assert stopped.value.code == 2
    assert "--normal-class (the gate learns from it alone); the sub-folders of" in capsys.readouterr().err
    assert not (ROOT / "outside").exists() and not (tmp_path / "out").exists()


def test_class_folder_problems_say_what_is_there(tmp_path):
    import os

    with pytest.raises(DatasetError, match="no class sub-folders"):
        load_class_folders((tmp_path / "empty").mkdir() or tmp_path / "empty", "good")
    root = make_class_folders(tmp_path / "data", ["good", "dent", "scar"], n=2)
    with pytest.raises(DatasetError, match="no class folder named 'Good' .*folders are dent, good, scar"):
        load_class_folders(root, "Good")
    (root / "scar" / "day2").mkdir()
    (root / "scar" / "day2" / "x.png").write_bytes((root / "scar" / "0.png").read_bytes())
    assert sum(s.label == "scar" for s in load_class_folders(root, "good")) == 3  # images in folders under a class
    os.mkdir(os.path.join(os.fsencode(root), b"d\xe9faut"))
    with pytest.raises(DatasetError, match="not named in UTF-8"):
        load_class_folders(root, "good")


def test_frame_level_is_refused_for_the_built_in_profiles(capsys):
    from training.__main__ import main

    with pytest.raises(SystemExit) as stopped:
        main(["autoencoder", "--profile", "neu-steel", "--frame-level"])
    assert stopped.value.code == 2
    assert "--frame-level is for a new product line" in capsys.readouterr().err


def test_export_finds_a_new_line_as_training_recorded_it(tmp_path):
    import json

    from training.profiles import FRAME_TAP, PROFILES, trained_profile

    assert trained_profile("magnetic-tile", tmp_path) is PROFILES["magnetic-tile"]
    record = tmp_path / "line-b" / "keras" / "profile.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"name": "line-b", "dataset": "folder", "data_dir": str(tmp_path / "data"),
                                  "normal_class": "good", "frame_tap": FRAME_TAP}))
    line = trained_profile("line-b", tmp_path)
    assert (line.dataset, line.normal_class, line.frame_tap) == ("folder", "good", FRAME_TAP)
    with pytest.raises(KeyError, match="neither built in"):
        trained_profile("line-c", tmp_path)


def test_the_export_rebuilds_the_profile_with_the_settings_its_weights_were_trained_with(tmp_path, capsys,
                                                                                           monkeypatch):
    """``--set seed=1`` at training splits the data set otherwise: an export on the defaults would take training
    images for test images. The record carries the settings, and one step cannot mix settings with the others."""
    import json

    import training.__main__ as training_main
    from training.__main__ import main
    from training.profiles import PROFILES, trained_profile

    for name, extra in (("neu-steel", {}), ("line-b", {"dataset": "folder", "data_dir": str(tmp_path),
                                                        "normal_class": "good", "frame_tap": None})):
        record = tmp_path / name / "keras" / "profile.json"
        record.parent.mkdir(parents=True)
        record.write_text(json.dumps({"name": name, **extra, "overrides": ["seed=1", "gate_epochs=3"]}))
        profile = trained_profile(name, tmp_path)
        assert (profile.seed, profile.gate_epochs) == (1, 3) and profile.seed != PROFILES["neu-steel"].seed
    trial = tmp_path / "trial"  # a trial's weights carry their own record: studies.gate_check --weights reads it
    trial.mkdir()
    (trial / "profile.json").write_text(json.dumps({"name": "neu-steel", "overrides": ["gate_seed=2"]}))
    assert trained_profile("neu-steel", tmp_path, weights=trial).seed == PROFILES["neu-steel"].seed
    assert trained_profile("neu-steel", tmp_path, weights=trial).gate_seed == 2
    deployed = tmp_path / "neu-steel" / "keras"
    monkeypatch.setattr(training_main, "ROOT", tmp_path.parent / "checkout")
    (tmp_path.parent / "checkout" / "models").mkdir(parents=True)
    (tmp_path.parent / "checkout" / "models" / "neu-steel").symlink_to(deployed.parent)
    with pytest.raises(SystemExit) as stopped:
        main(["classifier", "--profile", "neu-steel", "--set", "seed=1"])
    assert stopped.value.code == 2 and "trained with --set ['gate_epochs=3', 'seed=1']" in capsys.readouterr().err
    trained = []
    monkeypatch.setattr("training.train_classifier.train_classifier", lambda *args, **kwargs: trained.append(args))
    monkeypatch.setattr(training_main, "check_splits", lambda *args: None)  # no data set read: a stubbed step
    monkeypatch.setattr(training_main, "split_samples", lambda *args: {})
    monkeypatch.setattr(type(PROFILES["neu-steel"]), "load", lambda profile: [])
    with pytest.raises(SystemExit):  # the deployed folder, however it is named
        main(["classifier", "--profile", "neu-steel", "--set", "seed=1", "--out", str(deployed)])
    trial = tmp_path / "trial_copy"
    shutil.copytree(deployed, trial)  # a trial on a copy of the deployed weights may mix, and records every setting
    assert main(["classifier", "--profile", "neu-steel", "--set", "seed=2", "--out", str(trial)]) == 0
    assert trained and json.loads((trial / "profile.json").read_text())["overrides"] == ["gate_epochs=3", "seed=2"]


@needs_tf
def test_the_supervised_ceiling_learns_box_cells_against_box_free_cells_never_margin_cells():
    """The gate study's ceiling labels a cell a defect when its centre lies in a box, normal when it
    keeps the profile's margin from every box, and leaves out the cells between and on the padding."""
    from edge_runtime.datasets import Box, Sample
    from studies.gate_experiments import labelled_cells
    from training.profiles import PROFILES

    class ColumnExtractor:  # feature = the cell's column index, at the gate's stride 8
        def predict(self, batch, verbose=0):
            n, height, width, _ = batch.shape
            return np.broadcast_to(np.arange(width // 8, dtype=np.float32)[None, None, :, None],
                                   (n, height // 8, width // 8, 1))

    profile = PROFILES["neu-steel"]
    sample = Sample(None, "patches", boxes=(Box(0, 0, 79, 199),))  # the left 80 px of a 200x200 frame
    normal, boxed = labelled_cells(ColumnExtractor(), [np.zeros((200, 200), np.float32)], [sample], profile)
    centre = lambda column: column * 8 + 4 - profile.pad_margin  # frame pixels, the frame is not resized
    assert len(normal) and len(boxed)
    assert all(0 <= centre(c) <= 79 for c in boxed[:, 0])
    assert all(79 + profile.box_margin < centre(c) < 200 for c in normal[:, 0])


@needs_tf
def test_memory_bank_reconstruction_error_is_the_distance_to_the_nearest_normal_cell():
    """The gate study's memory-bank variant: a cell in memory rebuilds exactly; another one's error is
    its mean squared distance over channels to the nearest member, as the bottleneck's error map is."""
    from studies.gate_experiments import NearestMemoryError, greedy_coreset

    memory = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], np.float32)
    cells = np.array([[[[4.0, 0.0], [1.0, 1.0]], [[0.0, 3.0], [9.0, 9.0]]]], np.float32)  # (1, 2, 2, 2)
    error = NearestMemoryError(memory, k=1, chunk=3)(cells)
    assert error.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(error[0, :, :, 0], [[0.0, 1.0], [0.5, (25 + 81) / 2]], rtol=1e-6)
    points = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [0.0, 10.0], [0.05, 0.05]], np.float32)
    chosen = {tuple(v) for v in greedy_coreset(points, 3, seed=0)}
    assert {(10.0, 0.0), (0.0, 10.0)} <= chosen  # the far ones first: the coreset covers the spread


@needs_tf
def test_a_gate_on_a_pruned_backbone_saves_its_pruning_and_rebuilds_the_same_graph(tmp_path):
    from training.backbone import PRUNING_FILE
    from training.profiles import folder_profile
    from training.train_autoencoder import gate_files, load_anomaly_model, train_autoencoder

    root = make_class_folders(tmp_path / "data", ["good", "dent", "scar"], n=12)
    profile = replace(folder_profile("t", root, "good"), gate_epochs=1, backbone_keep_ratio=0.5, backbone_fit_frames=6)
    config = train_autoencoder(profile, tmp_path / "out")
    assert config["backbone"]["keep_ratio"] == 0.5 and config["backbone"]["expansion_widths"]["1"] == 48
    assert PRUNING_FILE in gate_files(config) and (tmp_path / "out" / PRUNING_FILE).is_file()
    import keras

    extractor = load_anomaly_model(tmp_path / "out").get_layer("feature_extractor")
    backbone, = [layer for layer in extractor.layers if isinstance(layer, keras.Model)]
    assert backbone.get_layer("block_1_expand").filters == 48

    config = train_autoencoder(replace(profile, backbone_keep_ratio=None), tmp_path / "out")
    assert config["backbone"] is None and not (tmp_path / "out" / PRUNING_FILE).exists()  # no stale pruning left


def test_trial_settings_are_read_as_the_profile_fields_they_set():
    from training.profiles import PROFILES, with_overrides

    base = PROFILES["neu-steel"]
    trial = with_overrides(base, ["backbone_keep_ratio=0.75", "gate_seed=2", "gate_hidden=[64, 16, 64]",
                                  "backbone_selection=least_squares", "score_level_cap=null"])
    assert (trial.backbone_keep_ratio, trial.gate_seed, trial.gate_hidden) == (0.75, 2, (64, 16, 64))
    assert (trial.backbone_selection, trial.score_level_cap) == ("least_squares", None)
    assert with_overrides(base, []) == base
    for bad in ("gate_seed", "no_such_field=1"):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            with_overrides(base, [bad])


def test_a_painted_defect_changes_the_frame_only_around_its_mask_and_stays_in_range():
    from training.synthetic_defects import ALL_KINDS, paint_defect

    frame = np.random.default_rng(0).uniform(0.3, 0.6, (120, 160)).astype(np.float32)
    rng = np.random.default_rng(1)
    for kind in [kind for kind in ALL_KINDS for _ in range(4)]:
        defect = paint_defect(frame, (60, 80), rng, kinds=(kind,))
        assert defect.frame.shape == frame.shape and defect.frame.dtype == np.float32
        assert 0.0 <= defect.frame.min() and defect.frame.max() <= 1.0
        assert defect.mask.any() and defect.mask[55:66, 75:86].any()  # painted where it was asked
        changed = np.abs(defect.frame - frame) > 1e-3
        far = cv2.dilate(defect.mask.astype(np.uint8), np.ones((25, 25), np.uint8)) == 0
        assert not (changed & far).any()  # nothing moves away from the paint


def test_a_defect_s_contrast_is_read_in_spreads_of_the_box_free_steel():
    from edge_runtime.datasets import Box
    from training.defect_contrast import contrast

    frame = np.random.default_rng(0).normal(0.5, 0.02, (100, 100)).astype(np.float32)
    frame[40:60, 48:52] = 0.9  # a bright line, 20 spreads above the steel
    bright, dark = contrast(frame, (Box(40, 30, 60, 70),))
    assert 15 < bright < 25 and dark < 3
    assert contrast(frame, (Box(0, 0, 99, 99),)) is None  # no steel left outside the box


def test_an_unknown_kind_of_painted_defect_is_refused_by_name():
    from training.synthetic_defects import paint_defect

    frame = np.full((40, 40), 0.5, np.float32)
    for kinds in ((), ("blob", "smudge")):
        with pytest.raises(ValueError, match="synthetic defect kinds"):
            paint_defect(frame, (20, 20), np.random.default_rng(0), kinds=kinds)


def test_a_defect_is_only_centred_where_it_is_allowed():
    from training.synthetic_defects import defect_centre

    allowed = np.zeros((50, 50), bool)
    allowed[40:, :10] = True
    rng = np.random.default_rng(0)
    centres = [defect_centre(allowed, rng) for _ in range(50)]
    assert all(allowed[c] for c in centres)
    assert defect_centre(np.zeros((5, 5), bool), rng) is None


@needs_tf
def test_painted_cells_are_those_with_paint_within_half_a_stride_of_their_centre():
    from edge_runtime.preprocess import model_input
    from training.train_autoencoder import cell_centres, painted_cell_mask

    _, geometry = model_input(np.zeros((200, 200), np.float32), PreprocessSpec(), 16, 16)
    grid = (geometry.padded_shape[0] // 8, geometry.padded_shape[1] // 8)
    mask = np.zeros((200, 200), bool)
    mask[100, 37] = True  # one painted pixel
    cells = painted_cell_mask(mask, grid, geometry, 8)
    rows, cols = cell_centres(grid, geometry, 8)
    near_rows = (rows - 4 <= 100) & (100 < rows + 4)
    near_cols = (cols - 4 <= 37) & (37 < cols + 4)
    assert near_rows.sum() == 1 and near_cols.sum() == 1  # the cell whose square holds the pixel
    assert np.array_equal(cells, near_rows[:, None] & near_cols[None, :])


@needs_tf
def test_a_denoising_gate_learns_painted_cells_as_the_clean_ones_and_records_how_many(tmp_path):
    from training.profiles import folder_profile
    from training.train_autoencoder import train_autoencoder

    root = make_class_folders(tmp_path / "data", ["good", "dent", "scar"], n=8)
    profile = replace(folder_profile("t", root, "good"), gate_epochs=1, gate_hidden=(16, 4, 16),
                      gate_synthetic_defects=2)
    config = train_autoencoder(profile, tmp_path / "out")
    assert config["synthetic_defects"] == 2 and config["n_synthetic_vectors"] > 0
    assert config["n_vectors"] > 0


@needs_tf
def test_detector_members_fitted_apart_are_joined_into_one_graph_averaging_their_probabilities():
    from training.train_residual_detector import _joined
    from training import autoencoder as ae

    members = []
    for seed in (0, 1):
        member = ae.residual_detector(6, (4,))
        rng = np.random.default_rng(seed)
        member.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in member.get_weights()])
        members.append((member, {}))
    residual = np.random.default_rng(2).normal(size=(1, 3, 5, 6)).astype(np.float32)
    expected = np.mean([m(residual).numpy() for m, _ in members], axis=0)
    joined = _joined(members, 6, (4,))
    np.testing.assert_allclose(joined(residual).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(members[0][0](residual).numpy(), members[1][0](residual).numpy())  # two different fits


@needs_tf
def test_a_detector_reading_the_cell_beside_its_residual_is_trained_recorded_and_built_into_the_graph(tmp_path):
    from training.profiles import folder_profile
    from training.train_autoencoder import load_anomaly_model, train_autoencoder

    root = make_class_folders(tmp_path / "data", ["good", "dent", "scar"], n=8)
    profile = replace(folder_profile("t", root, "good"), gate_epochs=1, gate_hidden=(16, 4, 16), residual_hidden=(8,),
                      residual_members=2, residual_input="residual+cell", residual_epochs=1, residual_max_vectors=500)
    config = train_autoencoder(profile, tmp_path / "out")
    detector = config["residual_detector"]
    assert (detector["members"], detector["input"], len(detector["epochs_run"])) == (2, "residual+cell", 2)
    graph = load_anomaly_model(tmp_path / "out", with_stem=False)
    whitened_channels = graph.get_layer("whiten").output.shape[-1]
    assert graph.get_layer("residual_detector").inputs[0].shape[-1] == detector["channels"] == 2 * whitened_channels
    error_map, residual_map = graph(np.random.default_rng(0).random((1, 96, 96, 1), np.float32))
    assert residual_map.shape == error_map.shape
    assert 0.0 <= float(np.min(residual_map)) and float(np.max(residual_map)) <= 1.0


@needs_tf
@pytest.mark.parametrize("setting", [{"residual_input": "residuals"}, {"residual_members": 0},
                                     {"residual_kinds": ("blob", "smudge")}, {"residual_surface_copies": -1},
                                     {"residual_camera_copies": -1}])
def test_a_detector_setting_that_cannot_be_built_stops_before_any_data_is_read(tmp_path, setting):
    from training.profiles import folder_profile
    from training.train_residual_detector import train_residual_detector

    profile = replace(folder_profile("t", tmp_path / "no-such-folder", "good"), residual_hidden=(8,), **setting)
    with pytest.raises(ValueError, match=next(iter(setting))):
        train_residual_detector(profile, tmp_path / "out")


def _grainy(seed: int, spread: float = 0.05) -> np.ndarray:
    return (0.5 + np.random.default_rng(seed).normal(0, spread, (60, 80))).astype(np.float32)


def test_rolling_marks_run_along_one_image_axis_over_the_whole_frame():
    from training.surface_marks import rolling_marks

    axes = set()
    for seed in range(8):
        frame = _grainy(seed)
        marks = rolling_marks(frame, np.random.default_rng(seed)) - frame
        assert marks.shape == frame.shape and marks.dtype == np.float32
        along_rows = np.abs(np.diff(marks, axis=1)).mean() < np.abs(np.diff(marks, axis=0)).mean()
        smooth, rough = (np.diff(marks, axis=1), np.diff(marks, axis=0)) if along_rows else \
            (np.diff(marks, axis=0), np.diff(marks, axis=1))
        assert np.abs(smooth).mean() < 0.3 * np.abs(rough).mean()  # a line changes slowly along itself
        quarters = [marks[:30, :40], marks[:30, 40:], marks[30:, :40], marks[30:, 40:]]
        assert min(q.std() for q in quarters) > 0.2 * marks.std()  # over the whole frame, not a spot
        axes.add(along_rows)
    assert axes == {True, False}


def test_rolling_marks_are_as_strong_as_the_frame_is_grainy_and_stay_in_range():
    from training.surface_marks import rolling_marks

    fine, coarse = _grainy(0, 0.02), _grainy(0, 0.08)
    fine_marks = rolling_marks(fine, np.random.default_rng(3)) - fine
    coarse_marks = rolling_marks(coarse, np.random.default_rng(3)) - coarse
    assert coarse_marks.std() == pytest.approx(4 * fine_marks.std(), rel=0.05)
    bright = rolling_marks(np.full((60, 80), 0.99, np.float32) + _grainy(1, 0.05) - 0.5, np.random.default_rng(1))
    assert 0.0 <= bright.min() and bright.max() <= 1.0


def test_marked_copies_keep_their_samples_and_refuse_a_negative_count():
    from edge_runtime.datasets import Box, Sample
    from training.surface_marks import marked_copies

    frames = [_grainy(0), _grainy(1)]
    samples = [Sample(None, "patches", boxes=(Box(2, 5, 11, 9),)), Sample(None, "scratches")]
    marked = marked_copies(frames, samples, copies=2, seed=0)
    assert len(marked.frames) == 4 and marked.samples == samples + samples
    assert not any(np.array_equal(m, f) for m, f in zip(marked.frames, frames + frames))
    assert marked_copies(frames, samples, copies=0, seed=0).frames == []
    with pytest.raises(ValueError, match="copies"):
        marked_copies(frames, samples, copies=-1, seed=0)


def test_camera_changes_soften_or_roughen_the_texture_keep_its_grey_level_and_repeat_on_every_frame():
    from training.camera_changes import camera_change

    frame = _grainy(0)
    rng = np.random.default_rng(0)
    changes = [camera_change(rng) for _ in range(40)]
    grain = []
    for change in changes:
        seen = change(frame)
        assert seen.shape == frame.shape and seen.dtype == np.float32
        assert 0.0 <= seen.min() and seen.max() <= 1.0
        assert not np.array_equal(seen, frame)
        assert abs(float(seen.mean()) - float(frame.mean())) < 0.01  # the texture's rendering changes, not the lamp
        assert np.array_equal(change(frame), seen)  # the same camera for a frame and its painted copies
        grain.append(float(np.abs(np.diff(seen, axis=1)).mean()))
    original = float(np.abs(np.diff(frame, axis=1)).mean())
    assert min(grain) < 0.7 * original and max(grain) > 1.2 * original  # softer (defocus) and grainier frames


def test_changed_copies_keep_their_samples_repeat_with_the_seed_and_refuse_a_negative_count():
    from edge_runtime.datasets import Box, Sample
    from training.camera_changes import changed_copies

    frames = [_grainy(0), _grainy(1)]
    samples = [Sample(None, "patches", boxes=(Box(2, 5, 11, 9),)), Sample(None, "scratches")]
    changed = changed_copies(frames, samples, copies=3, seed=0)
    assert len(changed.frames) == 6 and changed.samples == samples * 3
    assert all(s is f for s, f in zip(changed.sources, frames * 3))
    again = changed_copies(frames, samples, copies=3, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(changed.frames, again.frames))
    other = changed_copies(frames, samples, copies=3, seed=1)
    assert not all(np.array_equal(a, b) for a, b in zip(changed.frames, other.frames))
    assert changed_copies(frames, samples, copies=0, seed=0).frames == []
    with pytest.raises(ValueError, match="copies"):
        changed_copies(frames, samples, copies=-1, seed=0)


@needs_tf
def test_the_classifier_trains_on_its_frames_then_camera_copies_of_them_with_their_labels():
    from edge_runtime.datasets import Sample
    from training.train_classifier import with_camera_copies

    frames = [_grainy(0), _grainy(1)]
    split = (frames, np.array([3, 5]), [Sample(None, "patches"), Sample(None, "scratches")])
    plain, labels = with_camera_copies(split, 0, seed=0)
    assert labels.tolist() == [3, 5] and all(a is b for a, b in zip(plain, frames))
    copied, labels = with_camera_copies(split, 2, seed=0)
    assert labels.tolist() == [3, 5, 3, 5, 3, 5] and len(copied) == 6
    assert all(a is b for a, b in zip(copied[:2], frames))
    for copy, frame in zip(copied[2:], frames * 2):
        assert copy.shape == frame.shape and copy.dtype == np.float32 and not np.array_equal(copy, frame)
    other, _ = with_camera_copies(split, 2, seed=1)
    assert not all(np.array_equal(a, b) for a, b in zip(copied[2:], other[2:]))


class _BlockMeans:
    """A stand-in feature extractor: each stride-8 cell's mean grey, one channel."""

    def predict(self, batch, verbose=0):
        n, height, width, _ = batch.shape
        return batch.reshape(n, height // 8, 8, width // 8, 8).mean(axis=(2, 4))[..., None]


@needs_tf
def test_painted_pairs_are_seen_through_the_frame_s_camera_change_after_the_paint(tmp_path):
    from edge_runtime.datasets import Sample
    from training.profiles import folder_profile
    from training.train_autoencoder import synthetic_pairs

    profile = replace(folder_profile("t", tmp_path, "good"), gate_synthetic_defects=3, gate_synthetic_strength=1.0)
    frames, samples = [_grainy(0), _grainy(1)], [Sample(None, None), Sample(None, None)]
    plain_inputs, plain_targets = synthetic_pairs(_BlockMeans(), frames, samples, profile, uses_boxes=False)
    assert len(plain_inputs) and not np.allclose(plain_inputs, plain_targets)  # the paint moves the cells under it
    flat = [lambda frame: np.full_like(frame, 0.25)] * 2  # a "camera" that sees only grey: the paint is gone too
    inputs, targets = synthetic_pairs(_BlockMeans(), frames, samples, profile, uses_boxes=False, changes=flat)
    assert len(inputs) == len(plain_inputs)  # the same paint, the same cells
    assert np.allclose(inputs, 0.25) and np.allclose(targets, 0.25)


def test_the_contact_sheet_shows_each_frame_painted_and_outlined_in_red():
    from training.synthetic_defects import contact_sheet

    frames = [np.full((40, 50), 0.5, np.float32) + np.random.default_rng(i).normal(0, 0.05, (40, 50)).astype(np.float32)
              for i in range(4)]
    sheet = contact_sheet(frames, [np.ones(f.shape, bool) for f in frames], strength=1.0, seed=0, columns=2)
    assert sheet.shape == (80, 200, 3) and sheet.dtype == np.uint8
    red = (sheet[..., 2] == 255) & (sheet[..., 0] == 0) & (sheet[..., 1] == 0)
    assert red[:, 50:100].any() and not red[:, :50].any()  # the outline on the right copy only


@needs_tf
def test_a_trial_check_takes_a_new_lines_profile_as_training_recorded_it(tmp_path, capsys):
    import json

    from studies.gate_check import main

    with pytest.raises(SystemExit) as stopped:
        main(["--profile", "line-without-weights"])
    assert stopped.value.code == 2 and "neither built in (neu-steel, magnetic-tile) nor trained" in capsys.readouterr().err
    (tmp_path / "profile.json").write_text(json.dumps({"name": "magnetic-tile", "overrides": []}))
    with pytest.raises(SystemExit) as stopped:  # a trial's weights say which profile they were trained for
        main(["--profile", "neu-steel", "--weights", str(tmp_path)])
    assert stopped.value.code == 2 and "trained for profile 'magnetic-tile', not 'neu-steel'" in capsys.readouterr().err
