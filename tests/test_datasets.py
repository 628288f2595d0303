import shutil

import pytest

from edge_runtime.datasets import Box, DatasetError, load_class_folders, load_neu_det, split_samples
from tests.conftest import NEU, make_class_folders, needs_neu


def test_class_folders_need_two_defect_classes(tmp_path):
    with pytest.raises(DatasetError, match="at least 2"):
        load_class_folders(make_class_folders(tmp_path, ["good", "scratch"]), normal_class="good")


def test_an_evaluation_loads_one_defect_class_or_none_but_not_an_empty_folder(tmp_path):
    root = make_class_folders(tmp_path / "one", ["good", "scratch"])
    assert {s.label for s in load_class_folders(root, normal_class="good", min_classes=0)} == {None, "scratch"}
    (tmp_path / "empty" / "good").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images found"):
        load_class_folders(tmp_path / "empty", normal_class=None, min_classes=0)


def test_class_folders_need_the_named_normal_class(tmp_path):
    with pytest.raises(DatasetError, match="no class folder named 'good' \\(the defect-free class\\)"):
        load_class_folders(make_class_folders(tmp_path, ["a", "b"]), normal_class="good")


def test_split_is_seeded_stratified_and_keeps_duplicates_together(tmp_path):
    root = make_class_folders(tmp_path, ["good", "a", "b"], n=20)
    shutil.copy(root / "a" / "0.png", root / "a" / "dup.png")
    samples = load_class_folders(root, normal_class="good")
    first, second = split_samples(samples, seed=3), split_samples(samples, seed=3)
    assert {k: [s.path for s in v] for k, v in first.items()} == {k: [s.path for s in v] for k, v in second.items()}
    where = {s.path.name + s.label if s.label else s.path.name: split for split, v in first.items() for s in v}
    assert where["0.pnga"] == where["dup.pnga"]
    for label in (None, "a", "b"):
        counts = [sum(s.label == label for s in first[k]) for k in ("train", "val", "test")]
        assert counts[0] > counts[1] > 0 and counts[2] > 0


@needs_neu
def test_neu_det_reader_reads_classes_and_boxes_and_keeps_byte_identical_files_together():
    from collections import defaultdict

    from edge_runtime.datasets import file_digest

    samples = load_neu_det(NEU)
    assert len({s.label for s in samples}) == 6
    assert all(s.boxes for s in samples)
    assert all(b.xmin < b.xmax and b.ymin < b.ymax for s in samples for b in s.boxes)
    where = {s.path: k for k, v in split_samples(samples, seed=0).items() for s in v}
    assert len(where) == len(samples)
    by_digest = defaultdict(set)
    for sample in samples:
        by_digest[file_digest(sample.path)].add(where[sample.path])
    assert all(len(splits) == 1 for splits in by_digest.values())


def test_defect_split_does_not_depend_on_the_presence_of_normal_images(tmp_path):
    samples = load_class_folders(make_class_folders(tmp_path, ["good", "a", "b"], n=12), normal_class="good")
    with_normals = split_samples(samples, seed=1)
    defects_only = split_samples([s for s in samples if not s.is_normal], seed=1)
    for split in ("train", "val", "test"):
        assert [s.path for s in with_normals[split] if not s.is_normal] == [s.path for s in defects_only[split]]


def test_neu_reader_accepts_neu_cls_style_names_without_annotations(tmp_path):
    import cv2
    import numpy as np

    (tmp_path / "images").mkdir()
    for name in ("Cr_1.bmp", "Sc_7.bmp", "pitted_surface_3.jpg"):
        cv2.imwrite(str(tmp_path / "images" / name), np.zeros((200, 200), np.uint8))
    labels = {s.path.name: s.label for s in load_neu_det(tmp_path)}
    assert labels == {"Cr_1.bmp": "crazing", "Sc_7.bmp": "scratches", "pitted_surface_3.jpg": "pitted_surface"}


