import os

import numpy as np
import pytest
from PIL import Image

from tinysegnet.data import camvid
from tinysegnet.data.camvid import DataError, load_camvid_split

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "camvid")


def _write_set(root, n=2, size=(8, 12), label_size=None, label_value=3):
    os.makedirs(root / "val")
    os.makedirs(root / "valannot")
    lines = []
    for i in range(n):
        Image.fromarray(np.full(size + (3,), 100, np.uint8)).save(root / "val" / f"{i}.png")
        Image.fromarray(np.full(label_size or size, label_value, np.uint8)).save(root / "valannot" / f"{i}.png")
        lines.append(f"/SegNet/CamVid/val/{i}.png /SegNet/CamVid/valannot/{i}.png\n")
    (root / "val.txt").write_text("".join(lines))
    return root


def test_loads_and_resizes(tmp_path):
    split = load_camvid_split(_write_set(tmp_path), "val", size=(4, 6))
    assert split.images.shape == (2, 4, 6, 3) and split.labels.shape == (2, 4, 6)
    assert split.labels.dtype == np.uint8 and (split.labels == 3).all()
    assert split.names == ["0.png", "1.png"]


def test_resize_keeps_label_ids_unblended():
    label = np.zeros((4, 4), np.uint8)
    label[:, 2:] = 10
    _, small = camvid.resize_pair(np.zeros((4, 4, 3), np.uint8), label, (2, 3))
    assert set(np.unique(small)) <= {0, 10}


@pytest.mark.parametrize("breakage,match", [
    ("no_folder", "CamVid folder not found"),
    ("no_list", "list file for split 'val' not found"),
    ("missing_entry", "1.png: file not found"),
    ("size_mismatch", "label is 6x4 but its image is 12x8"),
    ("bad_label", "label value 200 outside 0..11"),
    ("unreadable", "0.png: unreadable image"),
])
def test_bad_data_is_refused_with_one_line(tmp_path, breakage, match):
    root = tmp_path / "camvid"
    if breakage != "no_folder":
        _write_set(root, label_size=(4, 6) if breakage == "size_mismatch" else None,
                   label_value=200 if breakage == "bad_label" else 3)
    if breakage == "no_list":
        os.remove(root / "val.txt")
    elif breakage == "missing_entry":
        os.remove(root / "val" / "1.png")
    elif breakage == "unreadable":
        (root / "val" / "0.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=match) as info:
        load_camvid_split(str(root), "val")
    assert "\n" not in str(info.value)


@pytest.mark.camvid
def test_real_camvid_val_split():
    if not os.path.isdir(SHARED):
        pytest.skip("../shared/camvid is not here")
    split = load_camvid_split(SHARED, "val", size=(45, 60))
    assert len(split) == 101 and split.images.shape[1:] == (45, 60, 3)
    assert split.labels.max() <= camvid.VOID and set(np.unique(split.labels)) >= set(range(11))
