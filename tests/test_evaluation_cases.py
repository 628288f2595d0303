"""Which frames an evaluation covers, and what it tells the reader about them (``edge_runtime.evaluation_cases``)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from edge_runtime.datasets import DatasetError, load_class_folders, split_digests, split_samples
from edge_runtime.evaluation_cases import build_cases, is_training_data_set, select_split
from tests.conftest import NEU, make_class_folders, needs_models, needs_neu


def _recorded(samples, seed=0, digests=True):
    fractions = (0.7, 0.15, 0.15)
    splits = split_samples(samples, seed, fractions)
    return {"seed": seed, "fractions": list(fractions), "counts": {name: len(part) for name, part in splits.items()},
            **({"digests": split_digests(splits)} if digests else {})}


def _inspector(classes, split):
    return SimpleNamespace(class_names=classes, profile="line-2", config=SimpleNamespace(raw={"split": split}))


def test_a_split_is_taken_only_from_the_data_set_the_models_were_trained_on(tmp_path):
    trained = load_class_folders(make_class_folders(tmp_path / "trained", ["good", "a", "b"], n=20), "good")
    recorded = _recorded(trained)
    assert len(select_split(trained, recorded, "test")) == recorded["counts"]["test"]
    held_out = trained[::3]  # a folder of some of its images: split anew, its "test" would be anything
    with pytest.raises(DatasetError, match="it is another data set. Evaluate held-out images whole"):
        select_split(held_out, recorded, "test")
    assert select_split(held_out, recorded, "all") == held_out


def test_a_folder_of_other_images_in_the_same_numbers_or_with_a_few_more_is_not_the_training_data_set(tmp_path):
    """The recorded digests say which images each split holds: counts alone would take a held-out set of the same
    size for the training set, and a training set with a few images added would be split anew, leaking."""
    import cv2

    root = make_class_folders(tmp_path / "trained", ["good", "a", "b"], n=20)
    recorded = _recorded(load_class_folders(root, "good"))
    other = tmp_path / "other"
    for path in root.rglob("*.png"):  # the same numbers of other pictures: each one mirrored
        (other / path.parent.name).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(other / path.parent.name / path.name), cv2.flip(cv2.imread(str(path)), 1))
    with pytest.raises(DatasetError, match="it is another data set"):
        select_split(load_class_folders(other, "good"), recorded, "test")
    (root / "a" / "new.png").write_bytes((other / "a" / "0.png").read_bytes())
    with pytest.raises(DatasetError, match="it is another data set"):
        select_split(load_class_folders(root, "good"), recorded, "test")


def test_without_recorded_digests_the_readable_counts_decide_and_a_few_more_files_still_match():
    splits = {"train": [None] * 701, "val": [None] * 150, "test": [None] * 151}
    assert is_training_data_set(splits, {"counts": {"train": 700, "val": 150, "test": 150}})
    assert not is_training_data_set(splits, {"counts": {"train": 700, "val": 151, "test": 150}})
    assert not is_training_data_set({"train": [None] * 900, "val": [None] * 150, "test": [None] * 150},
                                    {"counts": {"train": 700, "val": 150, "test": 150}})


def test_the_reader_is_told_when_all_includes_training_images_and_which_labels_are_no_class(tmp_path):
    root = make_class_folders(tmp_path / "trained", ["good", "a", "b"], n=20)
    recorded = _recorded(load_class_folders(root, "good"))
    cases, notices = build_cases("folder", root, _inspector(["a", "b"], recorded), "all", "good", 0)
    assert len(cases) == 60 and len(notices) == 1
    assert "is the data set the models were trained on: --split all includes its" in notices[0]
    _, notices = build_cases("folder", root, _inspector(["a", "b"], recorded), "test", "good", 0)
    assert notices == []
    held_out = make_class_folders(tmp_path / "held-out", ["good", "A", "c"], n=20, side=56)  # A: class a; c: none
    cases, notices = build_cases("folder", held_out, _inspector(["a", "b"], recorded), "all", "good", 0)
    assert len(cases) == 60 and len(notices) == 1
    assert "labels that are not classes of profile line-2 (a, b): c (20 images)" in notices[0]


def test_normal_class_is_refused_where_the_layout_names_its_own_normals(tmp_path):
    with pytest.raises(DatasetError, match="--normal-class is for --dataset folder"):
        build_cases("neu-det", tmp_path, _inspector(["a"], {}), "all", "normal", 0)


@needs_models
@needs_neu
def test_evaluate_names_the_images_it_could_not_inspect_and_the_crops_it_could_not_cut(tmp_path, capsys):
    from edge_runtime.cli import main

    for name in ("crazing_1.jpg", "scratches_2.jpg"):
        (tmp_path / name).symlink_to(NEU / "images" / name)
    (tmp_path / "crazing_3.jpg").write_bytes(b"not a jpeg")
    assert main(["evaluate", "--dataset", "neu-det", str(tmp_path), "--normal-crops", "64"]) == 1
    out, err = capsys.readouterr()
    assert "1 image(s) could not be inspected and are in no figure above:\n  crazing_3.jpg:" in out
    assert "n_classified                       2" in out
    assert "--normal-crops 64: no box-free crops, since no image has VOC boxes" in err
    per_image = tmp_path / "out" / "images.jsonl"
    assert main(["evaluate", "--dataset", "neu-det", str(tmp_path), "--json", "--per-image", str(per_image)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["path"] == str(tmp_path.resolve()) and report["split"] == "all" and report["n_classified"] == 2
    lines = [json.loads(line) for line in per_image.read_text().splitlines()]
    assert sorted(line["name"] for line in lines) == ["crazing_1.jpg", "crazing_3.jpg", "scratches_2.jpg"]
    inspected = [line for line in lines if line["verdict"] != "error"]  # the figures, recomputed from the lines
    assert report["classifier_accuracy"] == sum(l["defect_class"] == l["label"] for l in inspected) / len(inspected)
    assert report["gate_recall"] == sum(l["verdict"] != "ok" for l in inspected) / len(inspected)