def test_neu_reader_accepts_a_flat_folder_of_images_with_their_boxes_beside_them(tmp_path):
    """NEU-CLS is distributed as the images themselves; held-out NEU images may come that way too."""
    import cv2
    import numpy as np

    for name in ("Cr_1.bmp", "scratches_7.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((200, 200), np.uint8))
    (tmp_path / "scratches_7.xml").write_text(
        "<annotation><object><name>scratches</name><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>30</xmax>"
        "<ymax>190</ymax></bndbox></object></annotation>")
    samples = {s.path.name: s for s in load_neu_det(tmp_path)}
    assert {name: s.label for name, s in samples.items()} == {"Cr_1.bmp": "crazing", "scratches_7.jpg": "scratches"}
    assert samples["scratches_7.jpg"].boxes == (Box(10, 20, 30, 190),) and samples["Cr_1.bmp"].boxes == ()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images in it or in its sub-folders"):
        load_neu_det(empty)
    with pytest.raises(DatasetError, match="data folder not found"):
        load_neu_det(tmp_path / "nowhere")


def test_evaluation_matches_label_spellings_to_the_model_classes(tmp_path):
    from edge_runtime.evaluation_cases import match_class_names

    samples = load_class_folders(make_class_folders(tmp_path, ["Crazing", "Sc", "good", "other"], n=1),
                                 normal_class="good")
    labels = sorted(str(s.label) for s in match_class_names(samples, ["crazing", "scratches"]))
    assert labels == ["None", "crazing", "other", "scratches"]
    tiles = load_class_folders(make_class_folders(tmp_path / "tiles", ["MT_Crack", "MT_Free", "MT_Other"], n=1),
                               normal_class="MT_Free")
    assert sorted(str(s.label) for s in match_class_names(tiles, ["blowhole", "crack"])) == ["MT_Other", "None", "crack"]


@needs_neu
def test_neu_det_as_distributed_upper_case_folders_and_class_sub_folders(tmp_path):
    """The NEU-DET download's own layouts: IMAGES/ANNOTATIONS, images sorted into per-class folders."""
    for name in ("crazing_1", "crazing_2", "scratches_1"):
        label = name.rsplit("_", 1)[0]
        (tmp_path / "IMAGES" / label).mkdir(parents=True, exist_ok=True)
        (tmp_path / "ANNOTATIONS" / "train").mkdir(parents=True, exist_ok=True)
        (tmp_path / "IMAGES" / label / f"{name}.jpg").symlink_to(NEU / "images" / f"{name}.jpg")
        if name != "crazing_2":
            (tmp_path / "ANNOTATIONS" / "train" / f"{name}.xml").symlink_to(NEU / "annotations" / f"{name}.xml")
    samples = {s.path.stem: s for s in load_neu_det(tmp_path)}
    reference = {s.path.stem: s for s in load_neu_det(NEU) if s.path.stem in samples}
    assert set(samples) == {"crazing_1", "crazing_2", "scratches_1"}
    assert samples["crazing_1"].boxes == reference["crazing_1"].boxes and samples["scratches_1"].label == "scratches"
    assert samples["crazing_2"].boxes == ()  # no annotation: no boxes, still evaluated by its class


def test_magnetic_tile_png_without_a_same_name_image_is_an_image_and_folder_case_does_not_matter(tmp_path):
    import cv2
    import numpy as np

    from edge_runtime.datasets import load_magnetic_tile

    tile = np.full((40, 50), 90, np.uint8)
    for folder, names in {"MT_Free/Imgs": ("a.jpg", "a.png", "b.png"), "mt_crack/imgs": ("c.jpg", "c.png")}.items():
        (tmp_path / folder).mkdir(parents=True)
        for name in names:
            cv2.imwrite(str(tmp_path / folder / name), tile)
    samples = {s.path.name: s for s in load_magnetic_tile(tmp_path, min_classes=0)}
    assert set(samples) == {"a.jpg", "b.png", "c.jpg"}
    assert samples["a.jpg"].mask_path.name == "a.png" and samples["b.png"].mask_path is None
    assert samples["a.jpg"].is_normal and samples["c.jpg"].label == "crack"  # folder names in any case


def test_a_broken_link_in_a_data_folder_is_kept_to_be_reported_not_dropped_or_fatal(tmp_path):
    root = make_class_folders(tmp_path, ["good", "a", "b"], n=4)
    (root / "a" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    samples = load_class_folders(root, normal_class="good")
    assert "gone.png" in {s.path.name for s in samples}  # evaluation reports it as an error, training skips it by name
    assert sum(len(v) for v in split_samples(samples, seed=0).values()) == len(samples)


def _voc(path, xmin):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><object><name>crazing</name><bndbox><xmin>{xmin}</xmin><ymin>2</ymin>"
                    f"<xmax>190</xmax><ymax>190</ymax></bndbox></object></annotation>")


def _image(path):
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.zeros((64, 64), np.uint8))


