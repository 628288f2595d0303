"""The pruned MobileNetV2 (training.pruning): refitted blocks, the Keras model built from them, the saved file."""

import numpy as np
import pytest

from tests.conftest import needs_tf, textured

pytestmark = needs_tf


@pytest.fixture(scope="module")
def frames():
    gray = np.stack([textured((96, 96), 90 + 20 * i, seed=i, spread=25.0) for i in range(6)]) / 255.0
    return np.repeat(gray[..., None], 3, -1).astype(np.float32) * 2.0 - 1.0


def _outputs(model, frames, names=("block_5_add", "block_12_add")):
    import keras

    return keras.Model(model.input, [model.get_layer(n).output for n in names]).predict(frames, verbose=0)


def _relative_error(got, expected):
    return float(np.linalg.norm(got - expected) / np.linalg.norm(expected))


def test_keeping_every_channel_gives_back_the_imagenet_features(base, frames):
    from training import pruning

    blocks = pruning.prune_mobilenet_v2(base, frames, keep_ratio=1.0, rows_per_frame=256)
    full = pruning.pruned_backbone(base, blocks)
    for got, expected in zip(_outputs(full, frames), _outputs(base, frames)):
        assert _relative_error(got, expected) < 0.05  # only the ridge term of the refit stands between them


def test_a_pruned_backbone_keeps_names_and_block_widths_and_computes_what_the_fit_fitted(base, frames):
    import tensorflow as tf

    from training import pruning

    blocks = pruning.prune_mobilenet_v2(base, frames, keep_ratio=0.5)
    model = pruning.pruned_backbone(base, blocks)
    for number, block in blocks.items():
        full_width = base.get_layer(f"block_{number}_expand").filters
        assert model.get_layer(f"block_{number}_expand").filters == len(block.keep) == int(np.ceil(full_width / 16) * 8)
        assert len(block.keep) % 8 == 0 and len(set(block.keep)) == len(block.keep)
    assert model.get_layer("block_12_add").output.shape[-1] == base.get_layer("block_12_add").output.shape[-1]
    for got, expected in zip(model.get_layer("block_14_expand").get_weights(), base.get_layer("block_14_expand").get_weights()):
        assert np.array_equal(got, expected)  # the classifier's top blocks are the ImageNet ones

    import keras

    stem = keras.Model(base.input, base.get_layer("expanded_conv_project_BN").output).predict(frames, verbose=0)
    for number in pruning.PRUNABLE_BLOCKS:
        pruned = blocks[number]
        stem = pruning.block_output(pruning.folded_block(base, number), tf.constant(stem), pruned.keep,
                                    pruned.project, pruned.project_bias).numpy()
    keras_stem = _outputs(model, frames, ("block_12_add",))
    assert np.abs(keras_stem - stem).max() <= 1e-4 * np.abs(stem).max()
    assert _relative_error(keras_stem, _outputs(base, frames, ("block_12_add",))) < 0.6  # an approximation, not noise


def test_the_saved_pruning_is_what_profile_backbone_builds(base, frames, tmp_path):
    from training import pruning
    from training.backbone import PRUNING_FILE, profile_backbone

    blocks = pruning.prune_mobilenet_v2(base, frames, keep_ratio=0.5)
    pruning.save(tmp_path / PRUNING_FILE, blocks)
    loaded = pruning.load(tmp_path / PRUNING_FILE)
    assert sorted(loaded) == sorted(blocks)
    for number, block in blocks.items():
        assert np.array_equal(loaded[number].keep, block.keep)
        assert np.array_equal(loaded[number].project, block.project)
    rebuilt = profile_backbone(tmp_path)
    assert rebuilt.get_layer("block_3_expand").filters == len(blocks[3].keep)
    assert np.allclose(_outputs(rebuilt, frames)[1], _outputs(pruning.pruned_backbone(base, blocks), frames)[1])
    assert profile_backbone(tmp_path / "elsewhere").get_layer("block_3_expand").filters == 144  # no file: ImageNet


def test_least_squares_selection_keeps_the_channels_the_output_is_made_of():
    from training.pruning import least_squares_selection

    rng = np.random.default_rng(0)
    cells = rng.normal(size=(2000, 12)) * np.linspace(3.0, 0.5, 12)  # the later channels are the weaker ones
    cells[:, 1] = cells[:, 0] + 0.01 * rng.normal(size=2000)  # a strong copy of channel 0 adds nothing new
    targets = cells[:, [0, 7, 10]] @ rng.normal(size=(3, 4)) + 0.5
    assert list(least_squares_selection(cells, targets, 3, ridge=1e-6)) in ([0, 7, 10], [1, 7, 10])


def test_distillation_fits_the_pruned_blocks_to_the_full_ones_and_its_weights_are_saved(base, frames, tmp_path):
    from training import pruning
    from training.backbone import PRUNING_FILE, profile_backbone

    blocks = pruning.prune_mobilenet_v2(base, frames, keep_ratio=0.5)
    student = pruning.pruned_backbone(base, blocks)
    loss = pruning.distil(base, student, frames, epochs=12, batch_size=3, crop=64)
    assert len(loss) == 12 and loss[-1] < 0.7 * loss[0]  # its own objective: the blocks' outputs on the windows
    for name in ("Conv1", "expanded_conv_depthwise", "block_14_expand"):
        for got, expected in zip(student.get_layer(name).get_weights(), base.get_layer(name).get_weights()):
            assert np.array_equal(got, expected)  # only blocks 1-12 move
    tuned = pruning.tuned_weights(student)
    assert set(tuned) and all(pruning._block_number(name) in pruning.PRUNABLE_BLOCKS for name in tuned)
    pruning.save(tmp_path / PRUNING_FILE, blocks, tuned)
    rebuilt = profile_backbone(tmp_path)
    assert np.allclose(_outputs(rebuilt, frames)[1], _outputs(student, frames)[1], atol=1e-5)
    pruning.save(tmp_path / "plain.npz", blocks)
    assert pruning.load_tuned(tmp_path / "plain.npz") == {}  # a least-squares refit alone has none
