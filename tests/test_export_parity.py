"""Keras (TensorFlow) vs the exported ONNX graphs as the runtime runs them: outputs,
Grad-CAM, and the preprocessing of training vs run time."""

import numpy as np
import pytest

from tests.conftest import MANIFEST, NEU, ROOT, needs_models, needs_neu, needs_tf

pytestmark = [needs_models, needs_tf, needs_neu, pytest.mark.slow]
PROFILE = "neu-steel"


@pytest.fixture(scope="module")
def keras_models(manifest):
    from training.backbone import profile_backbone
    from training.classifier import build_classifier

    entry = manifest["profiles"][PROFILE]
    weights = ROOT / "models" / PROFILE / "keras"
    base, full = build_classifier(len(entry["class_names"]), base=profile_backbone(weights))
    full.load_weights(weights / "classifier.weights.h5")
    return base, full


@pytest.fixture(scope="module")
def neu_frames(neu_images):
    from edge_runtime.preprocess import PreprocessSpec, preprocess

    picks = neu_images[::250][:6]
    return [preprocess(p, PreprocessSpec()) for p in picks]


@pytest.fixture(scope="module")
def runtime():
    from edge_runtime import Inspector

    return Inspector.from_manifest(MANIFEST, PROFILE, precision="fp32")  # the exported graph Keras is compared with


def test_classifier_head_matches_keras_on_gate_stems(keras_models, runtime, neu_frames):
    from training.classifier import head_model

    base, full = keras_models
    head = head_model(base, full)
    stems = np.stack([runtime.scorer.run(frame).stem for frame in neu_frames])
    random = np.random.default_rng(0).normal(0, 2, stems[:3].shape).astype(np.float32)
    for batch in (stems, random):
        keras_probs, keras_features, _ = (np.asarray(t) for t in head(batch, training=False))
        onnx_probs, onnx_features = runtime.classifier._session.run(None, {"stem": batch})
        assert np.abs(keras_probs - onnx_probs).max() <= 1e-4
        assert np.abs(keras_features - onnx_features).max() <= 1e-3 * max(1.0, np.abs(keras_features).max())


def test_gate_stem_then_head_equals_the_keras_classifier_on_the_frame(keras_models, runtime, neu_frames):
    """The shared-backbone path (ONNX gate stem -> ONNX head) gives the one-piece Keras classifier's answer."""
    _, full = keras_models
    for frame in neu_frames:
        padded = runtime.scorer.model_input(frame)[0][..., None]
        keras_probs = np.asarray(full(padded, training=False)[0])[0]
        image = np.round(frame * 255).astype(np.uint8)  # the NEU file's own pixels
        onnx_probs = runtime.inspect(image, always_classify=True).class_probabilities
        assert np.abs(keras_probs - np.array(list(onnx_probs.values()))).max() <= 1e-4


@pytest.mark.parametrize("profile", ["neu-steel", "magnetic-tile"])
def test_autoencoder_outputs_match_keras(profile, neu_frames):
    """Error map, stem, (magnetic tile) the frame-level error and (neu-steel) the residual detector's map of the
    exported gate, by output name."""
    from edge_runtime import Inspector
    from training.train_autoencoder import load_anomaly_model

    anomaly = load_anomaly_model(ROOT / "models" / profile / "keras")
    scorer = Inspector.from_manifest(MANIFEST, profile, precision="fp32").scorer
    for frame in neu_frames[:3] + [np.random.default_rng(1).random((150, 333), np.float32)]:
        padded = scorer.model_input(frame)[0]
        keras_outputs = dict(zip(anomaly.output_names, (np.asarray(t) for t in anomaly(padded[..., None],
                                                                                       training=False))))
        onnx = scorer.run_model(padded)
        pairs = [(keras_outputs["error_map"][..., 0], onnx.cells), (keras_outputs["stem"], onnx.stem)]
        if "frame_error" in keras_outputs:
            pairs.append((keras_outputs["frame_error"].reshape(-1), onnx.frame_errors))
        if "residual_map" in keras_outputs:
            pairs.append((keras_outputs["residual_map"][..., 0], onnx.residual))
        assert len(pairs) == 3
        for expected, got in pairs:
            assert np.abs(expected - got).max() <= 1e-4 * max(1.0, np.abs(expected).max())