def test_neu_reader_reads_the_split_layout_and_gives_each_image_the_annotation_of_its_own_folder(tmp_path):
    """Two lines' folders hold a crazing_1 each: each image gets its own boxes, never the other's."""
    for split, xmin in (("train", 2), ("validation", 40)):
        _image(tmp_path / split / "images" / "crazing" / "crazing_1.jpg")
        _voc(tmp_path / split / "annotations" / "crazing" / "crazing_1.XML", xmin)
    _image(tmp_path / "train" / "images" / "scratches" / "scratches_1.jpg")
    samples = load_neu_det(tmp_path)
    boxes = {s.path.parts[-4]: s.boxes[0].xmin for s in samples if s.label == "crazing"}
    assert boxes == {"train": 2, "validation": 40} and {s.label for s in samples} == {"crazing", "scratches"}
    assert load_neu_det(tmp_path / "train" / "images")[0].boxes  # its images folder given: its annotations beside it
    _image(tmp_path / "flat" / "crazing_1.jpg")
    _voc(tmp_path / "flat" / "a" / "crazing_1.xml", 7)  # neither beside the image nor mirroring its folder:
    _voc(tmp_path / "flat" / "b" / "crazing_1.xml", 9)  # which one is its own?
    with pytest.raises(DatasetError, match="flat/crazing_1.jpg: two annotations could be its own"):
        load_neu_det(tmp_path / "flat")


def test_neu_reader_reads_file_names_as_people_write_them(tmp_path):
    for name in ("crazing 17.jpg", "crazing_12 (1).jpg", "Cr_3.bmp", "pitted_surface_4 - Copy.jpg",
                 "Pitted Surface 5.jpg", "._crazing_9.jpg"):
        _image(tmp_path / name)
    from edge_runtime.evaluation_cases import match_class_names

    names = ["crazing", "pitted_surface", "scratches"]
    labels = {s.path.name: s.label for s in match_class_names(load_neu_det(tmp_path, min_classes=0), names)}
    assert labels == {"crazing 17.jpg": "crazing", "crazing_12 (1).jpg": "crazing", "Cr_3.bmp": "crazing",
                      "pitted_surface_4 - Copy.jpg": "pitted_surface", "Pitted Surface 5.jpg": "pitted_surface"}


def test_magnetic_tile_reader_takes_images_without_an_imgs_folder_and_masks_in_upper_case(tmp_path):
    from edge_runtime.datasets import load_magnetic_tile

    for name in ("MT_Crack/c.JPG", "MT_Crack/c.PNG", "MT_Free/Imgs/f.jpg", "MT_Free/Imgs/f.png"):
        _image(tmp_path / name)
    samples = {s.path.name: s for s in load_magnetic_tile(tmp_path, min_classes=0)}
    assert set(samples) == {"c.JPG", "f.jpg"}
    assert samples["c.JPG"].label == "crack" and samples["c.JPG"].mask_path.name == "c.PNG"
    assert samples["f.jpg"].is_normal and samples["f.jpg"].mask_path.name == "f.png"


