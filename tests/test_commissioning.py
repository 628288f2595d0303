"""Commissioning: thresholds set on the line's own defect-free frames (``python -m edge_runtime calibrate``)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_runtime import commissioning
from edge_runtime.cli import main as cli_main
from edge_runtime.commissioning import CommissioningError
from tests.conftest import MAGNETIC_TILE, editable_manifest, needs_models, needs_tile, textured


def test_threshold_flags_at_most_the_asked_share_of_normal_scores():
    scores = np.arange(1.0, 201.0)
    for rate in (0.0, 0.01, 0.05, 0.5):
        threshold = commissioning.threshold_for_false_alarm(scores, rate)
        assert np.mean(scores >= threshold) == pytest.approx(rate)
    assert commissioning.threshold_for_false_alarm(scores, 0.05) > 190.0


def test_threshold_keeps_a_margin_above_the_highest_score_it_passes():
    """One float step above a passed frame's score, a PC whose arithmetic differs in the last digit would flag it: the
    margin is the self-test's score tolerance, and at most half the gap to the lowest flagged score."""
    from edge_runtime.selftest import SCORE_RTOL

    scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    assert commissioning.threshold_for_false_alarm(scores, 0.2) == pytest.approx(8.0 * (1 + SCORE_RTOL))
    close = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 8.0 + 4e-3, 10.0])
    assert commissioning.threshold_for_false_alarm(close, 0.2) == pytest.approx(8.0 + 2e-3)  # halfway
    ties = np.array([1.0, 2.0, 3.0, 3.0, 3.0])  # the tied top scores cannot be split: none of them is flagged
    threshold = commissioning.threshold_for_false_alarm(ties, 0.2)
    assert threshold == pytest.approx(3.0 * (1 + SCORE_RTOL)) and not np.any(ties >= threshold)  # the whole margin
    tied_at_the_cut = np.array([1.0, 2.0, 3.0, 3.0, 5.0])
    assert commissioning.threshold_for_false_alarm(tied_at_the_cut, 0.2) == pytest.approx(3.0 * (1 + SCORE_RTOL))
    assert commissioning.threshold_for_false_alarm(scores, 0.0) == pytest.approx(10.0 * (1 + SCORE_RTOL))


def test_proposal_refuses_too_few_frames_and_rates_out_of_order():
    scores = np.linspace(0.0, 1.0, 50)
    with pytest.raises(CommissioningError, match="needs at least 100"):
        commissioning.propose_thresholds(scores, 0.01, 0.05)
    with pytest.raises(CommissioningError, match="false-alarm rate"):
        commissioning.propose_thresholds(np.linspace(0.0, 1.0, 500), 0.05, 0.01)
    proposal = commissioning.propose_thresholds(scores, 0.02, 0.1)
    assert proposal["warn"] <= proposal["defect"]
    assert (proposal["flagged_warn"], proposal["flagged_defect"]) == (pytest.approx(0.1), pytest.approx(0.02))


