"""Data sets with their own classes: classes.json, the plain layout, colour labels, and a
SUN RGB-D-like set (37 classes, images of mixed sizes, unlabelled pixels) end to end."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from tinysegnet import evaluate, predict, train
from tinysegnet.data import classes as classes_module
from tinysegnet.data.classes import CAMVID, Classes, read_classes
from tinysegnet.data.folder import load_split, read_label
from tinysegnet.errors import DataError

NAMES = [f"class{i:02d}" for i in range(37)]
SIZES = [(40, 52), (36, 48), (44, 60), (40, 56)]


def make_sun_like(root, n=10, seed=0, colors=None):
    """A plain-layout set: images/ (JPEG and PNG, four sizes), labels/ (ids 0..36, void 255 in
    a band), classes.json. Each class has its own colour, so the set can be learnt."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "images"))
    os.makedirs(os.path.join(root, "labels"))
    palette = rng.integers(0, 256, (37, 3))
    for i in range(n):
        h, w = SIZES[i % len(SIZES)]
        label = np.repeat(rng.integers(0, 37, (h // 4 + 1, w // 4 + 1)), 4, 0).repeat(4, 1)[:h, :w].astype(np.uint8)
        label[:, :3] = 255  # unlabelled
        image = np.clip(palette[np.minimum(label, 36)] + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)
        suffix = ".jpg" if i % 2 else ".png"
        Image.fromarray(image).save(os.path.join(root, "images", f"scene{i:02d}{suffix}"))
        Image.fromarray(label).save(os.path.join(root, "labels", f"scene{i:02d}.png"))
    description = {"names": NAMES, "void": 255}
    if colors is not None:
        description["colors"] = colors
    with open(os.path.join(root, "classes.json"), "w") as f:
        json.dump(description, f)
    return root


def test_a_folder_without_classes_json_is_camvid(tiny_set):
    assert read_classes(tiny_set) is CAMVID and len(CAMVID) == 11 and CAMVID.void == 11


@pytest.mark.parametrize("description,message", [
    ({"names": []}, "list of 1 to 255 class names"),
    ({"names": ["a", "a"]}, "'a' appears twice"),
    ({"names": ["a", "b"], "void": 1}, "labels 0..1 are the classes"),
    ({"names": ["a", "b"], "colors": [[1, 2, 3]]}, r"2 \[r, g, b\] triples"),
    ({"names": ["a"], "colour": []}, "unknown key 'colour'"),
])
def test_a_bad_classes_json_is_one_line(tmp_path, description, message):
    (tmp_path / "classes.json").write_text(json.dumps(description))
    with pytest.raises(DataError, match=message):
        read_classes(str(tmp_path))


def test_plain_layout_splits_every_fifth_image_into_val(tmp_path):
    root = make_sun_like(str(tmp_path / "sun"))
    classes = read_classes(root)
    assert len(classes) == 37 and classes.void == 255 and len(set(classes.colors)) == 37
    train_split = load_split(root, "train", (32, 48))
    val = load_split(root, "val", (32, 48))
    assert len(train_split) == 8 and val.names == ["scene04.png", "scene09.jpg"]
    assert train_split.labels.max() == 255 and train_split.labels[train_split.labels != 255].max() <= 36
    with pytest.raises(DataError, match="differ in size"):  # mixed sizes need --size
        load_split(root, "train")
    with pytest.raises(DataError, match="no test split"):
        load_split(root, "test", (32, 48))


def test_colour_labels_are_mapped_through_the_palette(tmp_path):
    classes = Classes(("a", "b"), ((255, 0, 0), (0, 0, 255)), 7)
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0] = (255, 0, 0)
    rgb[1, :2] = (0, 0, 255)  # the last pixel stays black: void
    Image.fromarray(rgb).save(tmp_path / "l.png")
    np.testing.assert_array_equal(read_label(str(tmp_path / "l.png"), classes), [[0, 0, 0], [1, 1, 7]])
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "l.png")
    with pytest.raises(DataError, match=r"colour \[1, 2, 3\] is none of the classes"):
        read_label(str(tmp_path / "l.png"), classes)


def test_an_id_label_beyond_the_classes_is_one_line(tmp_path):
    classes = Classes(("a", "b"), ((255, 0, 0), (0, 0, 255)), None)
    Image.fromarray(np.array([[0, 1, 2]], np.uint8)).save(tmp_path / "l.png")
    with pytest.raises(DataError, match="label value 2 is not a class id .0..1 and no void"):
        read_label(str(tmp_path / "l.png"), classes)


def test_made_up_colors_are_distinct():
    assert len({tuple(c) for c in classes_module.made_up_colors(255)}) == 255


def test_a_37_class_set_end_to_end(tmp_path, tiny_set, capsys):
    root = make_sun_like(str(tmp_path / "sun"))
    run = tmp_path / "run"
    train.main(["--data-dir", root, "--size", "32", "48", "--epochs", "2", "--batch-size", "4", "--quiet",
                "--device", "cpu", "--out", str(run)])
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert list(record["class_iou"]) == NAMES
    scores_path = tmp_path / "scores.json"
    evaluate.main([str(run / "best.npz"), "--json", str(scores_path), "--device", "cpu"])
    printed = capsys.readouterr().out
    assert "class36" in printed
    scores = json.loads(scores_path.read_text())
    assert scores["classes"] == NAMES and scores["void"] == 255 and np.array(scores["confusion"]).shape == (37, 37)
    predict.main([str(run / "best.npz"), os.path.join(root, "images"), "--out", str(tmp_path / "p"),
                  "--format", "both", "--device", "cpu"])
    with Image.open(tmp_path / "p" / "scene02_ids.png") as im:  # at the image's own size
        assert im.size == (60, 44) and np.asarray(im).max() <= 36
    palette = np.array(read_classes(root).colors, np.uint8)
    with Image.open(tmp_path / "p" / "scene02_labels.png") as im:  # the data set's own colours
        colours = {tuple(c) for c in np.asarray(im.convert("RGB"))[:44 * 9:9, ::9].reshape(-1, 3)}
    assert colours <= {tuple(c) for c in palette}
    with pytest.raises(SystemExit) as e:  # the run scored on a data set of other classes: one line
        evaluate.main([str(run / "best.npz"), "--data-dir", tiny_set, "--device", "cpu"])
    assert e.value.code == 1 and "are not the run's" in capsys.readouterr().err