def test_class_folders_and_inspected_folders_leave_the_masks_beside_images_out(tmp_path, capsys):
    from edge_runtime.cli import _expand_folders

    for name in ("good/a.jpg", "good/a.png", "crack/b.jpg", "crack/b.png", "crack/c.png"):
        _image(tmp_path / name)
    samples = {s.path.name: s for s in load_class_folders(tmp_path, normal_class="good", min_classes=0)}
    assert set(samples) == {"a.jpg", "b.jpg", "c.png"} and samples["b.jpg"].mask_path.name == "b.png"
    assert sorted(path.name for path, _ in _expand_folders([tmp_path])) == ["a.jpg", "b.jpg", "c.png"]
    assert "2 pixel masks beside same-name images left out" in capsys.readouterr().err


def test_an_image_whose_name_is_no_class_takes_the_class_its_annotation_names(tmp_path):
    """Held-out images renamed img_0001.jpg keep their VOC annotation; NEU's own names still decide where they
    exist (a scratches image may hold an inclusion box too)."""
    _image(tmp_path / "images" / "img_0001.jpg")
    _voc(tmp_path / "annotations" / "img_0001.xml", 2)  # names "crazing"
    _image(tmp_path / "images" / "scratches_3.jpg")
    _voc(tmp_path / "annotations" / "scratches_3.xml", 2)
    labels = {s.path.name: s.label for s in load_neu_det(tmp_path, min_classes=0)}
    assert labels == {"img_0001.jpg": "crazing", "scratches_3.jpg": "scratches"}


def test_camera_style_file_names_read_at_once_and_keep_their_name_as_label():
    import threading

    from edge_runtime.datasets import neu_label

    labels = []
    names = ["Basler_acA2440_40237415_20241128_143022_123456_left", "IMG_" + "1" * 40 + "x"]
    worker = threading.Thread(target=lambda: labels.extend(neu_label(name) for name in names), daemon=True)
    worker.start()
    worker.join(10.0)  # a backtracking pattern took minutes on such names
    assert labels == names


def test_neu_reader_reads_each_real_folder_once_through_linked_folders(tmp_path):
    for name in ("crazing_1.jpg", "inclusion_1.jpg"):
        _image(tmp_path / "flat" / name)
    (tmp_path / "flat" / "loop").symlink_to(tmp_path / "flat")  # a link to the folder itself
    (tmp_path / "split" / "train" / "images").mkdir(parents=True)
    _image(tmp_path / "split" / "train" / "images" / "crazing_2.jpg")
    (tmp_path / "split" / "train" / "up").symlink_to(tmp_path / "split")
    assert sorted(s.path.name for s in load_neu_det(tmp_path / "flat", min_classes=0)) == ["crazing_1.jpg",
                                                                                           "inclusion_1.jpg"]
    assert [s.path.name for s in load_neu_det(tmp_path / "split", min_classes=0)] == ["crazing_2.jpg"]


def test_an_images_folder_among_other_images_is_not_taken_for_a_split_layout(tmp_path):
    for name in ("crazing_1.jpg", "inclusion_1.jpg", "old_rejects/images/patches_1.jpg"):
        _image(tmp_path / name)
    assert sorted(s.label for s in load_neu_det(tmp_path, min_classes=0)) == ["crazing", "inclusion", "patches"]


def test_a_line_s_own_class_names_stay_those_of_its_file_names(tmp_path):
    for n in (1, 2, 3):
        _image(tmp_path / "images" / f"pit_{n}.jpg")
    for n in (1, 2):  # annotated with another spelling: the file names still decide
        _voc(tmp_path / "annotations" / f"pit_{n}.xml", 2)
    assert {s.label for s in load_neu_det(tmp_path, min_classes=0)} == {"pit"}


def test_an_empty_imgs_folder_does_not_hide_a_tile_class_s_own_images(tmp_path):
    from edge_runtime.datasets import load_magnetic_tile

    _image(tmp_path / "MT_Crack" / "c.jpg")
    (tmp_path / "MT_Crack" / "Imgs").mkdir()
    _image(tmp_path / "MT_Free" / "Imgs" / "f.jpg")
    assert sorted(str(s.label) for s in load_magnetic_tile(tmp_path, min_classes=0)) == ["None", "crack"]
