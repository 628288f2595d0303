"""Keras (TensorFlow) vs the exported ONNX graphs as the runtime runs them: outputs,
Grad-CAM, and the preprocessing of training vs run time."""

import numpy as np
import pytest

from tests.conftest import MANIFEST, NEU, ROOT, needs_models, needs_neu, needs_tf

pytestmark = [needs_models, needs_tf, needs_neu, pytest.mark.slow]
PROFILE = "neu-steel"


@pytest.fixture(scope="module")
def keras_models(manifest):
    from training.classifier import build_classifier
    from training.train_autoencoder import load_anomaly_model

    entry = manifest["profiles"][PROFILE]
    weights = ROOT / "models" / PROFILE / "keras"
    _, full = build_classifier(len(entry["class_names"]), tuple(entry["preprocessing"]["classifier_size"]))
    full.load_weights(weights / "classifier.weights.h5")
    return full, load_anomaly_model(weights)


@pytest.fixture(scope="module")
def neu_frames(neu_images):
    from edge_runtime.preprocess import PreprocessSpec, preprocess

    picks = neu_images[::250][:6]
    return [preprocess(p, PreprocessSpec()) for p in picks]


@pytest.fixture(scope="module")
def runtime():
    from edge_runtime import Inspector

    return Inspector.from_manifest(MANIFEST, PROFILE, precision="fp32")  # the exported graph Keras is compared with


def test_classifier_probabilities_and_features_match_keras(keras_models, runtime, neu_frames):
    from training.train_classifier import _inputs

    full, _ = keras_models
    batch = np.concatenate([np.random.default_rng(0).random((3, 224, 224, 1), np.float32),
                            _inputs(neu_frames, runtime.config.preprocess)])
    keras_probs, keras_features, _ = (np.asarray(t) for t in full(batch, training=False))
    onnx_probs, onnx_features = runtime.classifier._session.run(None, {"image": batch})
    assert np.abs(keras_probs - onnx_probs).max() <= 1e-4
    assert np.abs(keras_features - onnx_features).max() <= 1e-3 * max(1.0, np.abs(keras_features).max())


def test_autoencoder_error_map_matches_keras(keras_models, runtime, neu_frames):
    _, anomaly = keras_models
    for frame in neu_frames[:3] + [np.random.default_rng(1).random((150, 333), np.float32)]:
        padded = runtime.scorer.model_input(frame)[0]
        keras_map = np.asarray(anomaly(padded[..., None], training=False))[0, :, :, 0]
        onnx_map = runtime.scorer.error_cells(padded)[0]
        assert np.abs(keras_map - onnx_map).max() <= 1e-4 * max(1.0, np.abs(keras_map).max())


def test_runtime_gradcam_equals_tensorflow_gradienttape_gradcam(keras_models, runtime, neu_frames):
    import keras
    import tensorflow as tf

    from edge_runtime.preprocess import classifier_input

    full, _ = keras_models
    features_and_logits = keras.Model(full.input, [full.outputs[1], full.outputs[2]])
    head = keras.Sequential([full.get_layer("gap"), full.get_layer("dropout"), full.get_layer("logits")])
    for frame in neu_frames:
        x = classifier_input(frame, runtime.config.preprocess)
        features, logits = features_and_logits(x, training=False)
        index = int(np.argmax(logits[0]))
        with tf.GradientTape() as tape:
            tape.watch(features)
            score = head(features, training=False)[0, index]
        grads = tape.gradient(score, features)[0].numpy()
        weights = grads.mean(axis=(0, 1))
        cam = np.maximum((features[0].numpy() * weights).sum(-1), 0)
        reference = cam / cam.max() if cam.max() > 0 else cam
        probs, onnx_features = runtime.classifier.classify([frame])
        assert int(np.argmax(probs[0])) == index
        ours = runtime.classifier.gradcam(onnx_features[0], index)
        assert np.abs(ours - reference).max() <= 1e-4


def test_training_and_runtime_preprocessing_are_the_same(runtime, neu_images):
    """The runtime's inputs for a frame equal the inputs training built for the same file."""
    import cv2

    from edge_runtime.preprocess import load_image
    from training.data import read_frames
    from training.profiles import PROFILES
    from training.train_classifier import _inputs
    from edge_runtime.datasets import load_neu_det

    profile = PROFILES[PROFILE]
    assert profile.preprocess.to_dict() == runtime.config.preprocess.to_dict()
    sample = load_neu_det(NEU)[7]
    (train_frame,), _ = read_frames([sample], profile.preprocess)
    raw = load_image(sample.path)
    for source in (sample.path, sample.path.read_bytes(), raw, cv2.cvtColor(raw, cv2.COLOR_BGR2GRAY)):
        runtime_frame = runtime.inspect(source).frame
        np.testing.assert_array_equal(runtime_frame, train_frame)
    from edge_runtime.preprocess import classifier_input

    np.testing.assert_array_equal(_inputs([train_frame], profile.preprocess), classifier_input(train_frame, runtime.config.preprocess))
    padded, top, left, _ = runtime.scorer.model_input(train_frame)
    assert padded.shape[1] % 16 == 0 and padded.shape[2] % 16 == 0
    assert top >= runtime.config.pad_margin and left >= runtime.config.pad_margin
    np.testing.assert_array_equal(padded[0, top: top + 200, left: left + 200], train_frame)