def test_runtime_gradcam_equals_tensorflow_gradienttape_gradcam(keras_models, runtime, neu_frames):
    import keras
    import tensorflow as tf

    _, full = keras_models
    features_and_logits = keras.Model(full.input, [full.outputs[1], full.outputs[2]])
    head = keras.Sequential([full.get_layer("gap"), full.get_layer("dropout"), full.get_layer("logits")])
    for frame in neu_frames:
        x = runtime.scorer.model_input(frame)[0][..., None]
        features, logits = features_and_logits(x, training=False)
        index = int(np.argmax(logits[0]))
        with tf.GradientTape() as tape:
            tape.watch(features)
            score = head(features, training=False)[0, index]
        grads = tape.gradient(score, features)[0].numpy()
        weights = grads.mean(axis=(0, 1))
        cam = np.maximum((features[0].numpy() * weights).sum(-1), 0)
        reference = cam / cam.max() if cam.max() > 0 else cam
        probs, onnx_features = runtime.classifier.classify([runtime.scorer.run(frame).stem])
        assert int(np.argmax(probs[0])) == index
        ours = runtime.classifier.gradcam(onnx_features[0], index)
        assert np.abs(ours - reference).max() <= 1e-4


def test_training_and_runtime_preprocessing_are_the_same(runtime, neu_images):
    """The runtime's inputs for a frame equal the inputs training built for the same file."""
    import cv2

    from edge_runtime.preprocess import load_image
    from training.data import read_frames
    from training.profiles import PROFILES
    from training.train_classifier import gate_inputs
    from edge_runtime.datasets import load_neu_det

    profile = PROFILES[PROFILE]
    assert profile.preprocess.to_dict() == runtime.config.preprocess.to_dict()
    sample = load_neu_det(NEU)[7]
    (train_frame,), _ = read_frames([sample], profile.preprocess)
    raw = load_image(sample.path)
    for source in (sample.path, sample.path.read_bytes(), raw, cv2.cvtColor(raw, cv2.COLOR_BGR2GRAY)):
        runtime_frame = runtime.inspect(source).frame
        np.testing.assert_array_equal(runtime_frame, train_frame)
    padded, geometry = runtime.scorer.model_input(train_frame)
    np.testing.assert_array_equal(gate_inputs([train_frame], profile)[0], padded[..., None])
    assert padded.shape[1] % 16 == 0 and padded.shape[2] % 16 == 0
    top, left = geometry.top, geometry.left
    assert top >= runtime.config.pad_margin and left >= runtime.config.pad_margin
    np.testing.assert_array_equal(padded[0, top: top + 200, left: left + 200], train_frame)


@pytest.mark.parametrize("profile", [PROFILE, "magnetic-tile"])  # the tile's gate has a frame-level term
def test_gate_check_of_the_keras_gate_gives_the_exported_thresholds_and_figures(manifest, capsys, profile):
    """``python -m studies.gate_check`` (a trial gate, checked before export) calibrates as the export did."""
    import json

    from studies import gate_check

    assert gate_check.main(["--profile", profile]) == 0
    report = json.loads(capsys.readouterr().out)
    entry = manifest["profiles"][profile]
    assert report["thresholds"]["warn"] == pytest.approx(entry["thresholds"]["warn"], rel=1e-4)
    assert report["thresholds"]["defect"] == pytest.approx(entry["thresholds"]["defect"], rel=1e-4)
    recorded = entry["metrics"]["gate_calibration"]
    assert report["val"]["gate_recall_warn"] == pytest.approx(recorded["gate_recall_warn"])
    if recorded.get("gate_recall_warn_per_class"):  # recorded by exports since the eighth session
        assert report["val"]["gate_recall_warn_per_class"] == pytest.approx(recorded["gate_recall_warn_per_class"])
    # Keras and onnxruntime may order a few near-equal scores the other way: one of the ~90,000 image-crop
    # pairs moves the AUROC by about 1e-5
    assert report["val"]["image_auroc"] == pytest.approx(recorded["image_auroc"], abs=5e-5)
    assert report["test"]["gate_recall_warn"] == pytest.approx(entry["metrics"]["gate_test"]["gate_recall_warn"])