def test_frame_files_searches_folders_and_names_what_is_missing(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/1.png", "a/b/2.JPG", "a/notes.txt", "a/b/4.jpg", "a/b/4.png", "a/5.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "a" / "3.png").symlink_to(tmp_path / "nowhere.png")  # a broken link: kept, reported when read
    found = commissioning.frame_files([tmp_path / "a"])
    assert [p.name for p in found.frames] == ["1.png", "3.png", "5.png", "2.JPG", "4.jpg"]
    assert found.masks == (tmp_path / "a" / "b" / "4.png",)  # the magnetic-tile layout: 4.jpg's mask
    named = commissioning.frame_files([tmp_path / "a" / "b" / "4.png"])
    assert (named.frames, named.masks) == ([tmp_path / "a" / "b" / "4.png"], ())
    with pytest.raises(CommissioningError, match="does not exist"):
        commissioning.frame_files([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CommissioningError, match="no image files"):
        commissioning.frame_files([tmp_path / "empty"])


def test_a_frame_given_twice_counts_once(tmp_path):
    """A folder named twice, or with a sub-folder of it, would fake the frame count a rate needs."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/1.png", "a/b/2.png"):
        (tmp_path / name).write_bytes(b"x")
    found = commissioning.frame_files([tmp_path / "a", tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "1.png"])
    assert [p.name for p in found.frames] == ["1.png", "2.png"]


def _good_tiles(folder: Path, count: int) -> Path:
    """``count`` real defect-free magnetic tiles with their masks beside them, as the data set stores them
    (symlinks), and one truncated file in ``folder``."""
    folder.mkdir()
    for tile in sorted((MAGNETIC_TILE / "MT_Free" / "Imgs").glob("*.jpg"))[:count]:
        for file in (tile, tile.with_suffix(".png")):
            (folder / file.name).symlink_to(file)
    (folder / "zz_truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    return folder


@needs_models
@needs_tile
def test_calibrate_writes_thresholds_the_inspector_then_uses(tmp_path, capsys):
    from edge_runtime import Inspector

    manifest_path = editable_manifest(tmp_path)
    frames = _good_tiles(tmp_path / "good", 120)
    code = cli_main(["calibrate", str(frames), "--profile", "magnetic-tile", "--manifest", str(manifest_path),
                     "--false-alarm-rate", "0.02", "--warn-false-alarm-rate", "0.1", "--write", "--reason", "line start", "--json",
                     "--reason", "new lamp on line 2", "--by", "line 2 QA"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == 1 and "zz_truncated.jpg" in captured.err  # the unreadable frame is named, not counted
    assert "120 pixel masks beside same-name images left out" in captured.err  # never scored as frames
    assert report["frames_scored"] == 120 and report["frames_failed"] == 1
    assert Path(report["written"]["backup"]).is_file()

    profile = json.loads(manifest_path.read_text())["profiles"]["magnetic-tile"]
    saved = profile["thresholds"]
    assert (saved["warn"], saved["defect"]) == (report["proposed"]["warn"], report["proposed"]["defect"])
    assert saved["commissioned"]["frames"] == 120 and saved["commissioned"]["false_alarm_rate"] == 0.02
    change, = saved["changes"]
    assert (change["by"], change["reason"], change["how"]) == ("line 2 QA", "new lamp on line 2",
                                                                 "commissioned on 120 defect-free frames")
    assert change["backup"] == Path(report["written"]["backup"]).name
    # The thresholds are in the units of the frame-level term's references, re-measured on the same frames.
    term = profile["autoencoder"]["score"]["frame_term"]
    assert term["references_from"] == "median over the commissioning frames"
    assert {k: term[k] for k in ("map_reference", "frame_reference")} == report["frame_term"]["proposed"]

    inspector = Inspector.from_manifest(manifest_path, "magnetic-tile")
    verdicts = [r.verdict.value for r in inspector.inspect_batch(sorted(frames.glob("exp*.jpg")))]
    assert len(verdicts) == 120
    assert verdicts.count("defect") == 2  # at most 2% of 120 frames
    assert verdicts.count("defect") + verdicts.count("warn") == 12  # at most 10%


@needs_models
@needs_tile
def test_calibrate_refuses_too_few_frames_and_leaves_the_manifest_alone(tmp_path, capsys):
    manifest_path = editable_manifest(tmp_path)
    before = manifest_path.read_text()
    frames = _good_tiles(tmp_path / "good", 30)
    code = cli_main(["calibrate", str(frames), "--profile", "magnetic-tile", "--manifest", str(manifest_path), "--write", "--reason", "line start"])
    assert code == 2 and "needs at least 100" in capsys.readouterr().err
    assert manifest_path.read_text() == before


@needs_models
@needs_tile
def test_commissioning_on_frames_the_gate_reads_as_defects_is_refused_unless_insisted_on(tmp_path, capsys):
    """Magnetic tiles given to the steel profile: thresholds set on them would pass every steel defect."""
    manifest_path = editable_manifest(tmp_path)
    before = manifest_path.read_text()
    tiles = _good_tiles(tmp_path / "tiles", 100)
    args = ["calibrate", str(tiles), "--profile", "neu-steel", "--manifest", str(manifest_path), "--write", "--reason", "line start"]
    assert cli_main(args) == 2
    assert "reads most of these 'defect-free' frames as defects" in capsys.readouterr().err
    assert manifest_path.read_text() == before
    assert cli_main([*args, "--despite-shift", "--reason", "tiles, on purpose"]) == 1  # the truncated file
    record = json.loads(manifest_path.read_text())["profiles"]["neu-steel"]["thresholds"]["commissioned"]
    assert record["sources"] == [str(tiles.resolve())]  # where an audit finds the frames again


@needs_models
@needs_tile
def test_calibrate_says_so_when_the_manifest_cannot_be_written(tmp_path, capsys, monkeypatch):
    import edge_runtime.manifest as manifest_module

    manifest_path = editable_manifest(tmp_path)
    frames = _good_tiles(tmp_path / "good", 100)
    (frames / "zz_truncated.jpg").unlink()
    before = manifest_path.read_text()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(manifest_module.tempfile, "mkstemp", full_disk)  # the new manifest cannot be written
    code = cli_main(["calibrate", str(frames), "--profile", "magnetic-tile", "--manifest", str(manifest_path),
                     "--write", "--reason", "line start"])
    assert code == 2 and "cannot write the thresholds" in capsys.readouterr().err
    assert manifest_path.read_text() == before


@needs_models
def test_record_then_calibrate_commissions_the_default_line_end_to_end(tmp_path, capsys):
    """The documented procedure on the synthetic strip: record good frames, then propose thresholds."""
    frames = tmp_path / "good_strip"
    assert cli_main(["record", "synthetic:0", "--out", str(frames), "--frames", "120", "--every", "3"]) == 0
    capsys.readouterr()
    assert cli_main(["calibrate", str(frames), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["profile"] == "neu-steel" and report["frames_scored"] == 120 and report["written"] is None
    assert report["frame_term"] is None  # neu-steel's gate has no frame-level term
    proposed = report["proposed"]
    assert proposed["warn"] <= proposed["defect"]
    assert proposed["flagged_defect"] <= 0.01 and proposed["flagged_warn"] <= 0.05


@needs_models
@needs_tile
def test_commissioning_on_the_validation_tiles_re_measures_the_references_the_export_set(tmp_path, capsys):
    """The export sets the frame-term references on the validation split's defect-free tiles; the
    runtime's commissioning, given the same tiles, must arrive at the same references and thresholds."""
    from edge_runtime.evaluation_cases import load_samples, select_split

    manifest = json.loads(editable_manifest(tmp_path).read_text())
    entry = manifest["profiles"]["magnetic-tile"]
    val = select_split(load_samples("magnetic-tile", MAGNETIC_TILE), entry["split"], "val")
    frames = tmp_path / "val_free"
    frames.mkdir()
    for sample in val:
        if sample.is_normal:
            (frames / sample.path.name).symlink_to(sample.path)
    assert cli_main(["calibrate", str(frames), "--profile", "magnetic-tile", "--manifest",
                     str(tmp_path / "models.manifest.json"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    exported = entry["autoencoder"]["score"]["frame_term"]
    for key in ("map_reference", "frame_reference"):
        assert report["frame_term"]["proposed"][key] == pytest.approx(exported[key], rel=1e-5)
    # The same threshold up to the quantile rule: the export interpolates (np.quantile), commissioning
    # takes the lowest threshold that flags at most the rate (threshold_for_false_alarm).
    assert report["proposed"]["warn"] == pytest.approx(entry["thresholds"]["warn"], rel=0.01)
    assert report["proposed"]["flagged_warn"] <= 0.05


@needs_models
def test_commissioning_a_three_view_gate_sets_its_band_on_the_line_and_a_restore_brings_it_back(tmp_path, capsys):
    """A gate that runs its mirror views from a band (``score.views_band``, a quantile of defect-free
    one-view scores) gets the band set again on the line's frames, the thresholds on the scores it
    gives; restoring the backup brings the exported band back with the exported thresholds."""
    from edge_runtime import Inspector

    manifest_path = editable_manifest(tmp_path)
    manifest = json.loads(manifest_path.read_text())
    manifest["profiles"]["neu-steel"]["autoencoder"]["score"].update(views=3, views_band=0.8, views_from=1.9)
    manifest_path.write_text(json.dumps(manifest))
    frames = tmp_path / "good_strip"
    assert cli_main(["record", "synthetic:0", "--out", str(frames), "--frames", "120", "--every", "3"]) == 0
    capsys.readouterr()
    assert cli_main(["calibrate", str(frames), "--manifest", str(manifest_path), "--write", "--reason", "line start", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    inspector = Inspector.from_manifest(manifest_path)
    paths = sorted(frames.glob("*.png"))
    one_view = commissioning.score_frames(inspector.with_views(1), paths).scores
    assert report["views_from"] == {"current": 1.9, "proposed": pytest.approx(float(np.quantile(one_view, 0.8)))}
    assert inspector.scorer.views_from == pytest.approx(report["views_from"]["proposed"])
    line_scores = commissioning.score_frames(inspector, paths).scores
    assert np.mean(line_scores >= inspector.thresholds.warn) <= 0.05
    assert cli_main(["thresholds", "--manifest", str(manifest_path), "--restore", report["written"]["backup"],
                     "--reason", "roll back"]) == 0
    restored = Inspector.from_manifest(manifest_path)
    assert restored.scorer.views_from == 1.9
    assert restored.thresholds.warn == manifest["profiles"]["neu-steel"]["thresholds"]["warn"]


def test_a_band_for_mirror_views_is_refused_for_a_gate_that_scores_one_view(tmp_path):
    from edge_runtime.errors import ManifestError
    from edge_runtime.manifest import save_thresholds

    manifest_path = editable_manifest(tmp_path)
    before = manifest_path.read_text()
    with pytest.raises(ManifestError, match="scores one view"):
        save_thresholds(manifest_path, "neu-steel", 2.0, 3.0, reason="test", views_from=1.5)
    assert manifest_path.read_text() == before


def test_the_mixed_size_warning_names_five_sizes_at_most():
    """A folder of tiles may hold a hundred sizes: the warning stays one line."""
    from edge_runtime.commissioning import Commissioning, GateScores

    def warning(sizes):
        scored = GateScores(np.zeros(3), (), {}, tuple(sizes))
        return Commissioning(scored, np.zeros(3), None, None, 1.0, 2.0).size_warning()

    assert warning([(200, 200)]) is None
    assert "come in 2 sizes (200x200, 256x256);" in warning([(200, 200), (256, 256)])
    assert "come in 148 sizes (0x1, 1x2, 2x3, 3x4, 4x5 and 143 more);" in warning([(i, i + 1) for i in range(148)])


def test_scoring_a_lines_frames_keeps_their_numbers_not_their_results(tmp_path):
    """A 1920 x 1200 frame's maps are 26 MB: holding every result of 500 commissioning frames ran the line PC out
    of memory. Only the score, the drift measures and the sizes stay."""
    import gc
    import weakref

    from edge_runtime.capture.fake_inspector import FakeInspector

    frames = []
    for i in range(6):
        frames.append(tmp_path / f"f{i}.png")
        cv2.imwrite(str(frames[-1]), textured((64, 96), 100 + i, seed=i))
    inspector, alive, held = FakeInspector(), [], []
    batch_of = inspector.inspect_batch

    def watched(images, sources=None):
        gc.collect()
        held.append(sum(ref() is not None for ref in alive))  # results of earlier batches still in memory
        results = batch_of(images, sources)
        alive.extend(weakref.ref(result) for result in results)
        return results

    inspector.inspect_batch = watched
    scored = commissioning.score_frames(inspector, frames, batch=2)
    assert len(scored.scores) == 6 and scored.sizes == ((96, 64),) and len(scored.measured["mean_grey"]) == 6
    assert len(alive) == 6 and max(held) <= 1  # at most the one result the loop last looked at
