"""The exported gate's rewrites for speed compute what the models they rewrite compute.

``training.backbone.gray_backbone`` (MobileNetV2 on one gray channel, its first convolution folded) and
``training.autoencoder.pointwise`` (Dense layers as 1x1 convolutions) change the graph tf2onnx writes,
never its outputs; ``bench.compare_graphs`` times such a change against the graph before it.
"""

import numpy as np
import pytest

from tests.conftest import MANIFEST, ROOT, needs_models, needs_tf, textured


@pytest.fixture(scope="module")
def gray_frames():
    # 97 rows: an odd size, so TensorFlow's "same" padding pads the first convolution on both sides
    frames = [textured((97, 112), 60 + 40 * i, seed=i, spread=30.0) / 255.0 for i in range(3)]
    return np.stack(frames)[..., None].astype(np.float32)


@needs_tf
@pytest.mark.parametrize("layer", ["Conv1_relu", "block_5_add", "block_12_add"])
def test_gray_backbone_computes_the_three_channel_backbone(base, gray_frames, layer):
    import keras

    from training.backbone import gray_backbone, gray_centred, gray_to_imagenet

    image = keras.Input((None, None, 1))
    folded = gray_backbone(base)
    ours = keras.Model(image, keras.Model(folded.input, folded.get_layer(layer).output)(gray_centred(image)))
    theirs = keras.Model(image, keras.Model(base.input, base.get_layer(layer).output)(gray_to_imagenet(image)))
    got, expected = (np.asarray(m(gray_frames, training=False)) for m in (ours, theirs))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4 * float(np.abs(expected).max()))


@needs_tf
def test_gray_backbone_refuses_a_model_that_does_not_start_with_a_three_channel_convolution():
    import keras

    from training.backbone import gray_backbone

    x = keras.Input((None, None, 1))
    model = keras.Model(x, keras.layers.Conv2D(4, 3, name="Conv1")(x))
    with pytest.raises(ValueError, match="not a 3-channel convolution"):
        gray_backbone(model)


@needs_tf
@pytest.mark.parametrize("members", [1, 2])
def test_pointwise_convolutions_compute_the_dense_layers(members):
    import keras

    from training.autoencoder import bottleneck, pointwise, residual_detector

    rng = np.random.default_rng(0)
    maps = rng.normal(size=(2, 5, 7, 16)).astype(np.float32)
    for model in (bottleneck(16, (8, 4)), residual_detector(16, (6,), members)):
        model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
        converted = pointwise(model)
        assert not any(isinstance(layer, keras.layers.Dense) for layer in converted.layers)
        np.testing.assert_allclose(np.asarray(converted(maps)), np.asarray(model(maps)), rtol=1e-5, atol=1e-5)


@needs_tf
def test_pointwise_leaves_other_layers_as_they_were():
    import keras

    from training.autoencoder import pointwise

    x = keras.Input((None, None, 8))
    model = keras.Model(x, keras.layers.Dense(4, name="dense")(keras.layers.Conv2D(6, 3, padding="same", name="conv")(x)))
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    maps = rng.normal(size=(1, 6, 6, 8)).astype(np.float32)
    converted = pointwise(model)
    assert converted.get_layer("conv").kernel.shape == (3, 3, 8, 6)
    np.testing.assert_allclose(np.asarray(converted(maps)), np.asarray(model(maps)), rtol=1e-5, atol=1e-5)


@needs_models
def test_compare_graphs_times_each_graph_and_reports_no_difference_between_identical_ones():
    import json

    from bench.compare_graphs import compare

    gate = ROOT / json.loads(MANIFEST.read_text())["profiles"]["neu-steel"]["autoencoder"]["path"]
    first, second = compare([gate, gate], side=64, rounds=2, runs_per_round=2)
    assert first["max_abs_diff_vs_first"] is None
    assert set(second["max_abs_diff_vs_first"]) >= {"error_map", "stem"}
    assert all(v == 0.0 for v in second["max_abs_diff_vs_first"].values())
    assert first["ms"]["n"] == second["ms"]["n"] == 2 and first["ms"]["p50"] > 0


@needs_tf
def test_parity_refuses_an_output_of_another_shape_instead_of_broadcasting_it(tmp_path):
    """A conversion that once gave the error map an extra axis passed a plain max |difference|: numpy broadcast
    the two shapes against each other."""
    import keras
    import onnx
    from onnx import TensorProto, helper

    from export.onnx_export import max_abs_difference

    model = keras.Sequential([keras.Input((4,)), keras.layers.Reshape((4,))])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [0])
    graph = helper.make_graph([helper.make_node("Unsqueeze", ["x", "axes"], ["y"])], "wrong",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4])], [axes])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), tmp_path / "w.onnx")
    with pytest.raises(ValueError, match=r"output 'y' has shape \(1, 1, 4\), the Keras model's \(1, 4\)"):
        max_abs_difference(model, tmp_path / "w.onnx", np.ones((1, 4), np.float32))
